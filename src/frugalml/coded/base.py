"""The linear-code interface shared by polar codes and the baselines.

A code maps K data blocks u_0..u_{K-1} (each an array of any shape, e.g. a row block of A)
to N coded blocks (one per worker) by a real generator matrix ``G`` of shape (K, N):

    x_j = sum_i G[i, j] u_i        (row-vector convention, x = u G)

Because the computation a worker applies is linear (``x_j @ B``), the worker outputs are the
codeword of the per-block results, and the master decodes the results from whichever workers
arrived (the others are erasures).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._deprecation import warn_renamed
from .._resources import check_memory
from .._results import ResultRepr
from .._validate import check_array
from ..errors import InvalidInputError, NotDecodableError

__all__ = ["Decoded", "RealLinearCode", "check_code_size", "check_mask", "check_outputs"]


def check_code_size(rows: int, cols: int, what: str) -> None:
    """Refuse a (rows, cols) float64 generator (with one temporary of its size) that would
    not fit in memory, before allocating it."""
    check_memory(
        16.0 * rows * cols,
        f"the {rows} x {cols} generator matrix of {what}",
        fix="use fewer workers (N) or data blocks (K)",
    )


@dataclass(frozen=True, repr=False)
class Decoded(ResultRepr):
    """Result of decoding.

    blocks: (K, *block_shape) decoded data blocks; rows not ``known`` are zero.
    known: (K,) bool, which blocks were recovered exactly.
    n_arrived: how many coded outputs were available.
    method: which decoder produced it.
    """

    blocks: np.ndarray
    known: np.ndarray
    n_arrived: int
    method: str

    @property
    def complete(self) -> bool:
        return bool(self.known.all())

    def summary(self) -> str:
        return (
            f"{self.method}: {int(self.known.sum())}/{len(self.known)} blocks recovered "
            f"from {self.n_arrived} outputs"
        )

    def require_complete(self) -> np.ndarray:
        """The blocks, or ``NotDecodableError`` saying how many arrived and that more are needed."""
        if not self.complete:
            missing = int((~self.known).sum())
            raise NotDecodableError(
                f"{self.n_arrived} coded output(s) arrived, which recovers "
                f"{len(self.known) - missing} of {len(self.known)} data blocks; "
                f"{missing} block(s) are still unknown: wait for more workers "
                "(or use an anytime estimate)"
            )
        return self.blocks


def check_mask(mask: object, n: int) -> np.ndarray:
    """A fresh (n,) boolean arrival mask from a boolean mask or a list of arrived indices."""
    arr = np.asarray(mask)
    if arr.ndim == 1 and arr.size == 0:
        return np.zeros(n, dtype=bool)  # nothing arrived yet
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise InvalidInputError(f"mask must have shape ({n},), got {arr.shape}")
        return arr.copy()
    if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
        if arr.min() < 0 or arr.max() >= n:
            raise InvalidInputError(f"arrived indices must lie in [0, {n}), got {arr}")
        out = np.zeros(n, dtype=bool)
        out[arr] = True
        return out
    raise InvalidInputError(
        f"mask must be a boolean array of shape ({n},) or a 1-D list of arrived indices, "
        f"got dtype {arr.dtype} and shape {arr.shape}"
    )


def check_outputs(outputs: object, n: int, mask: np.ndarray) -> np.ndarray:
    """(n, *block) float array; rows of erased workers may hold anything (even NaN)."""
    arr = check_array(outputs, "outputs", dtype=None, finite=False, min_size=0)
    if arr.ndim < 1 or arr.shape[0] != n:
        raise InvalidInputError(f"outputs must have shape ({n}, ...), got {arr.shape}")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if mask.any() and not np.all(np.isfinite(arr[mask])):
        raise InvalidInputError("outputs of arrived workers contain NaN or inf")
    return arr


class RealLinearCode(ABC):
    """A real linear (N, K) code for straggler-resilient computation.

    Named ``LinearCode`` in 0.1 (still importable, with a deprecation warning, until 0.3);
    "real" tells it from the binary (GF(2)) codes of :mod:`frugalml.ecc`.
    """

    n: int  #: number of coded blocks (workers)
    k: int  #: number of data blocks

    @property
    @abstractmethod
    def generator(self) -> np.ndarray:
        """(K, N) generator matrix: x = u G."""

    def encode(self, blocks: np.ndarray) -> np.ndarray:
        """(K, *shape) data blocks -> (N, *shape) coded blocks; dense G, O(N K) block ops."""
        u = self._check_blocks(blocks)
        g = self.generator.astype(u.dtype, copy=False)
        return np.tensordot(g.T, u, axes=(1, 0))

    @abstractmethod
    def decodable(self, mask: np.ndarray) -> bool:
        """Whether the arrived set (N,) bool recovers every data block."""

    @abstractmethod
    def decode(self, outputs: np.ndarray, mask: np.ndarray) -> Decoded:
        """Recover data blocks from the arrived outputs ((N, *shape), rows where ``mask``)."""

    def _check_blocks(self, blocks: object) -> np.ndarray:
        u = check_array(blocks, "blocks", dtype=None)
        if u.ndim < 1 or u.shape[0] != self.k:
            raise InvalidInputError(f"blocks must have shape ({self.k}, ...), got {u.shape}")
        if not np.issubdtype(u.dtype, np.floating):
            u = u.astype(np.float64)
        return u

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n={self.n}, k={self.k})"


def __getattr__(name: str) -> Any:
    """``LinearCode``, the 0.1 name of :class:`RealLinearCode`, with a deprecation warning."""
    if name == "LinearCode":
        warn_renamed("LinearCode", "RealLinearCode", __name__)
        return RealLinearCode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
