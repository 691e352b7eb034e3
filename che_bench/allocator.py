"""Keep large freed blocks for reuse: glibc malloc tuning for CPU evaluation.

glibc serves every allocation above its mmap threshold (at most 32 MiB) with a fresh
``mmap`` and unmaps it on free, so each [B, H, rows, T] score tensor of an evaluation chunk
is page-faulted in again, zero-filled by the kernel. On a 2-core machine that made CPU
evaluation at T = 1,000 about 2.5x slower (``benchmarks/README.md``). Raising the mmap and
trim thresholds to 1 GiB lets the heap hand freed blocks back out instead. Numbers do not
change, only where the bytes come from.

The setting is process-wide; :func:`tune_allocator` applies it once, does nothing off glibc,
and is skipped when ``CHE_BENCH_DEFAULT_MALLOC=1`` is set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

THRESHOLD_BYTES = 2**30
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # from glibc's <malloc.h>
_state: dict[str, bool] = {}


def tune_allocator() -> bool:
    """Raise glibc's mmap/trim thresholds once per process; True when they are in effect."""
    if "tuned" in _state:
        return _state["tuned"]
    tuned = False
    if os.environ.get("CHE_BENCH_DEFAULT_MALLOC") != "1":
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc (macOS, musl, Windows)
            mallopt = None
        if mallopt is not None:
            tuned = bool(mallopt(_M_MMAP_THRESHOLD, THRESHOLD_BYTES)) and bool(
                mallopt(_M_TRIM_THRESHOLD, THRESHOLD_BYTES)
            )
    _state["tuned"] = tuned
    return tuned
