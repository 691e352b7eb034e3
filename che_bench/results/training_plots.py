"""``che-bench plot --kind training``: per-step training loss and accuracy of a leaderboard's
runs, read from the curve files they wrote (``RUN_DIR/<run_key>/curve.jsonl``, see
:mod:`che_bench.running.curves`). One row of panels per task, one line per run, one colour
per encoding; runs that are not ``ok`` are dashed. Rows whose curve file is not there (run
elsewhere, under another ``--run-dir``, or before curves were written) are counted in the
title. matplotlib is the optional ``plot`` extra.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from che_bench.errors import ConfigError
from che_bench.results.plots import pyplot, save
from che_bench.results.record import RunRecord
from che_bench.results.stats import latest_per_run, option_key, option_labels
from che_bench.running.curves import curve_path, read_curve


@dataclass
class Curves:
    """The selected runs' curves: (row, its points) for each run that has one."""

    found: list[tuple[RunRecord, list[dict[str, Any]]]]
    missing: list[RunRecord]

    def summary(self) -> str:
        """``"3 runs"`` plus ``"; no curve: N runs"`` when some have none."""
        text = plural(len(self.found))
        return f"{text}; no curve: {plural(len(self.missing))}" if self.missing else text


def plural(n: int) -> str:
    return f"{n} run{'' if n == 1 else 's'}"


def collect(rows: Sequence[RunRecord], run_dir: Path) -> Curves:
    """The curve of each run (the latest row per run_key) under ``run_dir``."""
    found, missing = [], []
    for row in latest_per_run(rows):
        points = read_curve(curve_path(run_dir, row.run_key))
        if points:
            found.append((row, points))
        else:
            missing.append(row)
    return Curves(found, missing)


def plot_training(rows: Sequence[RunRecord], path: Path, run_dir: Path) -> Curves:
    """Loss and accuracy vs training step per run, one row of two panels per task."""
    curves = collect(rows, run_dir)
    if not curves.found:
        raise ConfigError(
            f"none of the {plural(len(curves.missing))} has a curve file under {run_dir}/ "
            "(RUN_DIR/<run_key>/curve.jsonl); pass --run-dir where they ran"
        )
    plt = pyplot()
    labels = option_labels(row for row, _ in curves.found)
    names = sorted(set(labels.values()))
    colors = plt.get_cmap("tab10" if len(names) <= 10 else "tab20").colors
    colour = {label: colors[i % len(colors)] for i, label in enumerate(names)}
    by_task: dict[str, list[tuple[RunRecord, list[dict[str, Any]]]]] = defaultdict(list)
    for row, points in curves.found:
        by_task[row.task].append((row, points))
    fig, axes = plt.subplots(len(by_task), 2, figsize=(12, 3.6 * len(by_task)), squeeze=False)
    for (loss_ax, acc_ax), (task, runs) in zip(axes, sorted(by_task.items())):
        counts: dict[str, int] = defaultdict(int)
        for row, _ in runs:
            counts[labels[option_key(row)]] += 1
        shown: set[str] = set()
        for row, points in sorted(runs, key=lambda r: (labels[option_key(r[0])], r[0].seed)):
            label = labels[option_key(row)]
            style = {
                "color": colour[label],
                "linestyle": "-" if row.status == "ok" else "--",
                "linewidth": 1.2,
                "alpha": 0.85,
                "label": None if label in shown else f"{label} ({plural(counts[label])})",
            }
            shown.add(label)
            for ax, key in ((loss_ax, "loss"), (acc_ax, "accuracy")):
                xy = [(p["step"], p[key]) for p in points if isinstance(p.get(key), int | float)]
                ax.plot([x for x, _ in xy], [y for _, y in xy], **style)
        acc_ax.axhline(runs[0][0].chance, color="0.3", linestyle=":", label="chance")
        loss_ax.set(title=f"{task}: training loss", xlabel="step", ylabel="cross-entropy")
        acc_ax.set(
            title=f"{task}: training accuracy",
            xlabel="step",
            ylabel="accuracy (window mean)",
            ylim=(-0.02, 1.02),
        )
        acc_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    dashed = any(row.status != "ok" for row, _ in curves.found)
    note = " (dashed: not ok)" if dashed else ""
    fig.suptitle(f"training curves, mean over each log_every window: {curves.summary()}{note}")
    save(fig, path, plt)
    return curves
