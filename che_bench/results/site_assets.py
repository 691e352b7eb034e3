"""The CSS and the JavaScript inlined into the pages of the static HTML leaderboard
(:mod:`.site`): hand-written, no library, nothing fetched, so a page works from ``file://``;
:func:`page` wraps a body into a complete document.

The script sorts a table when its column header is clicked (numerically where the cells carry
a numeric ``data-sort``; empty cells last in either direction) and hides the rows that do not
contain every word typed into the filter box.
"""

from __future__ import annotations

from html import escape

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa;
        --win: #116329; --bad: #a40e26; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1500px; padding: 1.2rem 1.5rem 3rem;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--fg); background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .3rem; }
h2 { font-size: 1.25rem; margin: 2rem 0 .4rem; border-bottom: 1px solid var(--line);
     padding-bottom: .2rem; }
h3 { font-size: 1rem; margin: 1.4rem 0 .4rem; font-weight: 600; }
p, li { color: var(--muted); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
                   font-size: 12.5px; }
.controls { position: sticky; top: 0; z-index: 2; background: #fff; padding: .6rem 0;
            display: flex; gap: 1rem; align-items: center;
            border-bottom: 1px solid var(--line); }
#filter { width: 28rem; max-width: 60vw; padding: .4rem .6rem; font: inherit;
          border: 1px solid var(--line); border-radius: 6px; }
#shown { color: var(--muted); }
.note { color: var(--bad); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .3rem 0; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid var(--line); text-align: left;
         white-space: nowrap; }
thead th { background: var(--head); font-weight: 600; position: relative; }
table.board thead th { cursor: pointer; user-select: none; padding-right: 1.3rem; }
table.board thead th:hover { background: #eaeef2; }
table.board thead th::after { content: "\\2195"; position: absolute; right: .35rem;
                              color: #afb8c1; }
table.board thead th[aria-sort="ascending"]::after { content: "\\25B2"; color: var(--fg); }
table.board thead th[aria-sort="descending"]::after { content: "\\25BC"; color: var(--fg); }
table.board tbody tr:nth-child(even) { background: #fafbfc; }
table.board tbody tr:hover { background: #eef4fb; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.win { color: var(--win); font-weight: 700; }
td.failed { color: var(--bad); }
td.runs a { margin-right: .35rem; }
td.runs a.excluded { color: var(--bad); text-decoration: line-through; }
.protocol { color: var(--muted); font-weight: 400; }
.footer { font-size: 12.5px; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; margin-top: .8rem; }
.figures figure { margin: 0; }
.figures img { max-width: 100%; height: auto; border: 1px solid var(--line); }
.figures figcaption { color: var(--muted); font-size: 12.5px; }
table.kv th { background: var(--head); text-align: right; vertical-align: top; }
table.kv td { white-space: pre-wrap; }
table.lengths th, table.lengths td { padding: .15rem .45rem; min-width: 3.2rem; }
table.lengths tr:nth-child(even) td { border-bottom: 2px solid var(--line); }
nav ul { margin: .2rem 0 .6rem; padding-left: 1.2rem; }
nav li { margin: .1rem 0; }
pre { background: var(--head); border: 1px solid var(--line); border-radius: 6px;
      padding: .8rem 1rem; overflow-x: auto; }
"""

JS = """
(function () {
  "use strict";
  function sortKey(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent.trim(); }
    if (raw === "" || raw === "\\u2013") { return null; }
    var number = Number(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }
  function compare(a, b) {
    if (typeof a === typeof b) { return a < b ? -1 : (a > b ? 1 : 0); }
    return typeof a === "number" ? -1 : 1;
  }
  function sortBy(table, header, column) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("thead th").forEach(function (th) {
      th.removeAttribute("aria-sort");
    });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, index) {
      return { row: row, key: sortKey(row.cells[column]), index: index };
    });
    rows.sort(function (x, y) {
      if (x.key === null || y.key === null) {
        return x.key === y.key ? x.index - y.index : (x.key === null ? 1 : -1);
      }
      var order = compare(x.key, y.key);
      return (ascending ? order : -order) || x.index - y.index;
    });
    rows.forEach(function (entry) { body.appendChild(entry.row); });
  }
  document.querySelectorAll("table.board").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (header, column) {
      header.tabIndex = 0;
      header.title = "sort by " + header.textContent.trim();
      header.addEventListener("click", function () { sortBy(table, header, column); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortBy(table, header, column);
        }
      });
    });
  });
  var filter = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var all = document.querySelectorAll("table.board tbody tr");
  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\\s+/).filter(Boolean);
    var visible = 0;
    all.forEach(function (row) {
      var text = (row.textContent + " " + (row.getAttribute("data-search") || "")).toLowerCase();
      var keep = words.every(function (word) { return text.indexOf(word) >= 0; });
      row.hidden = !keep;
      if (keep) { visible += 1; }
    });
    shown.textContent = visible + " of " + all.length + " rows shown";
  }
  if (filter) {
    filter.addEventListener("input", applyFilter);
    applyFilter();
  }
})();
"""


def page(title: str, body: str, script: str = "") -> str:
    """A complete HTML document: inline CSS (and script), nothing loaded from elsewhere."""
    tail = f"<script>{script}</script>\n" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'  # no favicon request: no failed load on Pages
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n"
        f"<body>\n{body}\n{tail}</body>\n</html>\n"
    )
