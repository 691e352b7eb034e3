"""Start-up time of the commands that need no model: ``--help``, ``list tasks``, ``sample``,
``report``. Target: none imports torch, so each starts in well under the time an
``import torch`` alone takes (measured side by side in the same run).

Each command runs ``--repeat`` times as a fresh ``python -m che_bench.cli`` process, with
plugins disabled (``CHE_BENCH_DISABLE_PLUGINS=1``: a plugin's own imports are its cost, not
che-bench's); printed per command: the median wall time, its ratio to the median
``python -c "import torch"``, whether torch was imported, and PASS/FAIL (PASS: torch not
imported). ``--source DIR`` times another checkout (e.g. an earlier commit, for a before/after).

    python benchmarks/bench_startup.py
    git worktree add /tmp/before 1c15d95 && python benchmarks/bench_startup.py --source /tmp/before
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOARD = str(ROOT / "leaderboards" / "baseline-ci.jsonl")
COMMANDS = {
    "--help": ["--help"],
    "list tasks": ["list", "tasks"],
    "sample": ["sample", "--task", "parity_check", "--length", "6"],
    "report": ["report", BOARD],
}
PROBE = """
import runpy, sys
sys.argv = ["che-bench", *sys.argv[1:]]
try:
    runpy.run_module("che_bench.cli", run_name="__main__")
except SystemExit:
    pass
import che_bench
print("TORCH" if "torch" in sys.modules else "NO-TORCH", che_bench.__file__, file=sys.stderr)
"""


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, cwd=cwd, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return time.perf_counter() - started, done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT, help="checkout to time")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "CHE_BENCH_DISABLE_PLUGINS": "1",
           "PYTHONPATH": str(args.source.resolve())}  # fmt: skip
    cwd = Path(tempfile.mkdtemp())  # not the checkout: ``-c`` puts the cwd first on sys.path
    load = os.getloadavg()[0]
    print(f"source {args.source}; load average {load:.2f}; {args.repeat} runs each (median)")
    torch_s = statistics.median(
        timed(["-c", "import torch"], env, cwd)[0] for _ in range(args.repeat)
    )
    print(f"{'import torch':12s} {torch_s:6.2f} s  (the reference)")
    failed = 0
    for name, command in COMMANDS.items():
        runs = [timed(["-c", PROBE, *command], env, cwd) for _ in range(args.repeat)]
        median = statistics.median(s for s, _ in runs)
        imported = any("NO-TORCH" not in err for _, err in runs)
        source = str(args.source.resolve())
        if not all(source in err.strip().splitlines()[-1] for _, err in runs):
            raise SystemExit(f"{name}: che_bench was not imported from {source}")
        verdict = "FAIL" if imported else "PASS"
        failed += imported
        print(f"{name:12s} {median:6.2f} s  {median / torch_s:4.2f}× import torch  "
              f"torch imported: {'yes' if imported else 'no '}  {verdict}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
