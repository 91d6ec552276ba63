"""BLAS/OpenMP thread control.

NumPy and SciPy each bundle an OpenBLAS whose idle threads spin; on a small machine that made
a 100000x500 least-squares solve 10-20x slower (DESIGN.md section 7). The CLI, benchmarks and
tests run with a fixed, small number of BLAS threads.
"""

from __future__ import annotations

import os

from ._validate import check_int

__all__ = ["default_blas_threads", "limit_blas_threads"]

_ENV = "FRUGALML_BLAS_THREADS"


def default_blas_threads() -> int:
    """``$FRUGALML_BLAS_THREADS`` if set, else 1."""
    raw = os.environ.get(_ENV)
    if raw is None:
        return 1
    try:
        return check_int(int(raw), _ENV, low=1)
    except ValueError:
        from .errors import InvalidInputError

        raise InvalidInputError(f"{_ENV} must be a positive integer, got {raw!r}") from None


def limit_blas_threads(n: int | None = None):
    """Limit every loaded BLAS/OpenMP pool to ``n`` threads (default: ``default_blas_threads``).

    Returns the ``threadpoolctl`` limiter, usable as a context manager; also sets the usual
    environment variables so that child processes inherit the limit.
    """
    from threadpoolctl import threadpool_limits

    n = default_blas_threads() if n is None else check_int(n, "blas_threads", low=1)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    return threadpool_limits(limits=n)
