"""Seed-parallel ensembles train every seed exactly as its solo run would."""

from __future__ import annotations

import functools
import math
import warnings

import pytest
import torch

from che_bench.config import resolve
from che_bench.errors import ConfigError
from che_bench.results.record import RunRecord, row_problems
from che_bench.running.runner import RunHooks, execute
from che_bench.training.ensemble import build_trainers, fit, train_ensemble

CPU = torch.device("cpu")
SEEDS = (0, 1, 2)
#: one of each kind: no PE, a bias, rotary, absolute (input dropout), DAPE.
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
def solo_rows(encoding: str) -> tuple[RunRecord, ...]:
    return tuple(execute(c, device="cpu", run_dir=None) for c in configs(encoding))


def test_default_path_rows_equal_solo_rows_exactly():
    """On CPU each member runs its own solo train_step in lockstep: bit-identical rows."""
    rows = train_ensemble(configs("alibi"), device="cpu")
    for row, solo in zip(rows, solo_rows("alibi")):
        assert isinstance(row, RunRecord) and row_problems(row.to_dict()) == []
        for key in ("status", "steps", "final_loss", "score", "accuracy_by_length", "run_key"):
            assert getattr(row, key) == getattr(solo, key), key


@pytest.mark.parametrize("encoding", ROW_ENCODINGS)
def test_rows_equal_solo_rows_for_every_kind_of_encoding(encoding):
    """Absolute (input dropout), rotary, bias and DAPE encodings: bit-identical rows."""
    rows = train_ensemble(configs(encoding), device="cpu")
    for row, solo in zip(rows, solo_rows(encoding)):
        assert isinstance(row, RunRecord) and row_problems(row.to_dict()) == []
        for key in ("status", "steps", "final_loss", "score", "accuracy_by_length"):
            assert getattr(row, key) == getattr(solo, key), key


def test_a_diverging_member_does_not_affect_the_others():
    cfgs = configs("alibi")
    trainers = build_trainers(cfgs, CPU)

    def poison(step: int) -> None:
        if step == 3:
            with torch.no_grad():
                trainers[1].model.layers[0].attention.q.weight.fill_(math.nan)

    results = fit(trainers, after_step=poison)
    assert (results[1].status, results[1].steps) == ("diverged", 3)
    assert "step 4" in results[1].error and math.isnan(results[1].final_loss)
    for i in (0, 2):
        solo = solo_rows("alibi")[i]
        assert (results[i].status, results[i].steps) == ("ok", 8)
        assert results[i].final_loss == solo.final_loss


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
    assert (solo.final_loss, solo.score) == (rows[1].final_loss, rows[1].score)
