"""Deterministic kernels, registry-driven: every registered encoding (plugins included) runs
forward and backward under ``torch.use_deterministic_algorithms(True)``, as
``deterministic: true`` runs it on CUDA
(:func:`che_bench.training.precision.configure_determinism`).

On the CPU the mode must leave every number as it is (it also fills ``torch.empty`` with NaN,
so a kernel reading memory it never wrote shows up here). With the tensors posing as CUDA
ones, the encodings must take their CUDA branches and call none of the ops PyTorch documents
as raising under the mode on CUDA (``torch.use_deterministic_algorithms``' docstring, torch
2.13): CoPE's running sums called float ``cumsum`` there until they became a matmul.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from test_encodings_registry import NAMES, gen, make_model, tokens
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

#: aten ops with no deterministic CUDA kernel (they raise under the mode on CUDA).
RAISE_ON_CUDA = {
    "cumsum", "nll_loss2d_forward", "histc", "bincount", "median", "put", "put_",
    "avg_pool3d_backward", "_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward",
    "adaptive_max_pool2d_backward", "fractional_max_pool2d_backward",
    "fractional_max_pool3d_backward", "max_unpool2d", "max_unpool3d",
    "upsample_linear1d_backward", "upsample_bilinear2d_backward",
    "upsample_bicubic2d_backward", "upsample_trilinear3d_backward",
    "reflection_pad1d_backward", "reflection_pad2d_backward", "reflection_pad3d_backward",
    "grid_sampler_2d_backward", "grid_sampler_3d_backward", "_ctc_loss_backward",
}  # fmt: skip


class OpNames(TorchDispatchMode):
    """The names of the aten ops dispatched inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.fixture
def deterministic() -> Iterator[None]:
    """``torch.use_deterministic_algorithms(True)``, restored afterwards."""
    mode = torch.are_deterministic_algorithms_enabled()
    warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(mode, warn_only=warn)


def step(name: str, causal: bool) -> list[torch.Tensor]:
    """Logits and parameter gradients of one training-mode forward and backward."""
    model = make_model(name, causal=causal).train()
    out = model(tokens(2, 8), 4, generator=gen(1))
    targets = torch.randint(0, 3, out.shape[:2], generator=gen(2))
    F.cross_entropy(out.reshape(-1, out.shape[-1]), targets.reshape(-1)).backward()
    return [out.detach()] + [p.grad for p in model.parameters()]


def assert_identical(first: list[torch.Tensor], second: list[torch.Tensor]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("name", NAMES)
def test_deterministic_mode(name: str, causal: bool, monkeypatch, deterministic) -> None:
    torch.use_deterministic_algorithms(False)
    plain = step(name, causal)
    torch.use_deterministic_algorithms(True)
    assert_identical(step(name, causal), plain)  # the CPU's numbers are unchanged
    monkeypatch.setattr(torch.Tensor, "is_cuda", property(lambda self: True))
    with OpNames() as ops:
        first = step(name, causal)
    assert not ops.names & RAISE_ON_CUDA, sorted(ops.names & RAISE_ON_CUDA)
    assert_identical(step(name, causal), first)
