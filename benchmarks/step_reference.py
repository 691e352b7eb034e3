"""che-bench's training step as it was on 2026-12-03 (commit b9a52a9), frozen: the baseline
of ``bench_step.py``.

A verbatim copy of that day's encoder forward (``che_bench/model.py``: dropout from an
explicit generator, explicit softmax attention over the encoding's scores, post-LN layers)
and of ``Trainer.train_step`` (pageable copies, ``loss.item()`` before backward, clip 1.0,
Adam). It shares its parameters with a production :class:`~che_bench.model.Encoder`
(:func:`reference_of`), so the two steps can be timed side by side and compared number for
number. The encodings are the production ones, but for the default scores A = q·kᵀ/√d + B
(nope and every additive-bias encoding), frozen here too; DAPE's frozen form is
``dape_reference.py``.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from che_bench.encodings.base import Encoding
from che_bench.errors import ConfigError
from che_bench.generators import Task
from che_bench.model import Encoder, ModelConfig
from che_bench.training.metrics import masked_accuracy


def dropout(x: Tensor, p: float, training: bool, generator: torch.Generator | None) -> Tensor:
    """Inverted dropout drawing its mask from an explicit generator (no global RNG)."""
    if not training or p == 0.0:
        return x
    keep = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) >= p
    return x * keep / (1.0 - p)


def query_blocks(length: int, chunk: int | None, first: int = 0) -> list[slice]:
    """Blocks of the query rows ``first``..``length``; one block when ``chunk`` covers them."""
    if not chunk or chunk >= length - first:
        return [slice(None) if first == 0 else slice(first, length)]
    return [slice(start, min(start + chunk, length)) for start in range(first, length, chunk)]


def frozen_scores(encoding: Encoding, layer: int, ctx, q: Tensor, k: Tensor, rows) -> Tensor:
    """That day's default scores, A = (q·kᵀ).div_(√d) + B, for encodings that keep the
    default ``scores`` (nope and the additive-bias ones); the encoding's own otherwise."""
    if type(encoding).scores is not Encoding.scores:
        return encoding.scores(layer, ctx, q, k, rows)
    logits = torch.matmul(q[:, :, rows], k.transpose(-1, -2)).div_(math.sqrt(q.shape[-1]))
    if ctx.bias is None:
        return logits
    bias = ctx.bias[:, rows]
    return logits.add_(bias) if bias.dtype == logits.dtype else logits + bias


class ReferenceAttention(nn.Module):
    """Multi-head self-attention whose positional effects come from the encoding's hooks."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.d_model // config.num_heads
        self.q, self.k, self.v, self.o = (
            nn.Linear(config.d_model, config.d_model, bias=False) for _ in range(4)
        )

    def forward(
        self,
        x: Tensor,
        layer: int,
        encoding: Encoding,
        generator: torch.Generator | None,
        query_chunk: int | None,
        first_row: int = 0,
    ) -> Tensor:
        """Outputs for the query rows ``first_row``.. (keys and values: every row)."""
        batch, length, width = x.shape

        def heads(t: Tensor) -> Tensor:
            return t.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

        ctx = encoding.prepare(layer, length, x.device, generator)
        q, k = encoding.qk(layer, ctx, heads(self.q(x)), heads(self.k(x)))
        v = heads(self.v(x))
        outputs = []
        for rows in query_blocks(length, query_chunk, first_row):
            scores = frozen_scores(encoding, layer, ctx, q, k, rows)
            if encoding.causal:
                start = rows.start or 0
                i = torch.arange(start, start + scores.shape[-2], device=x.device)[:, None]
                j = torch.arange(length, device=x.device)[None, :]
                scores = scores.masked_fill(j > i, torch.finfo(scores.dtype).min)
            outputs.append(torch.matmul(torch.softmax(scores, dim=-1), v))
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        return self.o(out.transpose(1, 2).reshape(batch, length - first_row, width))


class ReferenceEncoderLayer(nn.Module):
    """Post-LN: h = LN(a + FFN(a)), a = LN(h + MHA(h)), dropout after each sublayer."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention = ReferenceAttention(config)
        self.ffn_in = nn.Linear(config.d_model, config.ffn_mult * config.d_model)
        self.ffn_out = nn.Linear(config.ffn_mult * config.d_model, config.d_model)
        self.norm1 = nn.LayerNorm(config.d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(config.d_model, eps=1e-5)
        self.p = config.dropout

    def forward(self, h, layer, encoding, generator, query_chunk, first_row: int = 0):
        """The layer's output for the rows ``first_row``.. of h."""
        a = self.attention(h, layer, encoding, generator, query_chunk, first_row)
        a = self.norm1(h[:, first_row:] + dropout(a, self.p, self.training, generator))
        f = self.ffn_out(F.relu(self.ffn_in(a)))
        return self.norm2(a + dropout(f, self.p, self.training, generator))


class ReferenceEncoder(nn.Module):
    """The CHE encoder with output placeholders; returns logits [B, K, output_size]."""

    def __init__(
        self,
        input_size: int,
        output_size: int,
        encoding: Encoding,
        config: ModelConfig | None = None,
    ) -> None:
        super().__init__()
        self.config = config or ModelConfig()
        if encoding.dims != self.config.dims:
            raise ValueError(f"encoding built for {encoding.dims}, model is {self.config.dims}")
        self.input_size = input_size
        self.output_size = output_size
        # One-hot over I + 1 classes times a bias-free Linear == an embedding table.
        self.embedding = nn.Embedding(input_size + 1, self.config.d_model)
        self.layers = nn.ModuleList(
            ReferenceEncoderLayer(self.config) for _ in range(self.config.num_layers)
        )
        self.head = nn.Linear(self.config.d_model, output_size)
        self.encoding = encoding

    def forward(
        self,
        inputs: Tensor,
        output_length: int,
        *,
        generator: torch.Generator | None = None,
        query_chunk: int | None = None,
    ) -> Tensor:
        """inputs: int64 [B, N] token ids → logits [B, K, C] for K = ``output_length``."""
        batch, length = inputs.shape
        total = length + output_length
        limit = self.encoding.max_length
        if limit is not None and total > limit:
            raise ConfigError(
                f"encoding {self.encoding.name!r} supports sequences up to {limit} tokens but "
                f"this one has {total}; raise it with --pe-opt max_length={total}"
            )
        placeholders = inputs.new_full((batch, output_length), self.input_size)
        tokens = torch.cat([inputs, placeholders], dim=1)
        h = self.embedding(tokens) * math.sqrt(self.config.d_model)
        position = self.encoding.embed(total, h.device, generator)
        if position is not None:
            h = dropout(h + position.to(h.dtype), self.config.dropout, self.training, generator)
        # Only the placeholders are read out, so without dropout (whose masks are drawn for
        # whole tensors) the last layer computes their rows alone: exact like query chunking
        # (equal up to float rounding), 8-20% less evaluation work.
        last = len(self.layers) - 1
        skip = length if not self.training and output_length > 0 else 0
        for index, layer in enumerate(self.layers):
            first = skip if index == last else 0
            h = layer(h, index, self.encoding, generator, query_chunk, first)
        return self.head(h[:, length - skip :])


def reference_of(model: Encoder) -> ReferenceEncoder:
    """A frozen-step copy of ``model``: same parameters (copied), its own encoding copy."""
    reference = ReferenceEncoder(
        model.input_size, model.output_size, copy.deepcopy(model.encoding), model.config
    )
    reference.load_state_dict(model.state_dict())
    return reference.train(model.training)


def reference_train_step(
    model: ReferenceEncoder,
    optimizer: torch.optim.Optimizer,
    task: Task,
    rng: np.random.Generator,
    generator: torch.Generator,
    batch_size: int,
    lengths: tuple[int, int],
    device: torch.device,
) -> tuple[float, int, int]:
    """``Trainer.train_step`` of that day: sample, copy, forward, ``.item()``, backward, clip,
    Adam, accuracy read back as ints."""
    lo, hi = lengths
    length = int(rng.integers(lo, hi + 1))
    batch = task.sample(rng, batch_size, length)
    arrays = (batch.inputs, batch.targets, batch.mask)
    inputs, targets, mask = (torch.from_numpy(a.copy()).to(device) for a in arrays)
    logits = model(inputs, targets.shape[1], generator=generator)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    value = loss.item()
    if not math.isfinite(value):
        return value, 0, 0
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    correct, counted = masked_accuracy(logits.detach(), targets, mask)
    return value, int(correct), int(counted)
