"""The command line as a user meets it: real subprocesses, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SMOKE = ["--preset", "smoke", "--steps", "4", "--eval-samples", "4", "--test-lengths", "41-42"]


def che_bench(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "che_bench.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_run_appends_exactly_one_valid_row(tmp_path):
    board = tmp_path / "board.jsonl"
    result = che_bench(
        "run",
        "--task",
        "parity_check",
        "--pe",
        "nope",
        *SMOKE,
        "--leaderboard",
        str(board),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = board.read_text().splitlines()
    assert len(lines) == 1
    row = json.loads(lines[0])
    assert row["task"] == "parity_check" and row["encoding"] == "nope"
    assert row["status"] == "ok" and 0.0 <= row["score"] <= 1.0
    assert sorted(map(int, row["accuracy_by_length"])) == [41, 42]
    assert row["steps"] == 4 and row["config"]["steps"] == 4
    assert "appended 1 row" in result.stdout
    assert not (tmp_path / "runs" / row["run_key"] / "checkpoint.pt").exists()  # cleaned up
    assert row["model"] == f"runs/{row['run_key']}/model.pt"  # kept, relative to the cwd
    assert (tmp_path / row["model"]).is_file()


BAD_INPUTS = [
    (
        ["run", "--task", "parity", "--pe", "nope"],
        "unknown task 'parity'; did you mean 'parity_check'",
    ),
    (["run", "--task", "parity_check", "--pe", "alibj"], "did you mean 'alibi'"),
    (
        ["run", "--task", "parity_check", "--pe", "alibi", "--pe-opt", "slope=2"],
        "encoding 'alibi' has no option 'slope'",
    ),
    (
        ["run", "--task", "parity_check", "--pe", "rand-rope", "--pe-opt", "max_length=lots"],
        "bad value 'lots' for option 'max_length'",
    ),
    (["run", "--task", "parity_check", "--pe", "nope", "--pe-opt", "oops"], "expects KEY=VALUE"),
    (
        ["run", "--task", "parity_check", "--pe", "nope", "--test-lengths", "0-10"],
        "test lengths: need 1 <= LO <= HI",
    ),
    (
        ["run", "--task", "parity_check", "--pe", "nope", "--train-lengths", "40-1"],
        "train lengths: need 1 <= LO <= HI",
    ),
    (
        ["run", "--task", "parity_check", "--pe", "nope", "--steps", "0"],
        "steps must be an integer >= 1",
    ),
    (["run", "--task", "parity_check", "--pe", "nope", "--lr", "-1"], "'-1' must be > 0"),
    (
        ["run", "--task", "parity_check", "--pe", "nope", "--preset", "quik"],
        "unknown preset 'quik'; did you mean 'quick'",
    ),
    (["run", "--task", "parity_check", "--pe", "nope", "--leaderboard", "."], "is a directory"),
    (
        ["run", "--task", "parity_check", "--pe", "nope", "--max-memory", "lots"],
        "expected a size like 2GB",
    ),
    (["sample", "--task", "bucket_sortt"], "did you mean 'bucket_sort'"),
    (["list", "encodings", "zzz*"], "no encodings match 'zzz*'"),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS, ids=lambda v: " ".join(v)[:40])
def test_bad_input_is_one_line_exit_2(tmp_path, args, message):
    result = che_bench(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and message in lines[0], lines[0]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without GPU")
def test_cuda_without_gpu_is_a_clear_error(tmp_path):
    result = che_bench(
        "run", "--task", "parity_check", "--pe", "nope", *SMOKE, "--device", "cuda", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "no CUDA GPU is visible" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("steps: 5\nlr: : 3\n", ":2: malformed YAML"),
        ("steps: 5\nbatch_size: 4\nsteppes: 3\n", ":3: unknown key 'steppes' in preset"),
        ("- 1\n- 2\n", "must be a mapping"),
        ("model: {layers: 3}\n", "bad model section"),
    ],
)
def test_bad_preset_file_names_file_and_line(tmp_path, content, message):
    preset = tmp_path / "mine.yaml"
    preset.write_text(content)
    result = che_bench(
        "run", "--task", "parity_check", "--pe", "nope", "--preset", str(preset), cwd=tmp_path
    )
    assert result.returncode == 2
    assert str(preset) in result.stderr and message in result.stderr, result.stderr


def test_overlapping_lengths_warn_but_run(tmp_path):
    result = che_bench(
        "run",
        "--task",
        "parity_check",
        "--pe",
        "nope",
        "--preset",
        "smoke",
        "--steps",
        "2",
        "--eval-samples",
        "2",
        "--test-lengths",
        "10-11",
        "--leaderboard",
        str(tmp_path / "b.jsonl"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "warning: test lengths 10-11 overlap training lengths" in result.stderr


def test_list_and_sample_teach(tmp_path):
    tasks = che_bench("list", "tasks", cwd=tmp_path)
    assert tasks.returncode == 0
    for name in ("even_pairs", "solve_equation", "bucket_sort"):
        assert name in tasks.stdout
    sample = che_bench("sample", "--task", "modular_arithmetic", "--length", "5", cwd=tmp_path)
    assert sample.returncode == 0 and "input" in sample.stdout
    helptext = che_bench("run", "--help", cwd=tmp_path)
    assert "--pe-opt" in helptext.stdout and "Examples" in helptext.stdout


def write_broken_plugins(root: Path) -> None:
    """Two installed-looking plugins: one raises on import, one steals a taken name."""
    (root / "broken_plugin.py").write_text("raise RuntimeError('boom at import')\n")
    (root / "thief_plugin.py").write_text(
        "from che_bench.encodings import register_encoding\n"
        "from che_bench.encodings.alibi import ALiBi\n"
        "def register():\n    register_encoding('alibi')(ALiBi)\n"
    )
    for name, target in [("broken", "broken_plugin"), ("thief", "thief_plugin:register")]:
        info = root / f"{name}_plugin-0.1.dist-info"
        info.mkdir()
        info.joinpath("METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}-plugin\nVersion: 0.1\n"
        )
        info.joinpath("entry_points.txt").write_text(f"[che_bench.encodings]\n{name} = {target}\n")


def test_broken_plugins_warn_once_and_everything_else_works(tmp_path):
    write_broken_plugins(tmp_path)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    result = che_bench("list", "encodings", "alibi", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "alibi" in result.stdout
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, result.stderr
    assert any("'broken'" in w and "RuntimeError: boom at import" in w for w in warnings)
    assert any("'thief'" in w and "already registered" in w for w in warnings)
    disabled = che_bench(
        "list", "encodings", "alibi", cwd=tmp_path, env={**env, "CHE_BENCH_DISABLE_PLUGINS": "1"}
    )
    assert disabled.returncode == 0 and "warning" not in disabled.stderr


def test_run_seeds_trains_an_ensemble_with_solo_results(tmp_path):
    board, solo = tmp_path / "ensemble.jsonl", tmp_path / "solo.jsonl"
    ensemble = che_bench("run", "--task", "parity_check", "--pe", "alibi", *SMOKE, "--seeds",
                         "0-2", "--leaderboard", str(board), cwd=tmp_path)  # fmt: skip
    assert ensemble.returncode == 0, ensemble.stderr
    rows = [json.loads(line) for line in board.read_text().splitlines()]
    assert [r["seed"] for r in rows] == [0, 1, 2] and {r["status"] for r in rows} == {"ok"}
    single = che_bench("run", "--task", "parity_check", "--pe", "alibi", *SMOKE, "--seed", "1",
                       "--leaderboard", str(solo), cwd=tmp_path)  # fmt: skip
    assert single.returncode == 0, single.stderr
    alone = json.loads(solo.read_text())
    assert alone["run_key"] == rows[1]["run_key"]
    assert alone["accuracy_by_length"] == rows[1]["accuracy_by_length"]
    assert alone["final_loss"] == pytest.approx(rows[1]["final_loss"], rel=1e-6)


def test_version_names_the_release_and_the_code_revision():
    from che_bench import __version__
    from che_bench.results.provenance import code_identity

    shown = che_bench("--version", cwd=Path(__file__).parent).stdout.strip()
    assert shown == f"che-bench {__version__} ({code_identity()})"
