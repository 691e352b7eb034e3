"""The official DAPE formulation, written plainly: the oracle for tests and the benchmark.

A straightforward port of the formulas of the official DAPE code (``chuanyang-Zheng/DAPE``,
``AliBi_C`` / ``Alibi_DAPEV2`` and friends, arXiv 2405.14722, 2410.04798): concatenate the
logits with the bias **tiled** over the batch, permute to channels-last, apply the MLP (V1)
or the (1, K) conv stack over the [b, 2H, T, T] map (V2, tril'ed first in causal mode),
permute back and add the residual. Nothing is split, fused or chunked internally.

:class:`NaiveDAPE` plugs this formulation into the encoder in place of a production
:class:`~che_bench.encodings.dape.DAPE`, sharing its parameters, so the two can be compared
model against model (``benchmarks/bench_dape.py``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from che_bench.encodings.base import ALL_ROWS, Encoding, scaled_logits
from che_bench.encodings.dape import DAPE


def official_v1(
    logits: Tensor, bias: Tensor | None, first: nn.Linear, second: nn.Linear, form: str
) -> Tensor:
    """DAPE V1 (arXiv 2405.14722) and its ablation forms on logits A [b, H, R, T]."""

    def f(x: Tensor) -> Tensor:  # x: [b, C, R, T] -> [b, H, R, T]
        y = second(F.leaky_relu(first(x.permute(0, 2, 3, 1)), 0.01))
        return y.permute(0, 3, 1, 2)

    if form == "no_bias":
        return logits + f(logits)
    tiled = torch.tile(bias, (logits.shape[0], 1, 1, 1))
    if form == "concat_residual":
        return logits + bias + f(torch.cat((logits, tiled), dim=1))
    if form == "concat":
        return logits + f(torch.cat((logits, tiled), dim=1))
    if form == "add_residual":
        return logits + bias + f(logits + tiled)
    if form == "bias_only":
        return logits + bias + f(tiled)
    raise ValueError(form)


def official_v2(
    logits: Tensor,
    bias: Tensor | None,
    first: nn.Conv2d,
    second: nn.Conv2d,
    causal: bool,
    row_offset: int = 0,
) -> Tensor:
    """DAPE V2 (arXiv 2410.04798): A + B + g(tril([A‖B])); no tril when bidirectional.

    ``row_offset`` is the index of the first query row when only some rows are passed.
    """
    if bias is None:
        x = logits
    else:
        x = torch.cat((logits, torch.tile(bias, (logits.shape[0], 1, 1, 1))), dim=1)
    if causal:
        x = torch.tril(x, diagonal=row_offset)
    y = second(F.leaky_relu(first(x), 0.01))
    return logits + y if bias is None else logits + bias + y


class NaiveDAPE(Encoding):
    """The official formulation as an encoding: a drop-in twin of a production DAPE.

    It shares the production object's base and mixer modules (hence every parameter) and
    applies :func:`official_v1` / :func:`official_v2` to A = q·kᵀ/√d in ``scores``.
    """

    def __init__(self, production: DAPE) -> None:
        super().__init__(production.dims, causal=production.causal)
        self.base, self.mixers = production.base, production.mixers
        self.version, self.form = production.version, production.form
        self.name, self.options = f"naive-{production.name}", dict(production.options)

    @property
    def max_length(self) -> int | None:
        return self.base.max_length

    def embed(self, length, device, generator):
        return self.base.embed(length, device, generator)

    def prepare(self, layer, length, device, generator):
        return self.base.prepare(layer, length, device, generator)

    def qk(self, layer, ctx, q, k):
        return self.base.qk(layer, ctx, q, k)

    def scores(self, layer, ctx, q, k, rows=ALL_ROWS):
        logits = scaled_logits(q, k, rows)
        mixer = self.mixers[layer]
        bias = None if ctx.bias is None else ctx.bias[:, rows].to(logits.dtype)
        if self.version == 1:
            return official_v1(logits, bias, mixer.first, mixer.second, self.form)
        offset = rows.indices(ctx.length)[0]
        return official_v2(logits, bias, mixer.first, mixer.second, self.causal, offset)
