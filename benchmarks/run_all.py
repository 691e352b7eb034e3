"""Run every ``benchmarks/bench_*.py`` script and summarise PASS / FAIL / SKIPPED.

Each script runs in its own subprocess (so memory measurements stay independent) with its
output streamed through; afterwards the summary lists, per script, its exit status, how many
lines reported PASS / FAIL / SKIPPED, and its ``Target ...`` lines verbatim.

    python benchmarks/run_all.py                  # full measurements (hours on 2 CPU cores)
    python benchmarks/run_all.py --quick          # passes --quick to scripts that accept it
    python benchmarks/run_all.py --only eval_memory,scaling
    python benchmarks/run_all.py --skip dape --log benchmarks/last_run.txt

Exit status 1 when a script exits non-zero or reports FAIL.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERDICT = re.compile(r"\b(PASS|FAIL|SKIPPED)\b")


@dataclass
class Outcome:
    script: str
    returncode: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.returncode != 0 or self.counts.get("FAIL"):
            return "FAIL"
        if self.counts.get("PASS"):
            return "PASS"
        return "SKIPPED" if self.counts.get("SKIPPED") else "OK (no verdicts)"


def discover(only: list[str], skip: list[str]) -> list[Path]:
    """``bench_*.py`` next to this file, filtered by substrings of their names."""
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        scripts = [s for s in scripts if any(o in s.stem for o in only)]
    return [s for s in scripts if not any(k in s.stem for k in skip)]


def accepts(script: Path, flag: str) -> bool:
    """Whether ``script --help`` mentions ``flag`` (scripts without argparse do not)."""
    try:
        done = subprocess.run(
            [sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and flag in done.stdout


def run(script: Path, extra: list[str], timeout: float | None, log) -> Outcome:
    command = [sys.executable, str(script), *extra]
    banner = f"=== {script.name} {' '.join(extra)}".rstrip()
    print(banner, flush=True)
    if log:
        log.write(banner + "\n")
    started = time.perf_counter()
    counts: dict[str, int] = {}
    targets: list[str] = []
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE.parent
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            print(line, end="", flush=True)
            if log:
                log.write(line)
                log.flush()
            for word in VERDICT.findall(line):
                counts[word] = counts.get(word, 0) + 1
            if line.lstrip().startswith("Target"):
                targets.append(line.strip())
            if timeout and time.perf_counter() - started > timeout:
                raise subprocess.TimeoutExpired(command, timeout)
        returncode = process.wait()
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        returncode = -9
        targets.append(f"(killed after {timeout:.0f} s)")
    return Outcome(script.name, returncode, time.perf_counter() - started, counts, targets)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick where accepted")
    parser.add_argument("--only", default="", help="comma-separated name substrings to run")
    parser.add_argument("--skip", default="", help="comma-separated name substrings to skip")
    parser.add_argument("--timeout", type=float, help="seconds per script (default: none)")
    parser.add_argument("--log", type=Path, help="also write all output to this file")
    args = parser.parse_args(argv)
    only = [s for s in args.only.split(",") if s]
    skip = [s for s in args.skip.split(",") if s]
    scripts = discover(only, skip)
    if not scripts:
        print("no benchmark scripts matched")
        return 1
    log = args.log.open("w") if args.log else None
    outcomes = []
    try:
        for script in scripts:
            extra = ["--quick"] if args.quick and accepts(script, "--quick") else []
            outcomes.append(run(script, extra, args.timeout, log))
    finally:
        if log:
            log.close()
    print("\n=== summary")
    for o in outcomes:
        tally = ", ".join(f"{k} {v}" for k, v in sorted(o.counts.items())) or "no verdict lines"
        print(f"{o.script:<28} {o.status:<8} exit {o.returncode:<3} {o.seconds:7.0f} s  ({tally})")
        for line in o.targets:
            print(f"    {line}")
    bad = [o.script for o in outcomes if o.status == "FAIL"]
    print(f"\n{len(outcomes) - len(bad)}/{len(outcomes)} scripts without failures")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
