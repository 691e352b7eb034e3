"""Counting device-to-host reads: the host syncs a training step must not make.

On a GPU every read of a tensor's value by the host (``.item()``, ``bool(t)``, ``.tolist()``,
``.cpu()``, ...) waits for the device to finish all queued work, so a step that reads one
serialises the CPU and the GPU. :class:`HostReads` counts such calls on the CPU too (a
``TorchFunctionMode`` sees them), which makes "no host read on a non-logging step" testable
without a GPU. Reads of an optimizer's ``step`` counters are not counted: Adam keeps them
on the CPU even when the parameters are on a GPU (unless ``capturable``), so reading them
is no device sync.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.overrides import TorchFunctionMode

#: Tensor methods that hand a tensor's value to the host (``nonzero``: its output size).
READS = frozenset(
    {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "__format__", "cpu",
     "numpy", "nonzero"}
)  # fmt: skip


class HostReads(TorchFunctionMode):
    """``with HostReads(optimizer) as reads: ...`` then ``reads.count`` and ``reads.names``."""

    def __init__(self, optimizer: torch.optim.Optimizer | None = None) -> None:
        super().__init__()
        self.optimizer = optimizer
        self.names: list[str] = []

    @property
    def count(self) -> int:
        return len(self.names)

    def _optimizer_steps(self) -> set[int]:
        if self.optimizer is None:
            return set()
        states = self.optimizer.state.values()
        return {id(s["step"]) for s in states if isinstance(s.get("step"), torch.Tensor)}

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: Any = None):
        name = getattr(func, "__name__", "")
        tensor = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if name in READS and tensor is not None and id(tensor) not in self._optimizer_steps():
            self.names.append(name)
        return func(*args, **(kwargs or {}))
