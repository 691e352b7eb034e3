"""Seed-parallel ensembles train every seed exactly as its solo run would."""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from che_bench.config import resolve
from che_bench.ensemble import (
    StackedForward,
    batched_attention,
    build_trainers,
    fit,
    train_ensemble,
)
from che_bench.errors import ConfigError
from che_bench.generators import get_task
from che_bench.leaderboard import row_problems
from che_bench.runner import RunHooks, build_model, execute
from che_bench.seeding import torch_generator

CPU = torch.device("cpu")
SEEDS = (0, 1, 2)
#: nope/alibi/rope take the batched padded attention, sinusoidal adds input dropout,
#: dape-alibi takes the per-member attention path.
ROW_ENCODINGS = ["nope", "alibi", "rope", "sinusoidal", "dape-alibi"]


def configs(encoding: str, seeds=SEEDS, **overrides):
    settings = dict(
        steps=8, batch_size=8, eval_samples=8, test_lengths=(41, 43), train_lengths=(1, 12)
    )
    settings.update(overrides)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [
            resolve("reverse_string", encoding, preset="smoke", seed=s, **settings) for s in seeds
        ]


@functools.cache
def solo_rows(encoding: str) -> tuple[dict, ...]:
    return tuple(execute(c, device="cpu", run_dir=None) for c in configs(encoding))


def test_default_path_rows_equal_solo_rows_exactly():
    """On CPU each member runs its own solo train_step in lockstep: bit-identical rows."""
    rows = train_ensemble(configs("alibi"), device="cpu")
    for row, solo in zip(rows, solo_rows("alibi")):
        assert row_problems(row) == []
        for key in ("status", "steps", "final_loss", "score", "accuracy_by_length", "run_key"):
            assert row[key] == solo[key], key


@pytest.mark.parametrize("encoding", ROW_ENCODINGS)
def test_batched_path_rows_match_solo_rows(encoding):
    """Batched forward/backward: equal up to reduction order, which Adam amplifies slightly
    over steps (measured <= 1e-4 on these losses after 8 steps)."""
    rows = train_ensemble(configs(encoding), device="cpu", batched=True)
    for row, solo in zip(rows, solo_rows(encoding)):
        assert row_problems(row) == []
        assert (row["status"], row["steps"]) == ("ok", 8)
        assert row["final_loss"] == pytest.approx(solo["final_loss"], rel=1e-3)
        assert row["score"] == pytest.approx(solo["score"], abs=1e-2)
        for length, accuracy in solo["accuracy_by_length"].items():
            assert row["accuracy_by_length"][length] == pytest.approx(accuracy, abs=1e-2)


@pytest.mark.parametrize(
    "encoding",
    ["nope", "alibi", "rope", "kerple", "fire", "rand-alibi", "rand-rope", "learned",
     "sinusoidal", "relative", "cope", "dape-alibi", "dapev2-kerple"],
)  # fmt: skip
def test_batched_step_gradients_match_solo(encoding):
    """One train-mode step (dropout on) at different lengths per member: same logits and
    gradients as each member's own forward/backward, to float32 rounding."""
    task = get_task("reverse_string")
    models = [build_model(c) for c in configs(encoding)]
    for m in models:
        m.train()
    rng = np.random.default_rng(0)
    batches = [task.sample(rng, 4, n) for n in (3, 9, 6)]
    xs = [torch.from_numpy(b.inputs) for b in batches]
    ys = [torch.from_numpy(b.targets) for b in batches]
    gens = [torch_generator(CPU, s, 2) for s in SEEDS]
    logits = StackedForward(models, gens)([x for x in xs], [y.shape[1] for y in ys])
    sum(F.cross_entropy(z.reshape(-1, 2), y.reshape(-1)) for z, y in zip(logits, ys)).backward()
    stacked = [[p.grad.clone() for p in m.parameters()] for m in models]
    for m, x, y, z, grads, seed in zip(models, xs, ys, logits, stacked, SEEDS):
        m.zero_grad()
        solo = m(x, y.shape[1], generator=torch_generator(CPU, seed, 2))
        F.cross_entropy(solo.reshape(-1, 2), y.reshape(-1)).backward()
        torch.testing.assert_close(z, solo, rtol=1e-5, atol=1e-5)
        for (name, p), g in zip(m.named_parameters(), grads):
            error = (p.grad - g).norm() / p.grad.norm().clamp(min=1e-20)
            assert error < 1e-4, (name, float(error))


def test_which_encodings_take_the_batched_attention():
    batched = {"nope", "alibi", "rope", "kerple", "fire", "t5", "rand-alibi", "sinusoidal"}
    per_member = {"relative", "rand-relative", "cope", "dape-alibi", "dapev2-kerple"}
    for name in batched | per_member:
        encoding = build_model(configs(name, seeds=(0,))[0]).encoding
        assert batched_attention(encoding) == (name in batched), name


@pytest.mark.parametrize("batched", [False, True])
def test_a_diverging_member_does_not_affect_the_others(batched):
    cfgs = configs("alibi")
    trainers = build_trainers(cfgs, CPU)

    def poison(step: int) -> None:
        if step == 3:
            with torch.no_grad():
                trainers[1].model.layers[0].attention.q.weight.fill_(math.nan)

    results = fit(trainers, after_step=poison, batched=batched)
    assert (results[1].status, results[1].steps) == ("diverged", 3)
    assert "step 4" in results[1].error and math.isnan(results[1].final_loss)
    for i in (0, 2):
        solo = solo_rows("alibi")[i]
        assert (results[i].status, results[i].steps) == ("ok", 8)
        if batched:
            assert results[i].final_loss == pytest.approx(solo["final_loss"], rel=1e-3)
        else:
            assert results[i].final_loss == solo["final_loss"]


@pytest.mark.parametrize(
    "bad",
    [
        lambda: [],
        lambda: configs("alibi", seeds=(0,)) + configs("alibi", seeds=(1,), lr=3e-4),
        lambda: configs("alibi", seeds=(0,)) + configs("rope", seeds=(1,)),
        lambda: configs("alibi", seeds=(0,)) + configs("alibi", seeds=(1,), steps=9),
        lambda: configs("alibi", seeds=(2, 2)),
    ],
    ids=["empty", "lr", "encoding", "steps", "repeated-seed"],
)
def test_mismatched_configs_are_rejected(bad):
    with pytest.raises(ConfigError):
        train_ensemble(bad(), device="cpu")


def test_checkpoints_are_the_solo_ones(tmp_path):
    """Members checkpoint where runner.execute looks, so a solo run resumes an ensemble's."""
    cfgs = configs("alibi", seeds=(0, 1), checkpoint_every=4)
    rows = train_ensemble(cfgs, device="cpu", run_dir=tmp_path)
    resumed: list[int] = []
    hooks = RunHooks(on_resume=resumed.append)
    solo = execute(cfgs[1], device="cpu", run_dir=tmp_path, hooks=hooks)
    assert resumed == [4]
    assert (solo["final_loss"], solo["score"]) == (rows[1]["final_loss"], rows[1]["score"])
