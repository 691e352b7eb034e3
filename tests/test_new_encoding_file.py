"""A new encoding is one new file: discovered, listed, DAPE-wrapped, runnable and tested.

The module fixture copies the ``che_bench`` package into a temporary folder (its data folders
linked beside it, as in a checkout) and adds one module to its encodings folder:
``alibi.py`` registered under a new name. Nothing else is edited. Subprocesses import that
copy through ``PYTHONPATH``, so the working tree is never touched.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import che_bench
from che_bench import encodings

NEW = "alibi-one-file"
PACKAGE = pathlib.Path(che_bench.__file__).resolve().parent
REPO = PACKAGE.parent
BIN = pathlib.Path(sys.executable).parent


def test_every_family_module_is_discovered():
    folder = pathlib.Path(encodings.__file__).parent
    on_disk = {p.stem for p in folder.glob("*.py")} | {
        p.parent.name for p in folder.glob("*/__init__.py")
    }
    expected = {n for n in on_disk if n not in ("__init__", "base", "registry")}
    assert set(encodings._family_modules()) == expected
    assert {"alibi", "dape", "rope"} <= expected


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("one-file")
    shutil.copytree(PACKAGE, root / "che_bench", ignore=shutil.ignore_patterns("__pycache__"))
    for data in ("tasks", "models"):  # the data an editable checkout reads beside the package
        if (REPO / data).is_dir():
            (root / data).symlink_to(REPO / data)
    source = (PACKAGE / "encodings" / "alibi.py").read_text()
    source = source.replace('@register_encoding("alibi")', f'@register_encoding("{NEW}")')
    assert NEW in source
    (root / "che_bench" / "encodings" / "alibi_one_file.py").write_text(source)
    return root


def run(tree: pathlib.Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "COLUMNS": "250"}
    done = subprocess.run(
        args, cwd=tree, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_listed_with_its_dape_forms(tree):
    code = "import che_bench as c, json; print(json.dumps([c.__file__, c.list_encodings()]))"
    path, names = json.loads(run(tree, sys.executable, "-c", code).stdout)
    assert pathlib.Path(path).is_relative_to(tree)  # the copy, not the working tree
    assert {NEW, f"dape-{NEW}", f"dapev2-{NEW}"} <= set(names)
    assert NEW not in che_bench.list_encodings()  # this process never saw the new file
    listed = run(tree, str(BIN / "che-bench"), "list", "encodings", f"*{NEW}").stdout
    assert {NEW, f"dape-{NEW}", f"dapev2-{NEW}"} <= set(listed.split())


def test_run_writes_an_ok_row(tree):
    board = tree / "board.jsonl"
    run(tree, str(BIN / "che-bench"), "run", "--task", "parity_check", "--pe", NEW, "--preset",
        "smoke", "--leaderboard", str(board), "--run-dir", str(tree / "runs"))  # fmt: skip
    (row,) = [json.loads(line) for line in board.read_text().splitlines()]
    assert (row["encoding"], row["task"], row["status"]) == (NEW, "parity_check", "ok")


def test_registry_driven_tests_collect_it(tree):
    files = [str(REPO / "tests" / f) for f in ("test_every_encoding_runs.py",
                                               "test_encodings_registry.py")]  # fmt: skip
    out = run(tree, sys.executable, "-m", "pytest", "--collect-only", "-q", "-o", "addopts=",
              "-p", "no:cacheprovider", *files).stdout  # fmt: skip
    for name in (NEW, f"dape-{NEW}", f"dapev2-{NEW}"):
        assert f"test_solve_equation_smoke_run[{name}]" in out
        assert f"test_forward_backward[{name}-bidirectional]" in out
    assert f"test_shift_invariant_scores[{NEW}-causal]" in out
