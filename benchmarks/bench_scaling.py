"""Target 8: how evaluation cost grows with sequence length, per encoding.

Workload: ``parity_check`` (one output token, so the sequence has T = N + 1 tokens) at
T = 100, 250, 500, 1000, 1500; one sub-batch of 8 samples; an untrained model from the
``smoke`` preset; CPU; query chunking off (an unbounded ``max_memory``), so the figures show
the cost of the attention itself rather than of a budget. Each (encoding, T) runs in a fresh
subprocess:

* time: median over ``--repeats`` calls of ``evaluate`` at that one length;
* memory: peak RSS (``VmHWM``) minus the RSS just before evaluating (model built), i.e. the
  evaluation's own working memory; the absolute peak is in the JSON output.

The exponent is the least-squares slope of log(cost) against log(T) over the five lengths
(2 = quadratic). Fixed per-call costs and allocator granularity flatten it at short lengths,
so a second fit over T >= 500 (``--tail``) is printed in parentheses.

    python benchmarks/bench_scaling.py                    # one encoding per family
    python benchmarks/bench_scaling.py --all              # every registered encoding
    python benchmarks/bench_scaling.py --quick            # T = 100, 250, 500; 1 repeat
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# OpenMP threads that spin at barriers while a neighbour holds the other core slow small
# ops badly on a shared machine; passive waiting avoids that. Set before torch loads libgomp
# (subprocesses inherit it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch

from che_bench.config import resolve
from che_bench.encodings import list_encodings
from che_bench.generators import get_task
from che_bench.running.runner import build_model
from che_bench.training.evaluate import EvalSpec, evaluate

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eval_memory import REPRESENTATIVE, UNBOUNDED, emit, rss_mib, run_worker  # noqa: E402

TASK = "parity_check"
LENGTHS = (100, 250, 500, 1000, 1500)


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Evaluate one (encoding, T) ``repeats`` times in this fresh process."""
    baseline = rss_mib()
    task = get_task(spec["task"])
    n = spec["tokens"] - task.output_length(spec["tokens"] - 1)  # input length for T tokens
    config = resolve(
        spec["task"],
        spec["encoding"],
        preset="smoke",
        eval_samples=spec["batch"],
        eval_batch_size=spec["batch"],
        test_lengths=(n, n),
    )
    model = build_model(config)
    ready = rss_mib()
    times = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        evaluate(
            model,
            task,
            EvalSpec.from_config(config),
            torch.device("cpu"),
            max_memory=spec["budget"],
        )
        times.append(time.perf_counter() - start)
    peak = rss_mib("VmHWM")
    return {
        "baseline_mib": baseline,
        "ready_mib": ready,
        "peak_mib": peak,
        "eval_mib": peak - ready,
        "seconds": statistics.median(times),
        "times": times,
        "tokens": n + task.output_length(n),
    }


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log(y) on log(x); NaN with fewer than two positive points."""
    points = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if y > 0 and x > 0]
    if len(points) < 2:
        return math.nan
    lx, ly = np.array(points).T
    return float(np.polyfit(lx, ly, 1)[0])


def markdown(rows: list[dict[str, Any]], tail: int) -> str:
    """One table: time and memory per T, exponents over all T and over T >= ``tail``."""
    lengths = rows[0]["lengths"] if rows else []
    t_cols = " | ".join(f"time T={t} (s)" for t in lengths)
    m_cols = " | ".join(f"mem T={t} (MiB)" for t in lengths)
    header = (
        f"| encoding | {t_cols} | time exponent: all (T>={tail}) | {m_cols} "
        f"| memory exponent: all (T>={tail}) |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        xs = row["lengths"]
        big = [i for i, t in enumerate(xs) if t >= tail]
        fits = {
            key: (slope(xs, row[key]), slope([xs[i] for i in big], [row[key][i] for i in big]))
            for key in ("seconds", "eval_mib")
        }
        times = " | ".join(f"{s:.3g}" for s in row["seconds"])
        mems = " | ".join(f"{m:.0f}" for m in row["eval_mib"])
        (ta, tt), (ma, mt) = fits["seconds"], fits["eval_mib"]
        lines.append(
            f"| {row['encoding']} | {times} | {ta:.2f} ({tt:.2f}) | {mems} | {ma:.2f} ({mt:.2f}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every registered encoding")
    which.add_argument("--encodings", help="comma-separated encodings (default: one per family)")
    parser.add_argument("--lengths", default=",".join(map(str, LENGTHS)), help="total tokens T")
    parser.add_argument("--batch", type=int, default=8, help="samples (one sub-batch)")
    parser.add_argument("--repeats", type=int, default=3, help="timed evaluations per point")
    parser.add_argument(
        "--budget", type=int, default=UNBOUNDED, help="max_memory bytes (default: no chunking)"
    )
    parser.add_argument("--quick", action="store_true", help="T = 100, 250, 500; 1 repeat")
    parser.add_argument("--tail", type=int, default=500, help="second fit over T >= this")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--render", type=Path, help="only print the table of a saved --json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        emit(worker(json.loads(args.worker)))
        return 0
    if args.render:
        print(markdown(json.loads(args.render.read_text()), args.tail))
        return 0
    lengths = [int(t) for t in args.lengths.split(",")]
    if args.quick:
        lengths, args.repeats = [t for t in lengths if t <= 500], 1
    if args.all:
        encodings = list_encodings()
    elif args.encodings:
        encodings = [e.strip() for e in args.encodings.split(",") if e.strip()]
    else:
        encodings = list(REPRESENTATIVE)
    chunking = "off" if args.budget >= UNBOUNDED else f"budget {args.budget} bytes"
    print(
        f"Workload (target 8): {TASK} (T = N + 1 tokens), batch {args.batch}, median of "
        f"{args.repeats}, query chunking {chunking}, CPU, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; memory = peak RSS - RSS before evaluating",
        flush=True,
    )
    rows, failed = [], []
    for encoding in encodings:
        points = []
        for tokens in lengths:
            spec = {
                "task": TASK,
                "encoding": encoding,
                "tokens": tokens,
                "batch": args.batch,
                "repeats": args.repeats,
                "budget": args.budget,
            }
            points.append(run_worker(__file__, spec))
        errors = [p["error"] for p in points if "error" in p]
        if errors:
            failed.append(encoding)
            print(f"{encoding}: FAIL ({errors[0]})", flush=True)
            continue
        seconds = [p["seconds"] for p in points]
        mems = [p["eval_mib"] for p in points]
        row = {
            "encoding": encoding,
            "lengths": lengths,
            "seconds": seconds,
            "eval_mib": mems,
            "peak_mib": [p["peak_mib"] for p in points],
            "time_exp": slope(lengths, seconds),
            "mem_exp": slope(lengths, mems),
        }
        rows.append(row)
        print(
            f"{encoding}: time {' '.join(f'{s:.3g}' for s in seconds)} s (exponent "
            f"{row['time_exp']:.2f}); memory {' '.join(f'{m:.0f}' for m in mems)} MiB "
            f"(exponent {row['mem_exp']:.2f})",
            flush=True,
        )
    print()
    print(markdown(rows, args.tail))
    print()
    verdict = "FAIL" if failed else "PASS"
    print(
        f"Target 8 (time and memory vs T measured for {len(rows)}/{len(encodings)} encodings, "
        f"exponents fitted): {verdict}" + (f" [errors: {', '.join(failed)}]" if failed else "")
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
