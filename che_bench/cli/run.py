"""``che-bench run``: train one model (or a seed ensemble), score it, append its record."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from che_bench.cli._common import (
    Real,
    check_writable,
    console,
    leaderboard_option,
    parse_pe_options,
    parse_sets,
    run_dir_option,
    say,
)
from che_bench.cli._logging import require_loggers, with_log_options
from che_bench.cli._view import ProgressView, render_row
from che_bench.errors import ConfigError
from che_bench.util import (
    fmt_range,
    parse_seeds,
    parse_size,
)

if TYPE_CHECKING:
    from che_bench.running.gate import Skip


@click.command()
@click.option("--task", "-t", required=True, help="Task name (see `che-bench list tasks`).")
@click.option("--pe", "encoding", required=True, help="Encoding (see `che-bench list encodings`).")
@click.option(
    "--pe-opt",
    "pe_opts",
    multiple=True,
    metavar="KEY=VALUE",
    help="Encoding option, repeatable (e.g. --pe-opt kernel=5).",
)
@click.option(
    "--preset",
    default="quick",
    show_default=True,
    help="Budget preset name (smoke, quick, paper) or a YAML file.",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Seed of the initialisation, the data stream and dropout (the run_key ends in -s<seed>).",
)
@click.option(
    "--seeds",
    help="Train several seeds (N, LO-HI or a list) as one seed-parallel ensemble; one row each.",
)
@click.option("--lr", type=Real(0, low_open=True), help="Learning rate (preset default otherwise).")
@click.option("--steps", type=int, help="Training steps.")
@click.option("--batch-size", type=int, help="Training batch size.")
@click.option("--train-lengths", help="Training lengths LO-HI (e.g. 1-40).")
@click.option(
    "--test-lengths",
    help="Test lengths LO-HI, or LO-HI:STRIDE for every STRIDE-th length, ends included "
    "(41-500:10 scores 41, 51, …, 491, 500; recorded, and reported apart from full runs).",
)
@click.option("--eval-samples", type=int, help="Samples per test length.")
@click.option("--eval-batch-size", type=int, help="Evaluation sub-batch size.")
@click.option(
    "--eval-dropout/--no-eval-dropout",
    default=None,
    help="Keep dropout on at evaluation (reference behaviour).",
)
@click.option(
    "--causal/--bidirectional",
    default=False,
    show_default=True,
    help="Causal attention form of the encoding (not the CHE default).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16"]),
    help="fp32 (default) or bf16 autocast for matmuls and attention; part of the run's hash.",
)
@click.option(
    "--deterministic/--nondeterministic",
    default=None,
    help="Deterministic kernels on CUDA (default on; off may be faster, same-seed runs may "
    "then differ in the last bits).",
)
@click.option(
    "--compile/--no-compile",
    "compile",
    default=None,
    help="torch.compile the training step (recorded; numbers agree up to float rounding).",
)
@leaderboard_option("The JSONL file the run's row is appended to (created if missing).")
@run_dir_option("Where checkpoints live (a re-run resumes from them) and ok runs keep their model.")
@click.option(
    "--keep-model/--no-keep-model",
    default=None,
    help="Keep the trained model as RUN_DIR/<run_key>/model.pt (default on; about 1 MB) for "
    "`che-bench evaluate` and `che-bench inspect`.",
)
@click.option("--checkpoint-every", type=int, help="Steps between checkpoints.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any other setting, repeatable, e.g. --set model.d_model=128 --set log_every=10 "
    "(an option given as well wins).",
)
@with_log_options
@click.option("--max-memory", help="Evaluation memory budget, e.g. 2GB (default: 1/4 of free).")
@click.option(
    "--force",
    is_flag=True,
    help="Run again although the leaderboard has an ok row for this run; the new row is "
    "marked rerun (e.g. che-bench run --task parity_check --pe nope --preset smoke --force).",
)
def run(
    task: str,
    encoding: str,
    pe_opts: tuple[str, ...],
    preset: str,
    seed: int,
    seeds: str | None,
    device: str,
    leaderboard: Path,
    run_dir: Path,
    max_memory: str | None,
    force: bool,
    sets: tuple[str, ...],
    **overrides: Any,
) -> None:
    """Train one model on TASK with encoding PE, score it, append a leaderboard row.

    \b
    Examples:
      che-bench run --task parity_check --pe nope --preset smoke
      che-bench run --task solve_equation --pe dape-kerple
      che-bench run --task reverse_string --pe dapev2-kerple --pe-opt kernel=5 --steps 2000
      che-bench run --task parity_check --pe nope --preset smoke --force   # run it again
      che-bench run --task parity_check --pe alibi --preset smoke --log tensorboard
      che-bench run --task bucket_sort --pe rope --set model.d_model=128 --set model.num_heads=4

    Killed runs resume from their last checkpoint when the same command is run again. A run
    that already has an ok row in the leaderboard is not run again (its row is shown, exit
    0) unless --force; one that another process is running now is skipped (exit 0).
    """
    from che_bench.config import resolve
    from che_bench.running.gate import RunClaimed
    from che_bench.running.runner import run as run_config

    config = resolve(
        task,
        encoding,
        preset=preset,
        encoding_options=parse_pe_options(pe_opts),
        seed=seed,
        **parse_sets(sets, into={k: v for k, v in overrides.items() if v is not None}, keep=True),
    )
    budget = parse_size(max_memory)
    check_writable(leaderboard)
    require_loggers([config])
    if seeds is not None:
        if config.log:
            raise ConfigError("--log is not available with --seeds; use `che-bench sweep`")
        run_ensemble(config, parse_seeds(seeds), leaderboard, device, run_dir, budget, force)
        return
    console.print(
        f"[bold]{task}[/] × [bold]{encoding}[/]  seed {seed}  preset {config.preset}  "
        f"steps {config.steps}  lr {config.lr:g}  train {fmt_range(config.train_lengths)}  "
        f"test {fmt_range(config.test_lengths)}"
        + (f" every {config.test_stride}" if config.test_stride > 1 else "")
        + f"  run {config.run_key}",
        highlight=False,
    )
    skipped: list[Skip] = []
    try:
        with ProgressView(console) as view:
            hooks = view.hooks()
            hooks.on_skip = skipped.append
            record = run_config(
                config,
                leaderboard=leaderboard,
                device=device,
                run_dir=run_dir,
                max_memory=budget,
                hooks=hooks,
                force=force,
            )
    except RunClaimed as exc:
        say(f"skipped: {skip_line(exc.skip, leaderboard)}")
        return
    if skipped:
        say(f"skipped: {skip_line(skipped[0], leaderboard)}")
        render_row(record)
        return
    render_row(record)
    rerun = " (marked rerun: an ok row for this run was already there)" if record.rerun else ""
    say(f"appended 1 row to {leaderboard}{rerun}")
    if record.model:
        say(f"kept the model: {record.model} (re-score it: che-bench evaluate {record.run_key})")
    if config.log:
        say(log_line(config, run_dir))
    if record.status != "ok":
        sys.exit(1)


def run_ensemble(
    config: Any,
    seeds: list[int],
    leaderboard: Path,
    device: str,
    run_dir: Path,
    budget: int | None,
    force: bool,
) -> None:
    """`run --seeds`: train the seeds together as one ensemble, append one row each. Seeds
    with an ok row (unless ``force``) or claimed by another process are skipped."""
    import dataclasses

    from che_bench.running.gate import RunGate
    from che_bench.training.ensemble import train_ensemble

    configs = [dataclasses.replace(config, seed=s) for s in seeds]
    console.print(
        f"[bold]{config.task}[/] × [bold]{config.encoding}[/]  {len(seeds)} seeds as one "
        f"ensemble  preset {config.preset}  steps {config.steps}  lr {config.lr:g}",
        highlight=False,
    )
    with RunGate(leaderboard, run_dir, force=force) as gate:
        todo = []
        for c in configs:
            skip = gate.admit(c)
            if skip is None:
                todo.append(c)
            else:
                say(f"seed {c.seed}: skipped: {skip_line(skip, leaderboard)}")
        if not todo:
            return
        with ProgressView(console) as view:
            records = train_ensemble(
                todo, device=device, run_dir=run_dir, max_memory=budget, hooks=view.hooks()
            )
        records = [gate.settle(r) for r in records]
    for r in records:
        score = "-" if r.score is None else f"{r.score:.4f}"
        rerun = "  (rerun)" if r.rerun else ""
        say(f"seed {r.seed}: {r.status}  score {score}{rerun}")
    say(f"appended {len(records)} rows to {leaderboard}")
    if any(r.status != "ok" for r in records):
        sys.exit(1)


def log_line(config: Any, run_dir: Path) -> str:
    """Where ``--log`` sent the run, and how to look at it."""
    from che_bench.running.loggers import log_folder

    folder = log_folder(config, run_dir)
    if config.log == "tensorboard":
        view = config.log_dir or run_dir
        return f"logged to TensorBoard: {folder} (view: tensorboard --logdir {view})"
    where = f" (files under {folder})" if folder is not None else ""
    return f"logged to Weights & Biases as run {config.run_key}{where}"


def skip_line(skip: Skip, leaderboard: Path) -> str:
    """Why a run was not run, in one line."""
    again = "; --force runs it again" if skip.row is not None else ""
    return skip.describe(leaderboard) + again
