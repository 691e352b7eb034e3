"""The encoding protocol: one object owns an encoding's embedding- and attention-side effects.

The encoder calls four hooks in a fixed order and never branches on an encoding's name
(the fifth, ``bias``, is called by the default ``prepare``)::

    embed(T)                                 once per forward   (absolute encodings)
    for each layer:
        ctx = prepare(layer, T)              once per forward   (the bias B, random draws)
        q, k = qk(layer, ctx, q, k)          full sequence      (RoPE)
        for each block of query rows:
            S = scores(layer, ctx, q, k, rows)     default q·kᵀ/√d + B
            [causal mask] -> softmax -> · V

This is the order of the official DAPE code (Zheng et al. 2024): B is added after the 1/√d
scaling, and content-dependent terms (Transformer-XL, CoPE, the DAPE mixer) come before the
mask. An additive-bias encoding implements ``bias`` alone.

``rows`` is a ``slice`` of query indices: evaluation chunks over query rows to bound
memory, so every hook that touches the query axis must honour it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

ALL_ROWS = slice(None)


@dataclass(frozen=True)
class ModelDims:
    """Shape of the encoder an encoding plugs into."""

    d_model: int = 64
    num_heads: int = 8
    num_layers: int = 5

    @property
    def head_dim(self) -> int:
        return self.d_model // self.num_heads


@dataclass
class LayerContext:
    """Per-forward, per-layer state, computed once and reused by every query chunk.

    An encoding that needs more state returns a subclass with typed fields from ``prepare``.
    """

    length: int
    bias: Tensor | None = None  # [H, T, T], batch-independent, never tiled
    positions: Tensor | None = None  # a randomized encoding's draw for this layer


class Encoding(nn.Module):
    """Base class: no positional information (``nope``). Subclasses override hooks.

    Class flags describe the encoding to the registry, the model and the tests:

    - ``has_bias``: implements :meth:`bias` and keeps the default :meth:`scores` (A + B), so
      DAPE can wrap it (``dape-<name>``, ``dapev2-<name>``).
    - ``absolute``: implements :meth:`embed` (the encoder applies input dropout to its sum).
    - ``shift_invariant``: scores depend only on offsets j - i (tested).
    - ``randomized``: draws positions at every forward, in eval mode too.
    """

    description: ClassVar[str] = "no positional information"
    has_bias: ClassVar[bool] = False
    absolute: ClassVar[bool] = False
    shift_invariant: ClassVar[bool] = True
    randomized: ClassVar[bool] = False
    #: Options added after rows were stored → the default under which they stay out of the
    #: config hash, so that every earlier row keeps its run_key.
    options_hashed_if_changed: ClassVar[dict[str, Any]] = {}

    def __init__(self, dims: ModelDims, *, causal: bool = False) -> None:
        super().__init__()
        self.dims = dims
        self.causal = causal
        self.name = type(self).__name__.lower()  # the registry sets the registered name
        self.options: dict[str, Any] = {}  # the registry records the resolved options

    # -- limits ------------------------------------------------------------------
    @property
    def max_length(self) -> int | None:
        """Longest sequence (tokens + placeholders) supported, or None if unbounded."""
        return None

    # -- hooks ---------------------------------------------------------------------
    def begin_forward(self) -> None:
        """Called once at the start of every forward, before any other hook."""

    def embed(
        self, length: int, device: torch.device, generator: torch.Generator | None
    ) -> Tensor | None:
        """A [T, d_model] tensor added to the scaled token embeddings, or None."""
        return None

    def bias(
        self, layer: int, length: int, device: torch.device, generator: torch.Generator | None
    ) -> Tensor | None:
        """The additive bias B [H, T, T] for ``layer``, or None."""
        return None

    def prepare(
        self, layer: int, length: int, device: torch.device, generator: torch.Generator | None
    ) -> LayerContext:
        """Per-forward state for ``layer``: the bias and any random draw."""
        return LayerContext(length, bias=self.bias(layer, length, device, generator))

    def qk(self, layer: int, ctx: LayerContext, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """Transform per-head q, k [B, H, T, d] before the dot product."""
        return q, k

    def scores(
        self, layer: int, ctx: LayerContext, q: Tensor, k: Tensor, rows: slice = ALL_ROWS
    ) -> Tensor:
        """Pre-softmax scores [B, H, rows, T] for the query rows ``rows`` of q, k (after
        :meth:`qk`): A = q·kᵀ/√d plus the bias of ``ctx`` if any."""
        return plus_bias(scaled_logits(q, k, rows), ctx.bias, rows)

    # -- inspection ----------------------------------------------------------------
    def explain(self, layer: int, ctx: LayerContext, q: Tensor, k: Tensor) -> dict[str, Tensor]:
        """Named maps [H, T, T] of the positional term this encoding adds to the attention
        logits of one sequence (q, k: [1, H, T, d], after :meth:`qk`), detached, on the CPU.

        Default: the additive bias B (ALiBi, KERPLE, T5, FIRE …) when ``ctx`` has one; no
        map for an encoding whose positions enter on the embedding side (nope, sinusoidal,
        learned). Read by ``che-bench inspect``, never by the forward.
        """
        return {} if ctx.bias is None else {"bias B": as_map(ctx.bias)}

    def extra_repr(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"name={self.name!r}, causal={self.causal}" + (f", {opts}" if opts else "")


def scaled_logits(q: Tensor, k: Tensor, rows: slice = ALL_ROWS) -> Tensor:
    """A = q·kᵀ/√d [B, H, rows, T] for the query rows ``rows``: a fresh tensor."""
    return torch.matmul(q[:, :, rows], k.transpose(-1, -2)).div_(math.sqrt(q.shape[-1]))


def as_map(t: Tensor) -> Tensor:
    """A detached float32 CPU copy of a [1, H, T, T] or [H, T, T] tensor, as [H, T, T]."""
    t = t.detach()
    return (t[0] if t.dim() == 4 else t).float().cpu()


def positional_term(
    encoding: Encoding, layer: int, ctx: LayerContext, q: Tensor, k: Tensor
) -> Tensor:
    """S − q·kᵀ/√d [H, T, T] for one sequence: what ``encoding.scores`` adds to the plain
    scaled logits (Transformer-XL's u·k and (q + v)·r terms, CoPE's interpolated z)."""
    return as_map(encoding.scores(layer, ctx, q, k) - scaled_logits(q, k))


def plus_bias(logits: Tensor, bias: Tensor | None, rows: slice = ALL_ROWS) -> Tensor:
    """logits + B[:, rows], written into ``logits`` (a fresh temporary) when dtypes agree."""
    if bias is None:
        return logits
    if bias.dtype == logits.dtype:
        return logits.add_(bias[:, rows])
    return logits + bias[:, rows]


def row_indices(rows: slice, length: int, device: torch.device) -> Tensor:
    """The query indices a ``rows`` slice selects, as a 1-D long tensor."""
    if rows == ALL_ROWS:  # no slice arithmetic on the length: one compiled graph for all
        return torch.arange(length, device=device)
    start, stop, step = rows.indices(length)
    return torch.arange(start, stop, step, device=device)


def signed_offsets(length: int, device: torch.device, rows: slice = ALL_ROWS) -> Tensor:
    """δ[i, j] = j - i for the selected query rows, [rows, T] long."""
    i = row_indices(rows, length, device)[:, None]
    j = torch.arange(length, device=device)[None, :]
    return j - i


def sorted_random_positions(
    count: int, limit: int, device: torch.device, generator: torch.Generator | None, *, low: int = 0
) -> Tensor:
    """``count`` distinct positions from [low, limit), sorted ascending (Ruoss et al. 2023)."""
    span = limit - low
    if count > span:
        from che_bench.errors import ConfigError

        raise ConfigError(
            f"sequence needs {count} random positions but the range holds {span}; "
            f"raise max_length with --pe-opt max_length=N"
        )
    gen_device = generator.device if generator is not None else torch.device("cpu")
    draw = torch.randperm(span, generator=generator, device=gen_device)[:count] + low
    return draw.sort().values.to(device)
