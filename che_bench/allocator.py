"""Huge pages for large CPU tensors: fewer page faults in evaluation, same numbers.

PyTorch's CPU allocator takes every large tensor from glibc, which maps it afresh with
``mmap`` and unmaps it on free; each [B, H, rows, T] score tensor of an evaluation chunk is
therefore faulted in again, one 4 KiB page at a time. With ``THP_MEM_ALLOC_ENABLE=1``
(a PyTorch setting) tensors of 2 MiB and more are aligned to 2 MiB and advised as
transparent huge pages: 512 times fewer faults, and memory is still returned on free, so
the evaluation memory budget holds. Measured on 2 cores: CPU evaluation at T = 1,500 about
1.7x faster (``benchmarks/README.md``). Raising glibc's mmap threshold instead was faster
still but let the heap fragment past the budget (peak RSS 2.1 GB for 0.56 GB live).

PyTorch reads the variable once, at its first allocation, so :func:`enable_huge_pages` must
run before ``import torch``; ``che_bench/__init__.py`` calls it first thing. It never
overrides a value the user set, and ``CHE_BENCH_DEFAULT_MALLOC=1`` leaves it unset.
Linux only in effect; harmless elsewhere.
"""

from __future__ import annotations

import os

FLAG = "THP_MEM_ALLOC_ENABLE"
OPT_OUT = "CHE_BENCH_DEFAULT_MALLOC"


def enable_huge_pages() -> bool:
    """Ask PyTorch for huge-page-aligned large CPU tensors; True if the flag is now set."""
    if os.environ.get(OPT_OUT) != "1":
        os.environ.setdefault(FLAG, "1")
    return os.environ.get(FLAG) == "1"
