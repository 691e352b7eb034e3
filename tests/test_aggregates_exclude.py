"""Runs that are not ok (failed, diverged, ok without a score) are in no aggregate of
``report``, ``plot`` or ``check``, and every one of them says how many it left out.

Each test reads a leaderboard of ok runs plus bad ones that would move every number if they
counted (a diverged run with a high score, one with a NaN-ish curve at an lr no ok run used,
a failed run with a score, an ok run whose score is null but whose curve is perfect) and
checks that the numbers equal those of the ok runs alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from che_bench.cli import main
from che_bench.config import resolve
from che_bench.results import check, plots, report
from che_bench.results.leaderboard import append_rows
from che_bench.results.record import RunRecord
from che_bench.results.stats import standard_error

SMALL = {"steps": 5, "batch_size": 8, "train_lengths": [1, 8], "test_lengths": [41, 44],
         "eval_samples": 8, "eval_batch_size": 8}  # fmt: skip
EXCLUDED = "5 runs (2 diverged, 2 failed, 1 ok without a score)"


def run(seed, score, status="ok", lr=1e-3, encoding="alibi", curve=None, task="parity_check"):
    config = resolve(task, encoding, preset="smoke", seed=seed, lr=lr, **SMALL)
    lo, hi = config.test_lengths
    if curve is None:
        curve = {str(n): min(1.0, (score or 0) + 0.01 * (n - lo)) for n in range(lo, hi + 1)}
    return dataclasses.replace(
        RunRecord.begin(config, "cpu:x86_64"),
        status=status, score=score, accuracy_by_length=curve, final_loss=0.7,
        error=None if status == "ok" else "RuntimeError: boom",
    )  # fmt: skip


GOOD = [run(0, 0.5), run(1, 0.6), run(2, 0.7),  # headline lr 1e-3: mean 0.6
        run(0, 0.4, lr=3e-4), run(1, 0.5, lr=3e-4),  # mean 0.45
        run(0, 0.55, encoding="nope")]  # fmt: skip
BAD = [
    run(3, 0.99, status="diverged", curve={"41": 1.0, "42": 1.0, "43": 1.0, "44": 1.0}),
    run(2, 0.98, status="diverged", lr=3e-4, curve={"41": None, "42": 1.0, "43": None}),
    run(4, 0.97, status="failed"),  # a failed run that got as far as a score
    run(5, None, curve={"41": 1.0, "42": 1.0, "43": 1.0, "44": 1.0}),  # ok, score null
    run(0, None, status="failed", encoding="rope"),  # a cell with no ok run at all
    run(0, 0.0, status="diverged"),  # a re-run of seed 0 at 1e-3: superseded by its ok row
]


@pytest.fixture
def boards(tmp_path):
    """(ok runs alone, the same with the bad runs among them) as leaderboard files."""
    good, mixed = tmp_path / "good.jsonl", tmp_path / "mixed.jsonl"
    append_rows(good, GOOD)
    append_rows(mixed, [GOOD[0], *BAD[:3], *GOOD[1:4], *BAD[3:], *GOOD[4:]])
    return good, mixed


def numbers(groups) -> list[dict]:
    """Every aggregate of every cell that has an ok run, without the exclusion counts."""
    return [
        {k: v for k, v in r.items() if k != "n_failed"}
        for r in report.records(groups)
        if r["n_runs"]
    ]


def test_report_numbers_are_those_of_the_ok_runs_alone(boards):
    good, mixed = (report.aggregate(report.load_rows(p)) for p in boards)
    assert numbers(mixed) == numbers(good)
    cells = {c.encoding: c for g in mixed for c in g.cells}
    assert cells["alibi"].best == 0.7 and cells["alibi"].headline.lr == 1e-3
    assert cells["alibi"].headline.mean == pytest.approx(0.6)
    assert (cells["alibi"].n_failed, cells["rope"].n_failed, cells["nope"].n_failed) == (4, 1, 0)
    assert cells["rope"].headline is None and cells["rope"].best is None


def test_every_report_format_shows_how_many_runs_it_excluded(boards):
    good, mixed = (report.aggregate(report.load_rows(p)) for p in boards)
    footer = f"excluded from best and mean ± sem (column 'failed'): {EXCLUDED}"
    markdown = report.render_markdown(mixed)
    assert f"\n\n{footer}\n" in markdown and markdown.splitlines()[2].endswith("| failed |")
    alibi = "| parity_check | 50.0 | alibi | 3 | **70.0** | **60.0 ± 5.8** | 0.001 | – | 4 |"
    assert alibi in markdown
    assert "|  |  | rope | 0 | – | – | – | – | 1 |" in markdown
    assert "excluded" not in report.render_markdown(good)  # ok runs only: as before
    records = {r["encoding"]: r for r in json.loads(report.render_json(mixed))}
    assert (records["alibi"]["n_failed"], records["rope"]["n_failed"]) == (4, 1)
    table, plain = (CliRunner().invoke(main, ["report", str(p)]) for p in (boards[1], boards[0]))
    assert table.exit_code == 0, table.output
    assert footer in table.output and "excluded" not in plain.output


def test_standard_error_is_linear_and_bit_identical_to_the_old_formula():
    values = [random.Random(7).random() for _ in range(1000)]

    def old(scores):  # the previous LrStats.sem, which recomputed the mean per element
        def mean():
            return sum(scores) / len(scores)

        var = sum((s - mean()) ** 2 for s in scores) / (len(scores) - 1)
        return math.sqrt(var) / math.sqrt(len(scores))

    assert standard_error(values) == old(values)
    assert standard_error([0.5]) is None and standard_error([]) is None


@pytest.fixture
def figures(monkeypatch):
    """The figures plots would save, kept open to be read."""
    pytest.importorskip("matplotlib")
    kept = []
    monkeypatch.setattr(plots, "save", lambda fig, path, plt: kept.append(fig) or path)
    yield kept
    plt = plots.pyplot()
    for fig in kept:
        plt.close(fig)


def curves(fig) -> dict:
    return {
        line.get_label(): (list(line.get_xdata()), list(line.get_ydata()))
        for ax in fig.axes
        for line in ax.get_lines()
        if line.get_label() in ("alibi", "nope", "rope")
    }


def test_curves_are_those_of_the_ok_runs_alone_and_titles_count_the_rest(boards, figures):
    good, mixed = (report.load_rows(p) for p in boards)
    plots.plot_curves(good, boards[0].with_suffix(".png"))
    plots.plot_curves(mixed, boards[1].with_suffix(".png"))
    before, after = figures
    assert curves(after) == curves(before) and set(curves(after)) == {"alibi", "nope"}
    assert curves(after)["alibi"][1] == pytest.approx([0.6, 0.61, 0.62, 0.63])
    [panel] = [ax for ax in after.axes if ax.get_title()]
    assert panel.get_title() == f"parity_check\nexcluded: {EXCLUDED}"
    assert after._suptitle.get_text() == f"excluded from every curve: {EXCLUDED}"
    assert before.axes[0].get_title() == "parity_check" and before._suptitle is None


@pytest.mark.parametrize("stat", ["best", "mean"])
def test_heatmap_is_that_of_the_ok_runs_alone_and_its_title_counts_the_rest(boards, figures, stat):
    good, mixed = (report.load_rows(p) for p in boards)
    plots.plot_heatmap(good, boards[0].with_suffix(".png"), stat)
    plots.plot_heatmap(mixed, boards[1].with_suffix(".png"), stat)
    before, after = (fig.axes[0] for fig in figures)
    grid = after.images[0].get_array()
    assert grid.tolist() == before.images[0].get_array().tolist()
    assert grid.tolist() == [[pytest.approx(5.0), pytest.approx(20.0)] if stat == "best"
                             else [pytest.approx(5.0), pytest.approx(10.0)]]  # fmt: skip
    title = f"{stat} score per task and encoding"
    assert after.get_title() == f"{title}\nexcluded: {EXCLUDED}" and before.get_title() == title


def by_key(rows) -> dict:
    return {check.rebuild(r).run_key: r for r in rows}


def test_check_slices_leave_out_baseline_runs_that_are_not_ok():
    base_ok = GOOD[:3]
    now = [dataclasses.replace(r, score=r.score - 0.01) for r in base_ok]
    alone = check.compare(base_ok, by_key(now))
    mixed = check.compare([*base_ok, *BAD[:1], *BAD[2:4]], by_key(now))
    [want], [got] = alone.slices, mixed.slices
    assert (got.status, got.baseline, got.current, got.band, got.delta) == (
        want.status, want.baseline, want.current, want.band, want.delta)  # fmt: skip
    assert got.status == "same" and mixed.ok
    assert "excluded: 3 baseline runs (1 diverged, 1 failed, 1 ok without a score)" in got.line()
    assert "excluded" not in want.line()


def test_check_counts_current_runs_that_are_not_ok():
    base = GOOD[:3]
    now = [base[0], dataclasses.replace(base[1], status="diverged", score=0.99), base[2]]
    [slice_] = check.compare(base, by_key(now)).slices
    assert slice_.status == "failed" and slice_.current == []
    assert "excluded: 1 current run (1 diverged)" in slice_.line()


def test_check_a_slice_without_an_ok_baseline_run_is_skipped_and_counted():
    outcome = check.compare([GOOD[0], BAD[4]], by_key([GOOD[0]]))
    lines = {s.encoding: s for s in outcome.slices}
    assert lines["rope"].status == "skipped" and outcome.ok
    assert lines["rope"].line() == (
        "skipped   parity_check × rope: no ok baseline run; excluded: 1 baseline run (1 failed)"
    )


def test_check_cli_shows_excluded_baseline_runs_and_reruns_only_ok_ones(tmp_path, monkeypatch):
    baseline = tmp_path / "baseline.jsonl"
    append_rows(baseline, [*GOOD[:3], *BAD[:1], *BAD[2:5]])
    current = tmp_path / "current.jsonl"
    append_rows(current, GOOD[:3])
    args = ["check", "--baseline", str(baseline)]
    result = CliRunner().invoke(main, [*args, "--leaderboard", str(current)])
    assert result.exit_code == 0, result.output
    assert (
        "same      parity_check × alibi: 60.0 → 60.0 (+0.0, band ±17.4, p 0.5, 3 seeds); "
        "excluded: 3 baseline runs (1 diverged, 1 failed, 1 ok without a score)"
    ) in result.output
    assert "skipped   parity_check × rope" in result.output
    assert "check passed: 2 slices (1 same, 1 skipped)" in result.output

    ran = []

    def fake_run(configs, runner, leaderboard, quiet):
        ran.extend(configs)
        return SimpleNamespace(rows=list(GOOD[:3]))

    monkeypatch.setattr("che_bench.cli.check.run_configs", fake_run)
    rerun = CliRunner().invoke(main, [*args, "--executor", "inline"])
    assert rerun.exit_code == 0, rerun.output
    assert sorted(c.run_key for c in ran) == sorted(r.run_key for r in GOOD[:3])
