"""One layer's attention maps for one sample: the encoding's positional term and the weights.

:func:`collect` runs the model once (eval mode, no gradient) on one sample of a task,
captures the input of ``model.layers[layer].attention`` with a forward pre-hook, and
recomputes that layer's context, q, k and scores through the encoding's own hooks, in the
order of :class:`che_bench.model.Attention`. The generator state is captured with the input,
so a randomized encoding's recomputed draw is the one the forward made.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from che_bench.encodings.base import as_map
from che_bench.errors import ConfigError
from che_bench.generators import Task
from che_bench.model import Encoder, causal_masked
from che_bench.seeding import eval_rng, torch_generator

ATTENTION = "attention"


@dataclass(frozen=True)
class Maps:
    """One layer's maps for one sample of input length ``length``: every array [H, T, T]
    over the T = ``length`` + K positions (K output placeholders, from index ``length``).

    ``maps`` holds the encoding's :meth:`~che_bench.encodings.Encoding.explain` maps, then
    ``attention`` = softmax(scores), causal mask applied. ``query``: the selected query row
    (an index into T), or None.
    """

    encoding: str
    layer: int
    length: int
    maps: dict[str, np.ndarray]
    causal: bool = False
    query: int | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def total(self) -> int:
        return next(iter(self.maps.values())).shape[-1]

    @property
    def heads(self) -> int:
        return next(iter(self.maps.values())).shape[0]

    @property
    def positional(self) -> list[str]:
        """The names of the encoding's maps (all but the attention weights)."""
        return [name for name in self.maps if name != ATTENTION]

    def rows(self) -> dict[str, np.ndarray]:
        """Each map's row at the selected query, [H, T]; empty without a query."""
        if self.query is None:
            return {}
        return {name: values[:, self.query] for name, values in self.maps.items()}


def query_index(query: int | None, total: int) -> int | None:
    """``query`` as an index into T positions (negative counts from the end), checked."""
    if query is None:
        return None
    if not -total <= query < total:
        raise ConfigError(
            f"query {query} is out of range for T = {total} positions (0..{total - 1}, "
            "or negative from the end: -1 is the last placeholder)"
        )
    return query % total


def layer_error(layer: int, layers: int) -> str:
    return f"layer {layer} is out of range: the model has {layers} layers (0..{layers - 1})"


class _Captured(Exception):
    """Raised by the pre-hook once the layer's input is held: the rest is not needed."""


def collect(
    model: Encoder,
    task: Task,
    length: int,
    layer: int,
    *,
    seed: int = 0,
    query: int | None = None,
) -> Maps:
    """The maps of ``layer`` for one sample of ``task`` at input length ``length``.

    The sample comes from a numpy generator seeded by (``seed``, ``length``); a randomized
    encoding draws its positions from a torch generator seeded by ``seed``.
    """
    layers = len(model.layers)
    if not 0 <= layer < layers:
        raise ConfigError(layer_error(layer, layers))
    if length < 1:
        raise ConfigError(f"length must be >= 1, got {length}")
    batch = task.sample(eval_rng(seed, length), 1, length)
    device = next(model.parameters()).device
    inputs = torch.as_tensor(batch.inputs, device=device)
    held: dict[str, object] = {}

    def hook(module: torch.nn.Module, args: tuple) -> None:
        generator = args[3]
        held["x"] = args[0]
        held["state"] = None if generator is None else generator.get_state()
        raise _Captured

    encoding = model.encoding
    was_training = model.training
    model.eval()
    handle = model.layers[layer].attention.register_forward_pre_hook(hook)
    try:
        with torch.no_grad():
            with contextlib.suppress(_Captured):
                model(inputs, batch.targets.shape[1], generator=torch_generator(device, seed))
            generator = torch.Generator(device=device)
            if held["state"] is not None:
                generator.set_state(held["state"])
            maps = _layer_maps(model, layer, held["x"], generator)
    finally:
        handle.remove()
        model.train(was_training)
    total = inputs.shape[1] + batch.targets.shape[1]
    notes = []
    if encoding.randomized:
        notes.append(f"{encoding.name} draws positions at every forward: this is one draw")
    if not [name for name in maps if name != ATTENTION]:
        notes.append(
            f"{encoding.name} adds no term to the attention logits (any position information "
            "enters with the embeddings): attention weights only"
        )
    return Maps(
        encoding=encoding.name,
        layer=layer,
        length=int(inputs.shape[1]),
        maps={name: values.numpy() for name, values in maps.items()},
        causal=encoding.causal,
        query=query_index(query, total),
        notes=tuple(notes),
    )


def _layer_maps(
    model: Encoder, layer: int, x: Tensor, generator: torch.Generator
) -> dict[str, Tensor]:
    """Recompute Attention.forward's context, q, k and scores for the one sequence ``x``."""
    attention, encoding = model.layers[layer].attention, model.encoding
    ctx, q, k = attention.project(x, layer, encoding, generator)
    scores = encoding.scores(layer, ctx, q, k)
    if encoding.causal:
        scores = causal_masked(scores)
    maps = dict(encoding.explain(layer, ctx, q, k))
    maps[ATTENTION] = as_map(torch.softmax(scores, dim=-1))
    return maps
