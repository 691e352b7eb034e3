"""The Slurm executor: one Slurm job per run, submitted and watched through submitit.

It keeps the contract of the other executors (:mod:`che_bench.running.executors`): a config
is taken from the lazy iterable only when fewer than ``jobs`` jobs are in flight (so a sweep
claims each cell just before its job is submitted), each job returns its ``RunRecord`` to
this process, which alone appends rows, and a job that ends without a result (cancelled,
timed out, node failure, killed) still yields a ``failed`` record. Closing the iterator, or
Ctrl-C, cancels the jobs still queued or running.

submitit (https://github.com/facebookincubator/submitit) pickles each call into a job
folder on the shared file system, runs it with this interpreter on a compute node, and
pickles the result back. ``CHE_BENCH_SLURM_CLUSTER=local`` (or ``cluster="local"``) runs
the same jobs as local subprocesses through submitit's ``LocalExecutor``, for tests.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from che_bench.config import RunConfig
from che_bench.errors import CheBenchError, ConfigError
from che_bench.results.record import RunRecord
from che_bench.running.executors import Executor
from che_bench.running.workers import run_one
from che_bench.util import DEFAULT_RUN_DIR

#: Environment variable naming submitit's cluster: ``slurm`` (default), ``local`` or ``debug``.
CLUSTER_ENV = "CHE_BENCH_SLURM_CLUSTER"
#: Jobs in flight at once when ``--jobs`` is not given.
DEFAULT_JOBS = 32
#: Wall-clock limit of each job when ``--slurm-time`` is not given, in minutes.
DEFAULT_TIME_MIN = 60
#: Seconds between two looks at the jobs in flight.
POLL_S = 1.0


def import_submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise CheBenchError(
            "the slurm executor needs submitit: install che-bench[slurm] "
            "(pip install 'che-bench[slurm]')"
        ) from None
    return submitit


def parse_slurm_time(text: str | int | None) -> int | None:
    """Slurm's time limits → whole minutes, rounded up: ``90``, ``4:00:00`` (H:MM:SS),
    ``1-12:00:00`` (D-H:MM:SS) or ``1-12`` (D-H); None stays None."""
    if text is None:
        return None
    raw = str(text).strip()
    match = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", raw)
    if match is None or (match[1] is None and match[3] is not None and match[4] is None):
        raise ConfigError(f"--slurm-time: expected minutes or H:MM:SS (or D-H:MM:SS), got {text!r}")
    days, first, second, third = (int(g) if g else 0 for g in match.groups())
    if match[1] is not None and match[3] is None:  # D-H
        minutes = days * 1440 + first * 60
    elif match[3] is None:  # minutes
        minutes = first
    else:  # [D-]H:MM[:SS]
        minutes = days * 1440 + first * 60 + second + math.ceil(third / 60)
    if minutes < 1:
        raise ConfigError(f"--slurm-time must be at least one minute, got {text!r}")
    return minutes


def run_job(
    config: RunConfig,
    device: str,
    run_dir: Path | None,
    threads: int,
    initializer: Callable[[], None] | None = None,
) -> RunRecord:
    """The body of one Slurm job: :func:`~che_bench.running.workers.run_one` after the
    optional ``initializer`` (e.g. registering encodings the job's process lacks)."""
    if initializer is not None:
        initializer()
    return run_one(config, device, run_dir, threads)


class SlurmExecutor(Executor):
    """One Slurm job per run, at most ``jobs`` in flight, each asking for ``gpus_per_run``
    GPUs and ``cpus_per_run`` CPUs on ``partition`` for ``time_min`` minutes."""

    def __init__(
        self,
        device: str = "auto",
        run_dir: Path | None = None,
        *,
        jobs: int | None = None,
        partition: str | None = None,
        time_min: int | None = None,
        gpus_per_run: float | None = None,
        cpus_per_run: float = 1.0,
        folder: Path | None = None,
        cluster: str | None = None,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        if gpus_per_run is not None and not float(gpus_per_run).is_integer():
            raise ConfigError(f"--gpus-per-run must be a whole number on slurm, got {gpus_per_run}")
        gpus = int(gpus_per_run) if gpus_per_run is not None else int(device.startswith("cuda"))
        if device.startswith("cuda") and gpus == 0:
            raise ConfigError("--device cuda on slurm needs --gpus-per-run 1 or more")
        if device not in ("auto", "cpu") and not device.startswith("cuda"):
            raise ConfigError(f"unknown device {device!r}; use auto, cpu or cuda")
        # ``auto`` is settled here, on the driver: the jobs get exactly what they ask for.
        super().__init__(("cuda" if gpus else "cpu") if device == "auto" else device, run_dir)
        if jobs is not None and jobs < 1:
            raise ConfigError(f"--jobs must be at least 1, got {jobs}")
        self.jobs = jobs or DEFAULT_JOBS
        self.partition = partition
        self.time_min = time_min or DEFAULT_TIME_MIN
        self.gpus = gpus
        self.cpus = max(1, math.ceil(cpus_per_run))
        self.folder = Path(folder or (run_dir or DEFAULT_RUN_DIR) / "slurm")
        self.cluster = cluster or os.environ.get(CLUSTER_ENV, "").strip() or "slurm"
        self.initializer = initializer
        self.poll_s = POLL_S

    def describe(self) -> str:
        where = "Slurm" if self.cluster == "slurm" else f"submitit's {self.cluster} cluster"
        partition = f"partition {self.partition}" if self.partition else "the default partition"
        return (
            f"{where} ({partition}), device {self.device}, {self.gpus} GPU / {self.cpus} CPU "
            f"per run, {self.time_min} min per job, at most {self.jobs} jobs in flight; "
            f"logs in {self.folder}"
        )

    def _submitter(self) -> Any:
        submitit = import_submitit()
        if self.cluster == "slurm" and shutil.which("sbatch") is None:
            raise ConfigError(
                "the slurm executor needs Slurm's sbatch on PATH; run the sweep on the "
                "cluster's login node"
            )
        try:
            submitter = submitit.AutoExecutor(self.folder.resolve() / "%j", cluster=self.cluster)
        except ValueError as exc:  # an unknown cluster name
            raise ConfigError(f"{CLUSTER_ENV}: {exc}") from None
        params: dict[str, Any] = {
            "name": "che-bench",
            "timeout_min": self.time_min,
            "gpus_per_node": self.gpus,
            "cpus_per_task": self.cpus,
            "tasks_per_node": 1,
            "nodes": 1,
        }
        if self.partition:
            params["slurm_partition"] = self.partition
        submitter.update_parameters(**params)
        return submitter

    def map_unordered(self, configs: Iterable[RunConfig]) -> Iterator[RunRecord]:
        source = iter(configs)
        submitter: Any = None
        running: list[tuple[Any, RunConfig]] = []
        exhausted = False
        try:
            while True:
                while not exhausted and len(running) < self.jobs:
                    config = next(source, None)
                    if config is None:
                        exhausted = True
                        break
                    submitter = submitter or self._submitter()
                    running.append((self._submit(submitter, config), config))
                if not running:
                    return
                finished = [pair for pair in running if pair[0].done()]
                if not finished:
                    time.sleep(self.poll_s)
                    continue
                for pair in finished:
                    running.remove(pair)
                    yield self._record(*pair)
        finally:
            for job, _ in running:  # closed early or interrupted: nothing may keep running
                with contextlib.suppress(Exception):  # already ended, or scancel is gone
                    job.cancel(check=False)

    def _submit(self, submitter: Any, config: RunConfig) -> Any:
        errors = import_submitit().core.utils
        try:
            with contextlib.redirect_stderr(io.StringIO()):  # sbatch's error, printed again
                return submitter.submit(
                    run_job, config, self.device, self.run_dir, self.cpus, self.initializer
                )
        except (errors.UncompletedJobError, errors.FailedSubmissionError, OSError) as exc:
            # sbatch refused: a bad partition, time limit, account, ...
            lines = [line for line in str(exc).splitlines() if line.strip()]
            why = lines[-1].strip() if lines else type(exc).__name__
            raise CheBenchError(f"slurm refused the job for run {config.run_key}: {why}") from None

    def _record(self, job: Any, config: RunConfig) -> RunRecord:
        """The job's own record, or a ``failed`` one saying how the job ended."""
        submitit = import_submitit()
        try:
            record = job.result()
        except submitit.core.utils.UncompletedJobError as exc:  # FailedJobError included
            return RunRecord.failed(config, job_error(job, exc), self.device)
        if not isinstance(record, RunRecord):
            why = f"slurm job {job.job_id} returned {type(record).__name__}, not a RunRecord"
            return RunRecord.failed(config, why, self.device)
        return record


def job_error(job: Any, exc: Exception) -> str:
    """One line for a job that ended without a record: how it ended and where its log is."""
    text = str(exc)
    state = re.search(r"\(state: ([^)]*)\)", text)
    if state:
        how = f"ended without a result (state {state[1]})"
    else:  # the job's function raised: the last line of its traceback, between dashes
        parts = text.split("-" * 22)
        lines = [ln.strip() for ln in (parts[1] if len(parts) > 2 else text).splitlines()]
        lines = [ln for ln in lines if ln]
        how = f"raised {lines[-1]}" if lines else "failed"
    return f"{type(exc).__name__}: slurm job {job.job_id} {how}; log {job.paths.stderr}"[:500]
