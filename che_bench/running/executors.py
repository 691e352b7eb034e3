"""Executors: where a sweep's runs execute. Workers return RunRecords; the caller writes them.

All executors share one method, ``map_unordered(configs) -> iterator of records``, yielding
one record per config in completion order. ``configs`` may be a lazy iterable: a config is
taken from it only when a worker is free to start it, so a sweep claims each cell just
before it runs (:mod:`che_bench.running.claims`). A run that raises, or whose worker
process dies, still yields a record (status ``failed`` with its error), so the caller
never loses or doubles a run. Workers die with the process that started them, however it
ends (:func:`~che_bench.running.workers.die_with_parent`).

- ``inline``: in this process, one run at a time (debugging, tests that monkeypatch).
- ``local``: a process pool (forkserver, else spawn), ``jobs`` workers, no extra service.
- ``ray``: one Ray task per run with its own ``num_cpus``/``num_gpus`` request.
- ``slurm``: one Slurm job per run through submitit (:mod:`che_bench.running.slurm`).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from che_bench.config import RunConfig
from che_bench.errors import CheBenchError, ConfigError
from che_bench.results.record import RunRecord
from che_bench.running.workers import PRELOAD, cpu_count, init_worker, run_one
from che_bench.util import EXECUTORS


class Executor(ABC):
    """Runs configs somewhere and yields their records as they finish."""

    def __init__(self, device: str = "cpu", run_dir: Path | None = None) -> None:
        self.device = device
        self.run_dir = run_dir

    @abstractmethod
    def map_unordered(self, configs: Iterable[RunConfig]) -> Iterator[RunRecord]:
        """One record per config, in completion order; closing the iterator cancels the rest.
        Each config is taken from ``configs`` only when it can start."""

    def describe(self) -> str:
        return type(self).__name__


class InlineExecutor(Executor):
    """Runs in this process, one after the other."""

    def map_unordered(self, configs: Iterable[RunConfig]) -> Iterator[RunRecord]:
        for config in configs:
            yield run_one(config, self.device, self.run_dir)

    def describe(self) -> str:
        return "inline (this process)"


class LocalExecutor(Executor):
    """A process pool of ``jobs`` workers, each with ``threads`` torch threads.

    A worker that dies (killed, segfault, out of memory) breaks the whole pool, and every run
    in flight at that moment comes back as a suspect. A lone suspect is the culprit and gets
    a ``failed`` record; several suspects are re-run one at a time at the end, so only the run
    that kills its worker again is recorded as failed.
    """

    def __init__(
        self,
        jobs: int = 1,
        device: str = "cpu",
        run_dir: Path | None = None,
        *,
        threads: int | None = None,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(device, run_dir)
        if jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self.threads = threads or max(1, cpu_count() // jobs)
        self.initializer = initializer

    def describe(self) -> str:
        return f"local, {self.jobs} worker(s) × {self.threads} thread(s)"

    def _pool(self, workers: int) -> ProcessPoolExecutor:
        methods = mp.get_all_start_methods()
        context = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
        if context.get_start_method() == "forkserver":
            context.set_forkserver_preload(PRELOAD)
        return ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=init_worker,
            initargs=(self.threads, self.initializer, os.getpid()),
        )

    def map_unordered(self, configs: Iterable[RunConfig]) -> Iterator[RunRecord]:
        suspects: list[RunConfig] = []
        yield from self._drain(iter(configs), self.jobs, suspects)
        yield from self._drain(iter(suspects), 1, None)

    def _drain(
        self, source: Iterator[RunConfig], limit: int, suspects: list[RunConfig] | None
    ) -> Iterator[RunRecord]:
        """Run ``source`` with at most ``limit`` runs in flight (so each has its own worker),
        taking the next config only when a worker is free. The pool starts with the first."""
        pool: ProcessPoolExecutor | None = None
        running: dict[Future, RunConfig] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(running) < limit:
                    config = next(source, None)
                    if config is None:
                        exhausted = True
                        break
                    pool = pool or self._pool(limit)
                    future = pool.submit(run_one, config, self.device, self.run_dir, None, limit)
                    running[future] = config
                if not running:
                    return
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                died: list[RunConfig] = []
                if any(isinstance(f.exception(), BrokenProcessPool) for f in done):
                    wait(running)  # a broken pool fails every future still in flight
                    done = set(running)
                for future in done:
                    config = running.pop(future)
                    error = future.exception()
                    if isinstance(error, BrokenProcessPool):
                        died.append(config)
                    elif error is not None:  # e.g. the config could not be sent to the worker
                        why = f"{type(error).__name__}: {error}"
                        yield RunRecord.failed(config, why, self.device)
                    else:
                        yield future.result()
                if died and pool is not None:
                    pool.shutdown(wait=True)
                    pool = None  # the next run starts a new one
                    if len(died) > 1 and suspects is not None:
                        suspects.extend(died)
                    else:
                        for config in died:
                            yield RunRecord.failed(config, WORKER_DIED, self.device)
        finally:
            if pool is not None and (running or not exhausted):  # interrupted or closed early
                for process in list((getattr(pool, "_processes", None) or {}).values()):
                    process.terminate()
                pool.shutdown(wait=False, cancel_futures=True)
            elif pool is not None:
                pool.shutdown(wait=True)


WORKER_DIED = "worker process died (killed, crashed or out of memory); BrokenProcessPool"


class RayExecutor(Executor):
    """One Ray task per run; ``address`` None starts a local Ray instance for the sweep."""

    def __init__(
        self,
        device: str = "cpu",
        run_dir: Path | None = None,
        *,
        address: str | None = None,
        cpus_per_run: float = 1.0,
        gpus_per_run: float | None = None,
    ) -> None:
        # ``auto`` with no GPU per run is the CPU: a task that asks for none sees none.
        super().__init__("cpu" if device == "auto" and gpus_per_run == 0 else device, run_dir)
        self.address = address
        self.cpus = cpus_per_run
        self.gpus_per_run = gpus_per_run

    @property
    def gpus(self) -> float:
        """num_gpus per task: ``gpus_per_run``, else 1 on CUDA (0 while ``auto`` is open)."""
        if self.gpus_per_run is not None:
            return self.gpus_per_run
        return float(self.device.startswith("cuda"))

    def settle_device(self, resources: dict[str, float]) -> None:
        """Resolve ``auto`` on the driver from the cluster's resources: CUDA when it has
        GPUs (each task then requests them, so Ray makes them visible to it), else CPU."""
        if self.device == "auto":
            self.device = "cuda" if resources.get("GPU", 0) > 0 else "cpu"

    def describe(self) -> str:
        where = self.address or "a local Ray instance"
        if self.device == "auto":
            gpus = self.gpus_per_run or 1
            per_run = f"{self.cpus:g} CPU per run, plus {gpus:g} GPU if the cluster has GPUs"
        else:
            per_run = f"{self.cpus:g} CPU / {self.gpus:g} GPU per run"
        return f"ray on {where}, device {self.device}, {per_run}"

    def map_unordered(self, configs: Iterable[RunConfig]) -> Iterator[RunRecord]:
        ray = import_ray()
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as exc:
                raise ConfigError(f"cannot reach Ray at {self.address!r}: {exc}") from None
        self.settle_device(ray.cluster_resources())
        task = ray.remote(run_one).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)
        threads = max(1, int(self.cpus))
        share = max(1, round(1 / self.gpus)) if self.gpus else 1
        source, pending, limit = iter(configs), {}, self._in_flight(ray)
        try:
            while True:
                while len(pending) < limit:  # a config is taken only when it can start
                    config = next(source, None)
                    if config is None:
                        break
                    pending[task.remote(config, self.device, self.run_dir, threads, share)] = config
                if not pending:
                    return
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    config = pending.pop(ref)
                    try:
                        yield ray.get(ref)
                    except ray.exceptions.RayError as exc:  # worker died, task cancelled, ...
                        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                        error = f"{type(exc).__name__}: {message}"[:500]
                        yield RunRecord.failed(config, error, self.device)
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):  # already finished or gone
                    ray.cancel(ref, force=True)
            if started:
                ray.shutdown()

    def _in_flight(self, ray: Any) -> int:
        """How many runs the cluster can hold at once with this executor's requests."""
        resources = ray.cluster_resources()
        fits = [resources.get("CPU", 1) / self.cpus]
        if self.gpus:
            fits.append(resources.get("GPU", 0) / self.gpus)
        return max(1, int(min(fits)))


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise CheBenchError(
            "the ray executor needs Ray: install che-bench[ray] (pip install 'che-bench[ray]')"
        ) from None
    return ray


def make_executor(
    name: str,
    *,
    jobs: int | None = None,
    device: str = "cpu",
    run_dir: Path | None = None,
    address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float | None = None,
    slurm_partition: str | None = None,
    slurm_time: str | None = None,
    slurm_folder: Path | None = None,
) -> Executor:
    """Build an executor by name (``local``, ``ray``, ``slurm`` or ``inline``)."""
    if name == "inline":
        return InlineExecutor(device, run_dir)
    if name == "local":
        if jobs is None:
            jobs = 1 if device.startswith("cuda") else cpu_count()
        return LocalExecutor(jobs, device, run_dir)
    if name == "ray":
        import_ray()
        return RayExecutor(
            device,
            run_dir,
            address=address,
            cpus_per_run=cpus_per_run,
            gpus_per_run=gpus_per_run,
        )
    if name == "slurm":
        from che_bench.running.slurm import SlurmExecutor, import_submitit, parse_slurm_time

        import_submitit()
        return SlurmExecutor(
            device,
            run_dir,
            jobs=jobs,
            partition=slurm_partition,
            time_min=parse_slurm_time(slurm_time),
            gpus_per_run=gpus_per_run,
            cpus_per_run=cpus_per_run,
            folder=slurm_folder,
        )
    raise ConfigError(f"unknown executor {name!r}; choose from {', '.join(EXECUTORS)}")


def consume(executor: Executor, configs: Iterable[RunConfig]) -> list[RunRecord]:
    """All records of ``configs`` (a convenience for library use and tests)."""
    return list(executor.map_unordered(list(configs)))
