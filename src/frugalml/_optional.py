"""Import optional backends with a :class:`BackendUnavailableError` that names the extra."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from .errors import BackendUnavailableError

__all__ = ["lazy_exports", "require"]


def require(module: str, *, what: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ``BackendUnavailableError(what, package, extra)``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(what, module.split(".")[0], extra, detail=str(exc)) from exc


def lazy_exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``names`` (name ->
    submodule) on first access, so that optional parts (torch) are exported from the area's
    package without ``import frugalml.<area>`` importing them. Use as
    ``__getattr__ = lazy_exports(__name__, _LAZY)``."""

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(f".{names[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
