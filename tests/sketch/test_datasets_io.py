"""Regression problems (frugalml.sketch.datasets) and reading them from files
(frugalml.sketch.io.load_problem)."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.sketch import leverage_scores
from frugalml.sketch.datasets import REAL_DATASETS, Regression, load_real, synthetic_regression
from frugalml.sketch.io import load_problem

# --------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("kappa", [1.0, 10.0, 1e3, 1e6])
@pytest.mark.parametrize("df", [float("inf"), 1.0, 3.0])
def test_synthetic_condition_number(kappa, df):
    prob = synthetic_regression(600, 12, kappa=kappa, df=df, rng=1)
    assert isinstance(prob, Regression)
    assert prob.shape == (600, 12) and prob.a.shape == (600, 12) and prob.b.shape == (600,)
    assert np.all(np.isfinite(prob.a)) and np.all(np.isfinite(prob.b))
    np.testing.assert_allclose(np.linalg.cond(prob.a), kappa, rtol=1e-6)
    sv = np.linalg.svd(prob.a, compute_uv=False)
    # log-spaced singular values from 1 down to 1/kappa
    np.testing.assert_allclose(sv, np.logspace(0, -np.log10(kappa), 12), rtol=1e-8)
    assert f"kappa={kappa:g}" in prob.name


def test_synthetic_coherence_depends_on_df():
    """Student-t rows with df=1 give a far larger maximal leverage than Gaussian rows
    (incoherent: max leverage a few times d/n = 0.01; coherent: close to 1)."""
    for seed in range(3):
        coh = synthetic_regression(1000, 10, df=1.0, rng=seed).a
        inc = synthetic_regression(1000, 10, df=float("inf"), rng=seed).a
        lc, li = leverage_scores(coh), leverage_scores(inc)
        np.testing.assert_allclose([lc.sum(), li.sum()], 10, rtol=1e-10)
        assert li.max() < 0.1
        assert lc.max() > 0.5
        assert lc.max() > 5 * li.max()


def test_synthetic_noise_and_reproducibility():
    p1 = synthetic_regression(300, 5, kappa=100.0, noise=0.0, rng=4)
    # noiseless: b lies in range(A)
    x, *_ = np.linalg.lstsq(p1.a, p1.b, rcond=None)
    assert np.linalg.norm(p1.a @ x - p1.b) <= 1e-10 * np.linalg.norm(p1.b)
    p2 = synthetic_regression(300, 5, kappa=100.0, noise=0.0, rng=4)
    np.testing.assert_array_equal(p1.a, p2.a)
    np.testing.assert_array_equal(p1.b, p2.b)
    p3 = synthetic_regression(300, 5, kappa=100.0, noise=0.0, rng=5)
    assert not np.array_equal(p1.a, p3.a)
    # noise = 1: residual norm ~ ||A x|| (noise scaled by ||A x|| / sqrt(n) per entry)
    p4 = synthetic_regression(3000, 5, noise=1.0, rng=4)
    x, *_ = np.linalg.lstsq(p4.a, p4.b, rcond=None)
    ratio = np.linalg.norm(p4.a @ x - p4.b) / np.linalg.norm(p4.a @ x)
    assert 0.8 < ratio < 1.25


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 10, "d": 11}, "d must be <= 10"),
        ({"n": 1, "d": 1}, "n must be >= 2"),
        ({"n": 10, "d": 2, "kappa": 0.5}, "kappa must be >= 1"),
        ({"n": 10, "d": 2, "kappa": -1.0}, "kappa must be > 0"),
        ({"n": 10, "d": 2, "df": -1.0}, "df must be > 0"),
        ({"n": 10, "d": 2, "kappa": float("nan")}, "kappa must be finite"),
    ],
)
def test_synthetic_validation(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        synthetic_regression(rng=0, **kwargs)


# --------------------------------------------------------------------------- real


@pytest.mark.parametrize("name", REAL_DATASETS)
def test_load_real(name):
    prob = load_real(name)
    n, d = prob.a.shape
    expected_n = {"diabetes": 442, "digits": 1797, "breast-cancer": 569}[name]
    assert n == expected_n and prob.b.shape == (n,)
    assert prob.name == name
    assert np.all(np.isfinite(prob.a)) and np.all(np.isfinite(prob.b))
    # last column is the intercept; the others are standardised, non-constant features
    np.testing.assert_array_equal(prob.a[:, -1], 1.0)
    feats = prob.a[:, :-1]
    np.testing.assert_allclose(feats.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(feats.std(axis=0), 1.0, rtol=1e-10)
    assert np.linalg.matrix_rank(prob.a) == d  # full column rank: usable for least squares
    if name == "breast-cancer":
        assert set(np.unique(prob.b)) == {0.0, 1.0}
    if name == "digits":
        assert set(np.unique(prob.b)) == set(range(10))
        assert d <= 65  # 64 pixels minus the constant ones, plus the intercept


def test_load_real_unknown():
    with pytest.raises(InvalidInputError, match="dataset must be one of"):
        load_real("iris")


# --------------------------------------------------------------------------- load_problem


@pytest.fixture(name="table")
def table_fixture():
    rng = np.random.default_rng(0)
    return np.round(rng.standard_normal((7, 4)), 6)


def test_npz_a_b_and_x_y(tmp_path, table):
    a, b = table[:, :3], table[:, 3]
    np.savez(tmp_path / "p.npz", A=a, b=b)
    ga, gb = load_problem(tmp_path / "p.npz")
    np.testing.assert_array_equal(ga, a)
    np.testing.assert_array_equal(gb, b)
    assert ga.dtype == np.float64
    np.savez(tmp_path / "q.npz", X=a.astype(np.float32), y=b.astype(np.int64))
    ga, gb = load_problem(str(tmp_path / "q.npz"))
    np.testing.assert_allclose(ga, a, rtol=1e-6)
    np.testing.assert_array_equal(gb, b.astype(np.int64))
    assert ga.dtype == np.float64 and gb.dtype == np.float64
    # A/b wins over X/y when both are present; upper-case suffix is accepted
    with open(tmp_path / "R.NPZ", "wb") as fh:  # np.savez would append ".npz" to a path
        np.savez(fh, A=a, b=b, X=a + 1, y=b + 1)
    ga, gb = load_problem(tmp_path / "R.NPZ")
    np.testing.assert_array_equal(ga, a)


def test_npz_errors(tmp_path, table):
    np.savez(tmp_path / "keys.npz", A=table, y=table[:, 0])
    with pytest.raises(InvalidInputError, match=r"must contain arrays 'A' and 'b'.*found"):
        load_problem(tmp_path / "keys.npz")
    np.savez(tmp_path / "dims.npz", A=table, b=table)
    with pytest.raises(InvalidInputError, match=r"dims.npz:b must have 1 dimension"):
        load_problem(tmp_path / "dims.npz")
    bad = table.copy()
    bad[0, 0] = np.nan
    np.savez(tmp_path / "nan.npz", A=bad, b=table[:, 0])
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        load_problem(tmp_path / "nan.npz")
    (tmp_path / "junk.npz").write_text("not a zip file")
    with pytest.raises(InvalidInputError, match="could not read"):
        load_problem(tmp_path / "junk.npz")


@pytest.mark.parametrize("target, col", [(-1, 3), (0, 0), (2, 2), (-4, 0)])
def test_npy_target_column(tmp_path, table, target, col):
    np.save(tmp_path / "t.npy", table)
    a, b = load_problem(tmp_path / "t.npy", target=target)
    np.testing.assert_array_equal(b, table[:, col])
    np.testing.assert_array_equal(a, np.delete(table, col, axis=1))
    assert a.shape == (7, 3)


def test_npy_errors(tmp_path, table):
    np.save(tmp_path / "t.npy", table)
    with pytest.raises(InvalidInputError, match="target column 4 out of range for 4 columns"):
        load_problem(tmp_path / "t.npy", target=4)
    with pytest.raises(InvalidInputError, match="target column -5 out of range"):
        load_problem(tmp_path / "t.npy", target=-5)
    np.save(tmp_path / "one.npy", table[:, :1])
    with pytest.raises(InvalidInputError, match="has 1 column; need features plus a target"):
        load_problem(tmp_path / "one.npy")
    np.save(tmp_path / "vec.npy", table[:, 0])
    with pytest.raises(InvalidInputError, match="must have 2 dimension"):
        load_problem(tmp_path / "vec.npy")
    np.save(tmp_path / "obj.npy", np.array([1, "a"], dtype=object), allow_pickle=True)
    with pytest.raises(InvalidInputError, match="could not read"):
        load_problem(tmp_path / "obj.npy")


@pytest.mark.parametrize("header", [None, "x1,x2,x3,y", "a, b ,c,target"])
@pytest.mark.parametrize("target, col", [(-1, 3), (1, 1)])
def test_csv(tmp_path, table, header, target, col):
    lines = [",".join(repr(float(v)) for v in row) for row in table]
    if header is not None:
        lines.insert(0, header)
    path = tmp_path / "data.csv"
    path.write_text("\n".join(lines) + "\n")
    a, b = load_problem(path, target=target)
    assert a.shape == (7, 3) and b.shape == (7,)  # the header is not a data row
    np.testing.assert_array_equal(b, table[:, col])
    np.testing.assert_array_equal(a, np.delete(table, col, axis=1))


def test_csv_single_row_and_errors(tmp_path):
    (tmp_path / "one.csv").write_text("1,2,3\n")
    a, b = load_problem(tmp_path / "one.csv")
    np.testing.assert_array_equal(a, [[1.0, 2.0]])
    np.testing.assert_array_equal(b, [3.0])
    (tmp_path / "text.csv").write_text("x,y\n1,2\n3,abc\n")
    with pytest.raises(InvalidInputError, match="could not read"):
        load_problem(tmp_path / "text.csv")
    (tmp_path / "nan.csv").write_text("1,2\nnan,4\n")
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        load_problem(tmp_path / "nan.csv")
    (tmp_path / "col.csv").write_text("1\n2\n")
    with pytest.raises(InvalidInputError, match="has 1 column"):
        load_problem(tmp_path / "col.csv")


def test_missing_file_and_wrong_suffix(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_problem(tmp_path / "nope.npz")
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_problem(tmp_path)  # a directory is not a data file
    (tmp_path / "data.txt").write_text("1,2\n3,4\n")
    with pytest.raises(InvalidInputError, match=r"unsupported data file .*use .npz, .npy or .csv"):
        load_problem(tmp_path / "data.txt")


def test_npz_holding_npy_is_rejected_cleanly(tmp_path, table):
    np.save(tmp_path / "arr.npy", table)
    (tmp_path / "arr.npz").write_bytes((tmp_path / "arr.npy").read_bytes())
    with pytest.raises(InvalidInputError):
        load_problem(tmp_path / "arr.npz")


def test_npz_row_mismatch_is_rejected(tmp_path, table):
    np.savez(tmp_path / "mis.npz", A=table, b=table[:5, 0])
    with pytest.raises(InvalidInputError, match="rows"):
        load_problem(tmp_path / "mis.npz")
