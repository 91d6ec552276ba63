"""MNIST-1D generated locally (Greydanus, "Scaling down deep learning with MNIST-1D", 2020).

Shared by the areas that train small models on it (quant, coded.dfo, convex.gan, subspace):
the ``mnist1d`` package's own generator makes the data set offline (its ``get_dataset`` would
try to download a pickle). The package is an optional dependency of those areas' extras.
"""

from __future__ import annotations

import random

import numpy as np

from ._optional import require
from ._validate import check_int

__all__ = ["generate_mnist1d"]


def generate_mnist1d(
    n: int, seed: int, *, what: str, extra: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: float64 signals ``(m, 40)`` and int64 labels,
    80 % / 20 % of ``10 (n // 10)`` samples (the generator makes ``n // 10`` per class).

    The same ``seed`` gives the same data bit for bit. ``mnist1d.data.make_dataset`` reseeds
    NumPy's and Python's *global* generators; their states are saved and restored, so calling
    this has no side effect on them. ``what`` / ``extra`` name the caller and the extra to
    install in the error raised when ``mnist1d`` is missing. O(n), about 1 s for 4000 samples.
    """
    n = check_int(n, "n", low=20)
    seed = check_int(seed, "seed", low=0)
    data_mod = require("mnist1d.data", what=what, extra=extra)
    args = data_mod.get_dataset_args()
    args.num_samples = n
    args.seed = seed
    args.train_split = 0.8
    args.url = None  # never used: make_dataset generates, it does not download
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        ds = data_mod.make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)

    def arr(key: str, dtype: type) -> np.ndarray:
        return np.ascontiguousarray(np.asarray(ds[key], dtype=dtype))

    return (
        arr("x", np.float64),
        arr("y", np.int64),
        arr("x_test", np.float64),
        arr("y_test", np.int64),
    )
