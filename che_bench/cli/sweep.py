"""``che-bench sweep``: every task × encoding × lr × seed of a grid, skipping finished runs."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from che_bench.cli._common import (
    Real,
    check_writable,
    leaderboard_option,
    parse_pe_options,
    parse_sets,
    run_dir_option,
    say,
)
from che_bench.cli._grid import (
    ExecutorChoice,
    plan_shape,
    run_configs,
    run_line,
    with_executor_options,
)
from che_bench.cli._logging import require_loggers, with_log_options
from che_bench.errors import ConfigError
from che_bench.util import parse_seeds

if TYPE_CHECKING:
    from che_bench.config import RunConfig
    from che_bench.running.gate import Skip


@click.command()
@click.argument("sweep_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--task", "-t", "tasks", multiple=True, help="Task name or glob, repeatable.")
@click.option("--pe", "encodings", multiple=True, help="Encoding name or glob, repeatable.")
@click.option("--seeds", help="Seeds: N, LO-HI or a comma list (default 0).")
@click.option(
    "--lr", "lrs", multiple=True, type=Real(0, low_open=True), help="Learning rate, repeatable."
)
@click.option("--preset", help="Budget preset name or YAML file (default quick).")
@click.option(
    "--pe-opt",
    "pe_opts",
    multiple=True,
    metavar="KEY=VALUE",
    help="Encoding option for the encodings that have it, repeatable.",
)
@click.option("--steps", type=int, help="Training steps (overrides the preset).")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override any setting, e.g. --set test_lengths=41-60.",
)
@leaderboard_option(
    "The JSONL file each run's row is appended to; runs with an ok row there are skipped."
)
@click.option("--device", help="auto (default), cpu or cuda.")
@run_dir_option("Checkpoints of unfinished runs (resumed on re-run) and the models ok runs keep.")
@click.option(
    "--keep-model/--no-keep-model",
    default=None,
    help="Keep each ok run's model in RUN_DIR/<run_key>/ (default on, about 1 MB a run).",
)
@with_log_options
@click.option("--dry-run", is_flag=True, help="Show the plan and exit.")
@with_executor_options
def sweep(
    sweep_file: Path | None,
    tasks: tuple[str, ...],
    encodings: tuple[str, ...],
    seeds: str | None,
    lrs: tuple[float, ...],
    preset: str | None,
    pe_opts: tuple[str, ...],
    steps: int | None,
    sets: tuple[str, ...],
    leaderboard: Path,
    device: str | None,
    run_dir: Path,
    keep_model: bool | None,
    log: str | None,
    log_dir: str | None,
    dry_run: bool,
    executor: ExecutorChoice,
) -> None:
    """Run every task × encoding × lr × seed of a grid; skip runs already in the leaderboard.

    \b
    Examples:
      che-bench sweep sweeps/example.yaml
      che-bench sweep ruoss2023 --dry-run     # a shipped sweep by name: example, cpu-repro,
                                              # ruoss2023, dape2024, baseline-ci
      che-bench sweep --task parity_check --pe 'dape*' --seeds 0-9 --preset quick --jobs 2
      che-bench sweep sweeps/example.yaml --executor ray --address auto
      che-bench sweep example --log tensorboard   # or overrides: {log: tensorboard} in the file
      che-bench sweep example --executor slurm --slurm-partition gpu --gpus-per-run 1
      che-bench sweep example --executor slurm --slurm-time 4:00:00 --jobs 100

    Flags override the file's values. Ctrl-C stops cleanly; run it again to resume.
    --dry-run prints the plan and the grid's estimated device-hours, from step and
    evaluation rates it measures on this machine's device (seconds per model shape).
    Sweeps running at the same time into one leaderboard split the grid: each cell is
    claimed just before it runs, and a cell another process claimed is skipped (one line
    each, naming its pid and host).
    """
    from che_bench.presets import shipped
    from che_bench.running.gate import RunGate
    from che_bench.running.sweep import SweepSpec, expand, load_sweep, parse_lrs, pending

    path = shipped(sweep_file, "sweeps", "{}.yaml") if sweep_file else None
    if path is not None and not path.is_file() and path != sweep_file:
        names = ", ".join(sorted(p.stem for p in path.parent.glob("*.yaml")))
        raise ConfigError(f"no sweep file {sweep_file} and no shipped sweep of that name ({names})")
    spec = load_sweep(path) if path else SweepSpec()
    spec.tasks = list(tasks) or spec.tasks
    spec.encodings = list(encodings) or spec.encodings
    spec.seeds = parse_seeds(seeds, "--seeds") if seeds else spec.seeds
    spec.lrs = parse_lrs(lrs, "--lr") if lrs else spec.lrs
    spec.preset = preset or spec.preset
    spec.encoding_options.update(parse_pe_options(pe_opts))
    parse_sets(sets, into=spec.overrides)
    if steps is not None:
        spec.overrides["steps"] = steps
    if keep_model is not None:
        spec.overrides["keep_model"] = keep_model
    spec.overrides.update({k: v for k, v in (("log", log), ("log_dir", log_dir)) if v})
    configs = expand(spec)
    require_loggers(configs)
    todo = pending(configs, leaderboard)
    runner = executor.build(
        device or spec.device or "auto", run_dir, name=spec.executor or "local", jobs=spec.jobs
    )
    say(
        f"sweep: {len(configs)} runs ({plan_shape(configs)}); {len(configs) - len(todo)} already "
        f"ok in {leaderboard}; {len(todo)} to run on {runner.describe()}",
    )
    if dry_run:
        if todo:
            say(estimate_line(todo, runner.device))
        return
    if todo:
        check_writable(leaderboard)
    with RunGate(leaderboard, run_dir) as gate:  # checkpoints that finished runs left behind
        gate.remove_leftovers(configs)
    if not todo:
        return
    started = time.perf_counter()
    result = run_configs(todo, runner, leaderboard)
    ok = len(result.rows) - len(result.failed)
    say(
        f"finished {len(result.rows)} runs in {time.perf_counter() - started:.0f}s: "
        f"{ok} ok, {len(result.failed)} failed → {leaderboard}",
    )
    for line in skip_summary(result.skipped):
        say(line)
    for row in result.failed:
        say("  " + run_line(row).strip())
    if result.failed:
        sys.exit(1)


def estimate_line(configs: Sequence[RunConfig], device: str) -> str:
    """The grid's estimated cost from rates measured on this machine's ``device`` now."""
    import torch

    from che_bench.running.cost import estimate_hours
    from che_bench.running.runner import device_name, resolve_device

    if device.startswith("cuda") and not torch.cuda.is_available():  # a Slurm login node
        device = "auto"
    torch_device = resolve_device(device)
    say(f"measuring step and evaluation rates on {device_name(torch_device)} …")
    hours, shapes = estimate_hours(configs, torch_device)
    per_run = hours / len(configs)
    return (
        f"estimated cost: {hours:,.2f} device-hours for {len(configs)} runs "
        f"({per_run * 60:,.1f} min per run) on {device_name(torch_device)}, one run at a time; "
        f"rates measured here for {shapes} model shape(s), warm-up and checkpoints not counted"
    )


def skip_summary(skipped: Sequence[Skip]) -> list[str]:
    """The closing lines about cells that other processes ran (or are running)."""
    claimed = [s for s in skipped if s.holder is not None]
    lines = []
    if claimed:
        holders = ", ".join(sorted({s.holder.who for s in claimed if s.holder}))
        lines.append(
            f"skipped {len(claimed)} run(s) claimed by another process ({holders}); run the "
            "same command again once it is done to pick up any that did not end ok"
        )
    if len(skipped) > len(claimed):
        lines.append(f"skipped {len(skipped) - len(claimed)} run(s) another process finished")
    return lines
