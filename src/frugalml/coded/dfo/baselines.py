"""Uncoded baselines of coded ES, with the same interface (``run`` / ``step``, ESResult).

Bartan & Pilanci, "Distributed Black-Box Optimization via Error Correcting Codes"
(arXiv 1907.05984) compare coded ES with:

* :class:`WaitAllES` -- plain ES / NES with Gaussian directions, one per worker, waits for all;
* :class:`DropStragglersES` -- the same, but uses the first ``n_wait`` arrivals (or the
  deadline) and drops the stragglers;
* :class:`StructuredES` -- orthogonal directions (Choromanski et al. 2018, arXiv 1804.02395),
  one per worker, waits for all (``n_wait`` drops stragglers as well).

Each is a :class:`~.coded_es.CodedES` with ``code="none"`` (K = N, one direction per worker);
the costs are those of :class:`~.coded_es.CodedES`.
"""

from __future__ import annotations

import math
from typing import Any

from ..._validate import check_int
from ...errors import InvalidInputError
from .coded_es import CodedES, Wait

__all__ = ["DropStragglersES", "StructuredES", "WaitAllES"]


_FIXED = ("code", "n_directions", "decoder", "anytime", "design_erasure")


def _baseline_kwargs(kwargs: dict[str, Any], cls: str) -> None:
    bad = sorted(k for k in _FIXED if k in kwargs)
    if bad:
        raise InvalidInputError(
            f"{cls} is uncoded (one direction per worker); it takes no {', '.join(bad)}"
        )


class WaitAllES(CodedES):
    """Plain ES / NES: N Gaussian directions, one per worker, waits for every worker
    (``directions=`` may change the family). Same interface as :class:`CodedES`."""

    name = "wait-all-es"

    def __init__(self, objective, x0, *, n_workers: int = 64, directions: str = "gaussian",
                 **kwargs: Any):  # fmt: skip
        _baseline_kwargs(kwargs, type(self).__name__)
        kwargs.setdefault("wait", "all")
        super().__init__(objective, x0, n_workers=n_workers, code="none",
                         directions=directions, **kwargs)  # fmt: skip


class DropStragglersES(CodedES):
    """ES that drops stragglers: N Gaussian directions, one per worker; uses the first
    ``n_wait`` finite arrivals (default ceil(0.75 N)) or what arrived by ``deadline``."""

    name = "drop-stragglers-es"

    def __init__(self, objective, x0, *, n_workers: int = 64, directions: str = "gaussian",
                 n_wait: int | None = None, **kwargs: Any):  # fmt: skip
        _baseline_kwargs(kwargs, type(self).__name__)
        if "wait" in kwargs:
            raise InvalidInputError("DropStragglersES takes n_wait=, not wait=")
        n = check_int(n_workers, "n_workers", low=1)
        m = math.ceil(0.75 * n) if n_wait is None else check_int(n_wait, "n_wait", low=1, high=n)
        super().__init__(objective, x0, n_workers=n, code="none", directions=directions,
                         wait=m, **kwargs)  # fmt: skip


class StructuredES(CodedES):
    """Structured exploration (Choromanski et al. 2018): N orthogonal directions (blocks of
    d), one per worker, waits for all (or the first ``n_wait`` arrivals)."""

    name = "structured-es"

    def __init__(self, objective, x0, *, n_workers: int = 64, directions: str = "orthogonal",
                 n_wait: int | None = None, **kwargs: Any):  # fmt: skip
        _baseline_kwargs(kwargs, type(self).__name__)
        if "wait" in kwargs:
            raise InvalidInputError("StructuredES takes n_wait=, not wait=")
        wait: Wait = "all" if n_wait is None else n_wait
        super().__init__(objective, x0, n_workers=n_workers, code="none",
                         directions=directions, wait=wait, **kwargs)  # fmt: skip
