"""``che-bench compare``: is one encoding better than another on a task, over seeds?"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from che_bench.cli._common import Real, console, say
from che_bench.errors import ConfigError

if TYPE_CHECKING:
    from che_bench.results.compare import Comparison

TESTS = (
    "tests: Welch's t-test (Welch 1947), two-sided Mann–Whitney U (Mann & Whitney 1947), "
    "percentile bootstrap 95% CI of the difference (Efron 1979, 10,000 resamples, seed 0)"
)


def pct(value: float | None, sign: bool = False) -> str:
    return "–" if value is None else f"{100 * value:{'+' if sign else ''}.1f}"


def mean_sem(mean: float, sem: float | None) -> str:
    return pct(mean) + ("" if sem is None else f" ± {100 * sem:.1f}")


def p_text(p: float | None) -> str:
    return "–" if p is None else f"{p:.2g}"


def ci_text(c: Comparison) -> str:
    return "–" if c.ci_low is None else f"[{pct(c.ci_low, True)}, {pct(c.ci_high, True)}]"


def show_pairs(comparisons: Sequence[Comparison]) -> None:
    from rich.markup import escape
    from rich.table import Table

    for c in comparisons:
        say(f"{c.task} · protocol: {c.protocol}", style="bold", markup=False)
        table = Table(box=None, pad_edge=False)
        for name in ("encoding", "seeds", "mean ± sem", "lr"):
            table.add_column(name, justify="left" if name == "encoding" else "right")
        for name, n, mean, sem, lr in (
            (c.a, c.n_a, c.mean_a, c.sem_a, c.lr_a),
            (c.b, c.n_b, c.mean_b, c.sem_b, c.lr_b),
        ):
            table.add_row(escape(name), str(n), mean_sem(mean, sem), f"{lr:g}")
        console.print(table)
        say(
            f"{c.a} − {c.b}: {pct(c.difference, True)} points, 95% CI {ci_text(c)}; "
            f"Welch p = {p_text(c.welch_p)}, Mann–Whitney p = {p_text(c.mann_whitney_p)}",
            markup=False,
        )
        if c.note:
            say(c.note, style="dim", markup=False)
        say(f"verdict (α = {c.alpha:g}): {c.verdict}", style="bold", markup=False)
        say("")


def markdown_pairs(comparisons: Sequence[Comparison]) -> str:
    header = ("task", "A", "seeds", "A mean ± sem", "B", "seeds", "B mean ± sem",
              "A − B [95% CI]", "Welch p", "Mann–Whitney p", "verdict")  # fmt: skip
    parts = []
    for protocol, group in by_protocol(comparisons).items():
        lines = [f"protocol: {protocol}", "", "| " + " | ".join(header) + " |",
                 "|" + "|".join(["---"] * len(header)) + "|"]  # fmt: skip
        lines += [
            "| " + " | ".join([
                c.task, c.a, str(c.n_a), mean_sem(c.mean_a, c.sem_a), c.b, str(c.n_b),
                mean_sem(c.mean_b, c.sem_b), f"{pct(c.difference, True)} {ci_text(c)}",
                p_text(c.welch_p), p_text(c.mann_whitney_p), c.verdict,
            ]) + " |"
            for c in group
        ]  # fmt: skip
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def by_protocol(comparisons: Sequence[Comparison]) -> dict[str, list[Comparison]]:
    groups: dict[str, list[Comparison]] = defaultdict(list)
    for c in comparisons:
        groups[c.protocol].append(c)
    return groups


def grid(group: Sequence[Comparison], baseline: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a task × encoding table; ▲ beats the baseline at α, ▼ loses."""
    encodings = sorted({c.a for c in group})
    cells: dict[str, dict[str, str]] = defaultdict(dict)
    for c in group:
        cells[c.task][baseline] = mean_sem(c.mean_b, c.sem_b)
        mark = " ▲" if c.beats else " ▼" if c.significant else ""
        cells[c.task][c.a] = mean_sem(c.mean_a, c.sem_a) + mark
    header = ["task", f"{baseline} (baseline)", *encodings]
    rows = [[task, *(cells[task].get(e, "–") for e in [baseline, *encodings])]
            for task in sorted(cells)]  # fmt: skip
    return header, rows


def show_all(comparisons: Sequence[Comparison], baseline: str, fmt: str) -> None:
    from rich.table import Table

    for protocol, group in by_protocol(comparisons).items():
        header, rows = grid(group, baseline)
        if fmt == "markdown":
            click.echo(f"protocol: {protocol}\n\n| " + " | ".join(header) + " |")
            click.echo("|" + "|".join(["---"] * len(header)) + "|")
            click.echo("\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n")
            continue
        say(f"protocol: {protocol}", style="bold", markup=False)
        table = Table(box=None, pad_edge=False)
        for name in header:
            table.add_column(name, justify="left" if name == "task" else "right")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    alpha = comparisons[0].alpha
    click.echo(f"▲ beats {baseline}, ▼ worse than {baseline} (Welch p < {alpha:g}; "
               "Mann–Whitney where Welch is undefined); no mark: not distinguishable")  # fmt: skip


@click.command()
@click.argument("leaderboard", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--task", "-t", "tasks", multiple=True, help="Tasks matching (glob), repeatable.")
@click.option(
    "--pe",
    "encodings",
    multiple=True,
    help="An encoding, by its label in `report`: exactly two. With --all: globs limiting "
    "the encodings set against the baseline.",
)
@click.option(
    "--alpha",
    type=Real(0, 1, low_open=True),
    default=0.05,
    show_default=True,
    help="Significance level of the verdict.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "markdown", "json"]), default="table",
    show_default=True,
)  # fmt: skip
@click.option(
    "--all", "every", is_flag=True, help="Every encoding against --baseline-pe, per task."
)
@click.option("--baseline-pe", help="With --all: the encoding the others are compared to.")
def compare(
    leaderboard: Path,
    tasks: tuple[str, ...],
    encodings: tuple[str, ...],
    alpha: float,
    fmt: str,
    every: bool,
    baseline_pe: str | None,
) -> None:
    """Is encoding A better than B on a task? Tests over seeds, per task and protocol.

    Each encoding is taken at its own headline learning rate (the one with the highest
    mean over seeds, as in `report`); its scores over seeds are compared with Welch's
    t-test, the Mann–Whitney U test and a bootstrap 95% CI of mean(A) − mean(B). The
    verdict reads Welch's p at --alpha: "A > B", "A < B" or "not distinguishable" (also
    when a side has fewer than 2 seeds).

    \b
    Examples:
      che-bench compare leaderboards/cpu-repro.jsonl --task even_pairs --pe relative --pe nope
      che-bench compare leaderboards/local.jsonl -t 'reverse_*' --pe rope --pe alibi --format json
      che-bench compare leaderboards/local.jsonl --all --baseline-pe nope   # ▲ beats nope
    """
    from che_bench.results import compare as lib
    from che_bench.results.report import load_rows

    if every and not baseline_pe:
        raise ConfigError("--all compares against a baseline: pass --baseline-pe NAME")
    if baseline_pe and not every:
        raise ConfigError("--baseline-pe only applies with --all")
    if not every and len(encodings) != 2:
        raise ConfigError(f"pass exactly two --pe to compare (got {len(encodings)}), or --all")
    lib.scipy_stats()
    rows = load_rows(leaderboard, tasks)
    if not rows:
        raise ConfigError(f"no rows in {leaderboard} match the --task filters")
    if every:
        comparisons = lib.compare_all(rows, tasks, baseline_pe, encodings, alpha=alpha)
    else:
        comparisons = lib.compare(rows, tasks, *encodings, alpha=alpha)
    if fmt == "json":
        out = {"lr_rule": lib.LR_RULE, "comparisons": [c.record() for c in comparisons]}
        click.echo(json.dumps(out, indent=2))
        return
    if every:
        show_all(comparisons, baseline_pe, fmt)
    elif fmt == "markdown":
        click.echo(markdown_pairs(comparisons), nl=False)
    else:
        show_pairs(comparisons)
    click.echo(f"lr: {lib.LR_RULE}\n{TESTS}")
