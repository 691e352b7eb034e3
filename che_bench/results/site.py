"""A static HTML leaderboard: ``che-bench report LEADERBOARD --format html -o DIR``.

``DIR/index.html`` holds, per leaderboard and per protocol (as ``report`` groups them: runs
of different budgets are never pooled), a sortable, filterable task × encoding table with
the numbers ``report`` prints (:func:`che_bench.results.stats.aggregate`), the protocol of
each cell and links to one page per run (``DIR/runs/<run_id>.html``, :mod:`.site_run`: the
resolved config, versions, git revision and per-length accuracies). Under each table are the
accuracy-vs-length curves of each task (``DIR/figures/*.png``,
:func:`che_bench.results.plots.plot_curves`), when matplotlib (the ``plot`` extra) is
installed. Everything is inline (the CSS and script of :mod:`.site_assets`), so the site
works from ``file://`` and from GitHub Pages.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from che_bench.errors import CheBenchError, ConfigError
from che_bench.results.columns import Column
from che_bench.results.record import RunRecord
from che_bench.results.report import aggregate, footer, mean_sem, pct, winners
from che_bench.results.site_assets import JS, page
from che_bench.results.site_run import run_page
from che_bench.results.stats import Cell, Group, usable
from che_bench.util import fmt_range

esc = html.escape


@dataclass
class Site:
    """What :func:`write_site` wrote, and ``note``: why there are no figures (``""``: none
    missing)."""

    index: Path
    pages: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    note: str = ""


def slug(text: str) -> str:
    """``text`` as a safe file-name part (letters, digits, ``._-``)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "x"


def leaderboards_in(
    directory: Path, tasks: Sequence[str] = (), encodings: Sequence[str] = ()
) -> list[tuple[str, list[RunRecord]]]:
    """(file name, training rows matching the globs) of every leaderboard ``*.jsonl`` in
    ``directory``, as ``report --readme`` lists them (``local.jsonl`` and check histories
    left out); leaderboards with no matching row too are left out."""
    from che_bench.results.history import is_history
    from che_bench.results.report import leaderboard_files, load_rows

    files = leaderboard_files(directory)
    boards = [(p.name, load_rows(p, tasks, encodings)) for p in files if not is_history(p)]
    boards = [(name, rows) for name, rows in boards if rows]
    if not boards:
        raise ConfigError(f"no leaderboard rows (*.jsonl) in {directory} match the filters")
    return boards


def write_site(
    boards: Sequence[tuple[str, Sequence[RunRecord]]],
    out: Path,
    extras: Sequence[Column] = (),
) -> Site:
    """Write the site of ``boards`` (name, training rows) into the directory ``out``; the
    ``extras`` columns (``report --compare``/``--evaluations``) are added to every table.
    Pages and figures of an earlier build in ``out`` are replaced."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--output {out} is a file; --format html writes a directory")
    try:
        for sub in ("runs", "figures"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        for stale in [*(out / "runs").glob("*.html"), *(out / "figures").glob("*.png")]:
            stale.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write the site into {out}: {exc.strerror}") from None
    site = Site(out / "index.html")
    draw = figure_writer(out, site)
    sections, toc = [], []
    for number, (name, rows) in enumerate(boards):
        groups = aggregate(rows)
        every = [r for g in groups for c in g.cells for r in c.rows]
        pages = {id(r): f"runs/{slug(r.run_id)}.html" for r in every}
        ok = sum(r.status == "ok" for r in rows)
        parts = [f'<section id="board-{number}">', f"<h2>{esc(name)}</h2>",
                 f"<p>{len(rows)} rows ({ok} ok), {len(groups)} protocol(s).</p>"]  # fmt: skip
        toc.append(f'<li><a href="#board-{number}">{esc(name)}</a><ul>')
        for g_number, group in enumerate(groups):
            anchor = f"board-{number}-{g_number}"
            toc.append(f'<li><a href="#{anchor}">{esc(group.protocol)}</a> '
                       f"({len(group.cells)} rows)</li>")  # fmt: skip
            figures = draw(group, f"{number}-{slug(Path(name).stem)}-{g_number}") if draw else []
            parts.append(group_html(name, group, anchor, pages, extras, figures))
            for cell in group.cells:
                for row in cell.rows:
                    target = out / pages[id(row)]
                    back = f"../index.html#{anchor}"
                    target.write_text(run_page(row, name, group.protocol, back), "utf-8")
                    site.pages.append(target)
        sections.append("\n".join([*parts, "</section>"]))
        toc.append("</ul></li>")
    toc_html = "<nav><ul>" + "".join(toc) + "</ul></nav>"
    site.index.write_text(index_page(boards, toc_html, sections, site.note), "utf-8")
    return site


def figure_writer(out: Path, site: Site) -> Callable[[Group, str], list[tuple[str, str]]] | None:
    """A function drawing one curve figure per task of a group (returning (task, relative
    path) pairs), or None with ``site.note`` set when matplotlib is not installed."""
    from che_bench.results import plots

    try:
        plots.pyplot()
    except CheBenchError as exc:
        site.note = f"figures not drawn: {exc}"
        return None

    def draw(group: Group, prefix: str) -> list[tuple[str, str]]:
        drawn = []
        for task in dict.fromkeys(c.task for c in group.cells):
            rows = [r for c in group.cells if c.task == task for r in c.rows]
            if not any(usable(r) for r in rows):
                continue
            relative = f"figures/{prefix}-{slug(task)}.png"
            plots.plot_curves(rows, out / relative)
            site.figures.append(out / relative)
            drawn.append((task, relative))
        return drawn

    return draw


HEADERS = ("task", "encoding", "chance", "seeds", "best", "mean ± sem", "lr", "in-dist",
           "failed", "steps", "train", "test", "samples", "runs")  # fmt: skip


def td(text: str, sort: object = None, classes: str = "") -> str:
    """One table cell; ``sort`` is the value the script sorts by (default: the text)."""
    key = "" if sort is None else f' data-sort="{esc(str(sort))}"'
    cls = f' class="{classes}"' if classes else ""
    return f"<td{cls}{key}>{text}</td>"


def num(value: float | None) -> str:
    return "" if value is None else repr(round(value, 10))


def cell_row(cell: Cell, won: tuple[bool, bool], pages: dict[int, str], extras: Sequence[Column],
             protocol: str) -> str:  # fmt: skip
    """The ``<td>`` cells of one (task, encoding) cell's table row."""
    head = cell.headline
    config = cell.rows[0].config
    test = fmt_range(cell.rows[0].test_lengths)
    if config.get("test_stride", 1) != 1:
        test += f":{config['test_stride']}"
    train = config.get("train_lengths", cell.rows[0].train_lengths)
    several_lrs = len({r.lr for r in cell.rows}) > 1
    struck = ' class="excluded"'
    links = " ".join(
        f'<a href="{pages[id(r)]}"{"" if usable(r) else struck} '
        f'title="{esc(f"{r.run_key}, lr {r.lr:g}, {r.status}")}">'
        f"s{r.seed}{esc(f'@{r.lr:g}') if several_lrs else ''}</a>"
        for r in sorted(cell.rows, key=lambda r: (r.lr, r.seed))
    )
    cells = [
        td(esc(cell.task)),
        td(esc(cell.encoding)),
        td(pct(cell.chance), num(cell.chance), "num"),
        td(str(head.n if head else 0), None, "num"),
        td(pct(cell.best), num(cell.best), "num win" if won[0] else "num"),
        td(mean_sem(cell), num(head.mean if head else None), "num win" if won[1] else "num"),
        td(f"{head.lr:g}" if head else "–", num(head.lr if head else None), "num"),
        td(pct(cell.in_distribution), num(cell.in_distribution), "num"),
        td(str(cell.n_failed or ""), cell.n_failed, "num failed" if cell.n_failed else "num"),
        td(str(config.get("steps", "?")), config.get("steps"), "num"),
        td(esc(fmt_range(train)), train[0], "num"),
        td(esc(test), cell.rows[0].test_lengths[0], "num"),
        td(esc(str(config.get("eval_samples", "?"))), config.get("eval_samples"), "num"),
        td(links, None, "runs"),
    ]
    key = (protocol, cell.task, cell.encoding)
    cells += [td(esc(c.text.get(key, "")), c.value.get(key) if isinstance(c.value.get(key),
              (int, float)) else None) for c in extras]  # fmt: skip
    return "".join(cells)


def group_html(name: str, group: Group, anchor: str, pages: dict[int, str],
               extras: Sequence[Column], figures: Sequence[tuple[str, str]]) -> str:  # fmt: skip
    """One protocol's heading, table, footer line and curve figures."""
    best_ids, mean_ids = winners(group.cells)
    header = "".join(f"<th>{esc(h)}</th>" for h in [*HEADERS, *(c.header for c in extras)])
    search = esc(f"{name} {group.protocol}")
    body = "\n".join(
        f'<tr id="{anchor}-{i}" data-search="{search}">'
        f"{cell_row(cell, (i in best_ids, i in mean_ids), pages, extras, group.protocol)}</tr>"
        for i, cell in enumerate(group.cells)
    )
    parts = [
        f'<h3 id="{anchor}">protocol <span class="protocol">{esc(group.protocol)}</span></h3>',
        f'<div class="scroll"><table class="board"><thead><tr>{header}</tr></thead>',
        f"<tbody>\n{body}\n</tbody></table></div>",
    ]
    if footer(group):
        parts.append(f'<p class="footer">{esc(footer(group))}</p>')
    if figures:
        parts.append('<div class="figures">' + "".join(
            f'<figure><img src="{esc(path)}" alt="accuracy vs length on {esc(task)}" '
            f'><figcaption>{esc(task)}: accuracy vs input length, mean over the '
            "seeds of the best lr; training lengths shaded</figcaption></figure>"
            for task, path in figures) + "</div>")  # fmt: skip
    return "\n".join(parts)


def index_page(
    boards: Sequence[tuple[str, Sequence[RunRecord]]], toc: str, sections: Sequence[str],
    note: str,
) -> str:  # fmt: skip
    names = ", ".join(name for name, _ in boards)
    lines = [
        "<header><h1>che-bench leaderboard</h1>",
        f"<p>{esc(names)}. Scores are accuracy % over the test lengths; <b>best</b>: max over "
        "seeds × lr; <b>mean ± sem</b>: over seeds at the lr with the highest mean; bold "
        "green: best per task; <b>in-dist</b>: accuracy at the training lengths; runs: one "
        "page per seed (struck through: failed or diverged, in no number). Click a column "
        "header to sort; rows must contain every word typed in the filter.</p>",
        f'<p class="note">{esc(note)}</p>' if note else "",
        "</header>",
        toc,
        '<div class="controls"><input id="filter" type="search" autocomplete="off" '
        'placeholder="filter: task, encoding, protocol…" '
        'aria-label="filter rows"><span id="shown"></span></div>',
        *sections,
    ]
    return page("che-bench leaderboard", "\n".join(line for line in lines if line), JS)
