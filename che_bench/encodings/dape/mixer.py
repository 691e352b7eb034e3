"""DAPE's mixer kernels: f([A‖B]) for V1 and V2, exact and cheaper than the official code.

Zheng et al., NeurIPS 2024 (arXiv 2405.14722) and arXiv 2410.04798. The official formula
(tile B, concat, MLP or convs), reorganised: W₁·[A‖B] + b₁ = W₁ᴬ·A + c with c = W₁ᴮ·B + b₁
computed once per forward (B is never tiled); heads stay the logits' channel axis and a
(1, K) conv is one GEMM over K shifted copies of A; the hidden layer is pairs-major (its D
channels innermost); the mixer runs over cache-sized blocks with reused buffers; backward
recomputes each block's hidden layer instead of storing it (:class:`_Checkpointed`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

SLOPE = 0.01  # LeakyReLU negative slope (the PyTorch default, as in the official code)
BLOCK_PAIRS = 1 << 15  # (i, j) pairs per block (measured: 16K-64K is flat on CPU)


# -- kernels: a, out [n, H, R, T]; c [R, T, D] or [D]; W₁ᴬ [D, K·H]; W₂ [K·H, D] -------------
def _taps(kernel: int, sign: int, length: int):
    """(tap k, destination keys, source keys) for the shift s = sign·(k − K//2)."""
    for k in range(kernel):
        s = sign * (k - kernel // 2)
        if abs(s) < length:
            yield k, slice(max(0, -s), length - max(0, s)), slice(max(0, s), length + min(0, s))


def _unfold(x: Tensor, kernel: int, sign: int, out: Tensor) -> Tensor:
    """out[:, k, ..., j] = x[..., j + s_k], zero outside the row: im2col along keys."""
    out.zero_()
    for k, dst, src in _taps(kernel, sign, x.shape[-1]):
        out[:, k, ..., dst] = x[..., src]
    return out


def _fold_add(y: Tensor, kernel: int, sign: int, target: Tensor) -> None:
    """target[..., j] += Σ_k y[:, k, ..., j + s_k]: the adjoint of :func:`_unfold`."""
    for k, dst, src in _taps(kernel, sign, target.shape[-1]):
        target[..., dst] += y[:, k, ..., src]


class _Workspace(dict):
    """Buffers reused across blocks: a fresh multi-MB tensor per block costs page faults."""

    def take(self, key: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        numel = torch.Size(shape).numel()
        if key not in self or self[key].numel() < numel:
            self[key] = like.new_empty(numel)
        return self[key][:numel].view(shape)


#: Bytes a block holds per (i, j) pair on a GPU: its hidden layer and gradient (D = 32
#: channels each, float32) and the unfolded logits, with room to spare.
GPU_BYTES_PER_PAIR = 1024
#: The largest block on a GPU (pairs): at N = 40 a whole training layer (128 × 80 × 80).
GPU_MAX_PAIRS = 1 << 24


def block_pairs(device: torch.device) -> int:
    """Pairs per block: cache-sized on the CPU (measured best there); on a GPU as many as a
    tenth of its total memory holds (one block per layer at training lengths: the kernels
    are launch-bound there). Every block size gives the same logits, but the gradients sum
    over blocks, so the size must not follow the free memory (other runs, the caching
    allocator): on one GPU model, the same blocks and the same numbers."""
    if device.type != "cuda":
        return BLOCK_PAIRS
    total = torch.cuda.get_device_properties(device).total_memory
    return int(max(BLOCK_PAIRS, min(GPU_MAX_PAIRS, total // 10 // GPU_BYTES_PER_PAIR)))


def _blocks(batch: int, rows: int, length: int, pairs: int) -> list[tuple[slice, slice]]:
    """(samples, query rows) blocks of about ``pairs`` pairs; never split inside a row."""
    if rows * length <= pairs:
        step = max(1, pairs // (rows * length))
        return [(slice(s, s + step), slice(None)) for s in range(0, batch, step)]
    step = max(1, pairs // length)
    return [
        (slice(s, s + 1), slice(r, r + step)) for s in range(batch) for r in range(0, rows, step)
    ]


def rows_of(t: Tensor | None, rows: slice) -> Tensor | None:
    """Query rows of a batch-independent [..., R, T] tensor ([D, 1, 1] ones pass through)."""
    if t is None or t.shape[-1] == 1:
        return t
    return t[rows] if t.dim() == 2 else t[:, rows]


def _pair_rows(c: Tensor, rows: slice) -> Tensor:
    """c's query rows as [R·T, D] (c per pair, [R, T, D]), or b₁ [D] as it is."""
    return c if c.dim() == 1 else c[rows].reshape(-1, c.shape[-1])


def _hidden(a: Tensor, c: Tensor, keep: Tensor | None, w1: Tensor, kernel: int, ws: _Workspace):
    """x = unfold(a) [n, K·H, R·T] and h = act(xᵀ·W₁ᴬᵀ + c) [n, R·T, D] for one block.

    h is pairs-major: with the hidden channel innermost, the block's GEMMs run ~1.5x faster
    on CPU than with the head axis (8 wide) as their only short dimension.
    """
    n, heads, rows, length = a.shape
    x = a if keep is None else a * keep  # causal V2: tril the A channels before the conv
    if kernel > 1:
        x = _unfold(x, kernel, 1, ws.take("x", (n, kernel, heads, rows, length), a))
    x = x.reshape(n, kernel * heads, rows * length)
    h = ws.take("h", (n, rows * length, len(w1)), a)
    torch.baddbmm(c, x.transpose(1, 2), w1.t().expand(n, -1, -1), out=h)
    return x, F.leaky_relu_(h, SLOPE)


def _like(a: Tensor, *tensors: Tensor | None) -> tuple[Tensor | None, ...]:
    """``tensors`` in the logits' dtype: under bf16 autocast the mixer runs in bfloat16."""
    return tuple(t if t is None else t.to(a.dtype) for t in tensors)


def _forward(a, res, c, keep, w1, w2, b2, kernel: int, inplace: bool = False) -> Tensor:
    """a + res + f(a) block by block (f(a) = fold(W₂·hᵀ) + b₂), into ``a`` itself if asked."""
    res, c, keep, w1, w2, b2 = _like(a, res, c, keep, w1, w2, b2)
    shift = b2[:, None, None] if res is None else res + b2[:, None, None]
    out, ws = (a if inplace else torch.empty_like(a)), _Workspace()
    for bs, rs in _blocks(a.shape[0], a.shape[2], a.shape[3], block_pairs(a.device)):
        ab, ob = a[bs, :, rs], out[bs, :, rs]
        _, h = _hidden(ab, _pair_rows(c, rs), rows_of(keep, rs), w1, kernel, ws)  # reads ab
        m, pairs = len(h), h.shape[1]
        y = ws.take("y", (m, len(w2), pairs), a)
        torch.bmm(w2.expand(m, -1, -1), h.transpose(1, 2), out=y)
        torch.add(ab, rows_of(shift, rs), out=ob)
        _fold_add(y.view(m, kernel, *ab.shape[1:]), kernel, 1, ob)
    return out


class _Checkpointed(torch.autograd.Function):
    """a + res + f(a) saving only a and c; backward recomputes h block by block, by hand.

    The blocks' weight and c gradients are summed in float32 or wider (bf16 logits: one
    rounding per block otherwise), and returned in the parameters' own dtype.
    """

    @staticmethod
    def forward(ctx: Any, a, res, c, keep, w1, w2, b2, kernel: int) -> Tensor:
        c, keep, w1, w2 = _like(a, c, keep, w1, w2)
        ctx.save_for_backward(a, c, keep, w1, w2)
        ctx.kernel = kernel
        return _forward(a, res, c, keep, w1, w2, b2, kernel)

    @staticmethod
    def backward(ctx: Any, grad: Tensor):
        a, c, keep, w1, w2 = ctx.saved_tensors
        kernel, ws, acc = ctx.kernel, _Workspace(), torch.promote_types(a.dtype, torch.float32)
        grad_a, grad_c = torch.empty_like(grad), torch.zeros_like(c, dtype=acc)
        grad_w1, grad_w2 = torch.zeros_like(w1, dtype=acc), torch.zeros_like(w2, dtype=acc)
        for bs, rs in _blocks(a.shape[0], a.shape[2], a.shape[3], block_pairs(a.device)):
            ab, gb, kb = a[bs, :, rs], grad[bs, :, rs], rows_of(keep, rs)
            x, h = _hidden(ab, _pair_rows(c, rs), kb, w1, kernel, ws)  # recomputed
            m, taps = len(h), (len(h), kernel, *ab.shape[1:])
            gy = gb if kernel == 1 else _unfold(gb, kernel, -1, ws.take("gy", taps, a))
            gy = gy.reshape(m, len(w2), -1)  # dL/d(W₂·hᵀ): the adjoint of the fold
            grad_w2 += torch.bmm(gy, h).sum(0)
            dz = torch.bmm(gy.transpose(1, 2), w2.expand(m, -1, -1), out=ws.take("dz", h.shape, a))
            torch.ops.aten.leaky_relu_backward.grad_input(dz, h, SLOPE, True, grad_input=dz)
            grad_w1.t().add_(torch.bmm(x, dz).sum(0))
            if c.dim() == 1:
                grad_c += dz.sum((0, 1))
            elif m == 1:
                grad_c[rs].add_(dz[0].view(-1, *c.shape[1:]))
            elif grad_c.dtype == dz.dtype:  # Σ over the block's samples (all rows) as a GEMM:
                grad_c.view(1, -1).addmm_(dz.new_ones(1, m), dz.view(m, -1))  # 3x .sum(0)
            else:
                grad_c += dz.sum(0).view_as(grad_c)
            dx = ws.take("dx", x.shape, a)
            torch.bmm(w1.t().expand(m, -1, -1), dz.transpose(1, 2), out=dx)
            ga = grad_a[bs, :, rs]
            if kernel == 1 and kb is None:  # residual + mixer path in one pass
                torch.add(gb, dx.view_as(gb), out=ga)
            elif kb is None:
                _fold_add(dx.view(taps), kernel, -1, ga.copy_(gb))
            else:  # the tril sits before the conv: mask its gradient
                da = ws.take("da", ab.shape, a).zero_()
                _fold_add(dx.view(taps), kernel, -1, da)
                torch.addcmul(gb, da, kb, out=ga)
        grad_res = grad.sum(0) if ctx.needs_input_grad[1] else None
        grad_b2 = grad.sum((0, 2, 3)) if grad_res is None else grad_res.sum((1, 2))
        return grad_a, grad_res, grad_c, None, grad_w1, grad_w2, grad_b2, None


@torch.compiler.disable  # hand-written blocks and autograd: run eagerly inside compiled code
def mix(a, res, c, keep, w1, w2, b2, kernel: int = 1, inplace: bool = False) -> Tensor:
    """a + res + f(a) for logits a [n, H, R, T] (res: batch-independent, or None).

    f(a) = fold(W₂·act(W₁ᴬ·unfold(a) + c)) + b₂, c = W₁ᴮ·B + b₁; V1 is K = 1 (no unfold).
    ``inplace`` (honoured without autograd only) writes the result into ``a``. It runs in
    the logits' dtype (bfloat16 under autocast), whatever the other tensors' dtypes.
    """
    tensors = (a, res, c, w1, w2, b2)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return _Checkpointed.apply(a, res, c, keep, w1, w2, b2, kernel)
    return _forward(a, res, c, keep, w1, w2, b2, kernel, inplace)
