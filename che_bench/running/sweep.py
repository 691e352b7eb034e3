"""Sweeps: expand a grid of runs, skip the ones already done, run the rest, write each row once.

A sweep file (``sweeps/example.yaml``) names the grid::

    tasks: [parity_check, "*string*"]      # names or shell globs
    encodings: [alibi, "dape*"]            # names or shell globs
    seeds: 0-1                             # "LO-HI", "0,3,7", an integer or a list
    lrs: [1.0e-3, 3.0e-4]                  # optional; default: the preset's lr
    preset: smoke                          # a preset name or a YAML file
    encoding_options: {kernel: 5}          # see below
    overrides: {steps: 50, test_lengths: [41, 60]}   # any RunConfig setting
    executor: local                        # optional: local, ray or inline
    jobs: 2                                # optional

``encoding_options`` are applied to each selected encoding that declares the option and
ignored by the others (``kernel`` reaches the DAPE variants, not ``alibi``); an option that
no selected encoding declares is an error, since it is almost always a typo. A list of
values is one more axis of the grid for the encodings that declare it:
``{lookup: [intended, released]}`` runs ``rand-relative`` twice and every other encoding once.

The grid is tasks × encodings × lrs × seeds. A run whose ``run_key`` (config hash + seed)
already has an ``ok`` row in the leaderboard is skipped, so re-running a sweep resumes it.
Each cell is claimed just before it is dispatched (:mod:`che_bench.running.claims`) and the
leaderboard is read again after claiming, so sweeps that overlap in one leaderboard split
their shared cells instead of running them twice; a cell claimed by another live process
is skipped and reported. Only this process writes its rows: executors return records,
:func:`run_sweep` appends them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from che_bench.config import DEFAULT_PRESET, RunConfig, resolve
from che_bench.errors import ConfigError
from che_bench.results.leaderboard import completed_keys
from che_bench.results.record import InvalidRecord, RunRecord
from che_bench.running.executors import Executor
from che_bench.running.gate import RunGate, Skip
from che_bench.util import EXECUTORS, parse_seeds
from che_bench.yamlio import compose, load_mapping, read_text

SWEEP_KEYS = {
    "tasks",
    "encodings",
    "seeds",
    "lrs",
    "preset",
    "encoding_options",
    "overrides",
    "executor",
    "jobs",
    "device",
}
#: Settings with their own sweep key, so not accepted under ``overrides``.
NOT_OVERRIDES = {"task", "encoding", "encoding_options", "seed", "lr", "preset"}
GLOB_CHARS = "*?["


@dataclass
class SweepSpec:
    """A grid of runs before expansion. Patterns are names or shell globs."""

    tasks: list[str] = field(default_factory=list)
    encodings: list[str] = field(default_factory=list)
    seeds: list[int] = field(default_factory=lambda: [0])
    lrs: list[float | None] = field(default_factory=lambda: [None])
    preset: str = DEFAULT_PRESET
    encoding_options: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    executor: str | None = None
    jobs: int | None = None
    device: str | None = None


def parse_lrs(values: Iterable[Any], where: str = "lrs") -> list[float | None]:
    """Learning rates as floats (YAML reads ``1e-3`` as a string); empty → preset default."""
    lrs: list[float | None] = []
    for value in values:
        try:
            lr = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected numbers, got {value!r}") from None
        if not lr > 0:
            raise ConfigError(f"{where}: learning rates must be positive, got {value!r}")
        lrs.append(lr)
    return list(dict.fromkeys(lrs)) or [None]


def load_sweep(path: Path) -> SweepSpec:
    """Read and validate a sweep file; errors name ``file:line``."""
    data = load_mapping(path, SWEEP_KEYS, what="sweep file")
    lines = _key_lines(path)

    def where(key: str) -> str:
        return f"{path}:{lines.get(key, 1)}"

    def str_list(key: str) -> list[str]:
        value = data.get(key) or []
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where(key)}: {key} must be a list of names or globs")
        return value

    mappings = {}
    for key in ("encoding_options", "overrides"):
        value = data.get(key) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"{where(key)}: {key} must be a mapping of names to values")
        mappings[key] = value
    for key in mappings["overrides"]:
        problem = override_problem(key)
        if problem:
            line = lines.get(f"overrides.{key}", lines.get("overrides", 1))
            raise ConfigError(f"{path}:{line}: {problem}")
    lrs = data.get("lrs")
    lrs = [] if lrs is None else lrs if isinstance(lrs, list) else [lrs]
    jobs = data.get("jobs")
    if jobs is not None and (not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1):
        raise ConfigError(f"{where('jobs')}: jobs must be a positive integer, got {jobs!r}")
    for key in ("preset", "executor", "device"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{where(key)}: {key} must be a string, got {data[key]!r}")
    if data.get("executor", "local") not in EXECUTORS:
        choices = ", ".join(EXECUTORS)
        raise ConfigError(f"{where('executor')}: executor must be one of {choices}")
    spec = SweepSpec(
        tasks=str_list("tasks"),
        encodings=str_list("encodings"),
        seeds=parse_seeds(data.get("seeds", 0), where("seeds")),
        lrs=parse_lrs(lrs, where("lrs")),
        preset=str(data.get("preset", DEFAULT_PRESET)),
        encoding_options=mappings["encoding_options"],
        overrides=mappings["overrides"],
        executor=data.get("executor"),
        jobs=jobs,
        device=data.get("device"),
    )
    preset = Path(spec.preset)
    relative = spec.preset.endswith((".yaml", ".yml")) and not preset.is_absolute()
    if relative and not preset.exists() and (path.parent / preset).exists():
        spec.preset = str(path.parent / preset)  # relative to the sweep file
    return spec


def override_problem(key: str) -> str | None:
    """Why setting ``key`` cannot be overridden in a sweep, or None if it can."""
    allowed = {f.name for f in dataclasses.fields(RunConfig)} - NOT_OVERRIDES
    if key in allowed:
        return None
    if key in NOT_OVERRIDES:
        return f"cannot override {key!r}; it has its own option (and sweep key)"
    return f"unknown setting {key!r}; valid: {', '.join(sorted(allowed))}"


def _key_lines(path: Path) -> dict[str, int]:
    """1-based lines of top-level keys and of ``overrides.<key>`` (for error messages)."""
    try:
        node, _ = compose(path, read_text(path, "sweep file"))
    except ConfigError:
        return {}
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines[key.value] = key.start_mark.line + 1
            if isinstance(value, yaml.MappingNode):
                for sub, _ in value.value:
                    lines[f"{key.value}.{sub.value}"] = sub.start_mark.line + 1
    return lines


def match_names(patterns: Sequence[str], kind: str) -> list[str]:
    """Names of ``kind`` (``task`` or ``encoding``) matching any pattern, in pattern order.

    A plain name must exist (did-you-mean otherwise); a glob must match at least one name.
    """
    from che_bench.encodings import ENCODINGS
    from che_bench.generators import TASKS

    registry = TASKS if kind == "task" else ENCODINGS
    if not patterns:
        raise ConfigError(
            f"no {kind}s given; pass --{'task' if kind == 'task' else 'pe'} "
            f"or list them under {kind}s: in the sweep file"
        )
    names: list[str] = []
    for pattern in patterns:
        if not any(c in pattern for c in GLOB_CHARS):
            registry.get(pattern)  # raises with a did-you-mean
            names.append(pattern)
            continue
        found = registry.list(pattern)
        if not found:
            raise ConfigError(f"no {kind} matches {pattern!r}; run `che-bench list {kind}s`")
        names.extend(found)
    return list(dict.fromkeys(names))


def expand(spec: SweepSpec) -> list[RunConfig]:
    """Every RunConfig of the grid, deduplicated by run_key, in task/encoding/lr/seed order."""
    from che_bench.encodings import ENCODINGS, get_encoding

    tasks = match_names(spec.tasks, "task")
    encodings = match_names(spec.encodings, "encoding")
    accepted = {name: set(get_encoding(name).options) for name in encodings}
    orphans = [k for k in spec.encoding_options if not any(k in a for a in accepted.values())]
    known = {k for name in ENCODINGS.list() for k in get_encoding(name).options}
    if any(k not in known for k in orphans):  # a typo: no encoding at all has it
        raise ConfigError(
            f"no selected encoding has option {orphans[0]!r}; see `che-bench list encodings`"
        )
    if orphans:  # e.g. a sweep file's option for an encoding that --pe left out
        names = ", ".join(repr(k) for k in orphans)
        warnings.warn(f"no selected encoding has option {names}; ignored", stacklevel=2)
    configs: dict[str, RunConfig] = {}
    for task in tasks:
        for encoding in encodings:
            for options in option_grid(spec.encoding_options, accepted[encoding]):
                for lr in spec.lrs:
                    for seed in spec.seeds:
                        config = resolve(
                            task,
                            encoding,
                            preset=spec.preset,
                            encoding_options=options,
                            seed=seed,
                            lr=lr,
                            **spec.overrides,
                        )
                        configs.setdefault(config.run_key, config)
    return list(configs.values())


def option_grid(options: dict[str, Any], accepted: set[str]) -> list[dict[str, Any]]:
    """Every combination of the ``accepted`` options' values (a list is an axis)."""
    axes = {k: v if isinstance(v, list) else [v] for k, v in options.items() if k in accepted}
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def pending(configs: Sequence[RunConfig], leaderboard: Path | None) -> list[RunConfig]:
    """The configs without an ``ok`` row in ``leaderboard`` (all of them if None/missing)."""
    if leaderboard is None or not leaderboard.exists():
        return list(configs)
    done = completed_keys(leaderboard)
    return [c for c in configs if c.run_key not in done]


@dataclass
class SweepResult:
    rows: list[RunRecord] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)  # claimed elsewhere, or ok meanwhile

    @property
    def failed(self) -> list[RunRecord]:
        return [r for r in self.rows if r.status != "ok"]


def run_sweep(
    configs: Sequence[RunConfig],
    executor: Executor,
    leaderboard: Path | None,
    *,
    on_row: Callable[[RunRecord], None] | None = None,
    on_skip: Callable[[Skip], None] | None = None,
) -> SweepResult:
    """Run ``configs`` on ``executor`` and append each record as it arrives (the one writer).

    Each config is admitted by a :class:`~che_bench.running.gate.RunGate` just before the
    executor starts it; one that is not (another process claimed it, or finished it since
    the sweep began) is reported to ``on_skip``. KeyboardInterrupt propagates after the
    executor has cancelled the pending runs and the claims are released; records already
    finished are on disk, so running the same sweep again resumes it.
    """
    result = SweepResult()
    by_key = {c.run_key: c for c in configs}
    with RunGate(leaderboard, executor.run_dir) as gate:

        def admitted() -> Iterator[RunConfig]:
            for config in configs:
                skip = gate.admit(config)
                if skip is None:
                    yield config
                    continue
                result.skipped.append(skip)
                if on_skip is not None:
                    on_skip(skip)

        with contextlib.closing(executor.map_unordered(admitted())) as records:
            for record in records:
                try:
                    record = gate.settle(record)
                except InvalidRecord as exc:  # changed in place after it was built
                    failed = RunRecord.failed(by_key[record.run_key], str(exc), executor.device)
                    record = gate.settle(failed)
                result.rows.append(record)
                if on_row is not None:
                    on_row(record)
    return result
