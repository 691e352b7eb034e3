"""Every registered encoding: its learnable parameters and the wall time of a smoke run.

    python benchmarks/encoding_table.py [--task solve_equation] [--pattern 'dape*']

Parameters are the encoding's own (summed over the 5 layers, bidirectional form) and the
full model's on the task; the time is one `smoke`-preset run (20 steps + evaluation).
"""

from __future__ import annotations

import argparse
import time

import torch

from che_bench.config import resolve
from che_bench.encodings import list_encodings
from che_bench.model import count_parameters
from che_bench.running.runner import build_model, execute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="solve_equation")
    parser.add_argument("--pattern", default="*")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"| encoding | PE params | model params ({args.task}) | smoke run (s) | status |")
    print("|---|---:|---:|---:|---|")
    for name in list_encodings(args.pattern):
        config = resolve(args.task, name, preset="smoke")
        model = build_model(config)
        started = time.perf_counter()
        row = execute(config, run_dir=None)
        elapsed = time.perf_counter() - started
        own = count_parameters(model.encoding)
        print(f"| {name} | {own:,} | {count_parameters(model):,} | {elapsed:.1f} | {row.status} |")


if __name__ == "__main__":
    main()
