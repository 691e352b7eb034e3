"""RoPE: rotary position embedding on q and k (Su et al. 2021, arXiv 2104.09864).

Interleaved pairs (2m, 2m+1) rotated by p·θ_m with θ_m = 10000^(-2m/d), as in the RPE code.
The randomized twin (``rand-rope``) lives in :mod:`che_bench.encodings.randomized`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from che_bench.encodings.base import Encoding, LayerContext, as_map, scaled_logits
from che_bench.encodings.registry import register_encoding

ROPE_BASE = 10000.0


def rope_frequencies(head_dim: int, device: torch.device | None = None) -> Tensor:
    """θ_m = 10000^(-2m/d) for m = 0..d/2-1, float64."""
    m = torch.arange(head_dim // 2, device=device, dtype=torch.float64)
    return torch.pow(ROPE_BASE, -2.0 * m / head_dim)


def rotate(x: Tensor, positions: Tensor) -> Tensor:
    """Rotate interleaved pairs of ``x`` [..., T, d] by positions [T] (any numeric dtype).

    x'_{2m} = x_{2m} cos(pθ_m) - x_{2m+1} sin(pθ_m);  x'_{2m+1} = x_{2m+1} cos + x_{2m} sin.
    """
    head_dim = x.shape[-1]
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head dimension, got {head_dim}")
    angles = positions.to(torch.float64)[:, None] * rope_frequencies(head_dim, x.device)
    cos, sin = torch.cos(angles).to(x.dtype), torch.sin(angles).to(x.dtype)
    pairs = x.unflatten(-1, (head_dim // 2, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack([even * cos - odd * sin, odd * cos + even * sin], dim=-1)
    return rotated.flatten(-2)


@register_encoding("rope")
class RoPE(Encoding):
    """Rotary embedding of q and k at positions 0..T-1; scores depend on j - i only."""

    def positions(
        self, layer: int, length: int, device: torch.device, generator: torch.Generator | None
    ) -> Tensor:
        """The positions q and k are rotated to in ``layer`` (drawn here by randomized twins)."""
        return torch.arange(length, device=device)

    def prepare(self, layer, length, device, generator):
        return LayerContext(length, positions=self.positions(layer, length, device, generator))

    def qk(self, layer: int, ctx: LayerContext, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        return rotate(q, ctx.positions), rotate(k, ctx.positions)

    def explain(self, layer: int, ctx: LayerContext, q: Tensor, k: Tensor) -> dict[str, Tensor]:
        """RoPE adds no term to the logits; it rotates q and k. Two maps show what that does:

        - ``rotation kernel``: the logit q_i·k_j/√d of a query equal to its key with every
          rotated pair a unit vector, Σ_m cos((p_j − p_i)·θ_m)/√d (Su et al. 2021, Sec. 3.4.3,
          the long-term decay): the oscillation and decay the rotation alone imposes, the
          same in every head;
        - ``rotation effect``: this sequence's logits minus those of the same q, k
          unrotated, per head.
        """
        positions = ctx.positions.to(torch.float64)
        angles = (positions[None, :] - positions[:, None])[..., None] * rope_frequencies(
            q.shape[-1], q.device
        )
        kernel = angles.cos().sum(-1) / math.sqrt(q.shape[-1])
        heads = q.shape[1]
        plain = scaled_logits(rotate(q, -ctx.positions), rotate(k, -ctx.positions))
        return {
            "rotation kernel": as_map(kernel.expand(heads, -1, -1)),
            "rotation effect: S − S₀": as_map(scaled_logits(q, k) - plain),
        }
