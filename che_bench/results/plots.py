"""Figures of a leaderboard: accuracy-vs-length curves (one panel per task) and a task ×
encoding heatmap (:mod:`che_bench.results.heatmap`), as PNG, PDF or SVG.

Both draw on :func:`che_bench.results.stats.aggregate`, so they show the same headline numbers
as ``che-bench report``: runs that are not ok (failed, diverged) are in no curve and no
square, and the titles say how many were left out. One figure holds one protocol (budget,
lengths, samples), as ``report`` holds one per table: :func:`by_protocol` splits rows, and
the figure functions refuse rows of several. Encodings are grouped and coloured by family
(:mod:`che_bench.results.families`). matplotlib is the optional ``plot`` extra.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from che_bench.errors import CheBenchError, ConfigError
from che_bench.results.families import ordered, styles, variant_key
from che_bench.results.record import RunRecord
from che_bench.results.stats import Cell, Group, aggregate, excluded_of, excluded_text, usable

#: The file formats a figure is written in, chosen from the output's suffix.
FORMATS = (".png", ".pdf", ".svg")
LEVELS = ("regular", "dcf", "cs")  # the Chomsky hierarchy, lowest first


def pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise CheBenchError(
            "plotting needs matplotlib: install che-bench[plot] (pip install 'che-bench[plot]')"
        ) from None
    matplotlib.use("Agg")
    # Vector files keep their text as text (searchable, editable in a paper's toolchain).
    matplotlib.rcParams.update({"svg.fonttype": "none", "pdf.fonttype": 42})
    import matplotlib.pyplot as plt

    return plt


def check_format(path: Path) -> None:
    """Refuse an output whose suffix is not one of :data:`FORMATS`."""
    if path.suffix.lower() not in FORMATS:
        raise ConfigError(
            f"cannot write a figure as {path.name!r}: the file name must end in "
            f"{', '.join(FORMATS)}"
        )


def curve_points(
    cell: Cell, extended: Mapping[str, dict[str, float | None]] | None = None
) -> dict[int, list[float]]:
    """Length → the accuracies of the seeds of the headline learning rate (the rows behind
    its mean: excluded runs are in neither): the training lengths where measured, the test
    lengths, then the lengths of ``extended[run_key]`` (evaluation rows)."""
    head = cell.headline
    points: dict[int, list[float]] = defaultdict(list)
    for row in head.rows if head is not None else ():
        more = (extended or {}).get(row.run_key, {})
        curve = {**row.train_accuracy_by_length, **row.accuracy_by_length, **more}
        for length, accuracy in curve.items():
            if accuracy is not None:
                points[int(length)].append(accuracy)
    return dict(sorted(points.items()))


def excluded_in(cells: Sequence[Cell]) -> str:
    """How many runs of ``cells`` no value in the plot includes (``""``: none)."""
    return excluded_text(excluded_of(cells))


def titled(title: str, cells: Sequence[Cell]) -> str:
    """``title``, and under it the count of the runs of ``cells`` it leaves out, if any."""
    text = excluded_in(cells)
    return f"{title}\nexcluded: {text}" if text else title


def protocol_hash(protocol: str) -> str:
    """The short hash that ends a protocol's description (``62fd5b45``)."""
    found = re.search(r"\[([0-9a-f]+)\]$", protocol)
    return found.group(1) if found else protocol


def short_protocol(protocol: str) -> str:
    """``preset quick, 500 steps [65492c0f]``: enough to tell protocols apart in a line."""
    return ", ".join(protocol.split(", ")[:2]) + f" [{protocol_hash(protocol)}]"


def by_protocol(rows: Sequence[RunRecord], select: str = "") -> list[tuple[str, list[RunRecord]]]:
    """(protocol, its rows) per protocol of ``rows``, as ``report`` groups them; ``select``
    keeps those whose description contains it (a hash such as ``65492c0f`` or text such as
    ``preset smoke``)."""
    groups = aggregate(rows)
    chosen = [g for g in groups if select.lower() in g.protocol.lower()]
    if not chosen:
        known = "; ".join(short_protocol(g.protocol) for g in groups) or "none"
        raise ConfigError(f"no protocol matches {select!r}; the rows hold: {known}")
    return [(g.protocol, [r for c in g.cells for r in c.rows]) for g in chosen]


def one_group(rows: Sequence[RunRecord]) -> Group:
    """The single protocol group of ``rows``; several are refused, naming them."""
    groups = aggregate(rows)
    if not any(usable(r) for g in groups for c in g.cells for r in c.rows):
        raise ConfigError("no successful runs to plot; check the --task/--pe filters")
    if len(groups) > 1:
        names = "; ".join(short_protocol(g.protocol) for g in groups)
        raise ConfigError(
            f"the rows hold {len(groups)} protocols ({names}); one figure shows one: select it "
            "with --protocol HASH, --task or --pe"
        )
    return groups[0]


def task_order(tasks: Sequence[str]) -> list[str]:
    """``tasks`` by Chomsky level (regular, DCF, CS), then by name."""
    from che_bench.generators import get_task

    def key(task: str) -> tuple[int, str]:
        try:
            level = get_task(task).level
        except Exception:  # a task of a plugin not installed here goes last
            level = ""
        return (LEVELS.index(level) if level in LEVELS else len(LEVELS)), task

    return sorted(dict.fromkeys(tasks), key=key)


def lr_rule(group: Group) -> str:
    """How the learning rate behind each number was chosen."""
    lrs = sorted({s.lr for c in group.cells for s in c.per_lr})
    if len(lrs) == 1:
        return f"lr {lrs[0]:g} (the only one)"
    return f"lr: per cell, the one of {', '.join(f'{x:g}' for x in lrs)} with the highest mean"


def seeds_text(cells: Sequence[Cell]) -> str:
    """``"3 seeds"`` or ``"2–3 seeds"``: the seeds behind the headline means."""
    counts = sorted({c.headline.n for c in cells if c.headline is not None})
    if not counts:
        return "no seeds"
    span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"{span} seed{'' if counts[-1] == 1 else 's'}"


def caption(fig: Any, lines: Sequence[str], width_in: float) -> None:
    """Write ``lines`` as a caption under the figure, wrapped to its width."""
    chars = max(60, int(width_in * 15))
    text = "\n".join(textwrap.fill(line, chars, break_on_hyphens=False) for line in lines)
    fig.text(0.01, 0.0, text, ha="left", va="top", fontsize=8, color="0.15")


def plot_curves(
    rows: Sequence[RunRecord],
    path: Path,
    evaluations: Sequence[RunRecord] = (),
    log_x: bool = False,
) -> Path:
    """Accuracy vs length per encoding, one panel per task (small multiples): the mean over
    seeds at the headline lr with a min–max band over those seeds, from the first measured
    length (in-distribution accuracy, where measured) to the longest test length, extended
    by the runs' ``evaluations`` rows (``che-bench evaluate``); the training range shaded,
    the chance level dotted, the protocol in the caption. ``rows`` hold one protocol."""
    from che_bench.results.columns import latest_evaluations

    check_format(path)
    group = one_group(rows)
    extended: dict[str, dict[str, float | None]] = defaultdict(dict)
    for row in latest_evaluations(evaluations):
        extended[row.run_key].update(row.accuracy_by_length)
    plt = pyplot()
    from matplotlib import ticker
    from matplotlib.lines import Line2D

    drawn = [c for c in group.cells if c.headline is not None]
    tasks = task_order([c.task for c in drawn])
    members = ordered(c.encoding for c in drawn)
    style = styles(members)
    ncols = min(3, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    size = (7.0, 4.2) if len(tasks) == 1 else (4.8, 3.4)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False
    )
    train = drawn[0].rows[0].train_lengths
    band = max(0.05, min(0.15, 1.2 / len(members)))  # many bands would hide one another
    for ax, task in zip(axes.flat, tasks):
        cells = {c.encoding: c for c in drawn if c.task == task}
        first, last = math.inf, -math.inf
        for m in members:
            if m.label not in cells:
                continue
            points = curve_points(cells[m.label], extended)
            xs = list(points)
            mean = [sum(v) / len(v) for v in points.values()]
            colour, dash = style[m.label]
            ax.fill_between(xs, [min(v) for v in points.values()],
                            [max(v) for v in points.values()], color=colour, alpha=band,
                            linewidth=0)  # fmt: skip
            ax.plot(xs, mean, color=colour, linestyle=dash, linewidth=1.6, label=m.label,
                    marker="o" if len(xs) < 12 else None, markersize=3)  # fmt: skip
            first, last = min(first, xs[0]), max(last, xs[-1])
        chance = next(iter(cells.values())).chance
        ax.axvspan(train[0], train[1], color="0.9", zorder=0, label="training lengths")
        ax.axhline(chance, color="0.35", linestyle=":", linewidth=1.2, label="chance")
        ax.annotate("chance", (1.0, chance), (-2, 2), ("axes fraction", "data"),
                    "offset points", ha="right", fontsize=7, color="0.35")  # fmt: skip
        if log_x:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        else:
            ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        ax.set_xlim(first, last if last > first else first + 1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(titled(task, [c for c in group.cells if c.task == task]), fontsize=10)
        ax.set_xlabel("input length" + (" (log scale)" if log_x else ""), fontsize=9)
        ax.set_ylabel("accuracy", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.25, linewidth=0.6)
    for ax in list(axes.flat)[len(tasks) :]:
        ax.axis("off")
    if excluded_in(group.cells):  # tasks left with no curve at all are counted here too
        fig.suptitle(f"excluded from every curve: {excluded_in(group.cells)}", fontsize=9)
    handles = [
        Line2D([], [], color=style[m.label][0], linestyle=style[m.label][1], linewidth=1.8)
        for m in members
    ]
    fig.legend(handles, [m.label for m in members], loc="upper left",
               bbox_to_anchor=(1.0, 0.98), fontsize=8, title="encoding", title_fontsize=9,
               ncol=1 if len(members) <= 18 else 2, frameon=False)  # fmt: skip
    fig.tight_layout()
    caption(fig, [
        f"Protocol: {group.protocol}; {lr_rule(group)}.",
        f"Lines: mean accuracy over {seeds_text(drawn)} at each length; bands: min–max over "
        f"those seeds. Shaded: training lengths {train[0]}–{train[1]}; dotted: chance. "
        "Colour: family" + variant_key(members) + "."
        + (" Lengths past the test range come from `che-bench evaluate` rows." if extended
           else ""),
    ], fig.get_size_inches()[0])  # fmt: skip
    return save(fig, path, plt)


def plot_heatmap(rows: Sequence[RunRecord], path: Path, stat: str = "best") -> Path:
    """Task × encoding matrix of the ``best`` or ``mean`` score relative to chance (see
    :func:`che_bench.results.heatmap.draw_heatmap`)."""
    from che_bench.results.heatmap import draw_heatmap

    return draw_heatmap(rows, path, stat)


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
    """Write ``fig`` in the format of ``path``'s suffix (PNG at 150 dpi, or vector PDF/SVG
    with no creation date, so the same figure gives the same file), everything drawn
    outside the axes (legend, caption) included."""
    try:
        check_format(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        vector = path.suffix.lower() != ".png"
        metadata = {("CreationDate" if path.suffix.lower() == ".pdf" else "Date"): None}
        fig.savefig(path, dpi=150, bbox_inches="tight", pad_inches=0.15,
                    metadata=metadata if vector else None)  # fmt: skip
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot write plot {path}: {exc}") from None
    finally:
        plt.close(fig)
    return path
