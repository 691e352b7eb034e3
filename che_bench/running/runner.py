"""One run, end to end: build → train (resumable) → evaluate → one RunRecord."""

from __future__ import annotations

import contextlib
import functools
import platform
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from che_bench.config import RunConfig
from che_bench.encodings import build_encoding
from che_bench.errors import CheBenchError, ConfigError
from che_bench.generators import Task, get_task
from che_bench.model import Encoder
from che_bench.results.record import RunRecord
from che_bench.running import kept
from che_bench.running.gate import CHECKPOINT, RunClaimed, RunGate, RunSkipped, Skip
from che_bench.running.run_log import RunLog
from che_bench.seeding import isolated_init_seed
from che_bench.training.evaluate import EvalSpec, evaluate
from che_bench.training.train import Progress, Trainer, TrainResult
from che_bench.util import DEFAULT_LEADERBOARD, DEFAULT_RUN_DIR


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda was requested but no CUDA GPU is visible; use cpu/auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def build_model(config: RunConfig, device: torch.device | str = "cpu") -> Encoder:
    """The encoder for ``config``, its parameters a pure function of ``config.seed``."""
    task = get_task(config.task, **config.task_params)
    with isolated_init_seed(config.seed):
        encoding = build_encoding(
            config.encoding,
            config.model.dims,
            causal=config.causal,
            options=config.encoding_options,
        )
        model = Encoder(task.input_size, task.output_size, encoding, config.model)
    return model.to(device)


@dataclass
class RunHooks:
    """Callbacks the CLI uses to show progress; all optional."""

    on_train: Callable[[Progress], None] | None = None
    on_eval: Callable[[int, int], None] | None = None
    on_phase: Callable[[str], None] | None = None
    on_resume: Callable[[int], None] | None = None
    on_skip: Callable[[Skip], None] | None = None  # run(): it did not run, and why


def execute(
    config: RunConfig,
    *,
    device: str = "auto",
    run_dir: Path | None = DEFAULT_RUN_DIR,
    max_memory: int | None = None,
    hooks: RunHooks | None = None,
) -> RunRecord:
    """Train and evaluate ``config``; return its record (never raises for a failing model:
    the record's status says ``diverged`` when training blew up, ``failed`` when the model
    raised or its logits were NaN/inf at a test length). Raises CheBenchError for a user
    error, such as a checkpoint written on another device type."""
    hooks = hooks or RunHooks()
    started = time.perf_counter()
    torch_device = resolve_device(device)
    task = get_task(config.task)
    checkpoint = run_dir / config.run_key / CHECKPOINT if run_dir else None
    record = RunRecord.begin(config, device_name(torch_device))
    with failure_recorded() as failure, RunLog(config, run_dir) as log:
        model = build_model(config, torch_device)
        trainer = Trainer(model, task, config, torch_device, checkpoint)
        if hooks.on_phase:
            hooks.on_phase("train")
        logged = log.hooks(hooks)  # the curve file and --log's logger see every step first
        result = trainer.run(logged.on_train, on_resume=logged.on_resume)
        record = finish_record(
            record,
            result,
            model,
            task,
            config,
            torch_device,
            max_memory=max_memory,
            hooks=hooks,
            keep_in=run_dir / config.run_key if run_dir else None,
        )
        log.finish(record)
    return failure.mark(record).with_wall_time(time.perf_counter() - started)


@dataclass
class Failure:
    """What :func:`failure_recorded` caught: the error of a model that raised, or None."""

    error: str | None = None

    def mark(self, record: RunRecord) -> RunRecord:
        """``record`` marked failed with the error, if there was one."""
        return record if self.error is None else record.with_error(self.error)


@contextlib.contextmanager
def failure_recorded() -> Iterator[Failure]:
    """A model that raises is a result, not a crash: the exception ends the block and is
    kept in the yielded :class:`Failure`. User errors (:class:`CheBenchError`) propagate."""
    failure = Failure()
    try:
        yield failure
    except CheBenchError:
        raise
    except Exception as exc:
        failure.error = f"{type(exc).__name__}: {exc}"


def finish_record(
    record: RunRecord,
    result: TrainResult,
    model: Encoder,
    task: Task,
    config: RunConfig,
    device: torch.device,
    *,
    max_memory: int | None,
    hooks: RunHooks,
    keep_in: Path | None = None,
) -> RunRecord:
    """``record`` with the training ``result`` and, if it trained, ``model``'s scores on the
    test lengths and at the training lengths (``config``'s evaluation settings); an
    evaluation that raises leaves the training recorded and the record failed. An ``ok``
    run keeps its model in the folder ``keep_in`` if ``config.keep_model`` (see
    :mod:`che_bench.running.kept`); the record names it."""
    record = record.with_training(result)
    if result.status != "ok":
        return record
    with failure_recorded() as failure:
        if hooks.on_phase:
            hooks.on_phase("evaluate")
        spec = EvalSpec.from_config(config)
        scores = evaluate(model, task, spec, device, max_memory=max_memory, progress=hooks.on_eval)
        record = record.with_scores(scores.accuracy_by_length, scores.score)
        in_distribution = EvalSpec.in_distribution(config)
        if in_distribution is not None:
            seen = evaluate(model, task, in_distribution, device, max_memory=max_memory)
            record = record.with_in_distribution(seen.accuracy_by_length, seen.score)
        if keep_in is not None and config.keep_model and record.status == "ok":
            record = keep_model(record, keep_in, config, model)
    return failure.mark(record)


def keep_model(record: RunRecord, folder: Path, config: RunConfig, model: Encoder) -> RunRecord:
    """``record`` naming the model it kept in ``folder``; a model that cannot be written
    (disk full, read-only folder) is a warning, not a failed run."""
    try:
        path = kept.save(folder, config, model, record.run_id, record.score)
    except OSError as e:
        warnings.warn(f"run {config.run_key}: model not kept ({e.strerror or e})", stacklevel=2)
        return record
    return record.with_model(str(path))


def device_name(device: torch.device) -> str:
    """What a row records as its device: the GPU model, or the CPU architecture, model
    and torch thread count (each changes float rounding, so results)."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    threads = torch.get_num_threads()
    return f"cpu:{platform.machine()} ({cpu_model()}, {threads} thread{'s' * (threads > 1)})"


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what ``platform`` knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return " ".join(value.split())
    return platform.processor() or "unknown CPU"


def run(
    config: RunConfig,
    *,
    leaderboard: Path | None = DEFAULT_LEADERBOARD,
    device: str = "auto",
    run_dir: Path | None = DEFAULT_RUN_DIR,
    max_memory: int | None = None,
    hooks: RunHooks | None = None,
    force: bool = False,
) -> RunRecord:
    """Execute ``config``, append its record to ``leaderboard`` (unless None), return it.

    A run_key that already has an ``ok`` row is not run again: that row is returned and
    ``hooks.on_skip`` gets the :class:`~che_bench.running.gate.Skip` (without that hook, a
    one-line :class:`~che_bench.running.gate.RunSkipped` warning says so). ``force`` runs
    it anyway and marks the new row ``rerun``. A run that another live process has claimed
    (is running now) raises :class:`~che_bench.running.gate.RunClaimed`. The row is appended
    before the checkpoint is removed (see :class:`~che_bench.running.gate.RunGate`).
    """
    with RunGate(leaderboard, run_dir, force=force) as gate:
        skip = gate.admit(config)
        if skip is not None and skip.holder is not None:
            raise RunClaimed(skip, leaderboard)
        if skip is not None and skip.row is not None:
            if hooks is not None and hooks.on_skip is not None:
                hooks.on_skip(skip)
            else:
                message = f"{skip.describe(leaderboard)}; force=True runs it again"
                warnings.warn(message, RunSkipped, stacklevel=2)
            return skip.row
        record = execute(config, device=device, run_dir=run_dir, max_memory=max_memory, hooks=hooks)
        return gate.settle(record)


def remove_checkpoint_if_ok(run_dir: Path | None, record: RunRecord) -> None:
    """After ``record`` is on disk: delete its run's checkpoint if the run is ``ok``. A failed
    or diverged run keeps it, so running the same command again resumes instead of
    starting over (and a checkpoint moved aside as ``.corrupt`` is never deleted)."""
    if run_dir is not None and record.status == "ok":
        remove_checkpoint(run_dir, record.run_key)


def remove_checkpoint(run_dir: Path, run_key: str) -> None:
    """Delete a run's checkpoint and its folder if that is then empty, whatever the run's
    status (see :func:`remove_checkpoint_if_ok` for the one to call after a run)."""
    checkpoint = run_dir / run_key / CHECKPOINT
    checkpoint.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        checkpoint.parent.rmdir()
