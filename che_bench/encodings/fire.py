"""FIRE: functional interpolation for relative positions (Li et al. 2023, arXiv 2310.04418).

B_h[i,j] = f_θ(ψ(i - j) / (ψ(max(n, |λ·L0|)) + ε))_h with ψ(x) = ln(|c·x| + 1) and
f_θ = Linear(1 → 32) → act → Linear(32 → H). Causal (official): n = i, the query row, and the
value f_θ(0) for j > i. The bidirectional form is a che-bench decision (the reference code is
causal only): separate (f_θ, c, λ) for j <= i and j > i, L0 shared, and n = T, the full sequence
length. The bias is batch-independent: [H, T, T] once per forward per layer.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from che_bench.encodings.base import Encoding
from che_bench.encodings.kerple import offset_bias, side_distances
from che_bench.encodings.registry import register_encoding
from che_bench.errors import ConfigError

FIRE_WIDTH = 32
FIRE_EPS = 1e-6


class FireFunction(nn.Module):
    """One side of one layer: the MLP f_θ and the learnable c (init 0.1) and λ (init 1.0)."""

    def __init__(self, num_heads: int, activation: str) -> None:
        super().__init__()
        act = nn.ReLU() if activation == "relu" else nn.LeakyReLU(0.01)
        self.mlp = nn.Sequential(nn.Linear(1, FIRE_WIDTH), act, nn.Linear(FIRE_WIDTH, num_heads))
        self.c = nn.Parameter(torch.tensor(0.1))
        self.lam = nn.Parameter(torch.tensor(1.0))

    def psi(self, x: Tensor) -> Tensor:
        return torch.log(torch.abs(self.c * x) + 1.0)

    def forward(self, distance: Tensor, norm_position: Tensor, l0: Tensor) -> Tensor:
        """f_θ(ψ(distance) / (ψ(max(n, |λ·L0|)) + ε)) → [..., H]; shapes broadcast."""
        threshold = torch.abs(self.lam * l0)
        norm = self.psi(torch.maximum(norm_position, threshold)) + FIRE_EPS
        return self.mlp((self.psi(distance) / norm).unsqueeze(-1))


@register_encoding("fire")
class Fire(Encoding):
    """FIRE learned bias: an MLP of the log-compressed, length-normalised distance."""

    has_bias = True
    shift_invariant = False  # the normaliser depends on T (bidirectional) or on i (causal)

    def __init__(
        self,
        dims,
        *,
        causal: bool = False,
        l0: float = 512.0,
        mlp_activation: Literal["relu", "leaky_relu"] = "relu",
        tie_init: bool = False,
    ) -> None:
        super().__init__(dims, causal=causal)
        if mlp_activation not in ("relu", "leaky_relu"):
            raise ConfigError(
                f"fire: mlp_activation must be relu or leaky_relu: {mlp_activation!r}"
            )
        sides = 1 if causal else 2
        heads, layers = dims.num_heads, dims.num_layers
        self.sides = nn.ModuleList(
            nn.ModuleList(FireFunction(heads, mlp_activation) for _ in range(layers))
            for _ in range(sides)
        )
        if tie_init and not causal:
            self.sides[1].load_state_dict(self.sides[0].state_dict())
        self.register_buffer("l0", torch.tensor(float(l0)))

    def bias(self, layer, length, device, generator):
        left_fn = self.sides[0][layer]
        dtype = left_fn.c.dtype
        l0 = self.l0.to(dtype)
        if self.causal:
            rows = torch.arange(length, device=device, dtype=dtype)[:, None]
            distance = (rows - rows.T).clamp(min=0)  # max(i - j, 0), [T, T]
            return left_fn(distance, rows, l0).permute(2, 0, 1)
        total = torch.tensor(float(length), device=device, dtype=dtype)
        left_d, right_d = side_distances(length, device)
        left = left_fn(left_d.to(dtype), total, l0)  # [T, H]
        right = self.sides[1][layer](right_d.to(dtype), total, l0)  # [T - 1, H]
        return offset_bias(torch.cat([left, right]).T, length)
