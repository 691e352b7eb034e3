"""Throughput of a seed ensemble vs the same seeds trained one after the other (no pytest).

Per encoding, S fresh solo Trainers (seeds 0..S-1; B = 128, N ~ U{1..40}) are timed two
ways, side by side in every repetition, on identical work (same seeds, so same lengths):

* ``sequential``: each seed's ``steps`` solo ``train_step`` calls, one seed after another;
* ``lockstep``: the ensemble's path (:func:`che_bench.training.ensemble.fit`): one step of
  every seed in turn.

(The stacked "batched" forward that earlier versions measured, 0.26x of sequential on this
CPU, was removed: che-bench keeps one forward pass, the Encoder's.)

Throughput is training steps × seeds per second; the medians of ``--reps`` repetitions are
compared against the 3× target. A "why" line gives the solo step time at N = 1 (nearly all
fixed per-step cost, the only part batching seeds can share) next to the mean step time.

    PYTHONPATH=. python benchmarks/bench_ensemble.py [--seeds 8] [--steps 4] [--reps 5]
        [--encodings alibi kerple] [--task reverse_string]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch
from torch.utils.flop_counter import FlopCounterMode

from che_bench.config import resolve
from che_bench.encodings import list_encodings
from che_bench.training.ensemble import build_trainers

TARGET = 3.0


def trainers(task: str, encoding: str, seeds: int, device: torch.device, lengths=(1, 40)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        configs = [
            resolve(task, encoding, preset="quick", batch_size=128, train_lengths=lengths, seed=s)
            for s in range(seeds)
        ]
    built = build_trainers(configs, device)
    for t in built:
        t.model.train()
    return built


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(mode: str, task: str, encoding: str, seeds: int, steps: int, device) -> float:
    """Seconds for ``steps`` steps of every seed, model building excluded."""
    members = trainers(task, encoding, seeds, device)
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        if mode == "lockstep":
            for t in members:
                t.train_step()
    if mode == "sequential":
        for t in members:
            for _ in range(steps):
                t.train_step()
    sync(device)
    return time.perf_counter() - start


def bench(task: str, encoding: str, args, device: torch.device) -> None:
    modes = ("sequential", "lockstep")
    time_once("lockstep", task, encoding, args.seeds, 1, device)  # warm-up
    times: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.reps):
        for mode in modes:
            times[mode].append(time_once(mode, task, encoding, args.seeds, args.steps, device))
    work = args.seeds * args.steps
    rate = {m: work / statistics.median(times[m]) for m in modes}
    print(f"{device.type} {task} {encoding} S={args.seeds} B=128 N~U{{1..40}}:")
    print(f"  sequential {rate['sequential']:7.2f} seed-steps/s")
    for mode in modes[1:]:
        ratio = rate[mode] / rate["sequential"]
        verdict = "PASS" if ratio >= TARGET else "FAIL"
        print(
            f"  {mode:10s} {rate[mode]:7.2f} seed-steps/s  {ratio:5.2f}x  {verdict} (>= {TARGET}x)"
        )


def why(task: str, encoding: str, seeds: int, device: torch.device, reps: int = 3) -> None:
    """The limits on batching seeds: the fixed per-step cost (solo step at N = 1 vs N = 20)
    and the roofline of a step at this device's GEMM peak."""
    solo = []
    for n in (1, 20):
        (t,) = trainers(task, encoding, 1, device, lengths=(n, n))
        t.train_step()
        solo.append(statistics.median(timed(t.train_step, device) for _ in range(reps)))
    members = trainers(task, encoding, seeds, device, lengths=(20, 20))
    print(
        f"  why: solo step {solo[0] * 1e3:.1f} ms at N=1 vs {solo[1] * 1e3:.1f} ms at N=20, so "
        f"sharing all fixed per-step cost gives at most ~{solo[1] / (solo[1] - solo[0]):.2f}x"
    )
    flops, peak = step_flops(members[0]), matmul_peak(device)
    print(
        f"  roofline: a solo step at N=20 is {flops / 1e9:.2f} GFLOP, run at "
        f"{flops / solo[1] / 1e9:.0f} GFLOP/s; this device's GEMM peak is {peak / 1e9:.0f} "
        f"GFLOP/s, so even an ensemble with no cost but its FLOPs at peak is at most "
        f"{solo[1] * peak / flops:.2f}x sequential"
    )


def step_flops(trainer) -> float:
    """FLOPs of one training step, counted by torch (matmuls and convolutions)."""
    with FlopCounterMode(display=False) as counter:
        trainer.train_step()
    return float(counter.get_total_flops())


def matmul_peak(device: torch.device, reps: int = 20) -> float:
    """Median FLOP/s of the model's largest GEMM shape ([B·T, d] @ [d, 4d]) at B·T = 5120."""
    a = torch.randn(5120, 64, device=device)
    b = torch.randn(64, 256, device=device)
    for _ in range(3):
        a @ b
    seconds = statistics.median(timed(lambda: a @ b, device) for _ in range(reps))
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / seconds


def timed(fn, device: torch.device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="reverse_string")
    parser.add_argument("--encodings", nargs="+", default=["alibi", "kerple"])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="steps per seed per repetition")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    encodings = [e for e in args.encodings if e in list_encodings()]
    for missing in sorted(set(args.encodings) - set(encodings)):
        print(f"{missing}: SKIPPED (not a registered encoding)")
    for encoding in encodings:
        bench(args.task, encoding, args, torch.device("cpu"))
        why(args.task, encoding, args.seeds, torch.device("cpu"))
    if not torch.cuda.is_available():
        print("GPU: SKIPPED (torch.cuda.is_available() is False)")
        return
    for encoding in encodings:
        bench(args.task, encoding, args, torch.device("cuda"))
        why(args.task, encoding, args.seeds, torch.device("cuda"))


if __name__ == "__main__":
    main()
