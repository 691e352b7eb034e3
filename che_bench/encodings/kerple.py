"""KERPLE kernelized relative biases (Chi et al. 2022, arXiv 2205.09921).

``kerple`` (log kernel, the base of DAPE-Kerple): B = -p·ln(1 + a·|i - j|).
``kerple-power`` (the KERPLE repo's ``ParallelKerplePower``): B = -a·|i - j|^p.
Causal forms use one (p, a) per layer and head and give 0 for j > i. The official code is causal
only; the bidirectional form is a che-bench decision: an independently drawn right-hand set
(same init and clamp) for j > i, the left set covering the diagonal.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from che_bench.encodings.base import Encoding, signed_offsets
from che_bench.encodings.registry import register_encoding

CLAMP_MIN = 0.01


def offset_bias(values: Tensor, length: int) -> Tensor:
    """[H, T, T] with B[h, i, j] = values[h, (j - i) + T - 1], from values [H, 2T - 1]."""
    return values[:, signed_offsets(length, values.device) + (length - 1)]


def side_distances(length: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """|j - i| for offsets δ = -(T-1)..0 (left, diagonal included) and δ = 1..T-1 (right)."""
    return torch.arange(length - 1, -1, -1, device=device), torch.arange(1, length, device=device)


class KerpleBase(Encoding):
    """Shared machinery: parameters p, a of shape [sides, layers, H], clamping, assembly."""

    has_bias = True
    p_max: ClassVar[float | None] = None

    def __init__(self, dims, *, causal: bool = False, tie_init: bool = False) -> None:
        super().__init__(dims, causal=causal)
        shape = (1 if causal else 2, dims.num_layers, dims.num_heads)
        self.p = nn.Parameter(torch.empty(shape).uniform_(0.0, 2.0))
        self.a = nn.Parameter(torch.empty(shape).uniform_(0.0, 1.0))
        with torch.no_grad():
            if tie_init and not causal:  # symmetric start: right set = left set
                self.p[1].copy_(self.p[0])
                self.a[1].copy_(self.a[0])
            self.p.clamp_(CLAMP_MIN, self.p_max)
            self.a.clamp_(min=CLAMP_MIN)

    def kernel(self, distance: Tensor, p: Tensor, a: Tensor) -> Tensor:
        """[H, n] bias for distances [n] >= 0 and per-head p, a [H]."""
        raise NotImplementedError

    @torch.compiler.disable
    def begin_forward(self) -> None:
        """Clamp the parameters in place, as the official code does at every forward (it
        clamps each layer's before its bias; all at once at the start is the same values).

        Writing through ``.data`` keeps autograd out of it: the forward sees the clamped
        values, no gradient flows through the clamp, and graphs built by earlier calls are
        not invalidated. Kept out of compiled graphs (one break, at the start).
        """
        self.p.data.clamp_(CLAMP_MIN, self.p_max)
        self.a.data.clamp_(min=CLAMP_MIN)

    def bias(self, layer, length, device, generator):
        left_d, right_d = side_distances(length, device)
        dtype = self.p.dtype
        left = self.kernel(left_d.to(dtype), self.p[0, layer], self.a[0, layer])
        if self.causal:
            right = left.new_zeros(left.shape[0], length - 1)
        else:
            right = self.kernel(right_d.to(dtype), self.p[1, layer], self.a[1, layer])
        return offset_bias(torch.cat([left, right], dim=-1), length)


@register_encoding("kerple")
class KerpleLog(KerpleBase):
    """KERPLE log kernel: B = -p·ln(1 + a·|i - j|), p, a >= 0.01 (Chi et al. 2022)."""

    def kernel(self, distance, p, a):
        return -p[:, None] * torch.log1p(a[:, None] * distance[None, :])


@register_encoding("kerple-power")
class KerplePower(KerpleBase):
    """KERPLE power kernel: B = -a·|i - j|^p, p in [0.01, 2], a >= 0.01 (Chi et al. 2022)."""

    p_max = 2.0

    def kernel(self, distance, p, a):
        # 0^p = 0 with a finite (zero) gradient for p: pow on a safe base, then select.
        zero = distance == 0
        safe = torch.where(zero, torch.ones_like(distance), distance)
        power = torch.where(zero, torch.zeros_like(distance), safe[None, :] ** p[:, None])
        return -a[:, None] * power
