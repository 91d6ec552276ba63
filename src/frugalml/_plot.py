"""matplotlib, an optional dependency (the ``plot`` extra): import it only when a figure is
drawn, on the non-interactive Agg backend, and say which extra to install when it is missing.

Used by the report, the CLI's ``--plot`` options and the areas that draw (convex GAN sample
grids). Nothing here imports matplotlib at import time.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from .errors import BackendUnavailableError

__all__ = ["plotting_available", "pyplot", "require_plotting"]


def plotting_available() -> bool:
    """Whether matplotlib can be imported (the ``plot`` extra is installed)."""
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):  # sys.modules["matplotlib"] = None, a broken spec
        return False


def require_plotting(what: str = "plotting") -> None:
    """Raise :class:`BackendUnavailableError` (extra ``plot``) unless matplotlib is installed.

    Call it before the work whose result is to be plotted (e.g. as soon as a ``--plot`` option
    is given), so that a missing extra is reported before minutes of computation.
    """
    if not plotting_available():
        raise BackendUnavailableError(what, "matplotlib", "plot")


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed).

    Raises :class:`BackendUnavailableError` naming the ``plot`` extra without matplotlib.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise BackendUnavailableError("plotting", "matplotlib", "plot", detail=str(exc)) from exc
    return plt
