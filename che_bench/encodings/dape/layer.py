"""One layer's DAPE module: the parameters of f (V1) or g (V2) and their layout for the kernels.

The parameters are the official modules (``nn.Linear`` / ``nn.Conv2d`` with PyTorch's default
init, channel order [A‖B]) so that weights copy one-to-one from the official code.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class DAPEMixer(nn.Module):
    """One layer's DAPE module: f (V1, Linear) or g (V2, Conv2d (1, K)), PyTorch default init."""

    def __init__(self, heads: int, in_channels: int, hidden: int, kernel: int | None) -> None:
        super().__init__()
        self.heads = heads
        if kernel is None:
            self.first: nn.Module = nn.Linear(in_channels, hidden)
            self.second: nn.Module = nn.Linear(hidden, heads)
        else:
            self.first = nn.Conv2d(in_channels, hidden, (1, kernel), padding=(0, kernel // 2))
            self.second = nn.Conv2d(hidden, heads, (1, kernel), padding=(0, kernel // 2))

    def split(self) -> tuple[Tensor | None, Tensor, tuple[Tensor, Tensor, Tensor]]:
        """W₁ᴮ (None without B channels), b₁, and (W₁ᴬ, W₂, b₂) in :func:`.mixer.mix`'s layout."""
        w1, w2, h = self.first.weight, self.second.weight, self.heads
        w1b = w1[:, h:] if w1.shape[1] > h else None
        if w1.dim() == 4:  # taps: W₁ᴬ[d, k·H + i] = w1[d, i, 0, k], W₂[k·H + o, d] = w2[o, d, 0, k]
            w1 = w1[:, :, 0].permute(0, 2, 1)
            w2 = w2[:, :, 0].permute(2, 0, 1).reshape(-1, w2.shape[1])
        return w1b, self.first.bias, (w1[..., :h].reshape(len(w1), -1), w2, self.second.bias)

    @staticmethod
    def batch_independent(w1b: Tensor | None, b1: Tensor, bias: Tensor | None) -> Tensor:
        """c = W₁ᴮ·B + b₁ pairs-major, [R, T, D] for B's rows (b₁ [D] as is without B)."""
        if w1b is None:
            return b1
        if w1b.dim() == 2:
            c = torch.addmm(b1, bias.reshape(len(bias), -1).t(), w1b.t())
            return c.view(*bias.shape[1:], -1)
        c = F.conv2d(bias[None], w1b, b1, padding=(0, w1b.shape[-1] // 2))[0]
        return c.permute(1, 2, 0).contiguous()
