"""Reading a large leaderboard: ``report``, ``leaderboard verify`` and ``plot`` on ~50 MB.

Generates a synthetic leaderboard of valid rows (47,600 by default, ~55 MB: ``paper``-preset
configs tested on 41..500, a curve sampled at 6 lengths across that range, scores k/512)
into a temporary directory, with many seeds per cell (the old standard error recomputed the
mean per element, so its cost grew with the square of the seeds per cell). Then it times,
each as the median of ``--repeat`` runs:

- ``report``: the library calls ``che-bench report`` makes (load, aggregate, render the
  table and the JSON), and once the CLI itself in a subprocess;
- ``verify``: :func:`che_bench.results.leaderboard.verify`;
- ``plot``: the curves (what ``che-bench plot`` draws by default) and the heatmap.

It prints the machine load (``os.getloadavg()``) beside each figure and PASS / FAIL for
the target: report ≤ 10 s. Verify and plot figures are reported, not judged.

    python benchmarks/bench_report.py                 # 47,600 rows, 3 repetitions
    python benchmarks/bench_report.py --quick         # 5,000 rows, 1 repetition
    python benchmarks/bench_report.py --keep /tmp/lb  # keep the generated leaderboard
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from che_bench.config import resolve
from che_bench.results import leaderboard, plots, report
from che_bench.results.record import RunRecord

TARGET_S = 10.0
CELLS = [("parity_check", "rope"), ("parity_check", "alibi"),
         ("reverse_string", "rope"), ("reverse_string", "kerple")]  # fmt: skip
LRS = (1e-3,)
LENGTHS = (41, 133, 225, 317, 409, 500)  # a curve across the test lengths 41..500


def load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def generate(path: Path, n_rows: int, seed: int = 0) -> None:
    """``n_rows`` valid rows spread evenly over CELLS × LRS, many seeds per cell."""
    rng = random.Random(seed)
    groups = [(task, encoding, lr) for task, encoding in CELLS for lr in LRS]
    with path.open("w") as f:
        for g, (task, encoding, lr) in enumerate(groups):
            config = resolve(task, encoding, preset="paper", seed=0, lr=lr)
            template = RunRecord.begin(config, "cpu:x86_64").to_dict()
            level = rng.uniform(0.5, 0.9)
            for s in range(g, n_rows, len(groups)):
                row = json.loads(json.dumps(template))
                curve = {
                    str(n): min(512, max(0, round(512 * (level - 0.0005 * (n - 41))
                                                  + rng.gauss(0, 20)))) / 512
                    for n in LENGTHS
                }  # fmt: skip
                row["config"]["seed"] = row["seed"] = s
                row.update(
                    run_key=f"{row['config_hash']}-s{s}",
                    run_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                    status="ok",
                    accuracy_by_length=curve,
                    score=sum(curve.values()) / len(curve),
                    steps=config.steps,
                    final_loss=rng.uniform(0.01, 0.7),
                    wall_time_s=round(rng.uniform(600, 3600), 3),
                )
                f.write(json.dumps(row) + "\n")


def median_time(fn: Callable[[], object], repeat: int) -> tuple[float, str]:
    """Median wall time of ``repeat`` calls, and the load when they ended."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), load()


def report_library(path: Path) -> None:
    """What ``che-bench report`` does for the table (its default) and JSON formats."""
    from rich.console import Console

    groups = report.aggregate(report.load_rows(path))
    console = Console(file=io.StringIO(), width=160)
    for group, (protocol, table) in zip(groups, report.render_tables(groups), strict=True):
        console.print(protocol, table, report.footer(group))
    report.render_json(groups)


def report_cli(path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "che_bench.cli", "report", str(path)],
        check=True, stdout=subprocess.DEVNULL, env={**os.environ, "COLUMNS": "160"},
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=47_600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="5,000 rows, one repetition")
    parser.add_argument("--keep", type=Path, help="write the leaderboard into this directory")
    parser.add_argument("--skip-plot", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeat = min(args.rows, 5_000), 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "big.jsonl"
        started = time.perf_counter()
        generate(path, args.rows)
        cells = len(CELLS) * len(LRS)
        print(f"{path}: {args.rows:,} rows, {path.stat().st_size / 1e6:.1f} MB, {cells} cells "
              f"(~{args.rows // cells:,} seeds each), generated in "
              f"{time.perf_counter() - started:.1f}s; {os.cpu_count()} CPUs, {load()}")  # fmt: skip
        checked = leaderboard.verify(path)
        assert checked.ok and checked.n_rows == args.rows, checked.format()

        results: list[tuple[str, float, str]] = []
        for name, fn, repeat in [
            ("report (library: load + aggregate + table + json)", lambda: report_library(path),
             args.repeat),
            ("report (CLI subprocess, table)", lambda: report_cli(path), 1),
            ("verify", lambda: leaderboard.verify(path), args.repeat),
            ("read_rows", lambda: leaderboard.read_rows(path), args.repeat),
        ] + ([] if args.skip_plot else [
            ("plot curves", lambda: plots.plot_curves(report.load_rows(path),
                                                      folder / "curves.png"), args.repeat),
            ("plot heatmap", lambda: plots.plot_heatmap(report.load_rows(path),
                                                        folder / "heatmap.png"), 1),
        ]):  # fmt: skip
            seconds, after = median_time(fn, repeat)
            results.append((name, seconds, after))
            print(f"  {name:<52} {seconds:7.2f} s  (median of {repeat}; {after})", flush=True)

        worst = max(s for name, s, _ in results if name.startswith("report"))
        verdict = "PASS" if worst <= TARGET_S else "FAIL"
        print(f"Target report <= {TARGET_S:.0f} s on {args.rows:,} rows: {worst:.2f} s "
              f"(slowest of library and CLI) {verdict}")  # fmt: skip
        figures = ", ".join(f"{n} {s:.2f} s" for n, s, _ in results if not n.startswith("report"))
        print(f"Info (not judged): {figures}; {load()}")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
