"""The reference CHE encoder of Ruoss et al. 2023 (arXiv 2305.16843) and their RPE code.

Post-LN transformer encoder, 5 layers × d_model 64, 8 heads, FFN ×4 with ReLU,
dropout 0.1, token embedding ×√d, Haiku truncated-normal init, no causal mask.
The input is widened with one placeholder class and K = output_length(N) placeholder
tokens are appended; logits are read from the last K positions.

The model never branches on the encoding's name: it calls the hooks of
:class:`che_bench.encodings.Encoding` in a fixed order (``embed``; per layer ``prepare``,
``qk``, then ``scores`` for each block of query rows).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from che_bench.encodings.base import Encoding, LayerContext
from che_bench.errors import ConfigError
from che_bench.model_config import ModelConfig


def dropout(
    x: Tensor,
    p: float,
    training: bool,
    generator: torch.Generator | None,
    noise: Iterator[Tensor] | None = None,
) -> Tensor:
    """Inverted dropout drawing its mask from an explicit generator (no global RNG), or
    from the next of ``noise``: the same uniforms, drawn before the forward (so that a
    compiled forward has no random draw in it)."""
    if not training or p == 0.0:
        return x
    uniform = next(noise) if noise is not None else None
    if uniform is None:
        uniform = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return x * (uniform >= p) / (1.0 - p)


def haiku_linear_init(layer: nn.Linear, std: float | None = None) -> None:
    """Truncated normal σ = 1/√fan_in cut at ±2σ (not re-normalised), zero bias."""
    std = 1.0 / math.sqrt(layer.in_features) if std is None else std
    nn.init.trunc_normal_(layer.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


def query_blocks(length: int, chunk: int | None, first: int = 0) -> list[slice]:
    """Blocks of the query rows ``first``..``length``; one block when ``chunk`` covers them."""
    if not chunk or chunk >= length - first:
        return [slice(None) if first == 0 else slice(first, length)]
    return [slice(start, min(start + chunk, length)) for start in range(first, length, chunk)]


class Attention(nn.Module):
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
        ctx, q, k = self.project(x, layer, encoding, generator)
        v = self.heads(self.v(x))
        outputs = []
        for rows in query_blocks(length, query_chunk, first_row):
            scores = encoding.scores(layer, ctx, q, k, rows)
            if encoding.causal:
                scores = causal_masked(scores, rows.start or 0)
            outputs.append(torch.matmul(torch.softmax(scores, dim=-1), v))
        out = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=2)
        return self.o(out.transpose(1, 2).reshape(batch, length - first_row, width))

    def heads(self, t: Tensor) -> Tensor:
        """[B, T, d_model] → per-head [B, H, T, head_dim]."""
        batch, length, _ = t.shape
        return t.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)

    def project(
        self, x: Tensor, layer: int, encoding: Encoding, generator: torch.Generator | None
    ) -> tuple[LayerContext, Tensor, Tensor]:
        """The encoding's per-forward context of ``layer`` and the per-head q, k after its
        ``qk`` hook (RoPE rotates them there)."""
        ctx = encoding.prepare(layer, x.shape[1], x.device, generator)
        q, k = encoding.qk(layer, ctx, self.heads(self.q(x)), self.heads(self.k(x)))
        return ctx, q, k


def causal_masked(scores: Tensor, first_row: int = 0) -> Tensor:
    """``scores`` [.., rows, T] of the query rows from ``first_row`` on, every key after
    its query set to the dtype's minimum (exp → 0 in the softmax)."""
    i = torch.arange(first_row, first_row + scores.shape[-2], device=scores.device)[:, None]
    j = torch.arange(scores.shape[-1], device=scores.device)[None, :]
    return scores.masked_fill(j > i, torch.finfo(scores.dtype).min)


class EncoderLayer(nn.Module):
    """Post-LN: h = LN(a + FFN(a)), a = LN(h + MHA(h)), dropout after each sublayer."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention = Attention(config)
        self.ffn_in = nn.Linear(config.d_model, config.ffn_mult * config.d_model)
        self.ffn_out = nn.Linear(config.ffn_mult * config.d_model, config.d_model)
        self.norm1 = nn.LayerNorm(config.d_model, eps=1e-5)
        self.norm2 = nn.LayerNorm(config.d_model, eps=1e-5)
        self.p = config.dropout

    def forward(self, h, layer, encoding, generator, query_chunk, first_row: int = 0, noise=None):
        """The layer's output for the rows ``first_row``.. of h."""
        a = self.attention(h, layer, encoding, generator, query_chunk, first_row)
        a = self.norm1(h[:, first_row:] + dropout(a, self.p, self.training, generator, noise))
        f = self.ffn_out(F.relu(self.ffn_in(a)))
        return self.norm2(a + dropout(f, self.p, self.training, generator, noise))


class Encoder(nn.Module):
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
            EncoderLayer(self.config) for _ in range(self.config.num_layers)
        )
        self.head = nn.Linear(self.config.d_model, output_size)
        self.encoding = encoding
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Haiku defaults (the reference); encoding parameters keep their own init."""
        nn.init.trunc_normal_(self.embedding.weight, std=0.02, a=-0.04, b=0.04)
        for module in [*self.layers.modules(), self.head]:
            if isinstance(module, nn.Linear):
                haiku_linear_init(module)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(
        self,
        inputs: Tensor,
        output_length: int,
        *,
        generator: torch.Generator | None = None,
        query_chunk: int | None = None,
        noise: list[Tensor] | None = None,
    ) -> Tensor:
        """inputs: int64 [B, N] token ids → logits [B, K, C] for K = ``output_length``;
        ``noise``: the dropout uniforms of :meth:`dropout_noise`, drawn beforehand."""
        batch, length = inputs.shape
        self.encoding.begin_forward()
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
        draws = iter(noise) if noise is not None else None
        if position is not None:
            p = self.config.dropout
            h = dropout(h + position.to(h.dtype), p, self.training, generator, draws)
        # Only the placeholders are read out, so without dropout (whose masks are drawn for
        # whole tensors) the last layer computes their rows alone: exact like query chunking
        # (equal up to float rounding), 8-20% less evaluation work.
        last = len(self.layers) - 1
        skip = length if not self.training and output_length > 0 else 0
        for index, layer in enumerate(self.layers):
            first = skip if index == last else 0
            h = layer(h, index, self.encoding, generator, query_chunk, first, draws)
        return self.head(h[:, length - skip :])

    def dropout_noise(
        self, batch: int, total: int, generator: torch.Generator | None, device: torch.device
    ) -> list[Tensor] | None:
        """The uniforms a training forward of ``batch`` × ``total`` tokens draws for its
        dropouts, in its order; None where the encoding draws too (``randomized``: its
        draws interleave with dropout's) or there is no dropout."""
        if not self.training or self.config.dropout == 0.0 or self.encoding.randomized:
            return None
        sites = 2 * len(self.layers) + int(self.encoding.absolute)
        shape = (batch, total, self.config.d_model)
        return [torch.rand(shape, generator=generator, device=device) for _ in range(sites)]


def count_parameters(module: nn.Module) -> int:
    """Learnable parameters (frozen buffers are not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
