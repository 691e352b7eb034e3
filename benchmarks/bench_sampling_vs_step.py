"""Target 5 (second half): generators are never the bottleneck of training.

For every built-in task, the median time to sample one training batch (B = 128, N ~ U{1..40},
from ``bench_generators.time_training_batches``) must be at most 5% of the median
``Trainer.train_step`` time at the same batch size and curriculum (nope by default, the
cheapest encoding, hence the strictest ratio). The step time includes the step's own
sampling, as in training. Both are measured back to back per task, on CPU.

    python benchmarks/bench_sampling_vs_step.py [--encoding alibi] [--steps 30] [task ...]

The other half of target 5 (the paper test set in <= 10 s per task) is
``bench_generators.py``; ``run_all.py`` runs both. Exit status 1 when a task fails.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

# OpenMP threads that spin at barriers while a neighbour holds the other core slow small
# ops badly on a shared machine; passive waiting avoids that. Set before torch loads libgomp
# (subprocesses inherit it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from che_bench.config import resolve
from che_bench.generators import TASKS, get_task, list_tasks
from che_bench.running.runner import build_model
from che_bench.training.train import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    from bench_generators import time_training_batches
except ImportError:  # owned by another script; report instead of crashing
    time_training_batches = None

LIMIT = 0.05
BATCH = 128
TRAIN_LENGTHS = (1, 40)


def median_step_seconds(task_name: str, encoding: str, steps: int, warmup: int) -> float:
    """Median wall time of ``Trainer.train_step`` (B = 128, N ~ U{1..40}, CPU, train mode)."""
    config = resolve(
        task_name,
        encoding,
        preset="smoke",
        batch_size=BATCH,
        train_lengths=TRAIN_LENGTHS,
        lr=1e-3,
    )
    device = torch.device("cpu")
    model = build_model(config, device)
    model.train()
    trainer = Trainer(model, get_task(task_name), config, device, checkpoint=None)
    for _ in range(warmup):
        trainer.train_step()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        trainer.train_step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="*", help="tasks (default: every built-in task)")
    parser.add_argument("--encoding", default="nope", help="encoding of the model (nope)")
    parser.add_argument("--steps", type=int, default=30, help="timed train steps per task")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=5, help="sampling repeats (x40 batches)")
    parser.add_argument("--quick", action="store_true", help="3 tasks, 10 steps")
    args = parser.parse_args(argv)
    names = args.tasks or [n for n in list_tasks() if TASKS.origin(n) == "che_bench"]
    if args.quick:
        names, args.steps, args.repeats = names[:3], 10, 3
    if time_training_batches is None:
        print("Target 5b (sampling <= 5% of a train step): SKIPPED (bench_generators.py missing)")
        return 0
    print(
        f"Workload (target 5b): median sampling time (bench_generators, B = {BATCH}, "
        f"N ~ U{{1..40}}) vs "
        f"median Trainer.train_step ({args.encoding}, B = {BATCH}, {args.steps} steps after "
        f"{args.warmup} warm-up, CPU, {torch.get_num_threads()} threads)"
    )
    header = "| task | sample batch (ms) | train step (ms) | ratio | verdict |"
    print(header)
    print("|---|---|---|---|---|")
    failed = []
    for name in names:
        sample = time_training_batches(name, args.repeats)
        step = median_step_seconds(name, args.encoding, args.steps, args.warmup)
        ratio = sample / step
        ok = ratio <= LIMIT
        if not ok:
            failed.append(name)
        verdict = "PASS" if ok else "FAIL"
        print(
            f"| {name} | {sample * 1e3:.3f} | {step * 1e3:.1f} | {ratio:.2%} | {verdict} |",
            flush=True,
        )
    verdict = "FAIL" if failed else "PASS"
    print(
        f"\nTarget 5b (sampling <= {LIMIT:.0%} of a train step, {len(names) - len(failed)}/"
        f"{len(names)} tasks): {verdict}" + (f" [failed: {', '.join(failed)}]" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
