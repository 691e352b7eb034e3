"""CoPE: contextual position encoding (Golovneva et al. 2024, arXiv 2405.18719).

Causal: gates g_ij = σ(A_ij) for j <= i (0 otherwise), positions p_ij = Σ_{t=j..i} g_it clamped
to npos - 1, z_i = q_iᵀe with the unscaled query, and logits'_ij = A_ij + interpolation of z_i
at p_ij. The bidirectional form is a che-bench proposal (the official code is causal only): p_ij
sums the gates between j and i inclusive on either side, with separate zero-initialised tables
e^L (j <= i) and e^R (j > i).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from che_bench.encodings.base import (
    ALL_ROWS,
    Encoding,
    LayerContext,
    positional_term,
    row_indices,
)
from che_bench.encodings.registry import register_encoding
from che_bench.errors import ConfigError


def interpolate(z: Tensor, positions: Tensor) -> Tensor:
    """w·z[⌈p⌉] + (1 - w)·z[⌊p⌋] with w = p - ⌊p⌋; z [..., npos], positions [..., T]."""
    low = positions.floor()
    weight = positions - low
    z_low = z.gather(-1, low.long())
    z_high = z.gather(-1, positions.ceil().long())
    return weight * z_high + (1.0 - weight) * z_low


def running_sum(x: Tensor) -> Tensor:
    """cumsum over the last axis. CUDA's float cumsum has no deterministic kernel (it raises
    under ``torch.use_deterministic_algorithms``); there it is a matmul with a triangle of
    ones instead, equal up to float rounding. Everywhere else, ``cumsum`` itself."""
    if not (x.is_cuda and torch.are_deterministic_algorithms_enabled()):
        return x.cumsum(-1)
    length = x.shape[-1]
    return x @ torch.ones(length, length, device=x.device, dtype=x.dtype).triu()


@register_encoding("cope")
class CoPE(Encoding):
    """Contextual positions: counts of sigmoid gates between key and query, interpolated."""

    def __init__(self, dims, *, causal: bool = False, npos: int = 64) -> None:
        super().__init__(dims, causal=causal)
        if npos < 1:
            raise ConfigError(f"cope: npos must be positive, got {npos}")
        sides = 1 if causal else 2
        self.e = nn.Parameter(torch.zeros(sides, dims.num_layers, dims.head_dim, npos))

    def scores(self, layer, ctx, q, k, rows=ALL_ROWS):
        return self.from_logits(layer, ctx, super().scores(layer, ctx, q, k, rows), q, rows)

    def from_logits(
        self, layer: int, ctx: LayerContext, logits: Tensor, q: Tensor, rows: slice
    ) -> Tensor:
        """logits + the interpolated z_i at the contextual positions, for the rows ``rows``.

        ``logits`` are the scaled logits (plus a bias, for a subclass that adds one).
        """
        npos = self.e.shape[-1]
        i = row_indices(rows, ctx.length, logits.device)[:, None]
        j = torch.arange(ctx.length, device=logits.device)[None, :]
        left = j <= i
        gates = torch.sigmoid(logits)
        # Left (j <= i): reverse cumulative sum of the gates g_it with t <= i; 0 for j > i.
        positions = running_sum((gates * left).flip(-1)).flip(-1).clamp(max=npos - 1)
        table = self.e[0, layer]
        if not self.causal:  # right (j > i): cumulative sum of the gates g_it with t >= i,
            right = running_sum(gates * (j >= i)).clamp(max=npos - 1)
            positions = torch.where(left, positions, right + npos)  # looked up in e^R
            table = torch.cat([table, self.e[1, layer]], dim=-1)  # [d, 2·npos] = [e^L ‖ e^R]
        return logits + interpolate(q[:, :, rows] @ table, positions)

    def explain(self, layer, ctx, q, k) -> dict[str, Tensor]:
        """S − q·kᵀ/√d: z_i interpolated at the contextual positions p_ij for this sequence
        (Golovneva et al. 2024), content-dependent through the gates."""
        return {"positional term: S − q·kᵀ/√d": positional_term(self, layer, ctx, q, k)}
