"""Target 7: the GPU path. Training steps/s per encoding: fp32 eager, bf16 autocast, compiled.

Each mode trains a fresh copy of the same model (same seed, same data stream) with the
library's own ``Trainer.train_step`` (Adam, clip 1.0, B = 128, N ~ U{1..40}); only the run's
settings differ:

* ``fp32``: ``precision: fp32``, eager;
* ``bf16``: ``precision: bf16`` (the forward under bfloat16 autocast, the loss in fp32);
* ``compile``: ``compile: true`` (``torch.compile(dynamic=True)``, one graph for all lengths);
* ``compile+bf16``: both.

``train_step`` keeps the loss on the device (no host read per step); the losses are read
after the timed steps, and the time ends with a device sync.

Reported: steps/s over the timed steps, the speed-up over fp32 eager, the first
and last training loss (a numerical sanity check) and peak CUDA memory. A mode that errors
(say, a compile failure) is reported with its error and the row FAILs; the other modes still
run.

Without CUDA every line prints SKIPPED. ``--cpu-dry-run`` exercises the same code on CPU
(bf16 autocast on CPU, tiny sizes) to check the code path; its figures are not GPU figures
and its target lines still say SKIPPED.

    python benchmarks/bench_gpu.py                      # on a CUDA machine
    python benchmarks/bench_gpu.py --encodings nope,alibi,dape-kerple --modes fp32,bf16
    python benchmarks/bench_gpu.py --cpu-dry-run --modes fp32,bf16
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

# OpenMP threads that spin at barriers while a neighbour holds the other core slow small
# ops badly on a shared machine; passive waiting avoids that. Set before torch loads libgomp
# (subprocesses inherit it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from che_bench.config import resolve
from che_bench.generators import get_task
from che_bench.running.runner import build_model
from che_bench.training.train import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_eval_memory import REPRESENTATIVE  # noqa: E402

MODES = ("fp32", "bf16", "compile", "compile+bf16")


@dataclass
class ModeResult:
    steps_per_s: float = math.nan
    warmup_s: float = math.nan
    first_loss: float = math.nan
    last_loss: float = math.nan
    peak_mib: float = math.nan
    error: str | None = None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_mode(
    task: str, encoding: str, mode: str, device: torch.device, args: argparse.Namespace
) -> ModeResult:
    """Train ``steps`` timed steps after ``warmup`` untimed ones; never raises."""
    result = ModeResult()
    try:
        config = resolve(
            task,
            encoding,
            preset="smoke",
            batch_size=args.batch,
            train_lengths=(1, args.max_train_length),
            lr=1e-3,
            seed=0,
            precision="bf16" if "bf16" in mode else "fp32",
            compile=mode.startswith("compile"),
        )
        model = build_model(config, device)
        model.train()
        trainer = Trainer(model, get_task(task), config, device, None)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

        def step() -> torch.Tensor:
            trainer.train_step()
            return trainer.unchecked[-1].loss  # still on the device

        start = time.perf_counter()
        first = [step() for _ in range(args.warmup)][0]
        synchronize(device)
        result.warmup_s = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(args.steps):
            last = step()
        synchronize(device)
        result.steps_per_s = args.steps / (time.perf_counter() - start)
        result.first_loss, result.last_loss = float(first), float(last)
        loss = result.last_loss
        if not (math.isfinite(result.first_loss) and math.isfinite(loss)):
            result.error = f"non-finite loss ({result.first_loss}, {loss})"
        if device.type == "cuda":
            result.peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
    except Exception as exc:  # report and go on with the next mode
        result.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        if args.verbose:
            traceback.print_exc()
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        torch._dynamo.reset()  # no compiled graphs leak into the next mode
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encodings", help="comma-separated (default: one per family)")
    parser.add_argument("--task", default="duplicate_string", help="longest sequences (3N)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"subset of {','.join(MODES)}")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--max-train-length", type=int, default=40, help="N ~ U{1..this}")
    parser.add_argument("--steps", type=int, default=50, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=15, help="untimed steps (compilation)")
    parser.add_argument("--cpu-dry-run", action="store_true", help="run on CPU, tiny sizes")
    parser.add_argument("--verbose", action="store_true", help="print tracebacks")
    args = parser.parse_args(argv)
    encodings = args.encodings.split(",") if args.encodings else list(REPRESENTATIVE)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {sorted(unknown)}; choose from {MODES}")
    gpu = torch.cuda.is_available()
    if not gpu and not args.cpu_dry_run:
        for encoding in encodings:
            print(f"{encoding}: SKIPPED (no CUDA device)")
        print("Target 7 (GPU steps/s: fp32 eager vs bf16 autocast vs compiled): SKIPPED (no CUDA)")
        return 0
    if gpu:
        device = torch.device("cuda")
        name = torch.cuda.get_device_name(device)
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
    else:
        device, name = torch.device("cpu"), "CPU dry run (not a GPU figure)"
        args.batch, args.steps, args.warmup = min(args.batch, 8), min(args.steps, 3), 2
        args.max_train_length = min(args.max_train_length, 10)
    print(
        f"Workload (target 7) on {name}: {args.task}, B = {args.batch}, "
        f"N ~ U{{1..{args.max_train_length}}}, {args.warmup} warm-up + {args.steps} timed "
        f"steps per mode; torch {torch.__version__}"
    )
    columns = " | ".join(f"{m} steps/s" for m in modes)
    header = f"| encoding | {columns} | best (x fp32) | loss fp32 / bf16 (last) | verdict |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    failed = []
    for encoding in encodings:
        results = {mode: run_mode(args.task, encoding, mode, device, args) for mode in modes}
        errors = {m: r.error for m, r in results.items() if r.error}
        cells = " | ".join(
            "error" if results[m].error else f"{results[m].steps_per_s:.2f}" for m in modes
        )
        ok_modes = {m: r.steps_per_s for m, r in results.items() if not r.error}
        base = results.get("fp32")
        if ok_modes and base is not None and not base.error:
            best = max(ok_modes, key=ok_modes.get)
            best_cell = f"{best} ({ok_modes[best] / base.steps_per_s:.2f}x)"
        else:
            best_cell = "n/a"
        losses = " / ".join(
            f"{results[m].last_loss:.3f}" if m in results and not results[m].error else "-"
            for m in ("fp32", "bf16")
        )
        verdict = "FAIL" if errors else "PASS"
        if not gpu:
            verdict = "SKIPPED (CPU dry run)"
        elif errors:
            failed.append(encoding)
        print(f"| {encoding} | {cells} | {best_cell} | {losses} | {verdict} |", flush=True)
        for mode, error in errors.items():
            print(f"    {encoding} {mode}: {error}")
    if not gpu:
        print("Target 7 (GPU steps/s: fp32 eager vs bf16 autocast vs compiled): SKIPPED (no CUDA)")
        return 0
    verdict = "FAIL" if failed else "PASS"
    print(
        f"Target 7 (GPU steps/s reported for {len(encodings) - len(failed)}/{len(encodings)} "
        f"encodings in every mode): {verdict}"
        + (f" [errors: {', '.join(failed)}]" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
