"""The example plugin (examples/plugin), installed as a real distribution, end to end.

CI and the README's test command install it with ``pip install -e examples/plugin``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata

import pytest

from che_bench.encodings import list_encodings
from che_bench.generators import list_tasks

SMOKE = ["--preset", "smoke", "--steps", "3", "--eval-samples", "4", "--test-lengths", "41-42"]


@pytest.fixture(scope="module", autouse=True)
def plugin_installed():
    try:
        metadata.distribution("che-bench-example-plugin")
    except metadata.PackageNotFoundError:
        pytest.fail("the example plugin is not installed: pip install -e examples/plugin")


def cli(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "che_bench.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_registries_see_the_plugin_and_generate_its_dape_variants():
    assert "example-cauchy" in list_encodings()
    assert {"dape-example-cauchy", "dapev2-example-cauchy"} <= set(list_encodings("*cauchy"))
    assert "reverse_string3" in list_tasks()


def test_cli_lists_the_plugin_encoding(tmp_path):
    result = cli("list", "encodings", "*cauchy*", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("example-cauchy", "dape-example-cauchy", "dapev2-example-cauchy"):
        assert name in result.stdout


@pytest.mark.parametrize(
    ("task", "encoding"),
    [
        ("parity_check", "example-cauchy"),
        ("reverse_string", "dape-example-cauchy"),
        ("reverse_string3", "dapev2-example-cauchy"),
        ("reverse_string3", "alibi"),
    ],
)
def test_plugin_encoding_and_task_train_end_to_end(tmp_path, task, encoding):
    board = tmp_path / "board.jsonl"
    result = cli("run", "--task", task, "--pe", encoding, *SMOKE, "--leaderboard", str(board),
                 cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    row = json.loads(board.read_text())
    assert (row["task"], row["encoding"], row["status"]) == (task, encoding, "ok")
    if "cauchy" in encoding:
        assert row["encoding_options"]["width"] == 4.0  # the plugin's own option is recorded
