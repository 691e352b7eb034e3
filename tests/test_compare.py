"""``che-bench compare``: Welch, Mann–Whitney and bootstrap over seeds, checked by hand."""

from __future__ import annotations

import dataclasses
import json
import math
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from scipy import stats as scipy_stats

from che_bench.cli import main
from che_bench.config import resolve
from che_bench.errors import CheBenchError, ConfigError
from che_bench.results import compare as lib
from che_bench.results.leaderboard import append_rows
from che_bench.results.record import RunRecord


def row(task="even_pairs", encoding="relative", seed=0, lr=1e-3, score=0.5, status="ok"):
    """A leaderboard record as a run would write it (as in tests/test_report.py)."""
    config = resolve(task, encoding, preset="smoke", seed=seed, lr=lr, steps=5,
                     test_lengths=[41, 44])  # fmt: skip
    begun = RunRecord.begin(config, "cpu:x86_64")
    if status != "ok":
        return dataclasses.replace(begun, status=status, error="RuntimeError: boom")
    return dataclasses.replace(begun, status="ok", score=score, final_loss=0.7)


RELATIVE, NOPE = [0.9, 0.91, 0.92], [0.5, 0.51, 0.52]


@pytest.fixture
def board(tmp_path):
    rows = [row(encoding="relative", seed=s, score=v) for s, v in enumerate(RELATIVE)]
    rows += [row(encoding="nope", seed=s, score=v) for s, v in enumerate(NOPE)]
    rows += [row(encoding="nope", seed=s, lr=3e-4, score=0.3) for s in range(3)]  # worse lr
    rows += [row(encoding="rope", seed=0, status="failed")]
    path = tmp_path / "board.jsonl"
    append_rows(path, rows)
    return path


def test_identical_samples_give_p_one_and_not_distinguishable():
    c = lib.compare_scores([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert c.welch_p == 1.0 and c.mann_whitney_p == 1.0
    assert not c.significant and not c.beats and c.difference == 0
    assert c.verdict == "not distinguishable (Welch p = 1, 3 vs 3 seeds)"
    assert (c.ci_low, c.ci_high) == (0.0, 0.0)


def test_separated_samples_give_a_greater_than_b_with_the_right_numbers():
    c = lib.compare_scores([0.9, 0.91, 0.92], [0.5, 0.51, 0.52])
    assert c.mean_a == pytest.approx(0.91) and c.mean_b == pytest.approx(0.51)
    assert c.difference == pytest.approx(0.40)
    assert c.sem_a == pytest.approx(0.01 / math.sqrt(3))  # std([.9, .91, .92], ddof=1) = .01
    # t = 0.4 / sqrt(2 * 0.01**2 / 3), df = 4 (equal variances and sizes)
    t = 0.4 / math.sqrt(2e-4 / 3)
    assert c.welch_p == pytest.approx(2 * scipy_stats.t.sf(t, 4), rel=1e-9)
    assert c.welch_p < 1e-5
    assert c.mann_whitney_p == pytest.approx(0.1)  # exact: 2 / C(6, 3), the smallest at 3 vs 3
    assert c.significant and c.beats
    assert c.verdict == f"A > B (Welch p = {c.welch_p:.2g}, 3 vs 3 seeds)"
    assert 0.38 <= c.ci_low < 0.40 < c.ci_high <= 0.42  # resample means lie in [-.02, +.02]
    reverse = lib.compare_scores([0.5, 0.51, 0.52], [0.9, 0.91, 0.92], a="nope", b="rel")
    assert reverse.verdict.startswith("nope < rel (Welch p = ") and not reverse.beats


def test_welch_p_matches_the_t_statistic_and_satterthwaite_df_by_hand():
    a, b = [0.61, 0.58, 0.70, 0.66, 0.52], [0.55, 0.49, 0.60, 0.47, 0.58, 0.51, 0.44]
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    t = (np.mean(a) - np.mean(b)) / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    assert 6 < df < 10  # not the pooled n - 2 = 10
    c = lib.compare_scores(a, b, alpha=0.01)
    assert c.welch_p == pytest.approx(2 * scipy_stats.t.sf(abs(t), df), rel=1e-9)
    assert 0.01 < c.welch_p < 0.05
    assert not c.significant and c.verdict.startswith("not distinguishable (Welch p = 0.0")
    assert lib.compare_scores(a, b, alpha=0.05).verdict.startswith("A > B (Welch p = 0.0")


def test_bootstrap_interval_covers_the_true_difference_about_95_percent():
    rng = np.random.default_rng(2024)
    repetitions, covered = 200, 0
    for i in range(repetitions):
        x, y = rng.normal(0.6, 0.1, 10), rng.normal(0.4, 0.15, 10)
        low, high = lib.bootstrap_ci(x, y, np.random.default_rng(i), resamples=2_000)
        covered += low <= 0.2 <= high
    assert 0.88 <= covered / repetitions <= 0.99  # percentile bootstrap slightly undercovers


def test_output_is_deterministic_for_a_seed_and_varies_with_it():
    a, b = [0.61, 0.58, 0.70, 0.66], [0.55, 0.49, 0.60, 0.47]
    first, again = lib.compare_scores(a, b), lib.compare_scores(list(reversed(a)), b)
    assert first == again  # the order of the rows does not matter either
    assert lib.compare_scores(a, b, seed=1).ci_low != first.ci_low


def test_one_seed_gives_no_test():
    c = lib.compare_scores([0.7], [0.5, 0.6, 0.55])
    assert c.welch_p is None and c.mann_whitney_p is None and c.ci_low is None
    assert not c.significant
    assert c.verdict == "not distinguishable: need ≥ 2 seeds per encoding (have 1 vs 3)"


def test_constant_samples_with_different_means_fall_back_to_mann_whitney():
    c = lib.compare_scores([0.6, 0.6, 0.6], [0.5, 0.5, 0.5])
    assert c.welch_p is None and "Welch's t is undefined" in c.note
    assert c.mann_whitney_p == pytest.approx(
        scipy_stats.mannwhitneyu([0.6] * 3, [0.5] * 3, alternative="two-sided").pvalue
    )
    assert c.verdict == f"A > B (Mann–Whitney p = {c.mann_whitney_p:.2g}, 3 vs 3 seeds)"
    small = lib.compare_scores([0.6, 0.6], [0.5, 0.5])
    assert small.verdict.startswith("not distinguishable (Mann–Whitney p = 0.19")


def test_compare_takes_each_encoding_at_its_headline_lr(board):
    from che_bench.results.leaderboard import read_rows

    [c] = lib.compare(read_rows(board).rows, ["even_*"], "relative", "nope")
    assert (c.task, c.a, c.b, c.lr_a, c.lr_b) == ("even_pairs", "relative", "nope", 1e-3, 1e-3)
    assert c.scores_b == tuple(NOPE) and c.beats  # lr 3e-4 (mean 0.3) is not the headline
    with pytest.raises(ConfigError, match="no ok runs of 'rope'.*: nope, relative"):
        lib.compare(read_rows(board).rows, [], "rope", "nope")
    [vs] = lib.compare_all(read_rows(board).rows, [], "nope")
    assert (vs.a, vs.b, vs.beats) == ("relative", "nope", True)


def test_cli_prints_numbers_verdict_and_the_lr_rule(board):
    args = ["compare", str(board), "--task", "even_pairs", "--pe", "relative", "--pe", "nope"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "relative > nope (Welch p = 1e-06, 3 vs 3 seeds)" in out
    assert "91.0 ± 0.6" in out and "51.0 ± 0.6" in out and "+40.0 points" in out
    assert "Mann–Whitney p = 0.1" in out and "highest mean over seeds" in out
    records = json.loads(CliRunner().invoke(main, [*args, "--format", "json"]).output)
    assert records["comparisons"][0]["n_a"] == 3 and "highest mean" in records["lr_rule"]
    table = CliRunner().invoke(main, ["compare", str(board), "--all", "--baseline-pe", "nope"])
    assert table.exit_code == 0 and "91.0 ± 0.6 ▲" in table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl", "--pe", "a", "--pe", "b"], "no leaderboard at"),
        (["BOARD", "--task", "zzz", "--pe", "a", "--pe", "b"], "no rows in"),
        (["BOARD", "--pe", "rope", "--pe", "nope"], "no ok runs of 'rope'"),
        (["BOARD", "--pe", "relative"], "exactly two --pe"),
        (["BOARD", "--pe", "a", "--pe", "b", "--pe", "c"], "exactly two --pe"),
        (["BOARD", "--all"], "--baseline-pe"),
    ],
)
def test_cli_errors_are_one_line_with_exit_code_2(board, tmp_path, args, message):
    paths = {"BOARD": str(board), "missing.jsonl": str(tmp_path / "missing.jsonl")}
    args = [paths.get(a, a) for a in args]
    result = CliRunner().invoke(main, ["compare", *args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert "Traceback" not in result.output


def test_help_teaches_with_an_example():
    result = CliRunner().invoke(main, ["compare", "--help"])
    assert result.exit_code == 0 and "Examples" in result.output
    assert "--pe relative --pe nope" in result.output


def test_missing_scipy_is_one_line_error(monkeypatch, board):
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(CheBenchError, match=r"pip install 'che-bench\[stats\]'"):
        lib.compare_scores([0.1, 0.2], [0.3, 0.4])
    result = CliRunner().invoke(main, ["compare", str(board), "--pe", "a", "--pe", "b"])
    assert result.exit_code == 2 and "comparing needs scipy" in result.output


def test_report_compare_adds_the_comparison_as_columns_in_a_s_row(board):
    from che_bench.results.leaderboard import read_rows

    [c] = lib.compare(read_rows(board).rows, [], "relative", "nope")
    args = ["report", str(board), "--compare", "relative,nope", "--format", "json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    by_pe = {r["encoding"]: r for r in json.loads(result.output)}
    mine = by_pe["relative"]
    assert mine["compare_difference"] == pytest.approx(c.difference)
    assert mine["compare_ci"] == pytest.approx([c.ci_low, c.ci_high])
    assert mine["compare_welch_p"] == pytest.approx(c.welch_p)
    assert mine["compare_verdict"] == c.verdict
    assert by_pe["nope"]["compare_difference"] is None  # the other rows say nothing
    table = CliRunner().invoke(main, ["report", str(board), "--compare", "relative,nope"])
    assert "relative − nope" in table.output and "> nope" in table.output
    bad = CliRunner().invoke(main, ["report", str(board), "--compare", "relative"])
    assert bad.exit_code == 2 and "--compare expects two encodings A,B" in bad.output
