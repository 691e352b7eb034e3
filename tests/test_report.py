"""Reports: the statistics of spec §4, the four formats, the README and the plots."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import sys

import pytest
from click.testing import CliRunner

from che_bench.cli import main
from che_bench.config import resolve
from che_bench.errors import CheBenchError
from che_bench.results import plots, report
from che_bench.results.leaderboard import append_rows
from che_bench.results.record import RunRecord

SMALL = {"steps": 5, "test_lengths": [41, 44]}


def row(task="parity_check", encoding="alibi", seed=0, lr=1e-3, score=0.5, status="ok",
        train_score=None, **over):  # fmt: skip
    """A leaderboard record as a run would write it, with a chosen score (and
    in-distribution score, where given)."""
    config = resolve(task, encoding, preset="smoke", seed=seed, lr=lr, **{**SMALL, **over})
    begun = RunRecord.begin(config, "cpu:x86_64")
    lo, hi = config.test_lengths
    curve = {str(n): min(1.0, score + 0.01 * (i % 3)) for i, n in enumerate(range(lo, hi + 1))}
    if status == "ok":
        seen = {} if train_score is None else {str(n): train_score for n in range(1, 21)}
        return dataclasses.replace(
            begun,
            status="ok",
            score=score,
            accuracy_by_length=curve,
            final_loss=0.7,
            train_accuracy_by_length=seen,
            train_score=train_score,
        )
    return dataclasses.replace(begun, status=status, error="RuntimeError: boom")


@pytest.fixture
def rows():
    return [
        row(seed=0, score=0.5), row(seed=1, score=0.6), row(seed=2, score=0.7),
        row(seed=0, lr=3e-4, score=0.9, train_score=1.0),
        row(seed=1, lr=3e-4, score=0.5, train_score=0.95),
        row(encoding="nope", seed=0, score=0.55), row(encoding="nope", seed=1, status="failed"),
        row(task="reverse_string", encoding="nope", seed=0, score=0.52),
        row(task="reverse_string", encoding="rope", seed=0, score=0.61),
    ]  # fmt: skip


def cells(groups) -> dict:
    return {(c.task, c.encoding): c for g in groups for c in g.cells}


def test_best_is_max_over_seeds_and_lrs_mean_sem_at_the_best_lr(rows):
    [group] = report.aggregate(rows)
    alibi = cells([group])[("parity_check", "alibi")]
    assert alibi.best == 0.9  # max over seeds × lrs
    head = alibi.headline  # lr 3e-4 has mean 0.7 > 0.6
    assert head.lr == 3e-4 and head.n == 2
    assert head.mean == pytest.approx(0.7)
    assert head.sem == pytest.approx(0.2)  # std([0.9, 0.5], ddof=1) / sqrt(2)
    other = next(s for s in alibi.per_lr if s.lr == 1e-3)
    assert other.sem == pytest.approx(0.1 / math.sqrt(3))
    nope = cells([group])[("parity_check", "nope")]
    assert nope.headline.n == 1 and nope.headline.sem is None and nope.n_failed == 1


def test_reruns_count_once_and_protocols_are_never_pooled(rows):
    rerun = row(seed=0, score=0.5)  # same run_key as rows[0]
    other_budget = row(seed=0, score=0.99, steps=7)
    groups = report.aggregate([*rows, rerun, other_budget])
    assert len(groups) == 2
    by_steps = {g.protocol.split(", ")[1]: g for g in groups}
    alibi = cells([by_steps["5 steps"]])[("parity_check", "alibi")]
    assert sum(s.n for s in alibi.per_lr) == 5
    assert cells([by_steps["7 steps"]])[("parity_check", "alibi")].best == 0.99


def test_option_variants_get_their_own_label():
    plain = row(encoding="rand-rope", score=0.5)
    varied_config = resolve("parity_check", "rand-rope", preset="smoke",
                            encoding_options={"max_length": 999}, **SMALL)  # fmt: skip
    varied = dataclasses.replace(RunRecord.begin(varied_config, "cpu"), status="ok", score=0.6)
    labels = {c.encoding for g in report.aggregate([plain, varied]) for c in g.cells}
    assert len(labels) == 2 and "rand-rope[max_length=999]" in labels
    assert all(label.startswith("rand-rope[max_length=") for label in labels)


def test_markdown_bolds_the_best_per_task_and_shows_chance(rows):
    text = report.render_markdown(report.aggregate(rows))
    assert (
        "| parity_check | 50.0 | alibi | 2 | **90.0** | **70.0 ± 20.0** | 0.0003 | 97.5 |  |"
        in text
    )  # in-dist: the mean train_score of the headline lr's seeds
    assert "| reverse_string | 50.0 | nope | 1 | 52.0 | 52.0 | 0.001 | – |  |" in text
    assert "|  |  | rope | 1 | **61.0** | **61.0** | 0.001 | – |  |" in text
    assert text.splitlines()[2].endswith("| lr | in-dist | failed |")


def test_strided_rows_are_labelled_and_never_pooled_with_full_ones(rows):
    strided = row(seed=0, score=0.99, test_lengths="41-44:2")
    assert strided.config["test_stride"] == 2
    groups = report.aggregate([*rows, strided])
    assert len(groups) == 2
    (label,) = [g.protocol for g in groups if "strided" in g.protocol]
    assert "test 41-44 every 2th length (strided)" in label
    full = next(g for g in groups if "strided" not in g.protocol)
    assert cells([full])[("parity_check", "alibi")].best == 0.9


def test_rows_from_before_a_setting_existed_share_the_protocol(rows):
    """A row whose config lacks the later-added fields (written before they existed) is in
    the same table as a new row with those fields at their defaults."""
    old = rows[0]
    config = {k: v for k, v in old.config.items()
              if k not in ("test_stride", "train_eval_samples", "precision")}  # fmt: skip
    older = dataclasses.replace(old, config=config, seed=7, run_key=f"{old.config_hash}-s7")
    assert len(report.aggregate([*rows, older])) == 1


def test_csv_and_json_carry_every_statistic(rows):
    groups = report.aggregate(rows)
    table = list(csv.DictReader(io.StringIO(report.render_csv(groups))))
    alibi = next(r for r in table if r["encoding"] == "alibi")
    assert float(alibi["best"]) == 0.9 and float(alibi["lr"]) == 3e-4
    assert float(alibi["sem"]) == pytest.approx(0.2) and alibi["n_seeds"] == "2"
    records = json.loads(report.render_json(groups))
    nope = next(r for r in records if r["encoding"] == "nope" and r["task"] == "parity_check")
    assert nope["sem"] is None and nope["n_failed"] == 1 and nope["chance"] == 0.5
    assert {p["lr"] for p in records[0]["per_lr"]} == {1e-3, 3e-4}


def test_cli_report_filters_skips_corrupt_lines_and_fails_on_no_match(rows, tmp_path):
    board = tmp_path / "board.jsonl"
    append_rows(board, rows)
    with board.open("a") as f:
        f.write('{"torn": \n')
    runner = CliRunner()
    result = runner.invoke(main, ["report", str(board), "--pe", "al*", "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert "skipped 1 bad line(s)" in result.output
    assert {r["encoding"] for r in csv.DictReader(io.StringIO(result.stdout))} == {"alibi"}
    table = runner.invoke(main, ["report", str(board), "--task", "reverse_*"])
    assert table.exit_code == 0 and "reverse_string" in table.output
    assert "parity_check" not in table.output and "rope" in table.output
    none = runner.invoke(main, ["report", str(board), "--pe", "zzz*"])
    assert none.exit_code == 2 and "no rows in" in none.output


def test_readme_lists_every_committed_leaderboard(rows, tmp_path):
    append_rows(tmp_path / "a.jsonl", rows[:5])
    append_rows(tmp_path / "b.jsonl", rows[5:])
    append_rows(tmp_path / "local.jsonl", rows)  # scratch file: not listed
    result = CliRunner().invoke(main, ["report", "--readme", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "README.md").read_text()
    assert "## a.jsonl" in text and "## b.jsonl" in text and "local.jsonl" not in text
    assert "| parity_check | 50.0 | alibi |" in text and "do not edit by hand" in text
    assert text == report.readme(tmp_path)  # deterministic: CI can diff it


@pytest.mark.parametrize("kind", ["curves", "heatmap"])
def test_plots_render_valid_pngs(rows, tmp_path, kind):
    image = pytest.importorskip("matplotlib.image")
    board = tmp_path / "board.jsonl"
    append_rows(board, rows)
    out = tmp_path / f"{kind}.png"
    result = CliRunner().invoke(main, ["plot", str(board), "-o", str(out), "--kind", kind])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    pixels = image.imread(out)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 200
    assert pixels[..., :3].std() > 0.05  # not a blank canvas


def test_missing_matplotlib_is_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(CheBenchError, match=r"install che-bench\[plot\]"):
        plots.pyplot()


def test_the_table_prints_option_labels_with_their_brackets(tmp_path):
    """rich reads ``[max_length=999]`` as markup unless it is escaped."""
    plain = row(encoding="rand-rope", score=0.5)
    varied_config = resolve("parity_check", "rand-rope", preset="smoke",
                            encoding_options={"max_length": 999}, **SMALL)  # fmt: skip
    varied = dataclasses.replace(RunRecord.begin(varied_config, "cpu"), status="ok", score=0.6)
    board = tmp_path / "board.jsonl"
    append_rows(board, [plain, varied])
    result = CliRunner().invoke(main, ["report", str(board)])
    assert result.exit_code == 0, result.output
    assert "rand-rope[max_length=999]" in result.output
