"""Render the HTML report (a single self-contained index.html plus PNG files)."""

from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any

from .output import fmt, is_number
from .results import BenchResult, Table

__all__ = ["render_index"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.7em; text-align: right; }
th { background: #f3f3f3; }
td.text, th.text { text-align: left; }
caption { font-weight: bold; text-align: left; padding-bottom: 0.3em; }
.note { color: #666; font-size: 0.9em; }
.failed { color: #b00; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
nav ol { columns: 2; padding-left: 1.5em; }
nav li { margin: 0.15em 0; }
.status { font-size: 0.85em; padding: 0 0.4em; border-radius: 0.3em; white-space: nowrap; }
.status-met { background: #dfd; }
.status-not-met, .status-failed { background: #fdd; }
.status-not-checked, .status-measured { background: #eee; }
.glance { display: grid; grid-template-columns: repeat(2, 1fr); gap: 1em; }
.glance figure { margin: 0; }
.glance img { width: 100%; }
.glance figcaption { font-size: 0.9em; }
"""


def _table_html(table: Table) -> str:
    """Numbers right-aligned, text (names, headlines) left-aligned, per column."""
    text = [
        not all(is_number(row[j]) or row[j] is None for row in table.rows)
        for j in range(len(table.columns))
    ]
    cls = [" class='text'" if t else "" for t in text]
    head = "".join(f"<th{cls[j]}>{html.escape(c)}</th>" for j, c in enumerate(table.columns))
    body = "".join(
        "<tr>"
        + "".join(f"<td{cls[j]}>{html.escape(fmt(v))}</td>" for j, v in enumerate(row))
        + "</tr>"
        for row in table.rows
    )
    note = f'<p class="note">{html.escape(table.note)}</p>' if table.note else ""
    return (
        f"<table><caption>{html.escape(table.title)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
    )


def _anchor(name: str) -> str:
    return "area-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def _status_badge(status: str) -> str:
    kind = status.split(" (")[0].replace(" ", "-")
    return f"<span class='status status-{html.escape(kind)}'>{html.escape(status)}</span>"


def render_index(
    summary: Table,
    results: list[BenchResult],
    figures: dict[str, dict[str, str]],
    failures: dict[str, str],
    machine: dict[str, Any],
    quick: bool,
    note: str = "",
) -> str:
    """The report page. ``figures[area][name]`` is the PNG file name of each plot.

    Top: the summary table, a table of contents and one figure per area (its first);
    ``note`` (e.g. that figures need the ``plot`` extra) under the run line.
    """
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    status = {row[0]: row[2] for row in summary.rows if len(row) > 2}
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>frugalml report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>frugalml report</h1>",
        f"<p class='note'>{'quick' if quick else 'full'} run, {html.escape(stamp)}; "
        f"machine: {html.escape(_machine_line(machine))}</p>",
        f"<p class='note'>{html.escape(note)}</p>" if note else "",
        _table_html(summary),
        "<nav><h2>Contents</h2><ol>",
    ]
    for res in results:
        parts.append(
            f"<li><a href='#{_anchor(res.name)}'>{html.escape(res.title)}</a> "
            f"{_status_badge(status.get(res.name, res.goal_status(quick)))}</li>"
        )
    for area in failures:
        parts.append(
            f"<li><a href='#{_anchor(area)}'>{html.escape(area)}</a> {_status_badge('failed')}</li>"
        )
    parts.append("</ol></nav>")
    glance = [
        (res, next(iter(figures[res.name].items()))) for res in results if figures.get(res.name)
    ]
    if glance:
        parts.append("<h2>At a glance</h2><div class='glance'>")
        for res, (name, png) in glance:
            parts.append(
                f"<figure><a href='#{_anchor(res.name)}'><img src='{html.escape(png)}' "
                f"alt='{html.escape(res.title)}: {html.escape(name)}'></a>"
                f"<figcaption>{html.escape(res.title)}</figcaption></figure>"
            )
        parts.append("</div>")
    for res in results:
        parts.append(f"<h2 id='{_anchor(res.name)}'>{html.escape(res.title)}</h2>")
        parts.append(f"<p>{html.escape(res.headline)}</p>")
        parts.append(f"<p class='note'>measured: {html.escape(res.mode)}</p>")
        parts.extend(_table_html(t) for t in res.tables)
        for name, png in figures.get(res.name, {}).items():
            parts.append(f"<img src='{html.escape(png)}' alt='{html.escape(name)}'>")
    for area, err in failures.items():
        parts.append(f"<h2 id='{_anchor(area)}' class='failed'>{html.escape(area)}: failed</h2>")
        parts.append(f"<pre>{html.escape(err)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _machine_line(machine: dict[str, Any]) -> str:
    blas = ", ".join(f"{b['internal_api']} {b['version']}" for b in machine.get("blas", []))
    items = [
        f"{machine.get('cpu_count')} cores",
        f"Python {machine.get('python')}",
        f"NumPy {machine.get('numpy')}",
        f"BLAS {blas or '?'}",
    ]
    if "torch" in machine:
        items.append(f"torch {machine['torch']}")
        items.append(f"GPU {machine.get('gpu') or 'none'}")
    return "; ".join(items)
