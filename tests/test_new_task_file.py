"""Adding a task is one file: drop a module into the generators package and nothing else.

The test copies the package to a temporary tree, writes there a copy of parity_check under a
new name into ``che_bench/generators/regular/`` (one file, no other edit), and shows that the
task is registered, listed by ``che-bench list tasks``, runs ``che-bench run --preset smoke``
to an ``ok`` row, and is picked up by the registry-driven checks of ``test_generators.py``
and the fuzz tests. The working tree is never touched.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

import che_bench

NEW = "parity_check_one_file"
PACKAGE = pathlib.Path(che_bench.__file__).resolve().parent
REPO = PACKAGE.parent
BIN = pathlib.Path(sys.executable).parent


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("one-task-file")
    shutil.copytree(PACKAGE, root / "che_bench", ignore=shutil.ignore_patterns("__pycache__"))
    if (REPO / "models").is_dir():  # the presets an editable checkout reads beside the package
        (root / "models").symlink_to(REPO / "models")
    folder = root / "che_bench" / "generators" / "regular"
    source = (folder / "parity_check.py").read_text()
    assert source.count('name = "parity_check"') == 1
    (folder / f"{NEW}.py").write_text(source.replace('name = "parity_check"', f'name = "{NEW}"'))
    return root


def run(tree: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    """``args`` in ``tree`` with the copied package first on the path."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "COLUMNS": "250"}
    done = subprocess.run(
        args, cwd=tree, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_the_new_file_registers_a_task(tree):
    code = (
        f"import che_bench as c, json; t = c.get_task({NEW!r}); "
        "print(json.dumps([c.__file__, c.list_tasks(), t.level, len(t.examples)]))"
    )
    path, names, level, examples = json.loads(run(tree, sys.executable, "-c", code).stdout)
    assert pathlib.Path(path).is_relative_to(tree)  # the copy, not the working tree
    assert NEW in names and level == "regular" and examples == 2
    assert NEW not in che_bench.list_tasks()  # this process never saw the new file


def test_the_cli_lists_and_runs_it(tree):
    listed = run(tree, str(BIN / "che-bench"), "list", "tasks", "parity*").stdout
    assert re.search(rf"^{NEW}\s+regular\s+50%\s+1-40\s+41-500\s", listed, re.M), listed
    board = tree / "board.jsonl"
    smoke = ["--preset", "smoke", "--steps", "3", "--eval-samples", "4", "--test-lengths", "41-42"]
    run(tree, str(BIN / "che-bench"), "run", "--task", NEW, "--pe", "alibi", *smoke,
        "--leaderboard", str(board), "--run-dir", str(tree / "runs"))  # fmt: skip
    row = json.loads(board.read_text())
    assert (row["task"], row["status"], row["config"]["task_params"]) == (NEW, "ok", {})


def test_the_registry_driven_checks_pick_it_up(tree):
    tests = [str(REPO / "tests" / f) for f in ("test_generators.py", "test_generators_fuzz.py")]
    done = run(tree, sys.executable, "-m", "pytest", *tests, "-rs", "-p", "no:cacheprovider",
               "-k", NEW)  # fmt: skip
    summary = done.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 9 and "skipped" not in summary and "deselected" in summary, summary
