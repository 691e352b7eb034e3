"""Figures and arrays of :class:`~che_bench.analysis.maps.Maps` at a few input lengths.

Heatmaps (no query): one row per map and length, one column per head, one colour bar per
row (a row's heads share its scale, so they compare). With a query: one panel per map and
length, that query's row as one line per head. matplotlib is the optional ``plot`` extra.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from che_bench.analysis.maps import ATTENTION, Maps
from che_bench.errors import ConfigError
from che_bench.results.plots import pyplot

DPI = 100
MAX_WIDTH_IN = 24.0  # 2400 px at DPI
PANEL_IN = 2.7
ROW_IN = 2.55


@dataclass(frozen=True)
class Layout:
    """What :func:`write` drew: its rows (map · length), columns, panels and size."""

    rows: tuple[str, ...]
    columns: int
    panels: int
    colorbars: int
    axes: int
    size_px: tuple[int, int]


def map_names(maps_by_length: Mapping[int, Maps]) -> list[str]:
    """Every map name, in first-seen order, the attention weights last."""
    names = dict.fromkeys(n for m in maps_by_length.values() for n in m.maps if n != ATTENTION)
    return [*names, ATTENTION]


def short(name: str) -> str:
    """An array key for a map name: its leading words, up to any formula ("bias B" →
    ``bias_B``, "adapted A+B+f(A,B)" → ``adapted``, "positional term: S − …" →
    ``positional_term``)."""
    words = []
    for token in name.split():
        word = token.rstrip(":")
        if not (word.isascii() and word.isalpha()):
            break
        words.append(word)
        if word != token:
            break
    return "_".join(words) or "map"


def shown(m: Maps, name: str) -> np.ndarray:
    """The map as drawn: for a causal model, positional terms above the diagonal (masked
    keys, never attended to) are blank."""
    values = m.maps[name].astype(np.float64)
    if m.causal and name != ATTENTION:
        values[:, np.triu(np.ones(values.shape[-2:], dtype=bool), 1)] = np.nan
    return values


def write(maps_by_length: Mapping[int, Maps], path: Path, title: str) -> Layout:
    """A figure of every map at every length in ``maps_by_length`` (at least one)."""
    if not maps_by_length:
        raise ConfigError("nothing to draw: no lengths")
    plt = pyplot()
    ordered = [maps_by_length[n] for n in sorted(maps_by_length)]
    queried = all(m.query is not None for m in ordered)
    draw = _lines if queried else _heatmaps
    fig, layout = draw(plt, ordered, map_names(maps_by_length))
    notes = dict.fromkeys(note for m in ordered for note in m.notes)
    fig.suptitle("\n".join([title, *notes]), fontsize=11, y=0.995)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(path, dpi=DPI)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot write figure {path}: {exc}") from None
    finally:
        plt.close(fig)
    return layout


def _ticks(ax: Any, m: Maps, both: bool = True) -> None:
    marks = sorted({0, m.length, m.total - 1} - {m.total})
    ax.set_xticks(marks, [str(t) for t in marks], fontsize=6)
    if both:
        ax.set_yticks(marks, [str(t) for t in marks], fontsize=6)


def _heatmaps(plt: Any, ordered: list[Maps], names: list[str]) -> tuple[Any, Layout]:
    from matplotlib.colors import Normalize, PowerNorm

    heads = max(m.heads for m in ordered)
    rows = [(name, m) for name in names for m in ordered if name in m.maps]
    width = min(MAX_WIDTH_IN, PANEL_IN * heads + 1.0)
    panel = (width - 1.0) / heads
    fig = plt.figure(figsize=(width, ROW_IN * panel / PANEL_IN * len(rows) + 1.2))
    grid = fig.add_gridspec(
        len(rows), heads + 1, width_ratios=[1.0] * heads + [0.05],
        left=0.035, right=0.975, bottom=0.03, top=1 - 1.0 / fig.get_figheight(),
        wspace=0.3, hspace=0.55,
    )  # fmt: skip
    labels = []
    for r, (name, m) in enumerate(rows):
        values = shown(m, name)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        if name == ATTENTION:  # most weights are near 1/T: a square-root scale shows them
            cmap, norm = plt.get_cmap("magma"), PowerNorm(0.5, vmin=0.0, vmax=max(high, 1e-6))
        else:
            cmap, norm = plt.get_cmap("viridis"), Normalize(low, high)
        cmap = cmap.with_extremes(bad="0.85")
        image = None
        for h in range(m.heads):
            ax = fig.add_subplot(grid[r, h])
            image = ax.imshow(values[h], cmap=cmap, norm=norm, interpolation="nearest")
            title = f"layer {m.layer} · head {h} · {name} · N = {m.length}"
            if len(title) > 48:  # would run into the next panel's title
                title = f"layer {m.layer} · head {h} · N = {m.length}\n{name}"
            ax.set_title(title, fontsize=7)
            if m.total > m.length:  # the output placeholders start at N
                for line in (ax.axvline, ax.axhline):
                    line(m.length - 0.5, color="white", linewidth=0.6, linestyle="--")
            _ticks(ax, m)
            if h == 0:
                ax.set_ylabel(f"{name}\nN = {m.length}, T = {m.total}\nquery i", fontsize=7)
            if r == len(rows) - 1 or rows[r + 1][1].heads <= h:
                ax.set_xlabel("key j", fontsize=7)
        bar = fig.colorbar(image, cax=fig.add_subplot(grid[r, heads]))
        bar.ax.tick_params(labelsize=6)
        bar.set_label("weight (√ scale)" if name == ATTENTION else "logit term", fontsize=6)
        labels.append(f"{name} · N = {m.length}")
    panels = sum(m.heads for _, m in rows)
    return fig, _layout(fig, labels, heads, panels, len(rows))


def _lines(plt: Any, ordered: list[Maps], names: list[str]) -> tuple[Any, Layout]:
    fig, axes = plt.subplots(
        len(names), len(ordered), figsize=(7.0 * len(ordered), 2.8 * len(names) + 1.0),
        squeeze=False,
    )  # fmt: skip
    colors = plt.get_cmap("tab10").colors
    labels, panels = [], 0
    for r, name in enumerate(names):
        for c, m in enumerate(ordered):
            ax = axes[r, c]
            labels.append(f"{name} · N = {m.length}")
            if name not in m.maps:
                ax.axis("off")
                continue
            panels += 1
            row = shown(m, name)[:, m.query]
            for h in range(m.heads):
                ax.plot(row[h], color=colors[h % len(colors)], linewidth=1.0, label=f"head {h}")
            ax.axvline(m.query, color="0.3", linewidth=0.8, label="query i")
            if m.total > m.length:
                ax.axvline(m.length - 0.5, color="0.5", linewidth=0.8, linestyle="--",
                           label="placeholders from here")  # fmt: skip
            ax.set_title(
                f"layer {m.layer} · {name} · N = {m.length} · query i = {m.query}", fontsize=9
            )
            ax.set_xlabel("key j", fontsize=8)
            ax.tick_params(labelsize=7)
            if r == 0 and c == len(ordered) - 1:
                ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.6 / fig.get_figheight()))
    return fig, _layout(fig, labels, len(ordered), panels, 0)


def _layout(fig: Any, rows: list[str], columns: int, panels: int, bars: int) -> Layout:
    w, h = fig.get_size_inches()
    return Layout(
        tuple(rows), columns, panels, bars, len(fig.axes), (round(w * DPI), round(h * DPI))
    )


def write_npz(maps_by_length: Mapping[int, Maps], path: Path) -> list[str]:
    """The same arrays as :func:`write`, keyed ``N<length>/<map>`` (``N40/bias_B``,
    ``N40/attention``; with a query also ``N40/bias_B/row`` [H, T] and ``N40/query``), plus
    ``names``: each key's full map name. Returns the keys."""
    arrays: dict[str, np.ndarray] = {}
    names = []
    for m in (maps_by_length[n] for n in sorted(maps_by_length)):
        for name, values in m.maps.items():
            key = f"N{m.length}/{short(name)}"
            arrays[key] = values
            names.append(f"{key}: {name}")
            if m.query is not None:
                arrays[f"{key}/row"] = values[:, m.query]
        if m.query is not None:
            arrays[f"N{m.length}/query"] = np.array(m.query)
    arrays["names"] = np.array(names)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "wb") as handle:  # as named: np.savez would append ".npz"
            np.savez(handle, **arrays)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from None
    return list(arrays)
