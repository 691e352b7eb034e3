"""How a run's arithmetic is set up on its device: bf16 autocast and deterministic kernels.

``precision: bf16`` runs the forward pass under ``torch.autocast(dtype=torch.bfloat16)``:
matmuls and attention in bfloat16, parameters, Adam's state, the loss and the reductions in
float32 (no loss scaling is needed for bfloat16, Kalamkar et al., 2019).

``deterministic: true`` (the default) is a no-op on the CPU, whose kernels are deterministic
already. On CUDA it turns on ``torch.use_deterministic_algorithms``, sets
``CUBLAS_WORKSPACE_CONFIG=:4096:8`` (which cuBLAS reads when it first starts in a process),
makes cuDNN deterministic and turns TF32 off, so the same seed on the same GPU model, driver
and torch build gives the same numbers. ``false`` leaves the process's settings as they are.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

#: What ``precision`` names, as autocast dtypes (None: no autocast).
AUTOCAST_DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """The forward pass's arithmetic for ``precision`` on ``device``."""
    dtype = AUTOCAST_DTYPES[precision]
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def configure_determinism(device: torch.device, deterministic: bool) -> None:
    """Make CUDA kernels deterministic (see the module docstring); nothing on the CPU."""
    if device.type != "cuda" or not deterministic:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
