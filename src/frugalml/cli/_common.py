"""Helpers shared by CLI commands: JSON output, thread limits, rich consoles, progress bars."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from .._threads import limit_blas_threads

__all__ = [
    "BLAS_OPTION",
    "JSON_OPTION",
    "PROGRESS_COLUMNS",
    "SEED_OPTION",
    "TAIL_RATE_OPTION",
    "WorkBar",
    "checked_plot_path",
    "console",
    "emit_json",
    "err_console",
    "limit_blas_threads",
    "straggler_model_from_options",
]

console = Console()
#: progress and status on stderr, so that stdout holds only the result (tables or --json)
err_console = Console(stderr=True)
PROGRESS_COLUMNS = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")
BLAS_OPTION = typer.Option(
    None, "--blas-threads", min=1, help="BLAS threads (default $FRUGALML_BLAS_THREADS or 1)."
)

#: ``--seed`` of the commands that draw random numbers (an int seed, default 0)
SEED_OPTION = typer.Option(0, help="Random seed.")
#: ``--rate`` of a straggler model whose defaults live in the model (None: the model's default)
TAIL_RATE_OPTION = typer.Option(None, help="Rate of the exponential tail [default 1].")


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


class WorkBar:
    """A transient rich progress bar on stderr for work that may take a while.

    Indeterminate (``total=None``) until a count is known; cleared when done; draws nothing
    with ``disable`` (``--json``) or when stderr is not a terminal. ``update(completed,
    description=None, total=None)`` moves it; :meth:`callback` adapts it to the library's
    ``progress(message, fraction)`` callbacks.
    """

    def __init__(self, description: str, total: float | None = None, *, disable: bool = False):
        disable = disable or not err_console.is_terminal
        self._progress = Progress(
            *PROGRESS_COLUMNS, console=err_console, disable=disable, transient=True
        )
        self._description, self._total = description, total
        self._task: object = None

    def __enter__(self) -> WorkBar:
        self._progress.start()
        self._task = self._progress.add_task(escape(self._description), total=self._total)
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(
        self,
        completed: float | None = None,
        description: str | None = None,
        total: float | None = None,
    ) -> None:
        extra: dict = {}
        if description is not None:
            extra["description"] = escape(description)
        if total is not None:
            extra["total"] = total
        self._progress.update(self._task, completed=completed, **extra)

    def callback(self, message: str, fraction: float) -> None:
        """``progress(message, fraction)`` with ``fraction`` in [0, 1] (bar total 1)."""
        self.update(min(max(fraction, 0.0), 1.0), message)


def checked_plot_path(plot: Path | None, option: str = "--plot") -> Path | None:
    """``plot`` checked as a writable PNG destination, with the plotting extra installed
    (None stays None), before any work starts."""
    if plot is None:
        return None
    from .._io import check_output_path
    from .._plot import require_plotting

    plot = check_output_path(plot, option)
    require_plotting(option)
    return plot


def straggler_model_from_options(name: str, **options: float | None):
    """The straggler model ``name`` (``--stragglers``, one of
    :data:`frugalml.runtime.stragglers.MODEL_NAMES`) built from the options given on the
    command line; options left at None take the model's defaults."""
    from .._validate import check_choice
    from ..runtime import model_from_spec
    from ..runtime.stragglers import MODEL_NAMES

    check_choice(name, "stragglers", MODEL_NAMES)
    return model_from_spec(name, **{key: v for key, v in options.items() if v is not None})
