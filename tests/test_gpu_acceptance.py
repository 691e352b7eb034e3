"""The GPU acceptance script's CPU dry run: every check runs (tiny sizes), none fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_dry_run_passes_every_check(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_acceptance.py"), "--cpu-dry-run"],
        capture_output=True, text=True, timeout=1500, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [x for x in result.stdout.splitlines() if x.startswith("check ")]
    assert [x.split()[1] for x in lines] == [str(n) for n in range(1, 10)]
    assert all(x.split()[3] == "PASS" for x in lines), lines
