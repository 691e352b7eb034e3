"""Seed-parallel training: S seeds of one (task, encoding) trained together in one process.

Each member is an ordinary solo :class:`~che_bench.train.Trainer` (its own model from
:func:`~che_bench.runner.build_model`, Adam, data stream, dropout generator, checkpoint), so
init, data, lengths, dropout masks, random PE draws, clipping and Adam are the solo ones.
Two ways to run a step (:func:`fit`):

* **per member** (CPU default): each member's own ``train_step``, in lockstep; bit-identical
  to solo training. On CPU it is also the fastest way: solo steps at B = 128 are already
  compute-bound and batching seeds multiplies the working set by S (measured slower).
* **batched** (CUDA default, :func:`batched_step`): the members' ``layers.*`` weights are
  stacked to [S, ...] and every position-wise op runs as one batched matmul over the members,
  sequences padded at the end to the longest member's T. Attention never sees a padded key:
  encodings whose scores are the default ``q·k/√d + B`` (:func:`batched_attention`: nope,
  alibi, kerple*, t5, fire, rope, absolute and randomized ones but rand-relative) run one
  padded attention with padded keys masked to ``finfo.min`` (exactly 0 weight); the others
  (relative, rand-relative, cope, dape-*, dapev2-*) run per member on unpadded slices.
  Hooks are called per member at its own length with its own generator, in solo order, so
  FIRE's T-normaliser and randomized draws are the solo ones. Equal to solo up to float
  reduction order (per-step gradients agree to ~1e-6 relative; Adam amplifies it slowly).

A member whose loss becomes non-finite stops (status ``diverged``); the others go on.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from che_bench.config import RunConfig
from che_bench.encodings.base import Encoding, LayerContext
from che_bench.errors import ConfigError
from che_bench.generators import get_task
from che_bench.model import Encoder, dropout
from che_bench.runner import (
    RunHooks,
    base_row,
    build_model,
    failure_recorded,
    finish_row,
    resolve_device,
)
from che_bench.train import Progress, Trainer, TrainResult, to_device


def check_configs(configs: Sequence[RunConfig]) -> None:
    """Reject an empty list, configs that differ in anything but the seed, repeated seeds."""
    if not configs:
        raise ConfigError("an ensemble needs at least one config")
    names = [f.name for f in dataclasses.fields(RunConfig) if f.name != "seed"]
    differ = [n for n in names if any(getattr(c, n) != getattr(configs[0], n) for c in configs)]
    if differ:
        raise ConfigError(f"ensemble configs must differ only in the seed, not in {differ}")
    seeds = [c.seed for c in configs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"ensemble seeds must be distinct, got {seeds}")


def batched_attention(encoding: Encoding) -> bool:
    """True when the encoding's scores are the default ``q·k/√d + B`` (padding-exact)."""
    kind = type(encoding)
    return all(getattr(kind, h) is getattr(Encoding, h) for h in ("scores", "logits", "modify"))


def _pad(t: Tensor, length: int, dim: int) -> Tensor:
    """Zero-pad ``t`` at the end of ``dim`` to ``length``."""
    extra = length - t.shape[dim]
    return F.pad(t, (0, 0) * (t.dim() - 1 - dim) + (0, extra)) if extra else t


def _causal(scores: Tensor) -> Tensor:
    i = torch.arange(scores.shape[-2], device=scores.device)[:, None]
    j = torch.arange(scores.shape[-1], device=scores.device)[None, :]
    return scores.masked_fill(j > i, torch.finfo(scores.dtype).min)


class StackedForward:
    """One forward of S member encoders, their sequences padded at the end to the longest.

    Position-wise ops (Q/K/V/O, FFN, LayerNorm) are batched matmuls over the members;
    attention is one padded, key-masked batch where :func:`batched_attention` allows,
    else per member on its unpadded slice; hooks and dropout masks are per member.
    """

    def __init__(self, members: Sequence[Encoder], generators: Sequence[torch.Generator]):
        self.members, self.generators = list(members), list(generators)
        self.ref = members[0]
        self.cfg = self.ref.config
        params = [dict(m.named_parameters()) for m in members]
        self.weights = {
            name: torch.stack([p[name] for p in params])
            for name in params[0]
            if name.startswith("layers.")
        }
        self.totals: list[int] = []

    def linear(self, x: Tensor, name: str, bias: bool = True) -> Tensor:
        """x [S, B, T, in] @ W[s]ᵀ (+ b[s]) as one batched matmul."""
        s, b, t, _ = x.shape
        y = x.reshape(s, b * t, -1) @ self.weights[name + ".weight"].transpose(1, 2)
        y = y.view(s, b, t, -1)
        return y + self.weights[name + ".bias"][:, None, None] if bias else y

    def norm(self, x: Tensor, layer: int, which: str) -> Tensor:
        w, b = (
            self.weights[f"layers.{layer}.{which}.{k}"][:, None, None] for k in ("weight", "bias")
        )
        return F.layer_norm(x, x.shape[-1:], eps=1e-5) * w + b

    def dropout(self, x: Tensor) -> Tensor:
        """Each member's mask drawn from its own generator with its solo shape [B, T_s, D]."""
        p = self.cfg.dropout
        if not self.ref.training or p == 0.0:
            return x
        keep = torch.zeros(x.shape, dtype=torch.bool, device=x.device)
        for s, (total, gen) in enumerate(zip(self.totals, self.generators)):
            shape = (x.shape[1], total, x.shape[3])
            keep[s, :, :total] = torch.rand(shape, generator=gen, device=x.device) >= p
        return x * keep / (1.0 - p)

    def attention(self, h: Tensor, layer: int, ctxs: list[LayerContext]) -> Tensor:
        s, b, t, width = h.shape
        pre = f"layers.{layer}.attention."
        q, k, v = (
            self.linear(h, pre + n, bias=False)
            .view(s, b, t, self.cfg.num_heads, -1)
            .transpose(2, 3)
            for n in "qkv"
        )
        encs = [m.encoding for m in self.members]
        pairs = [
            e.qk(layer, c, q[i, :, :, :n], k[i, :, :, :n])
            for i, (e, c, n) in enumerate(zip(encs, ctxs, self.totals))
        ]
        if batched_attention(encs[0]):
            if type(encs[0]).qk is not Encoding.qk:  # RoPE: re-pad the rotated q, k
                q = torch.stack([_pad(qi, t, 2) for qi, _ in pairs])
                k = torch.stack([_pad(ki, t, 2) for _, ki in pairs])
            scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])
            if ctxs[0].bias is not None:
                bias = torch.stack([F.pad(c.bias, (0, t - c.length) * 2) for c in ctxs])
                scores = scores + bias[:, None]
            idx = torch.arange(t, device=h.device)
            pad = idx >= torch.tensor(self.totals, device=h.device)[:, None]
            scores = scores.masked_fill(pad[:, None, None, None], torch.finfo(scores.dtype).min)
            if encs[0].causal:
                scores = _causal(scores)
            out = torch.matmul(torch.softmax(scores, dim=-1), v)
        else:
            outs = []
            for i, (enc, ctx, n) in enumerate(zip(encs, ctxs, self.totals)):
                scores = enc.scores(layer, ctx, *pairs[i])
                scores = _causal(scores) if enc.causal else scores
                outs.append(_pad(torch.matmul(torch.softmax(scores, -1), v[i, :, :, :n]), t, 2))
            out = torch.stack(outs)
        return self.linear(out.transpose(2, 3).reshape(s, b, t, width), pre + "o", bias=False)

    def __call__(self, inputs: Sequence[Tensor], output_lengths: Sequence[int]) -> list[Tensor]:
        """inputs[s]: int64 [B, N_s] → logits[s] [B, K_s, C], as each member's forward."""
        device, p = inputs[0].device, self.cfg.dropout
        self.totals = [x.shape[1] + k for x, k in zip(inputs, output_lengths)]
        length = max(self.totals)
        embedded = []
        for m, x, k, g in zip(self.members, inputs, output_lengths, self.generators):
            tokens = torch.cat([x, x.new_full((x.shape[0], k), m.input_size)], dim=1)
            h = m.embedding(tokens) * math.sqrt(self.cfg.d_model)  # the solo input block
            position = m.encoding.embed(tokens.shape[1], device, g)
            if position is not None:
                h = dropout(h + position.to(h.dtype), p, m.training, g)
            embedded.append(_pad(h, length, 1))
        h = torch.stack(embedded)
        for layer in range(self.cfg.num_layers):
            ctxs = [
                m.encoding.prepare(layer, n, device, g)
                for m, n, g in zip(self.members, self.totals, self.generators)
            ]
            a = self.norm(h + self.dropout(self.attention(h, layer, ctxs)), layer, "norm1")
            pre = f"layers.{layer}."
            f = self.linear(F.relu(self.linear(a, pre + "ffn_in")), pre + "ffn_out")
            h = self.norm(a + self.dropout(f), layer, "norm2")
        return [
            m.head(h[s, :, x.shape[1] : n])
            for s, (m, x, n) in enumerate(zip(self.members, inputs, self.totals))
        ]


@dataclasses.dataclass
class _Window:
    """A member's running log window, as in :meth:`Trainer.run`."""

    loss: float = 0.0
    correct: int = 0
    counted: int = 0
    steps: int = 0
    last: tuple[float, float] = (math.nan, math.nan)


def build_trainers(
    configs: Sequence[RunConfig], device: torch.device, run_dir: Path | None = None
) -> list[Trainer]:
    """One solo Trainer per config (checkpoints where ``runner.execute`` puts them)."""
    check_configs(configs)
    task = get_task(configs[0].task)
    path = (lambda c: run_dir / c.run_key / "checkpoint.pt") if run_dir else (lambda c: None)
    return [Trainer(build_model(c, device), task, c, device, path(c)) for c in configs]


def batched_step(trainers: Sequence[Trainer]) -> list[tuple[float, int, int]]:
    """One solo ``train_step`` for every member with the forward/backward batched; returns
    (loss, correct, counted) per member. A non-finite loss skips that member's update."""
    config = trainers[0].config
    lo, hi = config.train_lengths
    batches = []
    for t in trainers:  # the solo draw: one length, then the batch, from the data rng
        length = int(t.rng.integers(lo, hi + 1))
        batches.append(to_device(t.task.sample(t.rng, config.batch_size, length), t.device))
    forward = StackedForward([t.model for t in trainers], [t.generator for t in trainers])
    logits = forward([x for x, _, _ in batches], [y.shape[1] for _, y, _ in batches])
    losses = [
        F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1))
        for z, (_, y, _) in zip(logits, batches)
    ]
    with torch.no_grad():  # masked accuracy, read back with the losses in one transfer
        stats = torch.stack(
            [
                torch.stack([v, ((z.argmax(-1) == y) & m).sum().float(), m.sum().float()])
                for v, z, (_, y, m) in zip(losses, logits, batches)
            ]
        ).tolist()
    finite = [j for j, (v, _, _) in enumerate(stats) if math.isfinite(v)]
    for j in finite:
        trainers[j].optimizer.zero_grad(set_to_none=True)
    if finite:  # members share no op, so a NaN member adds nothing to the others' grads
        torch.stack([losses[j] for j in finite]).sum().backward()
    for j in finite:  # each member's own global-norm clip and Adam, as in solo training
        torch.nn.utils.clip_grad_norm_(trainers[j].model.parameters(), 1.0)
        trainers[j].optimizer.step()
    return [(v, int(c), int(n)) if j in finite else (v, 0, 0) for j, (v, c, n) in enumerate(stats)]


def fit(
    trainers: Sequence[Trainer],
    progress: Callable[[Progress], None] | None = None,
    after_step: Callable[[int], None] | None = None,
    batched: bool | None = None,
    on_resume: Callable[[int], None] | None = None,
) -> list[TrainResult]:
    """Train all members in lockstep; each result is what its own ``Trainer.run`` returns.

    ``batched`` (default: on CUDA only) shares each step's forward/backward through
    :func:`batched_step`; otherwise each member runs its own solo ``train_step`` (bit-identical
    to solo training, and on CPU the faster choice: see ``benchmarks/bench_ensemble.py``).
    ``progress`` gets the members' mean window loss/accuracy at log steps; ``after_step(step)``
    runs after every step (tests use it to inject faults); ``on_resume`` gets the lowest
    step resumed from a checkpoint.
    """
    config = trainers[0].config
    batched = trainers[0].device.type == "cuda" if batched is None else batched
    resumed = [t.try_resume() for t in trainers]
    if on_resume is not None and any(resumed):
        on_resume(min(resumed))
    windows = [_Window() for _ in trainers]
    results: list[TrainResult | None] = [None] * len(trainers)
    for t in trainers:
        t.model.train()
    started, done_steps = time.perf_counter(), 0
    while active := [
        i for i, r in enumerate(results) if r is None and trainers[i].step < config.steps
    ]:
        members = [trainers[i] for i in active]
        outcomes = batched_step(members) if batched else [t.train_step() for t in members]
        for i, t, (value, correct, counted) in zip(active, members, outcomes):
            if not math.isfinite(value):
                error = f"loss became {value} at step {t.step + 1}"
                results[i] = TrainResult(t.step, value, None, "diverged", error, resumed[i])
                continue
            t.step += 1
            w = windows[i]
            w.loss, w.correct, w.counted = w.loss + value, w.correct + correct, w.counted + counted
            w.steps += 1
            last = t.step == config.steps
            if t.step % config.log_every == 0 or last:
                w.last = (w.loss / w.steps, w.correct / max(w.counted, 1))
                w.loss, w.correct, w.counted, w.steps = 0.0, 0, 0, 0
            if t.checkpoint is not None and t.step % config.checkpoint_every == 0 and not last:
                t.save()
            if last:
                results[i] = TrainResult(t.step, *w.last, "ok", None, resumed[i])
        done_steps += 1
        step = max(t.step for t in members)
        if progress is not None and (step % config.log_every == 0 or step == config.steps):
            shown = [windows[i].last for i in active]
            rate = done_steps / max(time.perf_counter() - started, 1e-9)
            mean = [sum(v) / len(shown) for v in zip(*shown)]
            progress(Progress(step, config.steps, mean[0], mean[1], rate))
        if after_step is not None:
            after_step(step)
    return [
        r if r is not None else TrainResult(t.step, math.nan, math.nan, "ok", None, s)
        for r, t, s in zip(results, trainers, resumed)
    ]


def train_ensemble(
    configs: Sequence[RunConfig],
    *,
    device: str = "auto",
    run_dir: Path | None = None,
    max_memory: int | None = None,
    hooks: RunHooks | None = None,
    batched: bool | None = None,
) -> list[dict[str, Any]]:
    """Train ``configs`` (identical but for the seed) together; one leaderboard row per config,
    as :func:`che_bench.runner.execute` gives it. A row's ``wall_time_s`` is the shared
    training time divided by S plus the member's own evaluation time. Checkpoints go where
    ``execute`` puts them (``run_dir/<run_key>/checkpoint.pt``); removing them is the caller's."""
    check_configs(configs)
    hooks = hooks or RunHooks()
    started = time.perf_counter()
    torch_device = resolve_device(device)
    rows = [base_row(c, torch_device) for c in configs]
    results: list[TrainResult] = []
    with failure_recorded(*rows):
        trainers = build_trainers(configs, torch_device, run_dir)
        if hooks.on_phase:
            hooks.on_phase("train")
        results = fit(trainers, hooks.on_train, batched=batched, on_resume=hooks.on_resume)
    shared = (time.perf_counter() - started) / len(configs)
    if not results:
        for row in rows:
            row["wall_time_s"] = round(shared * len(configs), 3)
        return rows
    for row, t, result in zip(rows, trainers, results):
        begun = time.perf_counter()
        with failure_recorded(row):
            finish_row(row, result, t, torch_device, max_memory, hooks)
        row["wall_time_s"] = round(shared + time.perf_counter() - begun, 3)
    return rows
