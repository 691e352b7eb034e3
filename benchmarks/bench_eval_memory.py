"""Target 4: memory-bounded evaluation, for every encoding, with unchanged results.

The workload is the target's: ``duplicate_string`` at input length N = 500 (1,500 tokens with
the 1,000 output placeholders), 512 samples in sub-batches of 32 (the paper configuration),
an untrained model built from the ``smoke`` preset (accuracy values do not matter, identity
does), evaluated on CPU under a 2 GiB budget passed to ``evaluate(max_memory=...)``, as
``--max-memory 2GB`` does.

Each encoding is measured in two fresh subprocesses, so peak memory is the process's own:

* **budgeted**: ``evaluate(max_memory=2 GiB)``. Peak RSS is ``VmHWM`` from
  ``/proc/self/status`` read at the end; the RSS right after the imports is reported too.
  PASS needs the whole process's peak RSS (imports, model, data and evaluation) to stay
  within the budget it was given.
* **reference**: the same ``evaluate`` call with query chunking switched off. An unchunked
  sub-batch of 32 at T = 1,500 holds [32, 8, 1500, 1500] score tensors (2.3 GB each; CoPE and
  Transformer-XL keep several alive), more than a shared 24 GB machine can offer, so each
  sub-batch's forward is split into micro-batches of 4 samples that replay the sub-batch's
  random generator. That is exact: in eval mode the samples of a batch never interact, and
  the randomized encodings draw one set of positions per forward, shared by the batch and
  independent of its size.

Identity: the per-length accuracies must be equal as floats, and the logits of the first
sub-batch must agree to float32 rounding (``allclose``, rtol 1e-4, atol 1e-5: the two runs use
kernels of different shapes, so bit equality is not expected).

    python benchmarks/bench_eval_memory.py                 # representative set, full size
    python benchmarks/bench_eval_memory.py --all           # every registered encoding
    python benchmarks/bench_eval_memory.py --quick         # one sub-batch, N = 200: a smoke run

Exit status 1 when any encoding fails. Helpers here (``run_worker``, ``rss_mib``) are reused by
``bench_scaling.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
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
from che_bench.training.evaluate import EvalSpec, evaluate, query_chunk_for

#: One encoding per family (the default set); ``--all`` takes every registered encoding.
REPRESENTATIVE = (
    "nope",
    "sinusoidal",
    "learned",
    "rope",
    "relative",
    "alibi",
    "kerple",
    "fire",
    "t5",
    "cope",
    "rand-rope",
    "rand-relative",
    "dape-kerple",
    "dapev2-kerple",
    "dape-rope",
)
GIB = 2**30
MIB = 2**20
UNBOUNDED = 2**62  # a budget no sub-batch reaches: query chunking off
RTOL, ATOL = 1e-4, 1e-5
FULL = (512, 500, "duplicate_string")  # the target's workload: samples, N, task


# -- process memory -------------------------------------------------------------------------
def rss_mib(field: str = "VmRSS") -> float:
    """A ``/proc/self/status`` memory field (VmRSS: now, VmHWM: peak) in MiB."""
    status = Path("/proc/self/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", status, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field} (Linux only)")
    return int(match.group(1)) / 1024


def run_worker(script: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``script --worker SPEC`` in a fresh interpreter; return its JSON result line."""
    command = [sys.executable, script, "--worker", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
    return {"error": f"worker exited {done.returncode}: " + " | ".join(tail)}


def emit(result: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(result), flush=True)


# -- the model wrapper both runs evaluate through --------------------------------------------
def replay(generator: torch.Generator | None) -> torch.Generator | None:
    """A fresh generator in the same state, so a micro-batch sees the sub-batch's draws."""
    if generator is None:
        return None
    copy = torch.Generator(device=generator.device)
    copy.set_state(generator.get_state())
    return copy


class Probe(torch.nn.Module):
    """Pass-through around the encoder that keeps the first sub-batch's logits.

    With ``micro_batch`` set it disables query chunking and splits every forward into
    micro-batches that replay the caller's generator (the unchunked reference).
    """

    def __init__(self, model: torch.nn.Module, micro_batch: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.micro_batch = micro_batch
        self.first_logits: torch.Tensor | None = None
        self.chunks_seen: set[int | None] = set()

    def forward(
        self,
        inputs: torch.Tensor,
        output_length: int,
        *,
        generator: torch.Generator | None = None,
        query_chunk: int | None = None,
    ) -> torch.Tensor:
        if self.micro_batch is None:
            self.chunks_seen.add(query_chunk)
            logits = self.model(inputs, output_length, generator=generator, query_chunk=query_chunk)
        else:
            self.chunks_seen.add(None)
            parts = [
                self.model(
                    inputs[start : start + self.micro_batch],
                    output_length,
                    generator=replay(generator),
                    query_chunk=None,
                )
                for start in range(0, inputs.shape[0], self.micro_batch)
            ]
            logits = torch.cat(parts)
        if self.first_logits is None:
            self.first_logits = logits.detach().clone()
        return logits


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One evaluation in this (fresh) process; memory figures in MiB."""
    baseline = rss_mib()
    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    task = get_task(spec["task"])
    length = spec["length"]
    config = resolve(
        spec["task"],
        spec["encoding"],
        preset="smoke",
        eval_samples=spec["samples"],
        eval_batch_size=spec["sub_batch"],
        test_lengths=(length, length),
    )
    probe = Probe(build_model(config), spec.get("micro_batch"))
    ready = rss_mib()
    budget = spec["budget"]
    started = time.perf_counter()
    result = evaluate(
        probe, task, EvalSpec.from_config(config), torch.device("cpu"), max_memory=budget
    )
    seconds = time.perf_counter() - started
    assert probe.first_logits is not None
    np.save(spec["logits_path"], probe.first_logits.numpy())
    total = length + task.output_length(length)
    return {
        "baseline_mib": baseline,
        "ready_mib": ready,
        "peak_mib": rss_mib("VmHWM"),
        "seconds": seconds,
        "accuracy": {str(k): v for k, v in result.accuracy_by_length.items()},
        "tokens": total,
        "chunk": query_chunk_for(spec["sub_batch"], total, budget),
        "chunks_seen": sorted(str(c) for c in probe.chunks_seen),
        "threads": torch.get_num_threads(),
    }


# -- the benchmark ---------------------------------------------------------------------------
def measure(encoding: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """Budgeted and reference runs of one encoding, compared."""
    base = {
        "task": args.task,
        "encoding": encoding,
        "length": args.length,
        "samples": args.samples,
        "sub_batch": args.sub_batch,
        "threads": args.threads,
    }
    budgeted = run_worker(
        __file__,
        {**base, "budget": args.budget, "logits_path": str(scratch / f"{encoding}-budget.npy")},
    )
    row: dict[str, Any] = {"encoding": encoding, "budgeted": budgeted}
    if "error" in budgeted:
        row.update(verdict="FAIL", why=budgeted["error"])
        return row
    fits = budgeted["peak_mib"] * MIB <= args.budget
    row["fits"] = fits
    if args.no_reference:
        row.update(verdict="PASS" if fits else "FAIL", identical=None)
        return row
    reference = run_worker(
        __file__,
        {
            **base,
            "budget": UNBOUNDED,
            "micro_batch": args.micro_batch,
            "logits_path": str(scratch / f"{encoding}-reference.npy"),
        },
    )
    row["reference"] = reference
    if "error" in reference:
        row.update(verdict="FAIL", why=reference["error"])
        return row
    a = np.load(scratch / f"{encoding}-budget.npy")
    b = np.load(scratch / f"{encoding}-reference.npy")
    same_accuracy = budgeted["accuracy"] == reference["accuracy"]
    close = a.shape == b.shape and bool(np.allclose(a, b, rtol=RTOL, atol=ATOL))
    row["max_logit_diff"] = float(np.max(np.abs(a - b))) if a.shape == b.shape else float("inf")
    row["identical"] = same_accuracy and close
    row["verdict"] = "PASS" if fits and row["identical"] else "FAIL"
    return row


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        "| encoding | query chunk (rows) | RSS after imports (MiB) | RSS before eval (MiB) "
        "| peak RSS (MiB) | eval time (s) | reference time (s) | accuracy equal "
        "| max abs logit diff | verdict |"
    )
    lines = [header, header_rule(header)]
    for row in rows:
        b = row["budgeted"]
        if "error" in b:
            lines.append(f"| {row['encoding']} | error: {b['error'][:120]} |||||||| FAIL |")
            continue
        ref = row.get("reference") or {}
        equal = "n/a" if "reference" not in row else str(b["accuracy"] == ref.get("accuracy"))
        diff = f"{row['max_logit_diff']:.1e}" if "max_logit_diff" in row else "n/a"
        ref_s = f"{ref['seconds']:.1f}" if "seconds" in ref else "n/a"
        chunk = "none (all)" if b["chunk"] is None else f"{b['chunk']} of {b['tokens']}"
        lines.append(
            f"| {row['encoding']} | {chunk} | {b['baseline_mib']:.0f} | {b['ready_mib']:.0f} "
            f"| {b['peak_mib']:.0f} | {b['seconds']:.1f} | {ref_s} | {equal} | {diff} "
            f"| {row['verdict']} |"
        )
    return "\n".join(lines)


def header_rule(header: str) -> str:
    return "|" + "---|" * (header.count("|") - 1)


def parse_size(text: str) -> int:
    """``2GB``, ``512MB`` (binary units, as the CLI's --max-memory) → bytes."""
    units = {"k": 2**10, "m": 2**20, "g": 2**30, "": 1}
    raw = text.strip().lower().replace("ib", "").replace("b", "")
    number = raw.rstrip("kmg")
    return int(float(number) * units[raw[len(number) :]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--all", action="store_true", help="every registered encoding")
    which.add_argument("--encodings", help="comma-separated encodings (default: one per family)")
    parser.add_argument("--task", default="duplicate_string")
    parser.add_argument("--length", type=int, default=500, help="input length N (default 500)")
    parser.add_argument("--samples", type=int, default=512, help="samples (default 512)")
    parser.add_argument("--sub-batch", type=int, default=32, help="eval_batch_size (default 32)")
    parser.add_argument("--budget", type=parse_size, default=2 * GIB, help="default 2GB (GiB)")
    parser.add_argument("--micro-batch", type=int, default=4, help="reference micro-batch")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per worker")
    parser.add_argument("--no-reference", action="store_true", help="skip the identity check")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: N = 200, one sub-batch of 32 samples"
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        emit(worker(json.loads(args.worker)))
        return 0
    if args.quick:
        args.length, args.samples = 200, 32
    if args.all:
        encodings = list_encodings()
    elif args.encodings:
        encodings = [e.strip() for e in args.encodings.split(",") if e.strip()]
    else:
        encodings = list(REPRESENTATIVE)
    tokens = args.length + get_task(args.task).output_length(args.length)
    print(
        f"Workload (target 4): {args.task}, N = {args.length} ({tokens} tokens), "
        f"{args.samples} samples in sub-batches of {args.sub_batch}, untrained smoke model, "
        f"CPU, budget {args.budget / MIB:.0f} MiB; reference: unchunked, micro-batch "
        f"{args.micro_batch}; torch {torch.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_eval_memory_") as tmp:
        for encoding in encodings:
            row = measure(encoding, args, Path(tmp))
            rows.append(row)
            b = row["budgeted"]
            if "error" in b:
                print(f"{encoding}: FAIL ({b['error']})", flush=True)
                continue
            ref = row.get("reference", {})
            print(
                f"{encoding}: peak {b['peak_mib']:.0f} MiB (after imports {b['baseline_mib']:.0f}),"
                f" chunk {b['chunk']}, {b['seconds']:.1f} s"
                + (f", reference {ref['seconds']:.1f} s" if "seconds" in ref else "")
                + (f", identical {row['identical']}" if row.get("identical") is not None else "")
                + f" -> {row['verdict']}",
                flush=True,
            )
    print()
    print(format_table(rows))
    print()
    failed = [r["encoding"] for r in rows if r["verdict"] != "PASS"]
    peaks = [r["budgeted"]["peak_mib"] for r in rows if "peak_mib" in r["budgeted"]]
    worst = max(peaks) if peaks else float("nan")
    times = [r["budgeted"]["seconds"] for r in rows if "seconds" in r["budgeted"]]
    median_s = statistics.median(times) if times else float("nan")
    reduced = (
        f" [reduced workload: {args.samples} samples, N = {args.length}; the target is 512, 500]"
    )
    what = "peak RSS within budget" + ("" if args.no_reference else " and results identical")
    verdict = "FAIL" if failed else "PASS"
    print(
        f"Target 4 (memory-bounded evaluation, {len(rows) - len(failed)}/{len(rows)} encodings "
        f"{what}; worst peak {worst:.0f} MiB of {args.budget / MIB:.0f} MiB; median eval "
        f"{median_s:.1f} s): {verdict}"
        + (f" [failed: {', '.join(failed)}]" if failed else "")
        + (reduced if (args.samples, args.length, args.task) != FULL else "")
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
