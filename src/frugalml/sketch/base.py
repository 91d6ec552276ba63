"""The sketch interface: a distribution over ``m x n`` matrices and its realisations.

A :class:`Sketch` describes a family and a size (``GaussianSketch(m=2048)``); ``draw(n)``
returns a :class:`SketchMatrix`, one realisation ``S`` (shape ``(m, n)``) that can be applied
to several operands (``S @ A`` and ``S @ b`` must use the same ``S``). Every family is scaled
so that ``E[S^T S] = I_n``. ``Sketch.apply(A)`` draws and applies in one call.

Randomness: a sketch built with ``rng=seed`` owns a generator; successive draws differ and the
whole sequence is reproducible from the seed. ``draw(n, rng=...)`` overrides it for one draw
(distributed workers pass their own seed).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._resources import check_memory
from .._validate import RngLike, check_array, check_int, check_rng
from ..errors import InvalidInputError

__all__ = ["Sketch", "SketchMatrix", "as_operand", "check_sketch_memory"]

#: bytes of one float64
FLOAT = 8


def check_sketch_memory(nbytes: float, m: int, n: int, what: str) -> None:
    """:func:`~frugalml._resources.check_memory` for a sketch of ``m`` rows on ``n`` rows."""
    check_memory(
        nbytes,
        f"{what} (sketch size m={m}, n={n})",
        fix="lower the sketch size m (--sketch-size); a sketch needs m >= d but rarely more "
        "than 20 d",
    )


def as_operand(x: Any, n: int | None = None, name: str = "A") -> np.ndarray | sp.csr_matrix:
    """Validate a sketch operand: dense (n,) / (n, k) float array or scipy.sparse (n, k).

    Sparse input is converted to CSR float64; NaN/inf are rejected in both cases.
    """
    if sp.issparse(x):
        x = sp.csr_matrix(x, dtype=np.float64)
        if not np.all(np.isfinite(x.data)):
            raise InvalidInputError(f"{name} contains NaN or inf values; clean the input")
    else:
        x = check_array(x, name, ndim=(1, 2))
    if n is not None and x.shape[0] != n:
        raise InvalidInputError(
            f"{name} has {x.shape[0]} rows but the sketch was drawn for n={n}; "
            "draw a sketch for this operand's row count"
        )
    return x


class SketchMatrix(ABC):
    """One realisation ``S`` of a sketch, shape ``(m, n)``."""

    def __init__(self, m: int, n: int):
        self.m = m
        self.n = n

    @property
    def shape(self) -> tuple[int, int]:
        return (self.m, self.n)

    def apply_nbytes(self, k: int) -> int:
        """Peak bytes of :meth:`apply` to an operand with ``k`` columns (the output plus the
        family's work space)."""
        return FLOAT * self.m * k

    def apply(self, x: Any) -> np.ndarray:
        """``S @ x`` for dense ``x`` (n,) / (n, k) or scipy.sparse (n, k); returns a dense array
        of shape (m,) / (m, k). Raises :class:`~frugalml.errors.TooLargeError` when the result
        and work space would not fit in memory."""
        x = as_operand(x, self.n, "operand")
        vec = x.ndim == 1
        k = 1 if vec else x.shape[1]
        check_sketch_memory(self.apply_nbytes(k), self.m, self.n, f"S @ A with {k} columns")
        y = self._apply(x if not vec else x[:, None])
        return y[:, 0] if vec else y

    def __matmul__(self, x: Any) -> np.ndarray:
        return self.apply(x)

    @abstractmethod
    def _apply(self, x: np.ndarray | sp.csr_matrix) -> np.ndarray:
        """``S @ x`` for a validated 2-D operand."""

    def to_dense(self) -> np.ndarray:
        """The explicit ``(m, n)`` matrix (for tests and small problems)."""
        check_sketch_memory(self.apply_nbytes(self.n), self.m, self.n, "the dense sketch")
        return self._apply(sp.identity(self.n, format="csr"))

    def apply_rows(self, x: Any, start: int) -> np.ndarray:
        """``S[:, start:start + len(x)] @ x``: the contribution of the row block ``x``
        (rows ``start`` ... of the full operand), so that ``S A = sum_j S_j A_j`` streams over
        row blocks. Shapes as :meth:`apply`. Only sketches with ``streams_rows`` support it."""
        raise InvalidInputError(
            f"{type(self).__name__} mixes all rows at once and cannot be applied block by "
            "block; with row-sharded data use a gaussian, rademacher, sparse-sign, countsketch "
            "or uniform sketch"
        )

    def _rows_operand(self, x: Any, start: int) -> tuple[Any, bool]:
        x = as_operand(x, name="row block")
        if start < 0 or start + x.shape[0] > self.n:
            raise InvalidInputError(
                f"row block [{start}, {start + x.shape[0]}) lies outside the sketch's "
                f"n={self.n} columns"
            )
        vec = x.ndim == 1
        return (x[:, None] if vec else x), vec


class Sketch(ABC):
    """A sketch family with ``m`` rows; see the module docstring."""

    #: registry name (``make_sketch(name, m)``)
    name: str = ""
    #: True when ``draw`` needs the data matrix (leverage-score based sketches)
    data_dependent: bool = False
    #: True when a realisation can be applied row block by row block
    #: (:meth:`SketchMatrix.apply_rows`), as row-sharded data needs
    streams_rows: bool = False

    def __init__(self, m: int, rng: RngLike = None):
        self.m = check_int(m, "sketch size m", low=1)
        self._rng = check_rng(rng)

    def draw(self, n: int, *, data: Any = None, rng: RngLike = None) -> SketchMatrix:
        """A realisation for operands with ``n`` rows.

        ``data``: the (n, d) matrix whose row space matters (needed by data-dependent sketches,
        ignored by the others). ``rng`` overrides the sketch's own generator for this draw.
        """
        n = check_int(n, "n", low=1)
        gen = self._rng if rng is None else check_rng(rng)
        if self.data_dependent:
            if data is None:
                raise InvalidInputError(
                    f"the {self.name} sketch depends on the data: pass data=A to draw()"
                )
            data = as_operand(data, n, "data")
            if data.ndim == 1:
                data = data[:, None] if not sp.issparse(data) else data
        d = 1 if data is None or data.ndim == 1 else data.shape[1]
        check_sketch_memory(self.draw_nbytes(n, d), self.m, n, f"drawing a {self.name} sketch")
        return self._draw(n, gen, data)

    def draw_nbytes(self, n: int, d: int) -> int:
        """Peak bytes of :meth:`draw` for ``n`` rows (``d``: columns of the data, for
        data-dependent families); the families that store their realisation override it."""
        return FLOAT * self.m

    @abstractmethod
    def _draw(self, n: int, rng: np.random.Generator, data: Any) -> SketchMatrix: ...

    def apply(self, a: Any, *, rng: RngLike = None) -> np.ndarray:
        """Draw ``S`` for ``a`` (using ``a`` itself as the data) and return ``S @ a``."""
        a = as_operand(a)
        return self.draw(a.shape[0], data=a if a.ndim == 2 else None, rng=rng).apply(a)

    def params(self) -> dict[str, Any]:
        """Hyper-parameters (for reports and JSON output)."""
        return {"sketch": self.name, "m": self.m}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items() if k != "sketch")
        return f"{type(self).__name__}({args})"
