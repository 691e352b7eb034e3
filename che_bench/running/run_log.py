"""What one run reports besides its row, fed by the trainer's callbacks: its curve file
(:mod:`che_bench.running.curves`) and the ``--log`` logger (:mod:`che_bench.running.loggers`).
Both are extras: one that raises is a warning and is switched off, never a failed run."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from che_bench.running.curves import CurveWriter, curve_path
from che_bench.running.loggers import LoggerWarning, make_logger

if TYPE_CHECKING:
    from che_bench.config import RunConfig
    from che_bench.results.record import RunRecord
    from che_bench.training.train import Progress


class RunLog:
    """The curve file and the logger of one run, fed by the trainer's callbacks.

    Use as a context manager around training and evaluation; :meth:`hooks` chains it in
    front of the caller's callbacks, so a line is on disk before a caller's hook runs.
    """

    def __init__(self, config: RunConfig, run_dir: Path | None) -> None:
        self.config = config
        self.curve = CurveWriter(curve_path(run_dir, config.run_key)) if run_dir else None
        self.logger = make_logger(config, run_dir) if config.log else None
        self.resumed_from = 0
        self.started = False

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def hooks(self, hooks: Any) -> Any:
        """``hooks`` (a :class:`~che_bench.running.runner.RunHooks`) with this log's
        ``on_train`` and ``on_resume`` run first."""
        return dataclasses.replace(
            hooks,
            on_train=_chain(self.on_train, hooks.on_train),
            on_resume=_chain(self.on_resume, hooks.on_resume),
        )

    def on_resume(self, step: int) -> None:
        self.resumed_from = step
        if self.curve is not None:
            self.curve.resumed(step)

    def on_train(self, progress: Progress) -> None:
        self._start()
        if self.curve is not None:
            self._guard("the curve file", self.curve.write, progress)
        self._call("step", progress)

    def finish(self, record: RunRecord) -> None:
        """Training and evaluation are over; ``record`` is the run's row."""
        self._start()
        if self.curve is not None:
            self._guard("the curve file", self.curve.settle)
        self._call("finish", record)

    def close(self) -> None:
        if self.curve is not None:
            self.curve.close()
        if self.started:
            self._call("close")
        self.logger = None

    def _start(self) -> None:
        if not self.started:
            self.started = True
            self._call("start", self.config, self.resumed_from)

    def _call(self, method: str, *args: Any) -> None:
        if self.logger is not None:
            self._guard(f"--log {self.config.log}", getattr(self.logger, method), *args)

    def _guard(self, what: str, call: Callable[..., None], *args: Any) -> None:
        """``call(*args)``; an exception is a warning, and switches ``what`` off."""
        try:
            call(*args)
        except Exception as exc:
            warnings.warn(
                f"run {self.config.run_key}: {what} failed, off for the rest of the run "
                f"({type(exc).__name__}: {exc})",
                LoggerWarning,
                stacklevel=3,
            )
            if what == "the curve file":
                if self.curve is not None:
                    self.curve.close()
                self.curve = None
            else:
                self.logger = None


def _chain(
    first: Callable[[Any], None], then: Callable[[Any], None] | None
) -> Callable[[Any], None]:
    if then is None:
        return first

    def both(value: Any) -> None:
        first(value)
        then(value)

    return both
