"""Per-step curve files: one line per logging step, exactly what the progress callback got,
kept whole across a killed-and-resumed run, surviving an ok run's cleanup, and drawn by
`che-bench plot --kind training`."""

from __future__ import annotations

import json

import matplotlib.image
import pytest
from click.testing import CliRunner

from che_bench.cli import main
from che_bench.config import resolve
from che_bench.running import runner
from che_bench.running.curves import CURVE_FILE, read_curve
from che_bench.running.runner import RunHooks, execute

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = {"steps": 6, "batch_size": 8, "train_lengths": (1, 8), "test_lengths": (41, 42),
        "eval_samples": 4, "eval_batch_size": 4, "train_eval_samples": 4}  # fmt: skip


def tiny(**changes):
    return resolve("parity_check", "alibi", preset="smoke", **{**TINY, **changes})


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_a_run_writes_one_line_per_logging_step_and_it_survives_cleanup(tmp_path):
    config = tiny(log_every=4, keep_model=False)  # logs at step 4 and at the last, 6
    seen = []
    row = runner.run(config, leaderboard=tmp_path / "lb.jsonl", device="cpu",
                     run_dir=tmp_path / "runs", hooks=RunHooks(on_train=seen.append))  # fmt: skip
    folder = tmp_path / "runs" / row.run_key
    assert row.status == "ok" and not (folder / "checkpoint.pt").exists()
    assert [p.name for p in folder.iterdir()] == [CURVE_FILE]  # the folder stays for it
    points = read_curve(folder / CURVE_FILE)
    assert [p["step"] for p in points] == [p.step for p in seen] == [4, 6]
    assert [(p["loss"], p["accuracy"]) for p in points] == [(p.loss, p.accuracy) for p in seen]
    assert points[-1]["loss"] == row.final_loss
    assert 0 < points[0]["elapsed_s"] <= points[1]["elapsed_s"]
    assert all(p["steps_per_s"] > 0 for p in points)
    assert set(points[0]) == {"step", "loss", "accuracy", "steps_per_s", "elapsed_s"}


def test_no_run_dir_writes_no_curve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    row = execute(tiny(log_every=1), device="cpu", run_dir=None)
    assert row.status == "ok" and list(tmp_path.iterdir()) == []


class Killed(Exception):
    """Stands in for the process being killed right after a step."""


def test_a_killed_and_resumed_run_has_each_step_once_as_an_uninterrupted_run(tmp_path):
    config = tiny(log_every=1, checkpoint_every=4)
    straight = execute(config, device="cpu", run_dir=tmp_path / "straight", hooks=RunHooks())
    expected = read_curve(tmp_path / "straight" / config.run_key / CURVE_FILE)
    assert [p["step"] for p in expected] == [1, 2, 3, 4, 5, 6]

    def kill_at_5(progress):
        if progress.step == 5:
            raise Killed

    runs = tmp_path / "runs"
    killed = execute(config, device="cpu", run_dir=runs, hooks=RunHooks(on_train=kill_at_5))
    assert killed.status == "failed" and "Killed" in killed.error
    path = runs / config.run_key / CURVE_FILE
    assert [p["step"] for p in read_curve(path)] == [1, 2, 3, 4, 5]  # flushed before the kill
    with path.open("a") as f:
        f.write('{"step": 6, "loss": 0.')  # and a line torn by the crash
    resumed = []
    again = execute(config, device="cpu", run_dir=runs, hooks=RunHooks(on_resume=resumed.append))
    assert resumed == [4] and again.status == "ok" and again.final_loss == straight.final_loss
    points = read_curve(path)
    assert [p["step"] for p in points] == [1, 2, 3, 4, 5, 6]
    assert [p["loss"] for p in points] == [p["loss"] for p in expected]
    assert all(line.startswith("{") for line in path.read_text().splitlines())  # no torn line
    elapsed = [p["elapsed_s"] for p in points]
    assert elapsed == sorted(elapsed)  # the resumed part goes on from the checkpoint's time


def test_a_fresh_start_replaces_an_old_curve(tmp_path):
    config = tiny(log_every=2)
    path = tmp_path / config.run_key / CURVE_FILE
    path.parent.mkdir()
    path.write_text("".join(json.dumps({"step": s, "loss": 9.0}) + "\n" for s in (2, 4, 8)))
    execute(config, device="cpu", run_dir=tmp_path)
    points = read_curve(path)
    assert [p["step"] for p in points] == [2, 4, 6] and 9.0 not in [p["loss"] for p in points]


def test_plot_training_draws_the_curves_and_counts_the_runs_without_one(tmp_path):
    board, runs = tmp_path / "lb.jsonl", tmp_path / "runs"
    common = ["--task", "parity_check", "--preset", "smoke", "--steps", "6", "--batch-size", "8",
              "--train-lengths", "1-8", "--test-lengths", "41-42", "--eval-samples", "4",
              "--leaderboard", str(board), "--device", "cpu"]  # fmt: skip
    for pe, run_dir in (("alibi", runs), ("nope", runs), ("rope", tmp_path / "elsewhere")):
        assert cli("run", "--pe", pe, "--run-dir", str(run_dir), *common).exit_code == 0
    out = tmp_path / "training.png"
    result = cli("plot", str(board), "--kind", "training", "-o", str(out), "--run-dir", str(runs))
    assert result.exit_code == 0
    assert f"wrote {out} (2 runs; no curve: 1 run)" in result.output
    image = matplotlib.image.imread(out)
    assert image.shape[0] > 200 and image[..., :3].std() > 0.05  # drawn, not blank
    only = cli("plot", str(board), "--kind", "training", "-o", str(out), "--run-dir",
               str(runs), "--pe", "alibi")  # fmt: skip
    assert "(1 run)" in only.output
    none = CliRunner().invoke(main, ["plot", str(board), "--kind", "training", "-o", str(out),
                                     "--run-dir", str(tmp_path / "nowhere")])  # fmt: skip
    assert none.exit_code == 2 and "none of the 3 runs has a curve file" in none.output
