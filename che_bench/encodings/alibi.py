"""ALiBi: a fixed linear distance penalty per head (Press et al. 2022, arXiv 2108.12409)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from che_bench.encodings.base import Encoding, signed_offsets
from che_bench.encodings.registry import register_encoding


def alibi_slopes(num_heads: int) -> Tensor:
    """m_h = 2^(-8h/H) for H a power of two; otherwise the reference interleaving rule."""

    def power_of_two(n: int) -> list[float]:
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]

    base = 2 ** int(math.floor(math.log2(num_heads)))
    slopes = power_of_two(base)
    if base < num_heads:
        slopes += power_of_two(2 * base)[0::2][: num_heads - base]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(distances: Tensor, slopes: Tensor, causal: bool) -> Tensor:
    """Bias [H, T, T] from offsets δ = j - i, with distances[|δ|] giving the penalty.

    Bidirectional (Ruoss et al. form): -m·dist(|δ|) + 0.5·m·[j < i].
    Causal: -m·dist(i - j) for j <= i and 0 for j > i.
    """
    length = distances.shape[0]
    offsets = signed_offsets(length, distances.device)
    dist = distances[offsets.abs()]
    m = slopes.to(distances.device)[:, None, None]
    if causal:
        return torch.where(offsets <= 0, -m * dist, torch.zeros((), device=dist.device))
    return -m * dist + 0.5 * m * (offsets < 0)


@register_encoding("alibi")
class ALiBi(Encoding):
    """Linear distance penalty per head; bidirectional form gives left keys +0.5·m."""

    has_bias = True

    def __init__(self, dims, *, causal: bool = False) -> None:
        super().__init__(dims, causal=causal)
        self.register_buffer("slopes", alibi_slopes(dims.num_heads), persistent=False)

    def bias(self, layer, length, device, generator):
        distances = torch.arange(length, device=device, dtype=torch.float32)
        return alibi_bias(distances, self.slopes, self.causal)
