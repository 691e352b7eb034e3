"""Plots of a leaderboard: accuracy-vs-length curves and a task × encoding heatmap.

Both draw on :func:`che_bench.results.stats.aggregate`, so they show the same headline numbers
as ``che-bench report``: runs that are not ok (failed, diverged) are in no curve and no
square, and the titles say how many were left out. matplotlib is the optional ``plot`` extra.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from che_bench.errors import CheBenchError, ConfigError
from che_bench.results.record import RunRecord
from che_bench.results.stats import Cell, aggregate, excluded_of, excluded_text


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise CheBenchError(
            "plotting needs matplotlib: install che-bench[plot] (pip install 'che-bench[plot]')"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mean_curve(
    cell: Cell, extended: Mapping[str, dict[str, float | None]] | None = None
) -> tuple[list[int], list[float]]:
    """Mean accuracy per length over the seeds of the headline learning rate (the rows
    behind its mean: excluded runs are in neither): the training lengths where measured,
    then the test lengths, then the lengths of ``extended[run_key]`` (evaluation rows)."""
    head = cell.headline
    sums: dict[int, list[float]] = defaultdict(list)
    for row in head.rows if head is not None else ():
        more = (extended or {}).get(row.run_key, {})
        curve = {**row.train_accuracy_by_length, **row.accuracy_by_length, **more}
        for length, accuracy in curve.items():
            if accuracy is not None:
                sums[int(length)].append(accuracy)
    lengths = sorted(sums)
    return lengths, [sum(sums[n]) / len(sums[n]) for n in lengths]


def excluded_in(cells: Sequence[Cell]) -> str:
    """How many runs of ``cells`` no value in the plot includes (``""``: none)."""
    return excluded_text(excluded_of(cells))


def titled(title: str, cells: Sequence[Cell]) -> str:
    """``title``, and under it the count of the runs of ``cells`` it leaves out, if any."""
    text = excluded_in(cells)
    return f"{title}\nexcluded: {text}" if text else title


def plot_curves(
    rows: Sequence[RunRecord], path: Path, evaluations: Sequence[RunRecord] = ()
) -> Path:
    """Accuracy vs length per encoding, one panel per task, from length 1 (in-distribution
    accuracy, where measured) to the longest test length, extended by the runs'
    ``evaluations`` rows (``che-bench evaluate``); the training range is shaded."""
    from che_bench.results.columns import latest_evaluations

    extended: dict[str, dict[str, float | None]] = defaultdict(dict)
    for row in latest_evaluations(evaluations):
        extended[row.run_key].update(row.accuracy_by_length)
    plt = pyplot()
    groups = aggregate(rows)
    panels: dict[str, list[tuple[str, Cell]]] = defaultdict(list)
    every = [cell for group in groups for cell in group.cells]
    for group in groups:
        tag = f" ({group.protocol.split(',')[0]})" if len(groups) > 1 else ""
        for cell in group.cells:
            if cell.headline is not None:
                panels[cell.task].append((cell.encoding + tag, cell))
    if not panels:
        raise ConfigError("no successful runs to plot; check the --task/--pe filters")
    ncols = min(2, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(9.5 * ncols, 4.5 * nrows), squeeze=False)
    for ax, (task, entries) in zip(axes.flat, sorted(panels.items())):
        colors = plt.get_cmap("tab10" if len(entries) <= 10 else "tab20").colors
        lo, hi = entries[0][1].rows[0].train_lengths
        ax.axvspan(lo, hi, color="0.85", label="training lengths")
        ax.axhline(entries[0][1].chance, color="0.3", linestyle=":", label="chance")
        for i, (label, cell) in enumerate(entries):
            lengths, accuracy = mean_curve(cell, extended)
            style = ("-", "--", "-.", ":")[(i // len(colors)) % 4]
            ax.plot(
                lengths,
                accuracy,
                style,
                color=colors[i % len(colors)],
                label=label,
                marker="o" if len(lengths) < 8 else None,
                markersize=3,
            )
        ax.set(
            title=titled(task, [c for c in every if c.task == task]),
            xlabel="input length",
            ylabel="accuracy (mean over seeds)",
            ylim=(-0.02, 1.02),
        )
        ax.set_xlim(left=0)
        ax.legend(
            fontsize=6,
            ncol=2 if len(entries) > 16 else 1,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0,
        )
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    if excluded_in(every):  # tasks left with no curve at all are counted here too
        fig.suptitle(f"excluded from every curve: {excluded_in(every)}", fontsize=9)
    return save(fig, path, plt)


def plot_heatmap(rows: Sequence[RunRecord], path: Path, stat: str = "best") -> Path:
    """Task × encoding matrix of ``best`` (max over seeds × lrs) or ``mean`` scores."""
    plt = pyplot()
    values: dict[tuple[str, str], float] = {}
    every = [cell for group in aggregate(rows) for cell in group.cells]
    for cell in every:
        value = cell.best if stat == "best" else (cell.headline and cell.headline.mean)
        if value is not None:
            key = (cell.task, cell.encoding)
            values[key] = max(value, values.get(key, value))
    if not values:
        raise ConfigError("no successful runs to plot; check the --task/--pe filters")
    tasks = sorted({t for t, _ in values})
    encodings = sorted({e for _, e in values})
    grid = [[values.get((t, e), math.nan) for e in encodings] for t in tasks]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.42 * len(encodings) + 3), 0.5 * len(tasks) + 2.5))
    image = ax.imshow(grid, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(encodings)), encodings, rotation=75, ha="right", fontsize=7)
    ax.set_yticks(range(len(tasks)), tasks, fontsize=8)
    for i, row in enumerate(grid):
        for j, value in enumerate(row):
            if not math.isnan(value):
                ax.text(
                    j,
                    i,
                    f"{100 * value:.0f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if value < 0.6 else "black",
                )
    fig.colorbar(image, ax=ax, label=f"{stat} score (accuracy)")
    ax.set_title(titled(f"{stat} score per task and encoding", every))
    return save(fig, path, plt)


def plot_trend(entries: Sequence[Any], path: Path) -> Path:
    """Each slice's mean score per recorded check (a ``check --record`` history), commits
    on the x-axis in recording order, regressions marked ×."""
    from che_bench.results.history import series, short

    plt = pyplot()
    by_slice = series(list(entries))
    checks = list(dict.fromkeys((e.date, e.revision) for e in entries))
    x_of = {key: i for i, key in enumerate(checks)}
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(checks) + 4), 5))
    colors = plt.get_cmap("tab20").colors
    for i, (name, points) in enumerate(by_slice.items()):
        shown = [(x_of[(e.date, e.revision)], e) for e in points if e.current is not None]
        color = colors[i % len(colors)]
        ax.plot([x for x, _ in shown], [e.current for _, e in shown], "-o", markersize=3,
                color=color, label=name)  # fmt: skip
        bad = [(x, e.current) for x, e in shown if e.status == "regressed"]
        if bad:
            ax.plot(*zip(*bad), "x", color="red", markersize=9, markeredgewidth=2)
    ax.set_xticks(range(len(checks)), [short(r) for _, r in checks], rotation=45, ha="right")
    ax.set(xlabel="recorded check (revision)", ylabel="mean score over seeds", ylim=(-0.02, 1.02),
           title="che-bench check history (× = regressed)")  # fmt: skip
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return save(fig, path, plt)


def save(fig: Any, path: Path, plt: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=110)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot write plot {path}: {exc}") from None
    finally:
        plt.close(fig)
    return path
