"""Time the 15 CHE task generators (no pytest).

Per task: the median time to sample one training batch (B = 128, N ~ U{1..40} as in the
curriculum), and the time to generate the full paper test set (N = 41..500, 512 samples
each, i.e. 460 calls of ``sample(rng, 512, N)``) against the 10 s target.

    PYTHONPATH=. python benchmarks/bench_generators.py [task ...]

Exits with status 1 when a task misses the test-set target. ``time_training_batches`` and
``time_paper_test_set`` are importable for other comparisons.
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

from che_bench.generators import TASKS, get_task, list_tasks

TRAIN_BATCH = 128
TRAIN_LENGTHS = (1, 40)
TEST_BATCH = 512
TEST_LENGTHS = (41, 500)
TEST_SET_LIMIT_S = 10.0


def time_training_batches(task_name: str, repeats: int = 5, batches_per_repeat: int = 40) -> float:
    """Median over ``repeats`` of the mean seconds per training batch (B=128, N ~ U{1..40})."""
    task = get_task(task_name)
    rng = np.random.default_rng(0)
    task.sample(rng, TRAIN_BATCH, TRAIN_LENGTHS[1])  # warm-up
    times = []
    for _ in range(repeats):
        lengths = rng.integers(TRAIN_LENGTHS[0], TRAIN_LENGTHS[1] + 1, size=batches_per_repeat)
        start = time.perf_counter()
        for n in lengths:
            task.sample(rng, TRAIN_BATCH, int(n))
        times.append((time.perf_counter() - start) / batches_per_repeat)
    return statistics.median(times)


def time_paper_test_set(task_name: str) -> float:
    """Seconds to generate the paper test set: N = 41..500, 512 samples per length."""
    task = get_task(task_name)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for n in range(TEST_LENGTHS[0], TEST_LENGTHS[1] + 1):
        task.sample(rng, TEST_BATCH, n)
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    names = argv or [n for n in list_tasks() if TASKS.origin(n) == "che_bench"]  # no plugins
    header = f"{'task':<30}{'train batch (ms)':>18}{'test set (s)':>14}  target"
    print(header)
    print("-" * len(header))
    failed = 0
    for name in names:
        train = time_training_batches(name)
        test = time_paper_test_set(name)
        ok = test <= TEST_SET_LIMIT_S
        failed += not ok
        verdict = "PASS" if ok else "FAIL"
        print(f"{name:<30}{train * 1e3:>18.3f}{test:>14.2f}  {verdict} (<= {TEST_SET_LIMIT_S:g} s)")
    print("-" * len(header))
    print(f"{len(names) - failed}/{len(names)} tasks within the test-set target")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
