"""Transformer-XL relative encoding (Dai et al. 2019, arXiv 1901.02860), as in the RPE code.

logit_h(i,j) = [(q_i + u_h)·k_j + (q_i + v_h)·r_h(j - i)] / √d with r(δ) = W_R s(δ), where s is
the 64-dimensional [sin ‖ cos] sinusoid at the signed offset δ = j - i. The positional term is
computed for the 2T-1 offsets once per layer, then gathered at index (T-1) + j - i, which is
the exact equivalent of the rel-shift. The randomized twin lives in ``randomized.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from che_bench.encodings.absolute import sinusoid
from che_bench.encodings.base import (
    ALL_ROWS,
    Encoding,
    LayerContext,
    positional_term,
    signed_offsets,
)
from che_bench.encodings.registry import register_encoding


@dataclass
class RelativeContext(LayerContext):
    """One layer's r_h(δ) = (W_R s(δ))_h for the 2T-1 offsets: r [H, 2T-1, d] at δ + T - 1."""

    r: Tensor | None = None


@register_encoding("relative")
class Relative(Encoding):
    """Transformer-XL relative logits: content, global-bias and sinusoidal relative terms."""

    exact_sinusoid = False  # True: the sinusoid table in float64, rounded once

    def __init__(self, dims, *, causal: bool = False) -> None:
        super().__init__(dims, causal=causal)
        layers, heads, head_dim = dims.num_layers, dims.num_heads, dims.head_dim
        self.u = nn.Parameter(torch.randn(layers, heads, head_dim) * 0.02)
        self.v = nn.Parameter(torch.randn(layers, heads, head_dim) * 0.02)
        # W_R per layer, as a stack of Linear(64 -> 64, no bias) weights [out, in].
        w_r = torch.empty(layers, dims.d_model, dims.d_model)
        nn.init.trunc_normal_(w_r, mean=0.0, std=1 / 8, a=-2 / 8, b=2 / 8)
        self.w_r = nn.Parameter(w_r)

    def offset_positions(
        self, layer: int, length: int, device: torch.device, generator: torch.Generator | None
    ) -> Tensor:
        """The sinusoid argument for each offset δ = -(T-1)..T-1, at index δ + T - 1."""
        return torch.arange(-(length - 1), length, device=device)

    def prepare(self, layer, length, device, generator):
        positions = self.offset_positions(layer, length, device, generator)
        table = sinusoid(positions, self.dims.d_model, self.exact_sinusoid).to(self.w_r.dtype)
        r = table @ self.w_r[layer].T  # [2T-1, 64]
        heads = r.view(2 * length - 1, self.dims.num_heads, self.dims.head_dim).transpose(0, 1)
        return RelativeContext(length, positions=positions, r=heads)

    def scores(self, layer, ctx: RelativeContext, q, k, rows=ALL_ROWS) -> Tensor:
        """[(q_i + u)·k_j + (q_i + v)·r(j - i)] / √d for the query rows ``rows``."""
        q_rows = q[:, :, rows]
        content = torch.matmul(q_rows + self.u[layer][:, None], k.transpose(-1, -2))
        by_offset = torch.matmul(q_rows + self.v[layer][:, None], ctx.r.transpose(-1, -2))
        index = signed_offsets(ctx.length, q.device, rows) + (ctx.length - 1)
        position = by_offset.gather(-1, index.expand(*content.shape))
        return (content + position) / math.sqrt(q.shape[-1])

    def explain(self, layer, ctx: RelativeContext, q, k) -> dict[str, Tensor]:
        """S − q·kᵀ/√d = [u·k_j + (q_i + v)·r(j − i)] / √d: the global content bias and the
        relative terms, (b)-(d) in Dai et al. 2019, Sec. 3.3, for this sequence."""
        return {"positional term: S − q·kᵀ/√d": positional_term(self, layer, ctx, q, k)}
