"""The ``che-bench`` command line: thin click commands over the library, rendered with rich.

Every user mistake ends as one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import math
import sys
import warnings
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from che_bench.errors import CheBenchError, ConfigError

# Pipes and CI logs get wide lines instead of rich's 80-column default.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)

SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 2**10,
    "mb": 2**20,
    "gb": 2**30,
    "k": 2**10,
    "m": 2**20,
    "g": 2**30,
}


def parse_size(text: str | None) -> int | None:
    """``2GB``, ``512MB``, ``1.5g`` → bytes."""
    if text is None:
        return None
    raw = text.strip().lower().replace(" ", "").replace("ib", "b")
    number = raw.rstrip("kmgb")
    unit = raw[len(number) :]
    try:
        value = float(number) * SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise ConfigError(
            f"--max-memory: expected a size like 2GB or 512MB, got {text!r}"
        ) from None
    if not math.isfinite(value) or value < 1:
        raise ConfigError(f"--max-memory must be a positive number of bytes, got {text!r}")
    return int(value)


def parse_pe_options(pairs: tuple[str, ...]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--pe-opt expects KEY=VALUE (e.g. kernel=5), got {pair!r}")
        options[key.strip()] = value.strip()
    return options


def parse_seeds(text: str) -> list[int]:
    """``3``, ``0-9`` or ``0,2,5`` → a list of seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            lo, sep, hi = part.strip().partition("-")
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise ConfigError(f"seeds: expected N, LO-HI or a comma list, got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise ConfigError(f"seeds must be non-negative integers, got {text!r}")
    return seeds


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> None:
    err_console.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


class CheBenchGroup(click.Group):
    """Turns user errors (ours and click's usage errors) into one line and exit code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except CheBenchError as exc:
            fail(str(exc))
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            fail(f"{exc.format_message()}{where}")
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except (KeyboardInterrupt, click.Abort):
            fail("interrupted; re-run the same command to resume", 130)


@click.group(cls=CheBenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="che-bench")
def main() -> None:
    """che-bench: length generalization of positional encodings on the 15 CHE tasks.

    Train a small encoder on lengths 1-40, score it on longer inputs, and append one row
    to a leaderboard. Start with:

    \b
      che-bench list tasks
      che-bench list encodings 'dape*'
      che-bench sample --task reverse_string --length 8
      che-bench run --task parity_check --pe rope --preset smoke
    """
    warnings.showwarning = _show_warning


@main.command("list")
@click.argument("what", type=click.Choice(["tasks", "encodings", "presets"]))
@click.argument("pattern", default="*")
def list_command(what: str, pattern: str) -> None:
    """List tasks, encodings or presets, optionally filtered by a wildcard PATTERN.

    \b
    Examples:
      che-bench list encodings 'dape*'
      che-bench list tasks '*string*'
    """
    from che_bench.config import list_presets, load_card, load_preset
    from che_bench.encodings import ENCODINGS, list_encodings
    from che_bench.generators import list_tasks

    table = Table(box=None, pad_edge=False)
    if what == "tasks":
        names = list_tasks(pattern)
        for column in ("task", "level", "chance", "train", "test", "description"):
            table.add_column(column)
        for name in names:
            card = load_card(name)
            table.add_row(
                name,
                card["level"],
                f"{card['chance']:.0%}",
                "-".join(map(str, card["train_lengths"])),
                "-".join(map(str, card["test_lengths"])),
                card["description"],
            )
    elif what == "encodings":
        names = list_encodings(pattern)
        table.add_column("encoding")
        table.add_column("options")
        table.add_column("description")
        for name in names:
            entry = ENCODINGS.get(name)
            options = ", ".join(f"{k}={v.default}" for k, v in entry.options.items())
            table.add_row(name, options or "-", entry.description)
    else:
        names = [p for p in list_presets() if __import__("fnmatch").fnmatch(p, pattern)]
        table.add_column("preset")
        table.add_column("description")
        for name in names:
            table.add_row(name, str(load_preset(name).get("description", "")))
    if not names:
        raise ConfigError(f"no {what} match {pattern!r}; try `che-bench list {what}`")
    console.print(table)


@main.command()
@click.option("--task", "-t", required=True, help="Task name (see `che-bench list tasks`).")
@click.option("--length", "-n", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--count", "-c", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
def sample(task: str, length: int, count: int, seed: int) -> None:
    """Print decoded examples of TASK at input length N, to see what it asks."""
    import numpy as np

    from che_bench.generators import get_task

    instance = get_task(task)
    batch = instance.sample(np.random.default_rng(seed), count, length)
    table = Table(title=f"{task} ({instance.level}), length {length}", box=None)
    for column in ("input", "target", "mask"):
        table.add_column(column, overflow="fold")
    for x, y, m in zip(batch.inputs, batch.targets, batch.mask):
        table.add_row(
            instance.decode_inputs(x),
            instance.decode_targets(y),
            "".join("1" if b else "." for b in m),
        )
    console.print(table)


@main.command()
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
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--seeds",
    help="Train several seeds (N, LO-HI or a list) as one seed-parallel ensemble; one row each.",
)
@click.option("--lr", type=float, help="Learning rate (preset default otherwise).")
@click.option("--steps", type=int, help="Training steps.")
@click.option("--batch-size", type=int, help="Training batch size.")
@click.option("--train-lengths", help="Training lengths LO-HI (e.g. 1-40).")
@click.option("--test-lengths", help="Test lengths LO-HI (e.g. 41-500).")
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
    "--leaderboard",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("leaderboards/local.jsonl"),
    show_default=True,
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs"),
    show_default=True,
    help="Where checkpoints live; a re-run resumes from them.",
)
@click.option("--checkpoint-every", type=int, help="Steps between checkpoints.")
@click.option("--max-memory", help="Evaluation memory budget, e.g. 2GB (default: 1/4 of free).")
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
    **overrides: Any,
) -> None:
    """Train one model on TASK with encoding PE, score it, append a leaderboard row.

    \b
    Examples:
      che-bench run --task parity_check --pe nope --preset smoke
      che-bench run --task solve_equation --pe dape-kerple
      che-bench run --task reverse_string --pe dapev2-kerple --pe-opt kernel=5 --steps 2000

    Killed runs resume from their last checkpoint when the same command is run again.
    """
    from che_bench.config import resolve
    from che_bench.runner import run as run_config

    config = resolve(
        task,
        encoding,
        preset=preset,
        encoding_options=parse_pe_options(pe_opts),
        seed=seed,
        **overrides,
    )
    budget = parse_size(max_memory)
    check_writable(leaderboard)
    if seeds is not None:
        run_ensemble(config, parse_seeds(seeds), leaderboard, device, run_dir, budget)
        return
    console.print(
        f"[bold]{task}[/] × [bold]{encoding}[/]  seed {seed}  preset {config.preset}  "
        f"steps {config.steps}  lr {config.lr:g}  train {fmt_range(config.train_lengths)}  "
        f"test {fmt_range(config.test_lengths)}  run {config.run_key}",
        highlight=False,
    )
    with ProgressView(console) as view:
        row = run_config(
            config,
            leaderboard=leaderboard,
            device=device,
            run_dir=run_dir,
            max_memory=budget,
            hooks=view.hooks(),
        )
    render_row(row)
    console.print(f"appended 1 row to {leaderboard}", highlight=False)
    if row["status"] != "ok":
        sys.exit(1)


def run_ensemble(
    config: Any, seeds: list[int], leaderboard: Path, device: str, run_dir: Path, budget: int | None
) -> None:
    """`run --seeds`: train the seeds together (che_bench.ensemble), append one row each."""
    import dataclasses

    from che_bench.ensemble import train_ensemble
    from che_bench.leaderboard import append_rows
    from che_bench.runner import remove_checkpoint

    configs = [dataclasses.replace(config, seed=s) for s in seeds]
    console.print(
        f"[bold]{config.task}[/] × [bold]{config.encoding}[/]  {len(seeds)} seeds as one "
        f"ensemble  preset {config.preset}  steps {config.steps}  lr {config.lr:g}",
        highlight=False,
    )
    with ProgressView(console) as view:
        rows = train_ensemble(
            configs, device=device, run_dir=run_dir, max_memory=budget, hooks=view.hooks()
        )
    append_rows(leaderboard, rows)
    for c in configs:
        remove_checkpoint(run_dir, c.run_key)
    for row in rows:
        score = "-" if row["score"] is None else f"{row['score']:.4f}"
        console.print(f"seed {row['seed']}: {row['status']}  score {score}", highlight=False)
    console.print(f"appended {len(rows)} rows to {leaderboard}", highlight=False)
    if any(row["status"] != "ok" for row in rows):
        sys.exit(1)


def fmt_range(pair: tuple[int, int] | list[int]) -> str:
    return f"{pair[0]}-{pair[1]}"


def check_writable(path: Path) -> None:
    """Fail before training, not after, when the leaderboard cannot be written."""
    import os

    target = path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))
    if path.is_dir() or not os.access(target, os.W_OK):
        raise ConfigError(f"leaderboard {path} is not writable; pass --leaderboard PATH")


class ProgressView:
    """A live bar on a terminal; plain log lines otherwise (CI, pipes)."""

    def __init__(self, out: Console) -> None:
        self.out = out
        self.live = out.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=out,
            disable=not self.live,
        )
        self.bars: dict[str, Any] = {}

    def __enter__(self) -> ProgressView:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(*exc)

    def hooks(self):
        from che_bench.runner import RunHooks

        return RunHooks(on_train=self.on_train, on_eval=self.on_eval, on_resume=self.on_resume)

    def on_resume(self, step: int) -> None:
        self.out.print(f"resuming from the checkpoint at step {step}", highlight=False)

    def _bar(self, name: str, total: int) -> Any:
        if name not in self.bars:
            self.bars[name] = self.progress.add_task(name, total=total, info="")
        return self.bars[name]

    def on_train(self, p) -> None:
        info = f"loss {p.loss:.4f}  acc {p.accuracy:.3f}  {p.steps_per_s:.1f} steps/s"
        self.progress.update(self._bar("train", p.total), completed=p.step, info=info)
        if not self.live:
            self.out.print(f"step {p.step}/{p.total}  {info}", highlight=False)

    def on_eval(self, done: int, total: int) -> None:
        self.progress.update(self._bar("evaluate", total), completed=done)
        if not self.live and (done == total or done % max(1, total // 5) == 0):
            self.out.print(f"evaluated {done}/{total} lengths", highlight=False)


def render_row(row: dict[str, Any]) -> None:
    table = Table(title="result", box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    score = row.get("score")
    table.add_row("status", row["status"] + (f" ({row['error']})" if row.get("error") else ""))
    table.add_row("score", "-" if score is None else f"{score:.4f}  (chance {row['chance']:.2f})")
    curve = row.get("accuracy_by_length") or {}
    if curve:
        keys = list(curve)
        picks = sorted({keys[0], keys[len(keys) // 2], keys[-1]}, key=int)
        table.add_row("accuracy", "  ".join(f"ℓ={k}: {curve[k]:.3f}" for k in picks))
    table.add_row("steps", str(row["steps"]))
    if row.get("final_loss") is not None:
        table.add_row("final loss", f"{row['final_loss']:.4f}")
    table.add_row("wall time", f"{row['wall_time_s']:.1f} s on {row['device']}")
    table.add_row("run key", row["run_key"])
    console.print(table)


@main.group()
def leaderboard() -> None:
    """Inspect leaderboard files."""


@leaderboard.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def verify(file: Path) -> None:
    """Report duplicate runs, corrupt lines and schema problems in FILE (exit 1 if any)."""
    from che_bench.leaderboard import verify as verify_file

    if not file.is_file():
        raise ConfigError(f"leaderboard {file} does not exist")
    report = verify_file(file)
    console.print(report.format(), highlight=False)
    if not report.ok:
        sys.exit(1)


from che_bench.cli_results import check, plot, report  # noqa: E402
from che_bench.cli_sweep import sweep  # noqa: E402

for _command in (sweep, report, plot, check):
    main.add_command(_command)

if __name__ == "__main__":
    main(prog_name="che-bench")
