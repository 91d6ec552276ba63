"""Two-dimensional product codes: both factors of a product are encoded.

Bartan & Pilanci (arXiv 1901.06811, Section V) encode A by row blocks with one code and B by
column blocks with another; worker (i, j) computes A~_i B~_j. With C[a, b] = A_a B_b the
worker outputs form the codeword array

    X[i, j] = sum_{a, b} G1[a, i] G2[b, j] C[a, b],

each row of which is a codeword of code 2 and each column a codeword of code 1. Decoding
alternates: any row (column) whose arrived entries decode under its code is completed by
re-encoding, until nothing changes; then the message array is read off column-wise and
row-wise. Cost per sweep: N1 + N2 decodes and re-encodes of the row/column codes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._results import ResultRepr
from .._validate import check_array
from ..errors import InvalidInputError, NotDecodableError
from .base import RealLinearCode

__all__ = ["ProductCode", "ProductDecoded"]


@dataclass(frozen=True, repr=False)
class ProductDecoded(ResultRepr):
    """blocks (K1, K2, *shape), known (K1, K2) bool, n_arrived, sweeps used."""

    blocks: np.ndarray
    known: np.ndarray
    n_arrived: int
    sweeps: int

    @property
    def complete(self) -> bool:
        return bool(self.known.all())

    def summary(self) -> str:
        return (
            f"product code: {int(self.known.sum())}/{self.known.size} product blocks recovered "
            f"from {self.n_arrived} worker outputs in {self.sweeps} sweep(s)"
            + ("" if self.complete else " (incomplete: wait for more workers)")
        )

    def require_complete(self) -> np.ndarray:
        if not self.complete:
            raise NotDecodableError(
                f"{self.n_arrived} worker output(s) arrived, which recovers "
                f"{int(self.known.sum())} of {self.known.size} product blocks; wait for more"
            )
        return self.blocks


class ProductCode:
    """Product of a code for the row blocks of A and a code for the column blocks of B."""

    def __init__(self, row_code: RealLinearCode, col_code: RealLinearCode):
        if not isinstance(row_code, RealLinearCode) or not isinstance(col_code, RealLinearCode):
            raise InvalidInputError("ProductCode needs two RealLinearCode instances")
        self.row_code = row_code
        self.col_code = col_code
        self.shape = (row_code.n, col_code.n)
        self.k_shape = (row_code.k, col_code.k)

    def encode(self, a_blocks: np.ndarray, b_blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(K1, r, n) row blocks of A and (K2, n, c) column blocks of B -> coded factors."""
        return self.row_code.encode(a_blocks), self.col_code.encode(b_blocks)

    def _check(self, mask: object) -> np.ndarray:
        arr = np.asarray(mask)
        if arr.dtype != bool or arr.shape != self.shape:
            raise InvalidInputError(f"mask must be a boolean array of shape {self.shape}")
        return arr.copy()

    def decodable(self, mask: np.ndarray) -> bool:
        """Whether ``decode`` recovers every block (runs the decoder on scalar blocks)."""
        return self.decode(np.zeros(self.shape), self._check(mask)).complete

    def decode(self, outputs: np.ndarray, mask: np.ndarray) -> ProductDecoded:
        """outputs (N1, N2, *shape) of worker (i, j) -> message blocks C (K1, K2, *shape)."""
        known = self._check(mask)
        y = check_array(outputs, "outputs", dtype=None, finite=False)
        if y.shape[:2] != self.shape:
            raise InvalidInputError(f"outputs must have shape {self.shape} + block, got {y.shape}")
        if known.any() and not np.all(np.isfinite(y[known])):
            raise InvalidInputError("outputs of arrived workers contain NaN or inf")
        x = np.where(known.reshape(*self.shape, *([1] * (y.ndim - 2))), y, 0.0)
        n_arrived = int(known.sum())
        sweeps = 0
        while True:
            sweeps += 1
            before = int(known.sum())
            for i in range(self.shape[0]):
                if not known[i].all():
                    dec = self.col_code.decode(x[i], known[i])
                    if dec.complete:
                        x[i] = self.col_code.encode(dec.blocks)
                        known[i] = True
            for j in range(self.shape[1]):
                if not known[:, j].all():
                    dec = self.row_code.decode(x[:, j], known[:, j])
                    if dec.complete:
                        x[:, j] = self.row_code.encode(dec.blocks)
                        known[:, j] = True
            if int(known.sum()) == before:
                break
        # message: decode every column with code 1 -> Z (K1, N2), then each row of Z with code 2
        k1, k2 = self.k_shape
        z = np.zeros((k1, self.shape[1], *y.shape[2:]), dtype=x.dtype)
        zk = np.zeros((k1, self.shape[1]), dtype=bool)
        for j in range(self.shape[1]):
            dec = self.row_code.decode(x[:, j], known[:, j])
            z[:, j], zk[:, j] = dec.blocks, dec.known
        c = np.zeros((k1, k2, *y.shape[2:]), dtype=x.dtype)
        ck = np.zeros((k1, k2), dtype=bool)
        for a in range(k1):
            dec = self.col_code.decode(z[a], zk[a])
            c[a], ck[a] = dec.blocks, dec.known
        return ProductDecoded(c, ck, n_arrived, sweeps)
