"""Absolute encodings added to the token embeddings.

sinusoidal (Vaswani et al. 2017, arXiv 1706.03762) and learned (Gehring et al. 2017, the RPE
code's ``learned`` table). Randomized twins live in :mod:`che_bench.encodings.randomized`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from che_bench.encodings.base import Encoding
from che_bench.encodings.registry import register_encoding
from che_bench.errors import ConfigError


def sinusoid(positions: Tensor, dim: int, exact: bool = False) -> Tensor:
    """[len(positions), dim] float32 with [sin(p·ω_k) ‖ cos(p·ω_k)], ω_k = 10000^(-2k/dim).

    The halves are concatenated, not interleaved (the RPE reference). ``exact`` computes
    in float64 and rounds once, as the reference builds its absolute tables (float32
    angles are up to 7e-5 off near position 2047).
    """
    dtype = torch.float64 if exact else torch.float32
    k = torch.arange(dim // 2, device=positions.device, dtype=dtype)
    omega = torch.pow(10000.0, -2.0 * k / dim)
    angles = positions.to(dtype)[:, None] * omega[None, :]
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).to(torch.float32)


@register_encoding("sinusoidal")
class Sinusoidal(Encoding):
    """Fixed sin/cos position vectors added to the embeddings (Vaswani et al. 2017)."""

    absolute = True
    shift_invariant = False

    def embed(self, length, device, generator):
        return sinusoid(torch.arange(length, device=device), self.dims.d_model, exact=True)


def truncated_normal_table(rows: int, dim: int, std: float = 1.0) -> nn.Parameter:
    """A [rows, dim] table, truncated normal σ = ``std`` cut at ±2σ (the Haiku ``Embed`` init)."""
    table = torch.empty(rows, dim)
    nn.init.trunc_normal_(table, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)
    return nn.Parameter(table)


@register_encoding("learned")
class Learned(Encoding):
    """A learned table of P position vectors added to the embeddings (Gehring et al. 2017)."""

    absolute = True
    shift_invariant = False

    def __init__(self, dims, *, causal: bool = False, max_length: int = 2048) -> None:
        super().__init__(dims, causal=causal)
        if max_length < 1:
            raise ConfigError(f"learned: max_length must be positive, got {max_length}")
        self.table = truncated_normal_table(max_length, dims.d_model)

    @property
    def max_length(self) -> int:
        return self.table.shape[0]

    def embed(self, length, device, generator):
        if length > self.max_length:  # the reference clamps silently; che-bench refuses
            raise ConfigError(
                f"learned: sequence of {length} tokens exceeds the table (P = {self.max_length}; "
                "the RPE reference would silently reuse its last row for every later "
                f"position); raise it with --pe-opt max_length={length}"
            )
        return self.table[:length]
