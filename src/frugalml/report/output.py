"""Write benchmark results: JSON + PNG files, and rich tables for the terminal.

Figures need matplotlib, the ``plot`` extra (``pip install 'frugalml[plot]'``); nothing here
imports it at import time. Without it :func:`pyplot` raises
:class:`~frugalml.errors.BackendUnavailableError` naming the extra, :func:`optional_figures`
returns no figures, and the report is written with its tables only (and a note saying so).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._io import atomic_write_bytes
from .._plot import plotting_available, pyplot, require_plotting
from .results import BenchResult, Table

__all__ = [
    "PLOT_EXTRA_NOTE",
    "figure_png",
    "is_number",
    "optional_figures",
    "plotting_available",
    "pyplot",
    "require_plotting",
    "result_files",
    "rich_table",
    "save_png",
    "save_result",
]

#: what a report says in place of its figures when matplotlib is missing
PLOT_EXTRA_NOTE = "figures need matplotlib: pip install 'frugalml[plot]'"


def optional_figures(
    build: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any
) -> dict[str, Any]:
    """``build(*args, **kwargs)`` (a dict name -> matplotlib Figure) when matplotlib is
    installed, else ``{}``: a benchmark's tables do not depend on the ``plot`` extra."""
    if not plotting_available():
        return {}
    return build(*args, **kwargs)


def save_png(fig: Any, path: str | Path) -> Path:
    """Write a figure as PNG atomically and close it."""
    return atomic_write_bytes(path, figure_png(fig))


def figure_png(fig: Any) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    plt = pyplot()

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def result_files(result: BenchResult) -> dict[str, bytes]:
    """The files of one result, rendered in memory: ``<name>_<figure>.png`` for each figure
    (in order) and ``<name>.json`` last."""
    files: dict[str, bytes] = {}
    for fig_name, fig in result.figures.items():
        files[f"{result.name}_{fig_name}.png"] = figure_png(fig)
    payload = result.as_dict()
    payload["figures"] = {k: f"{result.name}_{k}.png" for k in result.figures}
    files[f"{result.name}.json"] = json.dumps(payload, indent=2, default=_jsonable).encode()
    return files


def save_result(result: BenchResult, directory: str | Path) -> dict[str, Path]:
    """Write ``<name>.json`` and ``<name>_<figure>.png`` into ``directory`` (atomically).

    Returns the written paths by kind (``"json"`` and each figure name).
    """
    directory = Path(directory)
    kinds = [*result.figures, "json"]
    files = result_files(result)
    return {
        kind: atomic_write_bytes(directory / name, data)
        for kind, (name, data) in zip(kinds, files.items(), strict=True)
    }


def _jsonable(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


TERMINAL_WIDTH = 100
"""Tables printed by ``frugalml report`` fit a terminal this wide."""

_TEXT_MIN = 14  # narrowest a text column (or header) is folded to


def is_number(value: Any) -> bool:
    """A table cell that is a number (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _min_widths(table: Table) -> list[int]:
    """Per column, the narrowest width that keeps every number on one line."""
    widths = []
    for j, col in enumerate(table.columns):
        cells = [row[j] for row in table.rows]
        numbers = [len(fmt(v)) for v in cells if is_number(v) or v is None]
        texts = [len(fmt(v)) for v in cells if not (is_number(v) or v is None)]
        header_word = max((len(w) for w in col.split()), default=1)
        widths.append(
            max(
                max(numbers, default=1),
                min(max(texts, default=1), _TEXT_MIN),
                min(header_word, _TEXT_MIN),
            )
        )
    return widths


def _column_groups(table: Table, width: int) -> list[list[int]]:
    """Split columns into groups that fit ``width``; every group repeats column 0."""
    need = _min_widths(table)
    cost = [w + 3 for w in need]  # one space of padding each side + a border
    groups: list[list[int]] = []
    current = [0]
    used = 1 + cost[0]
    for j in range(1, len(table.columns)):
        if len(current) > 1 and used + cost[j] > width:
            groups.append(current)
            current, used = [0], 1 + cost[0]
        current.append(j)
        used += cost[j]
    groups.append(current)
    return groups


def _fit(widths: dict[int, int], need: list[int], budget: int) -> dict[int, int]:
    """Narrow the widest columns (never below ``need``) until the widths sum to ``budget``."""
    widths = dict(widths)
    while sum(widths.values()) > budget:
        shrinkable = [j for j, w in widths.items() if w > need[j]]
        if not shrinkable:
            break
        j = max(shrinkable, key=lambda k: widths[k])
        widths[j] -= 1
    return widths


def rich_table(table: Table, width: int = TERMINAL_WIDTH):
    """A rich renderable of ``table`` that fits ``width`` columns: names and headers wrap,
    numbers never do; a table too wide even so is split into column groups, each repeating
    the first column."""
    from rich.console import Group
    from rich.table import Table as RichTable

    need = _min_widths(table)
    natural = [
        max([len(col), *(len(fmt(row[j])) for row in table.rows)])
        for j, col in enumerate(table.columns)
    ]
    groups = _column_groups(table, width) if table.columns else [[]]
    parts = []
    for g, cols in enumerate(groups):
        widths = _fit({j: natural[j] for j in cols}, need, width - 3 * len(cols) - 1)
        title = table.title if g == 0 else f"{table.title} (continued)"
        last = g == len(groups) - 1
        out = RichTable(title=title, caption=(table.note or None) if last else None)
        for j in cols:
            numeric = all(is_number(row[j]) or row[j] is None for row in table.rows)
            out.add_column(
                table.columns[j],
                justify="right" if numeric else "left",
                width=widths[j],
                overflow="fold",
            )
        for row in table.rows:
            out.add_row(*(fmt(row[j]) for j in cols))
        parts.append(out)
    return parts[0] if len(parts) == 1 else Group(*parts)


def fmt(value: Any) -> str:
    """Format a table cell: floats to 4 significant digits."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
