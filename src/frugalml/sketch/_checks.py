"""Checks of a (ridge) least-squares problem ``min ||A x - b||^2 + lam ||x||^2`` shared by
:func:`~frugalml.sketch.lstsq.lstsq` and :func:`~frugalml.sketch.distributed.distributed_lstsq`
(Bartan & Pilanci, arXiv 2002.06538: the same problem, solved centrally or by averaging).

A private module: its functions are public names for the sketch modules, not part of the API.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validate import check_array
from ..errors import InvalidInputError
from .base import as_operand

__all__ = ["FINITE_CHUNK", "check_finite_rows", "check_lstsq_problem"]


def check_lstsq_problem(
    a: Any, b: Any, lam: float, check_finite: bool = True
) -> tuple[Any, np.ndarray]:
    """Checked ``A`` (float64 dense or CSR) and ``b``; ``check_finite=False`` leaves a dense
    ``A``'s values unchecked (the caller must then call :func:`check_finite_rows`)."""
    if check_finite or sp.issparse(a):
        a = as_operand(a, name="A")
    else:
        a = check_array(a, "A", ndim=(1, 2), finite=False)
    if a.ndim != 2:
        raise InvalidInputError(f"A must be 2-D (n, d), got shape {a.shape}")
    b = check_array(b, "b", ndim=1)
    if b.shape[0] != a.shape[0]:
        raise InvalidInputError(f"b has {b.shape[0]} entries but A has {a.shape[0]} rows")
    n, d = a.shape
    if lam == 0.0 and n < d:
        raise InvalidInputError(
            f"A is {n} x {d} with n < d: the least-squares problem is underdetermined; "
            "pass lam > 0 (ridge) or use a direct solver"
        )
    return a, b


#: rows per chunk of the finiteness check (a 4096 x d boolean temporary, not an n x d one)
FINITE_CHUNK = 4096


def check_finite_rows(a: np.ndarray, name: str = "A") -> None:
    """Raise :class:`InvalidInputError` (the message of :func:`check_array`) when dense ``a``
    holds a NaN or inf; chunked, so no full-size boolean temporary. Cost: one pass over ``a``."""
    bad = 0
    for i in range(0, a.shape[0], FINITE_CHUNK):
        blk = a[i : i + FINITE_CHUNK]
        if not np.isfinite(blk).all():
            bad += int(blk.size - np.count_nonzero(np.isfinite(blk)))
    if bad:
        raise InvalidInputError(f"{name} contains {bad} NaN or inf value(s); clean the input")
