"""Kept models: an ok run keeps its weights, loading them reproduces the row, `evaluate`
re-scores them on new lengths as a linked `evaluation` row that every training-row reader
leaves out, and `runs list|show|prune` manage them."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import che_bench
from che_bench.cli import main
from che_bench.config import resolve
from che_bench.generators import get_task
from che_bench.results.leaderboard import OkRows, completed_keys, read_rows, verify
from che_bench.running import kept
from che_bench.training.evaluate import EvalSpec, evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"steps": 6, "batch_size": 8, "train_lengths": (1, 8), "test_lengths": (41, 42),
        "eval_samples": 8, "eval_batch_size": 4, "train_eval_samples": 4}  # fmt: skip


def config(encoding: str = "alibi", **changes):
    return resolve("parity_check", encoding, preset="smoke", **{**TINY, **changes})


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def trained(tmp_path):
    """One ok run with its kept model: (leaderboard, run_dir, row)."""
    board, runs = tmp_path / "lb.jsonl", tmp_path / "runs"
    row = che_bench.run(config(), leaderboard=board, device="cpu", run_dir=runs)
    return board, runs, row


def test_an_ok_run_keeps_its_model_and_loading_it_reproduces_the_row(trained):
    board, runs, row = trained
    assert row.status == "ok" and row.model == str(runs / row.run_key / "model.pt")
    assert not (runs / row.run_key / "checkpoint.pt").exists()
    found = kept.find(runs, row.run_key[:6])  # a unique prefix is enough
    assert found.run_id == row.run_id and found.config.run_key == row.run_key
    model = found.load("cpu")
    task = get_task("parity_check")
    again = evaluate(model, task, EvalSpec.from_config(found.config), torch.device("cpu"))
    assert {str(k): v for k, v in again.accuracy_by_length.items()} == row.accuracy_by_length
    assert read_rows(board).rows[0].model == row.model


def test_no_keep_model_keeps_nothing_and_leaves_the_run_key_alone(tmp_path):
    runs = tmp_path / "runs"
    plain = config(keep_model=False)
    assert plain.run_key == config().run_key  # where the model goes is not the numbers
    row = che_bench.run(plain, leaderboard=tmp_path / "lb.jsonl", device="cpu", run_dir=runs)
    assert row.status == "ok" and row.model is None
    assert [p.name for p in (runs / row.run_key).iterdir()] == ["curve.jsonl"]  # no model


def test_a_failed_run_keeps_no_model(tmp_path, monkeypatch):
    from che_bench.running import runner

    def broken(*args, **kwargs):
        raise RuntimeError("evaluation broke")

    monkeypatch.setattr(runner, "evaluate", broken)
    runs = tmp_path / "runs"
    row = che_bench.run(config(), leaderboard=tmp_path / "lb.jsonl", device="cpu", run_dir=runs)
    assert row.status == "failed" and row.model is None
    assert not (runs / row.run_key / "model.pt").exists()


def test_evaluate_adds_a_linked_row_equal_to_a_fresh_run_on_those_lengths(trained, tmp_path):
    board, runs, row = trained
    result = cli("evaluate", row.run_key, "--test-lengths", "44-46", "--leaderboard", str(board),
                 "--run-dir", str(runs))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "appended 1 evaluation row" in result.output
    lines = [json.loads(line) for line in board.read_text().splitlines()]
    assert [r["kind"] for r in lines] == ["train", "evaluation"]
    extra = lines[1]
    assert extra["run_key"] == row.run_key and extra["config"] == lines[0]["config"]
    assert extra["evaluation"] == {"of_run_id": row.run_id, "samples": 8, "stride": 1, "seed": 1}
    assert extra["test_lengths"] == [44, 46] and sorted(extra["accuracy_by_length"]) == [
        "44", "45", "46"]  # fmt: skip

    fresh = che_bench.run(config(test_lengths=(44, 46)), leaderboard=tmp_path / "fresh.jsonl",
                          device="cpu", run_dir=tmp_path / "fresh")  # fmt: skip
    assert fresh.accuracy_by_length == extra["accuracy_by_length"]
    assert fresh.score == pytest.approx(extra["score"], abs=0)


def test_evaluation_rows_are_invisible_to_training_row_readers(trained):
    board, runs, row = trained
    cli("evaluate", row.run_key, "--test-lengths", "50-60:5", "--leaderboard", str(board),
        "--run-dir", str(runs))  # fmt: skip
    assert [r.kind for r in read_rows(board).rows] == ["train"]
    both = read_rows(board, kinds=("train", "evaluation")).rows
    assert [r.kind for r in both] == ["train", "evaluation"]
    assert both[1].evaluation["stride"] == 5 and list(both[1].accuracy_by_length) == [
        "50", "55", "60"]  # fmt: skip
    assert OkRows(board).refresh()[row.run_key][1].run_id == row.run_id
    assert completed_keys(board) == {row.run_key}
    report = verify(board)
    assert report.ok and "1 evaluation row(s)" in report.format()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "already ok": the training row, not the evaluation
        again = che_bench.run(config(), leaderboard=board, device="cpu", run_dir=runs)
    assert again.run_id == row.run_id


def test_report_and_plot_show_the_evaluated_lengths(trained, tmp_path):
    board, runs, row = trained
    cli("evaluate", row.run_key, "--test-lengths", "50-60:5", "--leaderboard", str(board),
        "--run-dir", str(runs))  # fmt: skip
    plain = cli("report", str(board), "--format", "json")
    assert "evaluation 50-60 every 5" not in plain.output
    data = json.loads(cli("report", str(board), "--evaluations", "--format", "json").output)
    extra = read_rows(board, kinds=("evaluation",)).rows[0]
    assert data[0]["evaluation 50-60 every 5"] == pytest.approx(extra.score)

    from che_bench.results.plots import curve_points
    from che_bench.results.report import aggregate

    cell = aggregate(read_rows(board).rows)[0].cells[0]
    lengths = list(curve_points(cell, {row.run_key: extra.accuracy_by_length}))
    assert lengths == [*range(1, 9), 41, 42, 50, 55, 60]


def test_evaluate_one_line_errors(trained, tmp_path):
    board, runs, row = trained
    for args, message in [
        (["nope-s0"], "no kept model for run 'nope-s0'"),
        ([row.run_key, "--leaderboard", str(tmp_path / "other.jsonl")], "has no ok row for run"),
    ]:
        where = [] if "--leaderboard" in args else ["--leaderboard", str(board)]
        result = cli("evaluate", *args, "--test-lengths", "44-45", "--run-dir", str(runs), *where)
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output


def test_runs_list_show_and_prune(trained, tmp_path):
    board, runs, row = trained
    other = che_bench.run(config("nope"), leaderboard=board, device="cpu", run_dir=runs)
    listing = cli("runs", "list", "--run-dir", str(runs))
    assert row.run_key in listing.output and other.run_key in listing.output
    assert "2 kept model(s)" in listing.output
    assert other.run_key not in cli("runs", "list", "--run-dir", str(runs), "--pe", "ali*").output
    shown = cli("runs", "show", row.run_key, "--run-dir", str(runs))
    assert shown.exit_code == 0 and '"encoding": "alibi"' in shown.output

    refused = cli("runs", "prune", "--run-dir", str(runs))
    assert refused.exit_code == 2 and "needs --task, --pe or --all" in refused.output
    dry = cli("runs", "prune", "--pe", "nope", "--dry-run", "--run-dir", str(runs))
    assert "1 kept model(s)" in dry.output and (runs / other.run_key / "model.pt").exists()
    cli("runs", "prune", "--pe", "nope", "--run-dir", str(runs))
    assert [p.name for p in (runs / other.run_key).iterdir()] == ["curve.jsonl"]  # curve kept
    assert (runs / row.run_key / "model.pt").exists()
    assert len(read_rows(board).rows) == 2  # rows stay


def test_a_stored_schema_3_row_reads_as_a_training_row_without_a_model(trained):
    board, _, row = trained
    old = json.loads(board.read_text())
    for name in ("kind", "model", "evaluation"):
        old.pop(name)
    old["schema_version"] = 3
    Path(board).write_text(json.dumps(old) + "\n")
    (stored,) = read_rows(board).rows
    assert stored.kind == "train" and stored.model is None and stored.evaluation is None


def test_one_line_errors_print_brackets_as_text(trained):
    """An error naming an option-variant label (rand-relative[lookup=released]) printed it
    as rich markup, which swallowed the bracket: the user saw `rand-relative` twice."""
    board, _, _ = trained
    result = cli("compare", str(board), "--pe", "alibi", "--pe", "rope[base=5]")
    assert result.exit_code == 2 and "'rope[base=5]'" in result.output, result.output
