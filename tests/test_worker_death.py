"""A sweep killed with SIGKILL leaves no process behind: no worker, no forkserver, no
resource tracker (before the fix they lived on, about 870 MB, holding each other open)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def session(sid: int) -> dict[int, list[str]]:
    """The live (not zombie) processes of session ``sid``: pid -> stat fields."""
    found = {}
    for entry in Path("/proc").iterdir():
        fields = stat(int(entry.name)) if entry.name.isdigit() else None
        if fields and int(fields[3]) == sid and fields[0] not in "ZX":
            found[int(entry.name)] = fields
    return found


def alive(pids) -> list[int]:
    return [p for p in pids if (f := stat(p)) is not None and f[0] not in "ZX"]


def test_sigkilled_sweep_takes_its_workers_forkserver_and_tracker_with_it(tmp_path):
    sweep = tmp_path / "s.yaml"
    overrides = {"steps": 100000, "batch_size": 8, "train_lengths": [1, 8],
                 "test_lengths": [41, 41], "eval_samples": 2}  # fmt: skip
    sweep.write_text(
        "tasks: [parity_check]\nencodings: [nope, alibi]\nseeds: 0-1\npreset: smoke\n"
        f"overrides: {json.dumps(overrides)}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "che_bench.cli", "sweep", str(sweep), "--jobs", "2",
            "--leaderboard", str(tmp_path / "lb.jsonl"),
            "--run-dir", str(tmp_path / "runs")]  # fmt: skip
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.Popen(
            args, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    seen: dict[int, list[str]] = {}
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # until a worker (a grandchild) is training
            assert proc.poll() is None, (tmp_path / "out.txt").read_text()
            seen.update(session(proc.pid))
            workers = [f for p, f in seen.items() if proc.pid not in (p, int(f[1]))]
            if any(int(f[11]) + int(f[12]) > 50 for f in workers):  # 0.5 s of CPU time
                break
            time.sleep(0.2)
        else:
            pytest.fail("no worker started training in time")
        seen.update(session(proc.pid))
        assert len(seen) >= 4, seen  # the sweep, its forkserver, tracker and workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20
        while alive(seen) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = {p: " ".join(Path(f"/proc/{p}/cmdline").read_text().split("\0"))[:80]
                for p in alive(seen)}  # fmt: skip
        assert not left, f"still alive 20 s after the sweep was killed: {left}"
        assert not session(proc.pid)  # nothing new started either
    finally:
        for pid in alive(seen):
            os.kill(pid, signal.SIGKILL)
