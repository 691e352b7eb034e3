"""The run record: its constructors, its updates, its checks and its round trip to JSON."""

from __future__ import annotations

import dataclasses
import json
import math
import pickle
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from che_bench import __version__
from che_bench.config import resolve
from che_bench.errors import LeaderboardError
from che_bench.generators import get_task
from che_bench.results.provenance import code_identity
from che_bench.results.record import (
    ROW_FIELDS,
    SCHEMA_VERSION,
    InvalidRecord,
    RunRecord,
    row_problems,
)
from che_bench.training.train import TrainResult

REPO = Path(__file__).resolve().parents[1]
CONFIG = resolve("reverse_string", "alibi", preset="smoke", seed=3, test_lengths=(41, 43))


def trained() -> RunRecord:
    record = RunRecord.begin(CONFIG, "cpu:x86_64")
    record = record.with_training(TrainResult(20, 0.5, 0.75, "ok", None, 0))
    return record.with_scores({41: 0.5, 42: 0.25, 43: float("nan")}, 0.375)


def test_begin_takes_everything_from_the_config() -> None:
    record = RunRecord.begin(CONFIG, "cpu:x86_64")
    assert (record.status, record.error, record.steps, record.score) == ("failed", None, 0, None)
    assert record.run_key == CONFIG.run_key and record.config_hash == CONFIG.config_hash
    assert record.config == json.loads(json.dumps(CONFIG.to_dict()))
    assert (record.task, record.encoding, record.seed, record.lr) == (
        "reverse_string",
        "alibi",
        3,
        CONFIG.lr,
    )
    assert record.train_lengths == list(CONFIG.train_lengths) and record.test_lengths == [41, 43]
    assert record.chance == get_task("reverse_string").chance
    assert record.accuracy_by_length == {} and record.final_loss is None
    assert record.versions == {
        "che_bench": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "code": code_identity(),
    }
    assert record.versions["code"].startswith(("git:", "sha256:"))
    assert record.schema_version == SCHEMA_VERSION and record.device == "cpu:x86_64"


def test_updates_return_new_records_and_leave_the_old_one() -> None:
    begun = RunRecord.begin(CONFIG, "cpu")
    done = trained()
    assert begun.status == "failed" and begun.steps == 0  # unchanged
    assert (done.status, done.steps, done.final_loss, done.error) == ("ok", 20, 0.5, None)
    assert done.accuracy_by_length == {"41": 0.5, "42": 0.25, "43": None}  # NaN -> null
    assert done.score == 0.375
    failed = done.with_error("RuntimeError: boom")
    assert (failed.status, failed.error, failed.score) == ("failed", "RuntimeError: boom", 0.375)
    assert done.status == "ok"
    assert done.with_wall_time(1.23456).wall_time_s == 1.235
    diverged = begun.with_training(TrainResult(3, math.nan, None, "diverged", "loss nan", 0))
    assert (diverged.status, diverged.final_loss, diverged.steps) == ("diverged", None, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        done.score = 1.0  # type: ignore[misc]


def test_round_trip_to_dict_from_dict_and_pickle() -> None:
    for record in (RunRecord.begin(CONFIG, "cpu"), trained(), trained().with_error("x")):
        data = record.to_dict()
        assert list(data) == list(ROW_FIELDS)
        assert json.loads(json.dumps(data, allow_nan=False)) == data  # JSON-ready as it is
        assert RunRecord.from_dict(data) == record
        assert RunRecord.from_dict(json.loads(record.to_json())) == record
        assert RunRecord.from_stored(json.loads(record.to_json())) == record  # read_rows' path
        assert pickle.loads(pickle.dumps(record)) == record  # what workers send back
        assert data is not record.to_dict()  # a fresh copy each time


def test_failed_record_validates() -> None:
    record = RunRecord.failed(CONFIG, "worker process died", "cuda")
    assert (record.status, record.error, record.device) == ("failed", "worker process died", "cuda")
    assert (record.steps, record.score, record.accuracy_by_length) == (0, None, {})
    assert row_problems(record.to_dict()) == []
    assert RunRecord.from_dict(record.to_dict()) == record


def test_from_dict_names_each_bad_field() -> None:
    bad = {**trained().to_dict(), "score": 1.5, "seed": "3", "status": "great", "colour": 1}
    del bad["chance"]
    with pytest.raises(InvalidRecord) as info:
        RunRecord.from_dict(bad)
    message = str(info.value)
    assert isinstance(info.value, LeaderboardError) and message.startswith(
        "invalid leaderboard row"
    )
    for needle in ("missing field 'chance'", "unexpected field 'colour'", "field 'score'",
                   "field 'seed'", "field 'status'"):  # fmt: skip
        assert needle in message
    assert len(info.value.problems) == 5
    again = pickle.loads(pickle.dumps(info.value))  # as a worker's exception comes back
    assert str(again) == message and again.problems == info.value.problems
    with pytest.raises(InvalidRecord) as stored:
        RunRecord.from_stored(bad)
    assert stored.value.problems == info.value.problems
    with pytest.raises(InvalidRecord, match="row must be an object, got list"):
        RunRecord.from_dict([1, 2])  # type: ignore[arg-type]


def test_constructor_names_each_bad_field() -> None:
    fields = {**trained().to_dict(), "score": -1.0, "train_lengths": [9, 1]}
    with pytest.raises(InvalidRecord, match=r"field 'train_lengths'.*field 'score'"):
        RunRecord(**fields)


def test_version_0_row_is_upgraded() -> None:
    record = trained()
    old = {
        k: v
        for k, v in record.to_dict().items()
        if k not in ("schema_version", "accuracy_by_length")
    }
    old["accuracy"] = record.to_dict()["accuracy_by_length"]
    assert RunRecord.from_dict(old) == record
    newer = {**record.to_dict(), "schema_version": SCHEMA_VERSION + 1}
    message = rf"newer che-bench \(schema {SCHEMA_VERSION + 1}\); upgrade"
    with pytest.raises(LeaderboardError, match=message):
        RunRecord.from_dict(newer)


def test_record_module_imports_no_torch() -> None:
    code = (
        "import sys, types; pkg = types.ModuleType('che_bench'); "
        f"pkg.__path__ = [{str(REPO / 'che_bench')!r}]; sys.modules['che_bench'] = pkg; "
        "import che_bench.results.record, che_bench.results.leaderboard; "
        "heavy = {'torch', 'numpy', 'che_bench.model', 'che_bench.config'}; "
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_records_compare_by_value() -> None:
    record = trained()
    assert dataclasses.replace(record) == record
    assert dataclasses.replace(record, score=0.5) != record
    assert re.fullmatch("[0-9a-f]{32}", record.run_id)
