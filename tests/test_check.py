"""The regression check: tolerance bands, determinism drift, and a deliberately broken encoding."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from che_bench.cli import main
from che_bench.config import resolve
from che_bench.encodings import ENCODINGS
from che_bench.encodings.alibi import ALiBi
from che_bench.results import check
from che_bench.results.leaderboard import append_rows, read_rows
from che_bench.results.record import RunRecord
from che_bench.running.executors import InlineExecutor
from che_bench.running.sweep import SweepSpec, expand, run_sweep

ROOT = Path(__file__).resolve().parents[1]
TINY = {"steps": 3, "batch_size": 8, "train_lengths": [1, 8], "test_lengths": [41, 42],
        "eval_samples": 8, "eval_batch_size": 8}  # fmt: skip


@pytest.fixture(autouse=True)
def one_torch_thread():
    """In-process runs use one thread, like the pool's workers (fast on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def fake(encoding: str, seed: int, score: float, loss: float = 0.7, task="parity_check"):
    config = resolve(task, encoding, preset="smoke", seed=seed, **TINY)
    return dataclasses.replace(
        RunRecord.begin(config, "cpu:x86_64"),
        status="ok", score=score, final_loss=loss, accuracy_by_length={"41": score},
    )  # fmt: skip


def by_key(rows) -> dict:
    return {r.run_key: r for r in rows}


def statuses(outcome) -> dict:
    return {s.encoding: s.status for s in outcome.slices}


def test_band_is_max_of_floor_and_k_sem_and_only_drops_fail():
    baseline = [fake("nope", 0, 0.50), fake("nope", 1, 0.52),  # sem 0.01 → band 0.03
                fake("rope", 0, 0.40), fake("rope", 1, 0.60),  # sem 0.1 → band 0.3
                fake("alibi", 0, 0.50), fake("alibi", 1, 0.50),
                fake("relative", 0, 0.50), fake("relative", 1, 0.50)]  # fmt: skip
    current = [fake("nope", 0, 0.46), fake("nope", 1, 0.48),  # -0.04 < -0.03: regressed
               fake("rope", 0, 0.30), fake("rope", 1, 0.50),  # -0.1, inside ±0.3: same
               fake("alibi", 0, 0.60), fake("alibi", 1, 0.60),  # +0.1: improved
               fake("relative", 0, 0.50), fake("relative", 1, 0.51)]  # fmt: skip
    outcome = check.compare(baseline, by_key(current), abs_floor=0.02, k=3)
    assert statuses(outcome) == {"nope": "regressed", "rope": "same", "alibi": "improved",
                                 "relative": "same"}  # fmt: skip
    slices = {s.encoding: s for s in outcome.slices}
    assert slices["nope"].band == pytest.approx(0.03) and slices["rope"].band == pytest.approx(0.3)
    assert [s.encoding for s in outcome.failing()] == ["nope"]
    assert (
        "FAILED: 1 of 4 slices" in outcome.summary() and "parity_check × nope" in outcome.summary()
    )
    two_sided = check.compare(baseline, by_key(current), two_sided=True)
    assert {s.encoding for s in two_sided.failing()} == {"nope", "alibi"}


def test_loss_drift_missing_and_failed_runs_fail():
    baseline = [fake("nope", 0, 0.5, loss=0.70), fake("rope", 0, 0.5), fake("alibi", 0, 0.5)]
    broken = dataclasses.replace(
        fake("alibi", 0, 0.5), status="failed", score=None, error="RuntimeError: boom"
    )
    current = [fake("nope", 0, 0.5, loss=0.75), broken]  # rope is missing
    outcome = check.compare(baseline, by_key(current), loss_rtol=0.01)
    assert statuses(outcome) == {"nope": "drifted", "rope": "missing", "alibi": "failed"}
    lines = "\n".join(s.line() for s in outcome.slices)
    assert "training loss drifted 0.7000 → 0.7500" in lines and "RuntimeError: boom" in lines
    tiny_drift = [fake("nope", 0, 0.5, loss=0.70 + 1e-5)]
    assert check.compare(baseline[:1], by_key(tiny_drift)).ok  # float noise is not a change


@pytest.fixture
def tiny_baseline(tmp_path) -> Path:
    """A real 6-run baseline, built here in-process (seconds)."""
    spec = SweepSpec(tasks=["parity_check"], encodings=["nope", "alibi", "rope"], seeds=[0, 1],
                     preset="smoke", overrides=dict(TINY))  # fmt: skip
    rows = run_sweep(expand(spec), InlineExecutor("cpu"), None).rows
    assert all(r.status == "ok" for r in rows)
    path = tmp_path / "baseline.jsonl"
    check.write_baseline(path, rows)
    return path


def test_check_passes_then_names_a_deliberately_broken_encoding(tiny_baseline, monkeypatch):
    runner = CliRunner()
    args = ["check", "--baseline", str(tiny_baseline), "--executor", "inline"]
    clean = runner.invoke(main, args)
    assert clean.exit_code == 0, clean.output
    assert "check passed: 3 slices (3 same)" in clean.output

    def no_bias(self, layer, length, device, generator):
        return torch.zeros(self.dims.num_heads, length, length, device=device)

    monkeypatch.setattr(ALiBi, "bias", no_bias)
    broken = runner.invoke(main, args)
    assert broken.exit_code == 1, broken.output
    verdicts = [
        line for line in broken.output.splitlines() if not line.startswith(("[", "check:", "ran"))
    ]
    assert verdicts[0].startswith(
        ("drifted   parity_check × alibi:", "regressed parity_check × alibi:")
    )
    assert verdicts[1].startswith("check FAILED: 1 of 3 slices (") and verdicts[1].endswith(
        ": parity_check × alibi"
    )
    assert len(verdicts) == 2, broken.output


def test_check_reads_a_leaderboard_instead_of_running(tiny_baseline, tmp_path):
    rows = read_rows(tiny_baseline).rows
    board = tmp_path / "board.jsonl"
    lowered = [
        dataclasses.replace(r, score=r.score - 0.2) if r.encoding == "rope" else r for r in rows
    ]
    append_rows(board, lowered)
    args = ["check", "--baseline", str(tiny_baseline), "--leaderboard", str(board)]
    result = CliRunner().invoke(main, [*args, "--loss-rtol", "inf"])
    assert result.exit_code == 1, result.output
    assert "regressed parity_check × rope" in result.output
    assert "check FAILED: 1 of 3 slices" in result.output


def test_update_baseline_from_a_grid_writes_exactly_the_grid(tmp_path):
    grid = tmp_path / "grid.yaml"
    grid.write_text("tasks: [parity_check]\nencodings: [nope, 'rand-rope']\nseeds: 0-1\n"
                    f"preset: smoke\noverrides: {TINY}\n")  # fmt: skip
    baseline = tmp_path / "base.jsonl"
    result = CliRunner().invoke(main, ["check", "--baseline", str(baseline), "--update-baseline",
                                       "--grid", str(grid), "--executor", "inline"])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = read_rows(baseline).rows
    assert [(r.encoding, r.seed) for r in rows] == [
        ("nope", 0), ("nope", 1), ("rand-rope", 0), ("rand-rope", 1)]  # fmt: skip
    assert not list(tmp_path.glob(".base.jsonl.tmp*"))


def test_one_line_errors(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["check", "--baseline", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 2 and "--update-baseline --grid" in missing.output
    grid = runner.invoke(main, ["check", "--grid", "x.yaml"])
    assert grid.exit_code == 2 and "--grid only applies with --update-baseline" in grid.output


def test_plugins_are_never_part_of_a_baseline():
    builtin = check.builtin_encodings()
    assert "alibi" in builtin and "dape-alibi" in builtin
    assert all(ENCODINGS.origin(name) == "che_bench" for name in builtin)


def test_committed_baseline_covers_every_builtin_encoding_and_rebuilds():
    path = ROOT / "leaderboards" / "baseline-smoke.jsonl"
    rows = check.load_baseline(path)
    missing = check.uncovered(rows)
    assert not missing, (f"{path.name} lacks {missing}; regenerate it: che-bench check "
                         "--update-baseline --grid sweeps/baseline-smoke.yaml")  # fmt: skip
    assert all(check.rebuild(r).run_key == r.run_key for r in rows), (
        "RunConfig hashing changed since the baseline was written; regenerate it"
    )
