"""The shared result repr: shapes, not data; print shows the summary."""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from frugalml._results import ResultRepr, short_repr


@dataclass(frozen=True, repr=False)
class _Res(ResultRepr):
    x: np.ndarray
    hist: list
    name: str

    def summary(self) -> str:
        return f"x has {self.x.size} entries"


def test_repr_shows_shapes_not_data():
    res = _Res(np.arange(10**6, dtype=float).reshape(1000, 1000), list(range(100)), "lsq")
    text = repr(res)
    want = "_Res(x=array(shape=(1000, 1000), dtype=float64), hist=list(len=100), name='lsq')"
    assert text == want
    assert str(res) == "x has 1000000 entries"
    assert f"{res}" == "x has 1000000 entries"


def test_short_repr_kinds():
    assert short_repr(np.float64(1.5)) == "1.5"
    assert short_repr([1, 2]) == "[1, 2]"
    assert short_repr((3,)) == "(3,)"
    assert short_repr({"a": np.zeros(3)}) == "{'a': array(shape=(3,), dtype=float64)}"
    assert short_repr(sp.eye(4, format="csr")).endswith("(shape=(4, 4), nnz=4)")
    assert len(short_repr("y" * 1000)) <= 82
