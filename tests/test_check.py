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


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fake(encoding: str, seed: int, score: float, loss: float = 0.7, task="parity_check",
         train_score=None):  # fmt: skip
    config = resolve(task, encoding, preset="smoke", seed=seed, **TINY)
    return dataclasses.replace(
        RunRecord.begin(config, "cpu:x86_64"),
        status="ok", score=score, final_loss=loss, accuracy_by_length={"41": score},
        train_score=train_score,
    )  # fmt: skip


def by_key(rows) -> dict:
    return {r.run_key: r for r in rows}


def statuses(outcome) -> dict:
    return {s.encoding: s.status for s in outcome.slices}


def test_only_large_and_significant_drops_regress():
    """The rule: mean down by more than min_drop and one-sided Welch p < alpha / slices."""
    baseline = [fake("nope", s, v) for s, v in enumerate([0.80, 0.81, 0.82])]
    baseline += [fake("rope", s, v) for s, v in enumerate([0.40, 0.80, 0.60])]  # wide spread
    baseline += [fake("alibi", s, 0.5) for s in range(3)]
    baseline += [fake("relative", s, 0.5) for s in range(3)]
    current = [fake("nope", s, v) for s, v in enumerate([0.70, 0.71, 0.72])]  # -10, tight
    current += [fake("rope", s, v) for s, v in enumerate([0.30, 0.70, 0.50])]  # -10, noisy
    current += [fake("alibi", s, v) for s, v in enumerate([0.60, 0.61, 0.62])]  # +11
    current += [fake("relative", s, v) for s, v in enumerate([0.47, 0.48, 0.46])]  # -3 < 5
    outcome = check.compare(baseline, by_key(current), min_drop=0.05, alpha=0.05)
    assert statuses(outcome) == {
        "nope": "regressed",
        "rope": "drifted",
        "alibi": "improved",
        "relative": "drifted",
    }  # fmt: skip (changed, inside the band)
    slices = {s.encoding: s for s in outcome.slices}
    assert slices["nope"].p < 0.05 / 4 < slices["rope"].p
    assert slices["nope"].band == pytest.approx(0.05)  # tight seeds: the effect floor
    assert slices["rope"].band > 0.10  # noisy seeds: a 10-point drop is not significant
    assert "(-10.0, band ±5.0, p " in slices["nope"].line() and "3 seeds" in slices["nope"].line()
    assert [s.encoding for s in outcome.failing()] == ["nope"]
    assert "FAILED: 1 of 4 slices" in outcome.summary()
    assert "Welch p < 0.05/4" in outcome.rule
    two_sided = check.compare(baseline, by_key(current), two_sided=True)
    assert {s.encoding for s in two_sided.failing()} == {"nope", "alibi"}


def test_a_drop_of_in_distribution_accuracy_regresses_an_encoding_at_chance():
    """learned never extrapolates (its score sits at chance), so its slice is gated by the
    accuracy at the training lengths too."""
    baseline = [fake("learned", s, 0.2, train_score=t) for s, t in enumerate([0.60, 0.61, 0.62])]
    broken = [fake("learned", s, 0.2, train_score=t) for s, t in enumerate([0.30, 0.31, 0.30])]
    outcome = check.compare(baseline, by_key(broken))
    assert statuses(outcome) == {"learned": "regressed"}
    assert "in-distribution accuracy down 30.7 points, p " in outcome.slices[0].line()
    fine = [fake("learned", s, 0.2, train_score=t) for s, t in enumerate([0.59, 0.61, 0.63])]
    assert check.compare(baseline, by_key(fine)).ok
    older = [fake("learned", s, 0.2) for s in range(3)]  # rows without it: score only
    assert check.compare(older, by_key(broken)).ok


def test_an_in_distribution_drop_regresses_even_when_the_test_score_rises():
    """An absolute encoding below chance on the test lengths that loses its positions rises
    there (to nope's level) while its in-distribution accuracy falls: a regression."""
    baseline = [fake("sinusoidal", s, t, train_score=0.65 + s / 100)
                for s, t in enumerate([0.15, 0.16, 0.17])]  # fmt: skip
    broken = [fake("sinusoidal", s, t, train_score=0.40 + s / 100)
              for s, t in enumerate([0.29, 0.30, 0.31])]  # fmt: skip
    outcome = check.compare(baseline, by_key(broken))
    assert statuses(outcome) == {"sinusoidal": "regressed"}
    assert "in-distribution accuracy down 25.0 points" in outcome.slices[0].line()
    better = [fake("sinusoidal", s, t, train_score=0.65 + s / 100)
              for s, t in enumerate([0.29, 0.30, 0.31])]  # fmt: skip
    assert statuses(check.compare(baseline, by_key(better))) == {"sinusoidal": "improved"}


def test_one_seed_slices_are_judged_by_the_drop_alone():
    outcome = check.compare([fake("nope", 0, 0.8)], by_key([fake("nope", 0, 0.7)]))
    assert statuses(outcome) == {"nope": "regressed"} and outcome.slices[0].p is None
    small = check.compare([fake("nope", 0, 0.8)], by_key([fake("nope", 0, 0.77)]))
    assert small.ok


def test_drift_is_a_warning_unless_strict_missing_and_failed_runs_fail():
    baseline = [fake("nope", 0, 0.5, loss=0.70), fake("rope", 0, 0.5), fake("alibi", 0, 0.5)]
    broken = dataclasses.replace(
        fake("alibi", 0, 0.5), status="failed", score=None, error="RuntimeError: boom"
    )
    current = [fake("nope", 0, 0.5, loss=0.75), broken]  # rope is missing
    outcome = check.compare(baseline, by_key(current))
    assert statuses(outcome) == {"nope": "drifted", "rope": "missing", "alibi": "failed"}
    assert {s.encoding for s in outcome.failing()} == {"rope", "alibi"}
    lines = "\n".join(s.line() for s in outcome.slices)
    assert "training loss drifted 0.7 → 0.75 (+7.14e-02)" in lines and "boom" in lines
    drift_only = check.compare(baseline[:1], by_key(current[:1]))
    assert drift_only.ok and not check.compare(baseline[:1], by_key(current[:1]), strict=True).ok
    moved = dataclasses.replace(fake("nope", 0, 0.5), accuracy_by_length={"41": 0.52})
    text = check.compare(baseline[:1], by_key([moved])).slices[0].line()
    assert "accuracy changed at 1 of 1 lengths (largest +2.0 points)" in text
    tolerant = check.compare(baseline[:1], by_key(current[:1]), loss_rtol=0.1)
    assert statuses(tolerant) == {"nope": "same"}


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
    args = ["check", "--baseline", str(tiny_baseline), "--executor", "inline", "--strict"]
    clean = runner.invoke(main, args)
    assert clean.exit_code == 0, clean.output
    assert "check passed: 3 slices (3 same)" in clean.output

    def no_bias(self, layer, length, device, generator):
        return torch.zeros(self.dims.num_heads, length, length, device=device)

    monkeypatch.setattr(ALiBi, "bias", no_bias)
    broken = runner.invoke(main, args)  # a tiny budget: only --strict's drift can see it
    assert broken.exit_code == 1, broken.output
    verdicts = [line for line in broken.output.splitlines()
                if line.startswith(("drifted", "regressed", "check FAILED"))]  # fmt: skip
    assert verdicts[0].startswith("drifted   parity_check × alibi:")
    assert verdicts[1].startswith("check FAILED: 1 of 3 slices (") and verdicts[1].endswith(
        ": parity_check × alibi"
    )
    assert len(verdicts) == 2, broken.output
    lenient = runner.invoke(main, args[:-1])
    assert lenient.exit_code == 0 and "drift is a warning" in lenient.output


def scored(rows, level):
    """``rows`` with rope's scores set to level, level + 1 point (tight seeds)."""
    return [dataclasses.replace(r, score=level + 0.01 * r.seed) if r.encoding == "rope"
            else r for r in rows]  # fmt: skip


def test_check_reads_a_leaderboard_instead_of_running(tiny_baseline, tmp_path):
    rows = read_rows(tiny_baseline).rows
    base, board = tmp_path / "base.jsonl", tmp_path / "board.jsonl"
    check.write_baseline(base, scored(rows, 0.5))
    append_rows(board, scored(rows, 0.2))
    result = CliRunner().invoke(main, ["check", "--baseline", str(base), "--leaderboard",
                                       str(board)])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "regressed parity_check × rope: 50.5 → 20.5 (-30.0, band ±" in result.output
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


def test_pe_and_task_filters_gate_only_matching_slices(tiny_baseline):
    args = ["check", "--baseline", str(tiny_baseline), "--executor", "inline", "--pe", "ali*"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "check: 2 runs" in result.output and "check passed: 1 slices" in result.output
    none = CliRunner().invoke(main, [*args[:-1], "zzz*"])
    assert none.exit_code == 2 and "no slice of" in none.output


def test_shipped_baselines_are_found_by_name(monkeypatch, tmp_path):
    from che_bench.presets import data_dir, shipped

    assert shipped("smoke", "leaderboards", "baseline-{}.jsonl") == (
        data_dir("leaderboards") / "baseline-smoke.jsonl"
    )
    assert shipped("smoke", "leaderboards", "baseline-{}.jsonl").is_file()
    assert shipped("x/y.jsonl", "leaderboards", "baseline-{}.jsonl") == Path("x/y.jsonl")
    unknown = CliRunner().invoke(main, ["check", "--baseline", "nosuch"])
    assert unknown.exit_code == 2 and "baseline-nosuch.jsonl" in unknown.output


def test_record_appends_a_history_that_trend_reads(tiny_baseline, tmp_path):
    rows = scored(read_rows(tiny_baseline).rows, 0.5)
    base, board = tmp_path / "base.jsonl", tmp_path / "board.jsonl"
    history, worse = tmp_path / "history.jsonl", tmp_path / "worse.jsonl"
    check.write_baseline(base, rows)
    append_rows(board, rows)
    args = ["check", "--baseline", str(base), "--record", str(history)]
    assert CliRunner().invoke(main, [*args, "--leaderboard", str(board)]).exit_code == 0
    append_rows(worse, scored(rows, 0.2))
    assert CliRunner().invoke(main, [*args, "--leaderboard", str(worse)]).exit_code == 1
    lines = history.read_text().splitlines()
    assert len(lines) == 6 and all('"kind": "check-history"' in line for line in lines)
    trend = CliRunner().invoke(main, ["report", str(history), "--trend"])
    assert trend.exit_code == 0, trend.output
    rope = [line for line in trend.output.splitlines() if "rope" in line or "first" in line]
    assert rope[0].startswith("parity_check × rope: ") and rope[0].endswith("!")
    assert rope[1].startswith("  first regressed at ")
    not_history = CliRunner().invoke(main, ["report", str(board), "--trend"])
    assert not_history.exit_code == 2 and "not a history" in not_history.output
    pytest.importorskip("matplotlib")
    image = tmp_path / "trend.png"
    plotted = CliRunner().invoke(main, ["plot", str(history), "-o", str(image), "--kind", "trend"])
    assert plotted.exit_code == 0, plotted.output
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plugin_gates_its_own_slice_with_the_same_command(tmp_path):
    grid = ROOT / "examples" / "plugin" / "ci.yaml"
    assert {c.encoding for c in check.grid_configs(grid)} == {"example-cauchy"}
    everything = tmp_path / "all.yaml"
    everything.write_text("tasks: [bucket_sort]\nencodings: ['*']\npreset: smoke\n")
    assert "example-cauchy" not in {c.encoding for c in check.grid_configs(everything)}
    small = tmp_path / "plugin.yaml"
    small.write_text(grid.read_text().replace("steps: 150", "steps: 4"))
    baseline = tmp_path / "plugin-baseline.jsonl"
    made = CliRunner().invoke(main, ["check", "--update-baseline", "--baseline", str(baseline),
                                     "--grid", str(small), "--executor", "inline"])  # fmt: skip
    assert made.exit_code == 0, made.output
    gated = CliRunner().invoke(main, ["check", "--baseline", str(baseline), "--leaderboard",
                                      str(baseline)])  # fmt: skip
    assert gated.exit_code == 0 and "check passed: 1 slices (1 same)" in gated.output


def test_a_significant_rise_of_the_final_loss_regresses_a_slice_inside_its_score_band():
    baseline = [fake("alibi", s, 0.7, loss=v) for s, v in enumerate([0.58, 0.57, 0.60])]
    worse = [fake("alibi", s, 0.7, loss=v) for s, v in enumerate([0.77, 0.73, 0.75])]
    outcome = check.compare(baseline, by_key(worse))
    assert statuses(outcome) == {"alibi": "regressed"}
    assert "final training loss +28.6% up, p " in outcome.slices[0].line()
    slightly = [fake("alibi", s, 0.7, loss=v) for s, v in enumerate([0.61, 0.60, 0.63])]
    assert statuses(check.compare(baseline, by_key(slightly))) == {"alibi": "drifted"}


def test_a_baseline_from_other_devices_is_named_as_the_reason_for_drift():
    baseline = [fake("nope", s, 0.5) for s in range(3)]
    same = check.compare(baseline, by_key(baseline))
    assert same.machines is None
    moved = [dataclasses.replace(r, device="cpu:x86_64 (Other CPU, 1 thread)") for r in baseline]
    note = check.compare(baseline, by_key(moved)).machines
    assert note is not None and "cpu:x86_64, these runs on cpu:x86_64 (Other CPU, 1 thread)" in note


def test_the_recorded_cpu_device_names_the_model_and_the_thread_count():
    import torch

    from che_bench.running.runner import cpu_model, device_name

    name = device_name(torch.device("cpu"))
    threads = torch.get_num_threads()
    assert name.startswith("cpu:") and cpu_model() in name
    assert name.endswith(f"{threads} thread{'s' * (threads > 1)})")
