"""Helpers shared by CLI commands: JSON output, thread limits, rich console."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

from .._threads import limit_blas_threads

__all__ = ["BLAS_OPTION", "JSON_OPTION", "console", "emit_json", "limit_blas_threads"]

console = Console()

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")
BLAS_OPTION = typer.Option(
    None, "--blas-threads", min=1, help="BLAS threads (default $FRUGALML_BLAS_THREADS or 1)."
)


def emit_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
