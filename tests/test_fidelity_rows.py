"""What a row records for comparison with the literature: strided test lengths, the
in-distribution accuracy beside the test curve, and the identity of the code that ran."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from che_bench.config import resolve
from che_bench.errors import ConfigError
from che_bench.generators import get_task
from che_bench.results.provenance import git_revision, source_digest
from che_bench.results.record import SCHEMA_VERSION
from che_bench.running.runner import execute
from che_bench.training.ensemble import train_ensemble
from che_bench.training.evaluate import EvalSpec, evaluate

TINY = {"steps": 6, "batch_size": 8, "eval_samples": 6, "eval_batch_size": 4,
        "train_lengths": (1, 12), "train_eval_samples": 8}  # fmt: skip


def test_strided_lengths_are_scored_and_hashed_and_in_distribution_is_recorded():
    config = resolve("parity_check", "alibi", preset="smoke", test_lengths="41-50:4", **TINY)
    assert config.test_stride == 4 and config.test_length_list == [41, 45, 49, 50]
    full = resolve("parity_check", "alibi", preset="smoke", test_lengths="41-50", **TINY)
    assert full.test_stride == 1 and full.config_hash != config.config_hash
    row = execute(config, run_dir=None)
    assert row.status == "ok" and row.config["test_stride"] == 4
    assert list(row.accuracy_by_length) == ["41", "45", "49", "50"]
    assert row.score == pytest.approx(np.mean(list(row.accuracy_by_length.values())))
    assert list(row.train_accuracy_by_length) == [str(n) for n in range(1, 13)]
    assert row.train_score == pytest.approx(np.mean(list(row.train_accuracy_by_length.values())))
    strided_curve = {k: row.accuracy_by_length[k] for k in ("41", "45")}
    full_row = execute(full, run_dir=None)  # same seed, same test set at the shared lengths
    assert {k: full_row.accuracy_by_length[k] for k in ("41", "45")} == strided_curve


def test_in_distribution_accuracy_is_the_model_evaluated_at_the_training_lengths():
    from che_bench.running.runner import build_model

    config = resolve("even_pairs", "nope", preset="smoke", **{**TINY, "steps": 1})
    spec = EvalSpec.in_distribution(config)
    assert spec is not None and spec.lengths == list(range(1, 13)) and spec.samples == 8
    model = build_model(config)
    seen = evaluate(model, get_task("even_pairs"), spec, torch.device("cpu"))
    assert set(seen.accuracy_by_length) == set(range(1, 13))
    none = resolve("even_pairs", "nope", preset="smoke", **{**TINY, "train_eval_samples": 0})
    assert EvalSpec.in_distribution(none) is None
    row = execute(none, run_dir=None)
    assert row.train_accuracy_by_length == {} and row.train_score is None


def test_seed_ensembles_record_in_distribution_accuracy_too():
    configs = [resolve("parity_check", "alibi", preset="smoke", seed=s, **TINY) for s in (0, 1)]
    rows = train_ensemble(configs)
    assert all(r.status == "ok" and len(r.train_accuracy_by_length) == 12 for r in rows)
    alone = execute(configs[1], run_dir=None)
    assert rows[1].train_accuracy_by_length == alone.train_accuracy_by_length


@pytest.mark.parametrize(
    ("value", "message"),
    [("41-500:0", "test_stride must be an integer >= 1"),
     ("41-500:x", "expected LO-HI:STRIDE"), ("41:500", "expected LO-HI")],
)  # fmt: skip
def test_bad_strides_are_one_line_errors(value, message):
    with pytest.raises(ConfigError, match=message):
        resolve("parity_check", "alibi", preset="smoke", test_lengths=value)


def test_cli_prints_the_stride_and_the_in_distribution_score(tmp_path):
    board = tmp_path / "lb.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "che_bench.cli", "run", "--task", "parity_check", "--pe", "nope",
         "--preset", "smoke", "--test-lengths", "41-43:2", "--leaderboard", str(board),
         "--run-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "test 41-43 every 2" in result.stdout and "in-distribution" in result.stdout
    row = json.loads(board.read_text())
    assert list(row["accuracy_by_length"]) == ["41", "43"]
    assert row["schema_version"] == SCHEMA_VERSION
    assert row["versions"]["code"].startswith(("git:", "sha256:"))


# -- code identity ---------------------------------------------------------------------------
def git(root, *args):
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def test_a_checkout_records_its_revision_and_whether_it_is_dirty(tmp_path):
    package = tmp_path / "che_bench"
    package.mkdir()
    (package / "model.py").write_text("x = 1\n")
    assert git_revision(package) is None  # no checkout: the caller falls back to the digest
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    assert git_revision(package) == f"git:{head}"
    (tmp_path / "notes.txt").write_text("untracked outside the package: still clean\n")
    assert git_revision(package) == f"git:{head}"
    (package / "extra.py").write_text("y = 2\n")  # untracked code inside the package
    assert git_revision(package) == f"git:{head}+dirty"
    (package / "extra.py").unlink()
    (package / "model.py").write_text("x = 2\n")
    assert git_revision(package) == f"git:{head}+dirty"


def test_an_installed_package_records_a_digest_of_its_source(tmp_path):
    package = tmp_path / "che_bench"
    (package / "sub").mkdir(parents=True)
    (package / "a.py").write_text("a = 1\n")
    (package / "sub" / "b.py").write_text("b = 1\n")
    (package / "data.yaml").write_text("not source\n")
    first = source_digest(package)
    assert first.startswith("sha256:") and len(first) == len("sha256:") + 16
    (package / "data.yaml").write_text("changed data\n")
    assert source_digest(package) == first
    (package / "sub" / "b.py").write_text("b = 2\n")
    assert source_digest(package) != first
