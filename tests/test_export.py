"""``che-bench export``: the evaluator's samples as files, the same bytes for the same command."""

from __future__ import annotations

import hashlib
import json
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from che_bench import __version__
from che_bench.cli import main
from che_bench.config import resolve
from che_bench.generators import get_task
from che_bench.running.runner import build_model
from che_bench.training.evaluate import EvalSpec, evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def export(*args: str):
    return CliRunner().invoke(main, ["export", *args])


def files(directory) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_npz_export_is_byte_identical_and_strided(tmp_path):
    args = ["--task", "modular_arithmetic", "--lengths", "2-8:3", "--samples", "6"]
    first = export(*args, "-o", str(tmp_path / "a"))
    second = export(*args, "-o", str(tmp_path / "b"))
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    written = files(tmp_path / "a")
    assert list(written) == ["length_0002.npz", "length_0005.npz", "length_0008.npz", "meta.json"]
    assert written == files(tmp_path / "b")
    for length in (2, 5, 8):  # a line per length when the output is not a terminal
        assert f"length {length}: 6 samples" in first.output
    task = get_task("modular_arithmetic")
    with np.load(tmp_path / "a" / "length_0008.npz") as z:
        assert set(z.files) == {"inputs", "targets", "mask", "lengths"}
        assert z["inputs"].shape == (6, task.input_length(8)) == (6, 7)
        assert z["inputs"].dtype == np.int64 and z["mask"].dtype == np.bool_
        assert z["targets"].shape == z["mask"].shape == (6, task.output_length(8))
        assert z["lengths"].tolist() == [8] * 6
        assert z["inputs"].min() >= 0 and z["inputs"].max() < task.input_size


def test_meta_names_task_seed_lengths_vocabulary_and_checksums(tmp_path):
    result = export("-t", "solve_equation", "--lengths", "3-5", "-s", "4", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "meta.json").read_text())
    task = get_task("solve_equation")
    assert meta["task"] == "solve_equation" and meta["level"] == task.level
    assert meta["seed"] == resolve("solve_equation", "nope").eval_seed == 1
    assert (meta["lengths"], meta["samples"], meta["format"]) == ([3, 4, 5], 4, "npz")
    assert meta["vocabulary"]["input_symbols"] == list(task.input_symbols)
    assert meta["vocabulary"]["output_size"] == task.output_size
    assert meta["task_params"] == {"modulus": 5} and meta["che_bench"] == __version__
    assert meta["code"].startswith(("git:", "sha256:"))
    for entry in meta["files"]:
        digest = hashlib.sha256((tmp_path / entry["file"]).read_bytes()).hexdigest()
        assert entry["sha256"] == digest


def test_samples_are_the_evaluators_test_set(tmp_path, monkeypatch):
    """With the run's eval seed and eval_samples, the files hold exactly the batches the
    evaluator scores a model on."""
    config = resolve("parity_check", "nope", preset="smoke", test_lengths=(41, 43),
                     eval_samples=8)  # fmt: skip
    task = get_task(config.task)
    seen = {}
    original = task.sample

    def spy(rng, batch_size, length):
        seen[length] = batch = original(rng, batch_size, length)
        return batch

    monkeypatch.setattr(task, "sample", spy)
    evaluate(build_model(config), task, EvalSpec.from_config(config), torch.device("cpu"))
    assert sorted(seen) == [41, 42, 43]
    result = export("-t", "parity_check", "--lengths", "41-43", "-s", "8", "-o", str(tmp_path))
    assert result.exit_code == 0, result.output
    for length, batch in seen.items():
        with np.load(tmp_path / f"length_{length:04d}.npz") as z:
            np.testing.assert_array_equal(z["inputs"], batch.inputs)
            np.testing.assert_array_equal(z["targets"], batch.targets)
            np.testing.assert_array_equal(z["mask"], batch.mask)


def test_another_seed_draws_other_samples(tmp_path):
    for seed in ("1", "2"):
        args = ["-t", "reverse_string", "--lengths", "30-30", "-s", "16", "--seed", seed]
        assert export(*args, "-o", str(tmp_path / seed)).exit_code == 0
    one, two = (np.load(tmp_path / s / "length_0030.npz")["inputs"] for s in ("1", "2"))
    assert one.shape == two.shape and not np.array_equal(one, two)


def test_parquet_holds_the_same_samples_one_row_each(tmp_path):
    args = ["-t", "binary_addition", "--lengths", "3-5", "-s", "5"]
    assert export(*args, "-o", str(tmp_path / "npz")).exit_code == 0
    for name in ("p", "q"):
        result = export(*args, "--format", "parquet", "-o", str(tmp_path / name))
        assert result.exit_code == 0, result.output
    assert files(tmp_path / "p") == files(tmp_path / "q")
    table = pq.read_table(tmp_path / "p" / "data.parquet").to_pydict()
    assert table["length"] == [3] * 5 + [4] * 5 + [5] * 5
    assert table["index"] == list(range(5)) * 3
    with np.load(tmp_path / "npz" / "length_0004.npz") as z:
        assert table["inputs"][5:10] == z["inputs"].tolist()
        assert table["targets"][5:10] == z["targets"].tolist()
        assert table["mask"][5:10] == z["mask"].tolist()
    meta = json.loads((tmp_path / "p" / "meta.json").read_text())
    assert [e["file"] for e in meta["files"]] == ["data.parquet"]


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    out = tmp_path / "out"
    result = export("-t", "parity_check", "--lengths", "1-2", "--format", "parquet", "-o", str(out))
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "che-bench[export]" in lines[0], result.output
    assert not out.exists()


def test_non_empty_directory_needs_force_which_replaces_only_an_export(tmp_path):
    args = ["-t", "parity_check", "-s", "2", "-o", str(tmp_path)]
    (tmp_path / "notes.txt").write_text("mine")
    refused = export(*args, "--lengths", "1-3")
    assert refused.exit_code == 2 and "--force" in refused.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    assert export(*args, "--lengths", "1-3", "--force").exit_code == 0
    assert export(*args, "--lengths", "7-8", "--force").exit_code == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["length_0007.npz", "length_0008.npz", "meta.json", "notes.txt"]
    assert json.loads((tmp_path / "meta.json").read_text())["lengths"] == [7, 8]


@pytest.mark.parametrize(
    ("lengths", "message"),
    [("5-2", "need 1 <= LO <= HI"), ("1-10:0", "STRIDE must be >= 1"), ("abc", "expected LO-HI")],
)
def test_bad_lengths_are_one_line(tmp_path, lengths, message):
    result = export("-t", "parity_check", "--lengths", lengths, "-o", str(tmp_path / "x"))
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "x").exists()


def test_unknown_task_suggests_the_name(tmp_path):
    result = export("-t", "parity", "--lengths", "1-2", "-o", str(tmp_path / "x"))
    assert result.exit_code == 2 and "did you mean 'parity_check'" in result.output


def test_help_has_examples():
    result = export("--help")
    assert result.exit_code == 0 and "Examples:" in result.output
    assert "che-bench export --task reverse_string --lengths 41-500" in result.output
