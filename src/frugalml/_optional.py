"""Import optional backends with a :class:`BackendUnavailableError` that names the extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import BackendUnavailableError

__all__ = ["require"]


def require(module: str, *, what: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ``BackendUnavailableError(what, package, extra)``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(what, module.split(".")[0], extra, detail=str(exc)) from exc
