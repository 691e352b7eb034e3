"""The GPU acceptance script: what must hold the first time che-bench runs on a CUDA GPU.

One line per check, ``PASS`` / ``FAIL`` / ``SKIPPED`` with its figures; exit status 1 on
any FAIL. On one GPU it takes a few minutes (target ≤ 8). ``--cpu-dry-run`` runs every
check at tiny sizes on the CPU, so the script cannot rot (the test suite runs that mode);
its figures are not GPU figures, and its compiled step uses the ``aot_eager`` backend (graph
capture without inductor's C++ kernel builds, which take minutes on a cold CPU cache).

 1. one encoding per family, plus causal alibi, trains and evaluates (smoke preset): ok,
    the device recorded;
 2. the same config twice gives identical losses and accuracies (``deterministic: true``);
 3. CPU and device logits agree to 1e-4 relative, one model per family;
 4. a killed-and-resumed run equals the straight run bit for bit; Adam's ``step`` stays on
    the CPU;
 5. a checkpoint written on the device is refused with ``--device cpu`` and kept;
 6. host reads per non-logging step (0 expected) and ms per step at B = 128, N = 20 and 40,
    for fp32, bf16 and compile (on CUDA also ``torch.cuda.set_sync_debug_mode``);
 7. evaluation at N = 500 (duplicate_string × dape-kerple, 1,500 tokens): query chunk, ms
    per sub-batch, peak memory within the budget;
 8. ``--jobs 4`` on one device finishes a small grid;
 9. the paper protocol's projected hours per run, from the rates of 6 and 7.

    python benchmarks/gpu_acceptance.py                # on a CUDA machine
    python benchmarks/gpu_acceptance.py --cpu-dry-run  # the code path, on the CPU
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from che_bench.config import RunConfig, resolve
from che_bench.errors import ConfigError
from che_bench.generators import get_task
from che_bench.running.executors import LocalExecutor
from che_bench.running.runner import build_model, execute
from che_bench.training import train
from che_bench.training.evaluate import EvalSpec, eval_budget, evaluate, query_chunk_for
from che_bench.training.train import Trainer

FAMILIES = (
    "nope", "sinusoidal", "learned", "rope", "relative", "alibi", "kerple", "fire", "t5",
    "cope", "rand-rope", "dape-kerple", "dapev2-kerple",
)  # fmt: skip
#: Families whose forward draws nothing at evaluation (so CPU and CUDA can see equal inputs).
DETERMINISTIC_FAMILIES = [f for f in FAMILIES if not f.startswith("rand-")]


CHECKS = ("families", "deterministic", "cpu-vs-device", "resume", "foreign-checkpoint",
          "step", "long-eval", "jobs", "paper")  # fmt: skip


@dataclass
class Sizes:
    """The workloads: the real ones on a GPU, tiny ones in the CPU dry run."""

    batch: int = 128
    lengths: tuple[int, ...] = (20, 40)
    timed_steps: int = 20
    eval_length: int = 500
    eval_samples: int = 512
    eval_batch: int = 32
    jobs: int = 4

    @classmethod
    def dry(cls) -> Sizes:
        return cls(batch=4, lengths=(4, 8), timed_steps=3, eval_length=30, eval_samples=8,
                   eval_batch=4, jobs=2)  # fmt: skip


class Report:
    def __init__(self) -> None:
        self.failed = 0

    def line(self, number: int, name: str, verdict: str, detail: str) -> None:
        self.failed += verdict == "FAIL"
        print(f"check {number} {name:<22} {verdict:<7} {detail}", flush=True)

    def check(self, number: int, name: str, fn: Callable[[], tuple[bool, str]]) -> None:
        begun = time.perf_counter()
        try:
            ok, detail = fn()
        except Exception as exc:  # a check that raises is a FAIL, and the others still run
            ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
        seconds = time.perf_counter() - begun
        self.line(number, name, "PASS" if ok else "FAIL", f"{detail} [{seconds:.1f} s]")


def smoke(encoding: str, **overrides) -> RunConfig:
    return resolve("parity_check", encoding, preset="smoke", **overrides)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def families_train(device: torch.device) -> tuple[bool, str]:
    configs = [smoke(name) for name in FAMILIES] + [smoke("alibi", causal=True)]
    bad = []
    for config in configs:
        record = execute(config, device=str(device), run_dir=None)
        if record.status != "ok" or not record.device.startswith(device.type):
            bad.append(f"{config.encoding}{' causal' if config.causal else ''}: {record.status} "
                       f"on {record.device} {record.error or ''}".strip())  # fmt: skip
    return not bad, "; ".join(bad) or f"{len(configs)} runs ok on {device.type}"


def same_twice(device: torch.device) -> tuple[bool, str]:
    differ = []
    for name in ("cope", "dapev2-kerple", "rand-rope"):
        first, second = (execute(smoke(name), device=str(device), run_dir=None) for _ in "ab")
        same = first.final_loss == second.final_loss
        if not same or first.accuracy_by_length != second.accuracy_by_length:
            differ.append(f"{name}: loss {first.final_loss!r} vs {second.final_loss!r}")
    return not differ, "; ".join(differ) or "cope, dapev2-kerple, rand-rope: identical"


def logits_agree(device: torch.device) -> tuple[bool, str]:
    worst, where = 0.0, ""
    for name in DETERMINISTIC_FAMILIES:
        config = smoke(name)
        task = get_task(config.task)
        model = build_model(config).eval()
        batch = task.sample(__import__("numpy").random.default_rng(0), 4, 30)
        inputs = torch.from_numpy(batch.inputs.copy())
        with torch.no_grad():
            on_cpu = model(inputs, batch.targets.shape[1])
            on_device = model.to(device)(inputs.to(device), batch.targets.shape[1]).cpu()
        error = ((on_device - on_cpu).abs().max() / on_cpu.abs().max()).item()
        if error > worst:
            worst, where = error, name
    note = "" if device.type == "cuda" else " (dry run: CPU against CPU)"
    return worst <= 1e-4, f"largest relative difference {worst:.1e} ({where or '-'}){note}"


def resume_bit_identical(device: torch.device, run_dir: Path) -> tuple[bool, str]:
    config = smoke("alibi", steps=6, checkpoint_every=4)
    straight = execute(config, device=str(device), run_dir=None)
    execute(config, device=str(device), run_dir=run_dir)  # leaves its step-4 checkpoint
    checkpoint = run_dir / config.run_key / "checkpoint.pt"
    model = build_model(config, device)
    trainer = Trainer(model, get_task(config.task), config, device, checkpoint)
    resumed_at = trainer.try_resume()
    on_cpu = all(s["step"].device.type == "cpu" for s in trainer.optimizer.state.values())
    resumed = execute(config, device=str(device), run_dir=run_dir)  # resumes at step 4
    same = (resumed.final_loss, resumed.accuracy_by_length) == (
        straight.final_loss, straight.accuracy_by_length)  # fmt: skip
    detail = (f"resumed at step {resumed_at}; final loss {resumed.final_loss!r} vs "
              f"{straight.final_loss!r}; Adam step on the CPU: {on_cpu}")  # fmt: skip
    return same and on_cpu and resumed_at == 4, detail


def foreign_checkpoint_kept(device: torch.device, run_dir: Path) -> tuple[bool, str]:
    config = smoke("alibi", steps=6, checkpoint_every=4, seed=7)
    execute(config, device=str(device), run_dir=run_dir)
    checkpoint = run_dir / config.run_key / "checkpoint.pt"
    if device.type == "cpu":  # the dry run: label it as a CUDA run would
        state = torch.load(checkpoint, weights_only=False)
        state["device"] = "cuda"
        torch.save(state, checkpoint)
    before = checkpoint.read_bytes()
    try:
        execute(config, device="cpu", run_dir=run_dir)
    except ConfigError as exc:
        kept = checkpoint.read_bytes() == before
        return kept, f"refused ({str(exc)[:70]}…); checkpoint kept: {kept}"
    return False, "a device checkpoint was resumed on the CPU"


@contextlib.contextmanager
def sync_warnings(device: torch.device) -> Iterator[list]:
    """CUDA's own count of synchronizing calls (``set_sync_debug_mode``); nothing on CPU."""
    caught: list = []
    if device.type != "cuda":
        yield caught
        return
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield caught
    finally:
        torch.cuda.set_sync_debug_mode("default")


def step_rates(device: torch.device, sizes: Sizes, rates: dict) -> tuple[bool, str]:
    """ms per training step and host reads per non-logging step, per mode and length."""
    from che_bench.training.host_reads import HostReads

    cells, reads_seen = [], 0
    for mode in ("fp32", "bf16", "compile"):
        for n in sizes.lengths:
            config = smoke(
                "alibi", batch_size=sizes.batch, train_lengths=(n, n), steps=10**6,
                log_every=10**6, precision="bf16" if mode == "bf16" else "fp32",
                compile=mode == "compile",
            )  # fmt: skip
            trainer = Trainer(build_model(config, device), get_task(config.task), config, device)
            for _ in range(3):  # warm-up (and compilation)
                trainer.update()
            synchronize(device)
            begun = time.perf_counter()
            with sync_warnings(device) as syncs:
                for _ in range(sizes.timed_steps):
                    trainer.update()
            synchronize(device)
            ms = 1e3 * (time.perf_counter() - begun) / sizes.timed_steps
            rates[mode, n] = ms
            # counted apart from the timing: a TorchFunctionMode makes a compiled step
            # recompile, and on CUDA the compiled step's syncs are counted above
            counted = 0 if mode == "compile" and device.type == "cuda" else sizes.timed_steps
            with HostReads(trainer.optimizer) as reads:
                for _ in range(counted):
                    trainer.update()
            per_step = len(syncs) / sizes.timed_steps + reads.count / max(counted, 1)
            reads_seen += reads.count + len(syncs)
            backend = f" ({train.COMPILE_BACKEND})" if mode == "compile" else ""
            cells.append(f"{mode}{backend} N={n}: {ms:.1f} ms, {per_step:g} reads")
    return reads_seen == 0, f"B={sizes.batch}; " + "; ".join(cells)


def long_evaluation(device: torch.device, sizes: Sizes, rates: dict) -> tuple[bool, str]:
    n = sizes.eval_length
    config = resolve("duplicate_string", "dape-kerple", preset="smoke", test_lengths=(n, n),
                     eval_samples=sizes.eval_samples, eval_batch_size=sizes.eval_batch)  # fmt: skip
    task = get_task(config.task)
    model = build_model(config, device)
    budget = eval_budget(device)
    tokens = task.input_length(n) + task.output_length(n)
    chunk = query_chunk_for(sizes.eval_batch, tokens, budget)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    synchronize(device)
    begun = time.perf_counter()
    evaluate(model, task, EvalSpec.from_config(config), device, max_memory=budget)
    synchronize(device)
    per_sub = 1e3 * (time.perf_counter() - begun) / -(-sizes.eval_samples // sizes.eval_batch)
    rates["eval", tokens] = per_sub
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    within = peak is None or peak <= budget
    shown = f"{peak / 2**30:.2f} GiB" if peak is not None else "not measured on CPU"
    return within, (f"N={n} ({tokens} tokens): query chunk {chunk or 'all'}, {per_sub:.0f} ms "
                    f"per sub-batch of {sizes.eval_batch}, peak {shown}, budget "
                    f"{budget / 2**30:.2f} GiB")  # fmt: skip


def shared_device(device: torch.device, sizes: Sizes, run_dir: Path) -> tuple[bool, str]:
    configs = [smoke("alibi", seed=seed) for seed in range(sizes.jobs)]
    executor = LocalExecutor(sizes.jobs, str(device), run_dir)
    records = list(executor.map_unordered(configs))
    ok = [r for r in records if r.status == "ok"]
    errors = {r.error for r in records if r.status != "ok"}
    detail = f"--jobs {sizes.jobs}: {len(ok)}/{len(configs)} ok {errors or ''}"
    return len(ok) == len(configs), detail.strip()


def paper_projection(sizes: Sizes, rates: dict) -> tuple[bool, str]:
    """Hours per paper run: steps at U{1..40} (ms per step linear in N between the two
    measured lengths) plus 460 test lengths × 16 sub-batches (ms per sub-batch ∝ T²)."""
    paper = resolve("parity_check", "alibi", preset="paper")
    (n1, n2), mode = sizes.lengths, "fp32"
    slope = (rates[mode, n2] - rates[mode, n1]) / (n2 - n1)
    lo, hi = paper.train_lengths
    mean_n = (lo + hi) / 2
    step_ms = max(rates[mode, n1] + slope * (mean_n - n1), 0.0)
    # the timed steps ran at batch ``sizes.batch``; the paper's is 128
    step_ms *= paper.batch_size / sizes.batch
    (((_, tokens), sub_ms),) = ((k, v) for k, v in rates.items() if k[0] == "eval")
    task = get_task(paper.task)
    lengths = range(paper.test_lengths[0], paper.test_lengths[1] + 1)
    sub_batches = -(-paper.eval_samples // paper.eval_batch_size)
    scale = paper.eval_batch_size / sizes.eval_batch
    eval_ms = (
        sum(
            sub_ms * scale * ((task.input_length(n) + task.output_length(n)) / tokens) ** 2
            for n in lengths
        )
        * sub_batches
    )
    train_h, eval_h = paper.steps * step_ms / 3.6e6, eval_ms / 3.6e6
    return True, (f"paper preset ({paper.steps:,} steps, parity_check, alibi fp32): training "
                  f"{train_h:.1f} h + evaluation {eval_h:.1f} h = {train_h + eval_h:.1f} h "
                  "per run")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-dry-run", action="store_true", help="tiny sizes on the CPU")
    args = parser.parse_args(argv)
    report = Report()
    if not args.cpu_dry_run and not torch.cuda.is_available():
        for number, name in enumerate(CHECKS, 1):
            report.line(number, name, "SKIPPED", "no CUDA GPU (use --cpu-dry-run on a CPU)")
        return 0
    device = torch.device("cpu" if args.cpu_dry_run else "cuda")
    if args.cpu_dry_run:  # the compiled path, without minutes of C++ kernel builds on a CPU
        train.COMPILE_BACKEND = "aot_eager"
    sizes = Sizes.dry() if args.cpu_dry_run else Sizes()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (dry run)"
    print(f"GPU acceptance on {name}, torch {torch.__version__}", flush=True)
    rates: dict = {}
    begun = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        runs = Path(scratch)
        report.check(1, "families", lambda: families_train(device))
        report.check(2, "deterministic", lambda: same_twice(device))
        report.check(3, "cpu-vs-device", lambda: logits_agree(device))
        report.check(4, "resume", lambda: resume_bit_identical(device, runs / "resume"))
        report.check(5, "foreign-checkpoint", lambda: foreign_checkpoint_kept(device, runs / "f"))
        report.check(6, "step", lambda: step_rates(device, sizes, rates))
        report.check(7, "long-eval", lambda: long_evaluation(device, sizes, rates))
        report.check(8, "jobs", lambda: shared_device(device, sizes, runs / "jobs"))
        if ("fp32", sizes.lengths[0]) in rates and any(k[0] == "eval" for k in rates):
            report.check(9, "paper", lambda: paper_projection(sizes, rates))
        else:
            report.line(9, "paper", "SKIPPED", "needs the rates of checks 6 and 7")
    minutes = (time.perf_counter() - begun) / 60
    print(f"{report.failed} check(s) failed; {minutes:.1f} min", flush=True)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
