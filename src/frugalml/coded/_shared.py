"""Placing operands once with an executor (``executor.share``) and freeing them.

Shared by the coded products and coded ES: large, unchanging data (coded blocks, B, an
objective holding a model) is placed once and tasks carry :class:`~frugalml.runtime.Shared`
references instead (see DESIGN.md section 3, "Data plane").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..runtime import Shared

__all__ = ["place", "release"]


def place(executor: Any, value: Any) -> Any:
    """``executor.share(value)``, or ``value`` itself for an executor that cannot share (a
    duck-typed executor without ``share``: the value then travels with every task)."""
    share = getattr(executor, "share", None)
    return share(value) if share is not None else value


def release(executor: Any, refs: Iterable[Any]) -> None:
    """Release the :class:`~frugalml.runtime.Shared` references among ``refs``; anything else
    (a value :func:`place` passed through, ``None``) is skipped, and so is a reference
    already freed (e.g. by closing the executor)."""
    held = getattr(executor, "shared", None)
    for ref in refs:
        if isinstance(ref, Shared) and (held is None or ref in held):
            executor.release(ref)
