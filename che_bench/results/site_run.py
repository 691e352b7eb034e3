"""One run's page of the static HTML leaderboard (:mod:`.site`): its identity, status,
scores, versions and git revision, the accuracy at every length and the full resolved config,
every text escaped with :func:`html.escape`."""

from __future__ import annotations

import json
from html import escape as esc

from che_bench.results.record import RunRecord
from che_bench.results.report import pct
from che_bench.results.site_assets import page


def run_page(row: RunRecord, board: str, protocol: str, back: str) -> str:
    """One run's page: identity, status, scores, versions, per-length accuracies, config."""
    versions = row.versions or {}
    fields = [
        ("run_key", row.run_key), ("run_id", row.run_id), ("status", row.status),
        ("error", row.error or ""), ("task", row.task), ("encoding", row.encoding),
        ("encoding options", json.dumps(row.encoding_options, sort_keys=True)),
        ("seed", row.seed), ("lr", f"{row.lr:g}"), ("preset", row.preset),
        ("score", pct(row.score)), ("in-dist (train_score)", pct(row.train_score)),
        ("chance", pct(row.chance)), ("steps", row.steps),
        ("final loss", "–" if row.final_loss is None else f"{row.final_loss:.4f}"),
        ("wall time", f"{row.wall_time_s:.1f} s"), ("device", row.device),
        ("git revision", versions.get("code") or "–"),
        *((f"version: {k}", v) for k, v in versions.items() if k != "code"),
        ("model", row.model or "–"), ("timestamp", row.timestamp),
        ("leaderboard", board), ("protocol", protocol),
    ]  # fmt: skip
    table = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in fields)
    curves = "".join(
        f"<div><h3>{title}</h3>{accuracy_table(curve)}</div>"
        for title, curve in (("test lengths", row.accuracy_by_length),
                             ("training lengths", row.train_accuracy_by_length))
        if curve
    )  # fmt: skip
    config = pretty(row.config)
    title = f"{row.task} × {row.encoding}, seed {row.seed}"
    body = (
        f'<p><a href="{esc(back)}">← leaderboard</a></p><h1>{esc(title)}</h1>'
        f'<table class="kv">{table}</table>'
        f'<h2>accuracy by length (%)</h2><div class="curves">{curves or "<p>none</p>"}</div>'
        f'<h2>resolved config</h2><pre id="config">{esc(config)}</pre>'
    )
    return page(f"{title} — che-bench", body)


def pretty(value: object, indent: str = "") -> str:
    """JSON with one key per line, but lists and empty objects on one line."""
    if not isinstance(value, dict) or not value:
        return json.dumps(value, sort_keys=True)
    inner = indent + "  "
    items = [f"{inner}{json.dumps(k)}: {pretty(v, inner)}" for k, v in sorted(value.items())]
    return "{\n" + ",\n".join(items) + f"\n{indent}}}"


def accuracy_table(curve: dict[str, float | None], width: int = 10) -> str:
    """Accuracy % per length, ``width`` lengths to a line (a length row, an accuracy row)."""
    pairs = sorted(curve.items(), key=lambda item: int(item[0]))
    lines = []
    for start in range(0, len(pairs), width):
        chunk = pairs[start : start + width]
        lines.append("<tr><th>length</th>" + "".join(f'<th class="num">{esc(n)}</th>'
                     for n, _ in chunk) + "</tr>")  # fmt: skip
        lines.append("<tr><td>accuracy</td>" + "".join(f'<td class="num">{pct(a)}</td>'
                     for _, a in chunk) + "</tr>")  # fmt: skip
    return f'<table class="lengths">{"".join(lines)}</table>'
