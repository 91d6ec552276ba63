"""Readable result objects: a repr that shows arrays by shape, and ``print`` that shows the
summary.

Result dataclasses hold whole arrays (solutions, schedules, weights); the default dataclass
repr would print every element. Declare them ``@dataclass(frozen=True, repr=False)`` and
inherit :class:`ResultRepr`: ``repr(result)`` names each field with arrays, tensors and
sparse matrices shown as ``array(shape=(n, d), dtype=float64)``, long sequences and mappings
by their length; ``str(result)`` (what ``print`` shows) is ``result.summary()``.

Cost: O(number of fields); nothing is copied or converted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["ResultRepr", "short_repr"]

#: sequences and mappings longer than this are shown by their length
MAX_ITEMS = 6
#: strings longer than this are cut
MAX_TEXT = 80


def short_repr(value: Any, depth: int = 0) -> str:
    """A one-line repr of ``value`` whose length does not grow with the data."""
    if isinstance(value, np.generic):
        return repr(value.item())
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (int, float, complex)):
        kind = type(value).__name__
        module = type(value).__module__
        dims = tuple(int(s) for s in shape) if shape is not None else ()
        if module.startswith("numpy"):
            if dims == ():  # a NumPy scalar
                return repr(value.item())
            return f"array(shape={dims}, dtype={value.dtype})"
        if module.startswith("torch"):
            return f"tensor(shape={dims}, dtype={value.dtype}, device={value.device})"
        if module.startswith("scipy.sparse"):
            return f"{kind}(shape={dims}, nnz={value.nnz})"
        return f"{kind}(shape={dims})"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if isinstance(value, ResultRepr) or depth >= 1:
            return repr(value) if isinstance(value, ResultRepr) else f"{type(value).__name__}(...)"
        return f"{type(value).__name__}(...)"
    if isinstance(value, str):
        return repr(value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 3] + "...")
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS or depth >= 2:
            return f"{type(value).__name__}(len={len(value)})"
        inner = ", ".join(short_repr(v, depth + 1) for v in value)
        if isinstance(value, tuple):
            return f"({inner}{',' if len(value) == 1 else ''})"
        return f"[{inner}]"
    if isinstance(value, dict):
        if len(value) > MAX_ITEMS or depth >= 2:
            return f"dict(len={len(value)})"
        inner = ", ".join(f"{k!r}: {short_repr(v, depth + 1)}" for k, v in value.items())
        return "{" + inner + "}"
    if isinstance(value, (set, frozenset)) and len(value) > MAX_ITEMS:
        return f"{type(value).__name__}(len={len(value)})"
    text = repr(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


class ResultRepr:
    """Mixin for result dataclasses (declare them with ``repr=False``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not dataclasses.is_dataclass(self):  # pragma: no cover - misuse
            return object.__repr__(self)
        parts = [
            f"{f.name}={short_repr(getattr(self, f.name, None))}"
            for f in dataclasses.fields(self)
            if f.repr
        ]
        return f"{type(self).__name__}({', '.join(parts)})"

    def __str__(self) -> str:
        summary = getattr(self, "summary", None)
        if callable(summary):
            try:
                return str(summary())
            except Exception:  # a repr must not raise
                pass
        return repr(self)
