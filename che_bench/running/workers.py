"""Worker processes of the local executor: start warm, run one config per call, and die with
the sweep process that started them, however it ends."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from che_bench.config import RunConfig
from che_bench.results.record import RunRecord
from che_bench.running.claims import pid_alive, proc_stat

#: Imported once by the forkserver, so forked workers start warm. torch._dynamo is what
#: torch.optim imports lazily on first use (seconds).
PRELOAD = ["che_bench.running.workers", "che_bench.running.runner", "torch._dynamo"]


def cpu_count() -> int:
    """CPUs this process may use (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def run_one(
    config: RunConfig,
    device: str,
    run_dir: Path | None,
    threads: int | None = None,
    share: int = 1,
) -> RunRecord:
    """Execute one run in a worker, one of ``share`` runs using the device at once (its
    evaluation memory budget is its share: :func:`~che_bench.training.evaluate.eval_budget`);
    always returns a record, never raises."""
    import torch

    from che_bench.running.runner import execute, resolve_device
    from che_bench.training.evaluate import eval_budget

    if threads:
        torch.set_num_threads(threads)
    started = time.perf_counter()
    try:
        budget = eval_budget(resolve_device(device), share)
        return execute(config, device=device, run_dir=run_dir, max_memory=budget)
    except Exception as exc:  # CheBenchError included: one bad run must not stop a sweep
        failed = RunRecord.failed(config, f"{type(exc).__name__}: {exc}", device)
        return failed.with_wall_time(time.perf_counter() - started)


#: prctl(2) option: the signal this process gets when the process that forked it ends.
PR_SET_PDEATHSIG = 1
#: Seconds between two looks of a worker's watchdog at its parent.
WATCHDOG_S = 0.5


def die_with_parent(parent: int, poll_s: float = WATCHDOG_S) -> None:
    """End this worker process as soon as the process ``parent`` (the sweep) is gone.

    A worker whose parent was SIGKILLed would otherwise wait forever for its next task: it
    holds a write end of its own task queue, so the read never sees end-of-file. With the
    forkserver, the worker is the forkserver's child and holds a copy of the write end of the
    forkserver's "alive" pipe (and of the resource tracker's), so those two wait for it in
    turn. Hence the worker must end itself; the forkserver and the resource tracker then
    see end-of-file and exit on their own. On Linux ``PR_SET_PDEATHSIG`` has the kernel send
    SIGKILL when the forking process (the forkserver, or ``parent`` itself under spawn)
    dies; a daemon thread, on every platform, ``os._exit``s once ``parent`` no longer
    runs (a zombie or a reused pid counts as gone) or this process was re-parented.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    forker, stat = os.getppid(), proc_stat(parent)
    started = stat and stat[1]

    def watch() -> None:
        while pid_alive(parent, started) and os.getppid() == forker:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="che-bench-watchdog", daemon=True).start()


def init_worker(threads: int, initializer: Callable[[], None] | None, parent: int) -> None:
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns Ctrl-C and stops us
    import torch

    torch.set_num_threads(threads)
    if initializer is not None:
        initializer()
