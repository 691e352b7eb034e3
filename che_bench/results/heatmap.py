"""``che-bench plot --kind heatmap``: a task × encoding matrix of one protocol's scores
relative to chance.

Each cell's colour is the score minus the task's chance level in points, on a diverging
scale centred at 0 (blue above chance, red below); its text is the raw score (accuracy %).
Encodings are grouped by family (:mod:`che_bench.results.families`), tasks by Chomsky level;
a cell with no ok run is hatched and reads "–". Scores are ``report``'s: ``best`` (max over
seeds × lr) or ``mean`` (over seeds at the best lr; Ruoss et al., ACL 2023).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

from che_bench.results import plots
from che_bench.results.families import family_colour, ordered
from che_bench.results.record import RunRecord

EMPTY = "–"


def draw_heatmap(rows: Sequence[RunRecord], path: Path, stat: str = "best") -> Path:
    """Draw ``rows`` (one protocol) as a task × encoding heatmap relative to chance."""
    plots.check_format(path)
    group = plots.one_group(rows)
    plt = plots.pyplot()
    from matplotlib.patches import Rectangle

    scores: dict[tuple[str, str], float] = {}
    chance: dict[str, float] = {}
    for cell in group.cells:
        chance[cell.task] = cell.chance
        value = cell.best if stat == "best" else (cell.headline and cell.headline.mean)
        if value is not None:
            scores[(cell.task, cell.encoding)] = value
    # a task or encoding with no ok run anywhere has no row or column (the title counts it)
    tasks = plots.task_order([t for t, _ in scores])
    members = ordered(e for _, e in scores)
    encodings = [m.label for m in members]
    grid = [
        [100 * (scores[(t, e)] - chance[t]) if (t, e) in scores else math.nan for e in encodings]
        for t in tasks
    ]
    span = max((abs(v) for row in grid for v in row if not math.isnan(v)), default=10.0)
    limit = max(10.0, 10 * math.ceil(span / 10))
    width = max(6.0, 0.5 * len(encodings) + 3.2)
    fig, ax = plt.subplots(figsize=(width, max(3.6, 0.55 * len(tasks) + 2.6)))
    image = ax.imshow(grid, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(encodings)), encodings, rotation=60, ha="right", fontsize=8,
                  rotation_mode="anchor")  # fmt: skip
    ax.set_yticks(range(len(tasks)), [f"{t} ({100 * chance[t]:.0f}%)" for t in tasks], fontsize=8)
    for i, task in enumerate(tasks):
        for j, encoding in enumerate(encodings):
            relative = grid[i][j]
            if math.isnan(relative):
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="////",
                                       edgecolor="0.75", linewidth=0))  # fmt: skip
                ax.text(j, i, EMPTY, ha="center", va="center", fontsize=11, color="0.3")
                continue
            ink = "white" if abs(relative) > 0.55 * limit else "black"
            ax.text(j, i, f"{100 * scores[(task, encoding)]:.1f}", ha="center", va="center",
                    fontsize=6.5, color=ink)  # fmt: skip
    families = [(f, len(list(ms))) for f, ms in groupby(members, key=lambda m: m.family)]
    top = ax.secondary_xaxis("top")
    centres, start = [], 0
    for _, count in families:
        centres.append(start + (count - 1) / 2)
        if start:
            ax.axvline(start - 0.5, color="white", linewidth=3)
        start += count
    top.set_xticks(centres, [f for f, _ in families], fontsize=8)
    for label, (family, _) in zip(top.get_xticklabels(), families):
        label.set_color(family_colour(family))
    top.tick_params(length=0)
    fig.colorbar(image, ax=ax, label=f"{stat} score − chance (points)", shrink=0.9, pad=0.02)
    ax.set_title(plots.titled(f"{stat} score per task and encoding", group.cells), fontsize=10)
    fig.tight_layout()
    what = "max over seeds × lr" if stat == "best" else "mean over seeds at the best lr"
    plots.caption(fig, [
        f"Protocol: {group.protocol}; {plots.lr_rule(group)}; {plots.seeds_text(group.cells)}.",
        f"Cell text: the {stat} score ({what}), accuracy %; colour: that score minus the "
        f"task's chance level (in brackets), in points; hatched {EMPTY}: no ok run. "
        "Encodings grouped by family.",
    ], fig.get_size_inches()[0])  # fmt: skip
    return plots.save(fig, path, plt)
