"""The notebook API (``read_leaderboard``, ``read_curves``) and ``report --format csv --curves``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import che_bench
from che_bench.cli import main
from che_bench.config import resolve
from che_bench.errors import CheBenchError
from che_bench.results import frames
from che_bench.results.leaderboard import append_rows, read_rows
from che_bench.results.record import RunRecord

#: A committed leaderboard of real runs: 28 rows, each with a train and a test curve.
REPRO = Path(__file__).resolve().parents[1] / "leaderboards" / "cpu-repro.jsonl"


@pytest.fixture
def board(tmp_path) -> Path:
    """A training row (curves at 1..3 and 41..43, one unmeasured) and an evaluation row."""
    config = resolve("parity_check", "learned", preset="smoke", steps=5, train_lengths=(1, 3),
                     test_lengths=(41, 43), encoding_options={"max_length": 256})  # fmt: skip
    train = (
        RunRecord.begin(config, "cpu:x86_64")
        .with_scores({41: 0.5, 42: None, 43: 0.75}, 0.625)
        .with_in_distribution({1: 1.0, 2: 0.9, 3: 0.8}, 0.9)
    )
    train = RunRecord.from_dict({**train.to_dict(), "status": "ok", "steps": 5})
    evaluation = train.evaluation_of(
        (60, 61), samples=16, stride=1, seed=1, device="cpu:x86_64"
    ).with_scores({60: 0.25, 61: 0.5}, 0.375)
    path = tmp_path / "board.jsonl"
    append_rows(path, [train, evaluation])
    return path


def test_read_leaderboard_has_one_row_per_record_with_its_fields():
    records = read_rows(REPRO).rows
    frame = che_bench.read_leaderboard(REPRO)
    assert list(frame.columns) == list(frames.ROW_COLUMNS)
    assert len(frame) == len(records) == 28
    for i in (0, 17):
        record, got = records[i], frame.iloc[i]
        assert got["run_key"] == record.run_key and got["encoding"] == record.encoding
        assert got["score"] == record.score and got["train_score"] == record.train_score
        assert got["code_revision"] == record.versions["code"]
        assert got["config_hash"] == record.config_hash and got["steps"] == record.steps
        assert got["test_stride"] == record.config["test_stride"]
    assert set(frame["test_lengths"]) == {"41-500", "41-100"}  # the two budgets it holds
    assert str(frame["timestamp"].dt.tz) == "UTC"
    best = frame.groupby("task")["score"].max()  # what a notebook does next
    assert best["bucket_sort"] == max(r.score for r in records if r.task == "bucket_sort")


def test_read_curves_is_the_long_table_of_every_measured_length():
    records = read_rows(REPRO).rows
    curves = che_bench.read_curves(REPRO)
    assert list(curves.columns) == list(frames.CURVE_COLUMNS)
    expected = sum(len(r.accuracy_by_length) + len(r.train_accuracy_by_length) for r in records)
    assert len(curves) == expected
    record = records[3]
    mine = curves[curves["run_id"] == record.run_id]
    test = mine[mine["split"] == "test"]
    assert test["length"].tolist() == sorted(map(int, record.accuracy_by_length))
    assert test["accuracy"].tolist() == [record.accuracy_by_length[str(n)] for n in test["length"]]
    train = mine[mine["split"] == "train"]
    assert train["length"].tolist() == list(range(1, 41))
    assert train["accuracy"].iloc[0] == record.train_accuracy_by_length["1"]


def test_kinds_options_and_unmeasured_lengths(board):
    rows = che_bench.read_leaderboard(board)
    assert rows["kind"].tolist() == ["train"]
    both = che_bench.read_leaderboard(board, kinds=("train", "evaluation"))
    assert both["kind"].tolist() == ["train", "evaluation"]
    assert both["test_lengths"].tolist() == ["41-43", "60-61"]
    assert json.loads(both["encoding_options"].iloc[0]) == {"max_length": 256}
    curves = che_bench.read_curves(board)
    assert curves[["split", "length"]].values.tolist() == [
        ["train", 1], ["train", 2], ["train", 3], ["test", 41], ["test", 42], ["test", 43]
    ]  # fmt: skip
    assert pd.isna(curves["accuracy"].iloc[4]) and curves["accuracy"].iloc[5] == 0.75
    evaluated = che_bench.read_curves(board, kinds=("evaluation",))
    assert evaluated["length"].tolist() == [60, 61] and set(evaluated["split"]) == {"test"}


def test_empty_and_missing_leaderboards(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert list(che_bench.read_curves(empty).columns) == list(frames.CURVE_COLUMNS)
    assert len(che_bench.read_leaderboard(empty)) == 0
    with pytest.raises(CheBenchError, match="no leaderboard at"):
        che_bench.read_leaderboard(tmp_path / "missing.jsonl")


def test_without_pandas_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(CheBenchError, match=r"che-bench\[frame\]"):
        che_bench.read_leaderboard(REPRO)


def test_import_che_bench_imports_neither_pandas_nor_torch():
    code = (
        "import sys, che_bench; che_bench.read_leaderboard, che_bench.read_curves; "
        "print(sorted(m for m in ('pandas', 'torch') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def report(*args: str):
    return CliRunner().invoke(main, ["report", *args])


def test_report_csv_curves_is_read_curves_without_pandas(monkeypatch):
    frame = che_bench.read_curves(REPRO)
    monkeypatch.setitem(sys.modules, "pandas", None)  # the CSV path must not need pandas
    result = report(str(REPRO), "--format", "csv", "--curves")
    assert result.exit_code == 0, result.output
    lines = list(csv.DictReader(io.StringIO(result.output)))
    assert list(lines[0]) == list(frames.CURVE_COLUMNS)
    assert len(lines) == len(frame)
    assert [row["run_key"] for row in lines] == frame["run_key"].tolist()
    assert [float(row["accuracy"]) for row in lines] == frame["accuracy"].tolist()
    assert [int(row["length"]) for row in lines] == frame["length"].tolist()


def test_report_curves_filters_evaluations_and_json(board):
    result = report(str(REPRO), "--format", "csv", "--curves", "--task", "bucket_sort")
    assert result.exit_code == 0
    assert {row["task"] for row in csv.DictReader(io.StringIO(result.output))} == {"bucket_sort"}
    plain = report(str(board), "--format", "json", "--curves")
    assert {row["kind"] for row in json.loads(plain.output)} == {"train"}
    both = report(str(board), "--format", "json", "--curves", "--evaluations")
    rows = json.loads(both.output)
    assert [r["length"] for r in rows if r["kind"] == "evaluation"] == [60, 61]
    assert rows[4]["accuracy"] is None  # length 42 was not measured


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_curves_needs_csv_or_json(fmt):
    result = report(str(REPRO), "--format", fmt, "--curves")
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "--format csv|json" in lines[0], result.output


def test_curves_with_no_matching_rows_is_one_line():
    result = report(str(REPRO), "--format", "csv", "--curves", "--task", "nothing")
    assert result.exit_code == 2 and "match the --task/--pe filters" in result.output
