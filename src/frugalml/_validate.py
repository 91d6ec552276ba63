"""Shared input checks used at the public boundary of every area.

Each check either returns a normalised value or raises :class:`~frugalml.errors.InvalidInputError`
with a message that names the argument, what was wrong and what is expected.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

from .errors import InvalidInputError

__all__ = [
    "RngLike",
    "check_array",
    "check_choice",
    "check_int",
    "check_nonnegative_float",
    "check_positive_float",
    "check_probability",
    "check_rng",
    "seed_from_rng",
]

RngLike = int | np.random.Generator | None
T = TypeVar("T")


def check_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as an ``int`` in ``[low, high]`` or raise.

    Booleans and non-integral floats are rejected (``k=2.5`` is a bug, not a request).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise InvalidInputError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if low is not None and value < low:
        raise InvalidInputError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise InvalidInputError(f"{name} must be <= {high}, got {value}")
    return value


def _check_real(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInputError(f"{name} must be finite, got {value}")
    return value


def check_positive_float(value: Any, name: str) -> float:
    """Return ``value`` as a finite float > 0 or raise."""
    value = _check_real(value, name)
    if value <= 0:
        raise InvalidInputError(f"{name} must be > 0, got {value}")
    return value


def check_nonnegative_float(value: Any, name: str) -> float:
    """Return ``value`` as a finite float >= 0 or raise."""
    value = _check_real(value, name)
    if value < 0:
        raise InvalidInputError(f"{name} must be >= 0, got {value}")
    return value


def check_probability(value: Any, name: str, *, allow_one: bool = True) -> float:
    """Return ``value`` as a float in ``[0, 1]`` (or ``[0, 1)``) or raise."""
    value = _check_real(value, name)
    if value < 0 or value > 1 or (not allow_one and value == 1):
        bound = "]" if allow_one else ")"
        raise InvalidInputError(f"{name} must lie in [0, 1{bound}, got {value}")
    return value


def check_choice(value: T, name: str, choices: Iterable[T]) -> T:
    """Return ``value`` if it is one of ``choices`` or raise, listing the valid ones."""
    options = list(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise InvalidInputError(f"{name} must be one of {listed}; got {value!r}")
    return value


def check_rng(rng: RngLike) -> np.random.Generator:
    """Turn ``int | Generator | None`` into a ``numpy.random.Generator``.

    An ``int`` seeds a new PCG64 generator, so results are reproducible from it.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise InvalidInputError(f"rng seed must be >= 0, got {rng}")
        return np.random.default_rng(int(rng))
    raise InvalidInputError(
        f"rng must be an int seed, a numpy.random.Generator or None, got {type(rng).__name__}"
    )


def seed_from_rng(rng: RngLike) -> int:
    """An integer seed for libraries that take one (torch, CP-SAT, worker processes).

    An ``int`` is returned unchanged (so results for a given seed do not depend on whether the
    caller passed ``rng=`` or the old ``seed=``); a Generator gives a drawn ``int`` in
    [0, 2**31 - 1); ``None`` a fresh random one.
    """
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise InvalidInputError(f"rng seed must be >= 0, got {rng}")
        return int(rng)
    return int(check_rng(rng).integers(2**31 - 1))


def check_array(
    x: Any,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    shape: Sequence[int | None] | None = None,
    dtype: Any = np.float64,
    finite: bool = True,
    min_size: int = 1,
) -> np.ndarray:
    """Convert ``x`` to a NumPy array and check it.

    Parameters
    ----------
    ndim:
        Required number of dimensions (or a collection of allowed ones).
    shape:
        Required shape; ``None`` entries are free.
    dtype:
        Target dtype (``None`` keeps the input's). Complex or object input to a real
        dtype is rejected instead of silently cast.
    finite:
        Reject NaN and inf.
    min_size:
        Minimum number of elements.
    """
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists etc.
        raise InvalidInputError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype == object:
        raise InvalidInputError(f"{name} must be numeric, got an object array (ragged input?)")
    if dtype is None:
        if np.iscomplexobj(arr):
            raise InvalidInputError(f"{name} must be real, got complex dtype {arr.dtype}")
        if arr.dtype.kind not in "biuf":
            raise InvalidInputError(f"{name} must be numeric, got dtype {arr.dtype}")
    else:
        target = np.dtype(dtype)
        if np.iscomplexobj(arr) and target.kind != "c":
            raise InvalidInputError(f"{name} must be real, got complex dtype {arr.dtype}")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise InvalidInputError(f"{name} must be numeric, got dtype {arr.dtype}")
        arr = arr.astype(target, copy=False)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise InvalidInputError(
                f"{name} must have {' or '.join(map(str, allowed))} dimension(s), "
                f"got shape {arr.shape}"
            )
    if shape is not None and (
        len(shape) != arr.ndim
        or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=False))
    ):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise InvalidInputError(f"{name} must have shape {want}, got {arr.shape}")
    if arr.size < min_size:
        raise InvalidInputError(f"{name} must have at least {min_size} element(s), got {arr.size}")
    if finite and np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise InvalidInputError(f"{name} contains {bad} NaN or inf value(s); clean the input")
    return arr
