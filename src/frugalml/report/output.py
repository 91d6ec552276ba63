"""Write benchmark results: JSON + PNG files, and rich tables for the terminal."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from .._io import atomic_write_bytes
from .results import BenchResult, Table

__all__ = ["figure_png", "pyplot", "result_files", "rich_table", "save_png", "save_result"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | Path) -> Path:
    """Write a figure as PNG atomically and close it."""
    return atomic_write_bytes(path, figure_png(fig))


def figure_png(fig: Any) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    import matplotlib.pyplot as plt

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


def rich_table(table: Table):
    """A ``rich.table.Table`` for terminal output."""
    from rich.table import Table as RichTable

    out = RichTable(title=table.title, caption=table.note or None)
    for col in table.columns:
        out.add_column(col, justify="right")
    for row in table.rows:
        out.add_row(*(fmt(v) for v in row))
    return out


def fmt(value: Any) -> str:
    """Format a table cell: floats to 4 significant digits."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
