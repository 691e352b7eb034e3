"""Target 9: the CPU training step, today's against the frozen step of 2026-12-03.

For each encoding, one model is built (``reverse_string``, batch 128, N = 40: 80 tokens,
dropout 0.1, clip + Adam); ``step_reference.py`` copies it into the frozen encoder, and both
take the same steps from the same data stream and dropout generator, alternately, each
timed. Printed per encoding: the median ms per step of both, their ratio (target ≥ 1.5×), and
the largest relative difference of any parameter after the timed steps (the two must agree
up to float rounding: same losses, gradients and Adam updates).

The floor is what this machine cannot beat: the step's matmul FLOPs (counted with
``torch.utils.flop_counter``) at the measured GEMM peak, plus the T×T score traffic at the
measured memory bandwidth, counting each attention layer's four T×T tensors (scores,
probabilities and their two gradients) as written once and read once (8 passes of
B·H·T²·4 bytes). Reported as the floor in ms and the fraction of it the step reaches.

    python benchmarks/bench_step.py                     # the target (a quiet machine)
    python benchmarks/bench_step.py --quick             # batch 32, fewer steps
    python benchmarks/bench_step.py --encodings nope,alibi --steps 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_gpu.py

import torch
from torch.utils.flop_counter import FlopCounterMode

from che_bench.config import resolve
from che_bench.generators import get_task
from che_bench.running.runner import build_model
from che_bench.seeding import data_rng, torch_generator
from che_bench.training.train import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_reference import reference_of, reference_train_step  # noqa: E402

TARGET = 1.5
ENCODINGS = ("nope", "alibi", "relative", "rope", "dape-kerple")
PASSES = 8  # T×T tensors per layer written + read: scores, probs, d(probs), d(scores)


def best_seconds(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        begun = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begun)
    return min(times)


def gemm_peak() -> float:
    """FLOP/s of the best of a square GEMM and the model's FFN-shaped GEMM."""
    rates = []
    for m, k, n in ((1024, 1024, 1024), (10240, 64, 256), (10240, 256, 64)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        rates.append(2 * m * k * n / best_seconds(lambda a=a, b=b: a @ b))
    return max(rates)


def bandwidth() -> float:
    """Bytes/s of a 256 MiB copy (read + write)."""
    src = torch.randn(64 * 2**20)
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / best_seconds(lambda: dst.copy_(src))


def measure(name: str, args: argparse.Namespace) -> dict:
    device = torch.device("cpu")
    n = args.length
    config = resolve(
        "reverse_string",
        name,
        preset="quick",
        batch_size=args.batch,
        train_lengths=(n, n),
        steps=10**6,
        log_every=10**6,
    )
    task = get_task(config.task)
    model = build_model(config, device)
    reference = reference_of(model)
    trainer = Trainer(model, task, config, device)
    optimizer = torch.optim.Adam(reference.parameters(), lr=config.lr, eps=1e-8)
    rng, generator = data_rng(config.seed), torch_generator(device, config.seed, 2)
    reference.train()
    model.train()

    def old() -> None:
        reference_train_step(
            reference, optimizer, task, rng, generator, config.batch_size, (n, n), device
        )

    def new() -> None:
        trainer.update()

    old_ms, new_ms = [], []
    for index in range(args.warmup + args.steps):
        for fn, out in ((old, old_ms), (new, new_ms)):
            begun = time.perf_counter()
            fn()
            if index >= args.warmup:
                out.append(1e3 * (time.perf_counter() - begun))
    drift = max(
        ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()
        for a, b in zip(model.parameters(), reference.parameters())
    )
    with FlopCounterMode(display=False) as counter:
        new()
    length = task.input_length(n) + task.output_length(n)
    heads, layers = config.model.num_heads, config.model.num_layers
    traffic = PASSES * config.batch_size * heads * length**2 * 4 * layers
    return {
        "old": statistics.median(old_ms),
        "new": statistics.median(new_ms),
        "drift": drift,
        "flops": counter.get_total_flops(),
        "traffic": traffic,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encodings", default=",".join(ENCODINGS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--length", type=int, default=40)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per side")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="batch 32, 5 timed steps")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.steps, args.warmup = 32, 5, 2
    load = os.getloadavg()[0]
    peak, bytes_per_s = gemm_peak(), bandwidth()
    print(
        f"load {load:.2f}  torch threads {torch.get_num_threads()}  GEMM peak "
        f"{peak / 1e9:.0f} GFLOP/s  copy bandwidth {bytes_per_s / 1e9:.1f} GB/s  "
        f"reverse_string B={args.batch} N={args.length}"
    )
    print(
        f"{'encoding':<13}{'frozen ms':>10}{'now ms':>9}{'ratio':>7}{'GFLOP':>7}"
        f"{'floor ms':>10}{'of floor':>9}{'max drift':>11}"
    )
    failed = False
    for name in args.encodings.split(","):
        m = measure(name, args)
        floor = 1e3 * (m["flops"] / peak + m["traffic"] / bytes_per_s)
        ratio = m["old"] / m["new"]
        agrees = m["drift"] < 1e-4
        ok = ratio >= TARGET and agrees
        failed |= not ok
        print(
            f"{name:<13}{m['old']:>10.1f}{m['new']:>9.1f}{ratio:>6.2f}×{m['flops'] / 1e9:>7.1f}"
            f"{floor:>10.1f}{floor / m['new']:>8.0%}{m['drift']:>11.1e}  "
            f"{'PASS' if ok else 'FAIL'}{'' if agrees else ' (numbers differ)'}"
        )
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    print(
        f"Target 9: the step ≥ {TARGET}× faster than the frozen step of 2026-12-03, numbers "
        f"unchanged: {'FAIL' if failed else 'PASS'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
