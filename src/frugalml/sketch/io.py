"""Reading least-squares problems from files: ``.npz``, ``.npy`` and ``.csv``.

* ``.npz``: arrays ``A`` and ``b`` (or ``X`` and ``y``).
* ``.npy``: one 2-D array; column ``target`` (default the last) is ``b``, the rest is ``A``.
* ``.csv``: numbers separated by commas, an optional header line; columns as for ``.npy``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._validate import check_array
from ..errors import InvalidInputError

__all__ = ["load_problem"]


def _split(table: np.ndarray, target: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    table = check_array(table, f"{path.name}", ndim=2)
    cols = table.shape[1]
    if cols < 2:
        raise InvalidInputError(f"{path} has {cols} column; need features plus a target column")
    if not -cols <= target < cols:
        raise InvalidInputError(f"target column {target} out of range for {cols} columns")
    t = target % cols
    return np.delete(table, t, axis=1), table[:, t]


def load_problem(path: str | Path, *, target: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` from ``path`` (see the module docstring); raises a clear error otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"data file {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npz":
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise InvalidInputError(
                    f"{path} holds a single .npy array, not an .npz archive; "
                    "rename it to .npy or save A and b with np.savez"
                )
            with loaded as z:
                for ka, kb in (("A", "b"), ("X", "y")):
                    if ka in z and kb in z:
                        a = check_array(z[ka], f"{path.name}:{ka}", ndim=2)
                        b = check_array(z[kb], f"{path.name}:{kb}", ndim=1)
                        if a.shape[0] != b.shape[0]:
                            raise InvalidInputError(
                                f"{path}: {ka} has {a.shape[0]} rows but {kb} has "
                                f"{b.shape[0]} entries"
                            )
                        return a, b
                raise InvalidInputError(
                    f"{path} must contain arrays 'A' and 'b' (or 'X' and 'y'); found {list(z)}"
                )
        if suffix == ".npy":
            return _split(np.load(path, allow_pickle=False), target, path)
        if suffix == ".csv":
            with path.open() as fh:
                first = fh.readline()
            try:
                [float(v) for v in first.strip().split(",") if v.strip()]
                skip = 0
            except ValueError:
                skip = 1
            table = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2)
            return _split(table, target, path)
    except InvalidInputError:
        raise
    except (ValueError, OSError) as exc:
        raise InvalidInputError(f"could not read {path}: {exc}") from exc
    raise InvalidInputError(f"unsupported data file {path}: use .npz, .npy or .csv")
