"""The error hierarchy and the shared input checks."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml._validate import (
    check_array,
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_probability,
    check_rng,
)
from frugalml.errors import (
    BackendUnavailableError,
    FrugalError,
    InfeasibleError,
    InvalidInputError,
    NotDecodableError,
    TaskFailedError,
)

# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (InvalidInputError, ValueError),
        (InfeasibleError, ValueError),
        (NotDecodableError, RuntimeError),
        (TaskFailedError, RuntimeError),
    ],
)
def test_error_is_frugal_error_and_builtin(cls, builtin):
    assert issubclass(cls, FrugalError)
    assert issubclass(cls, builtin)
    with pytest.raises(builtin):
        raise cls("boom")
    with pytest.raises(FrugalError):
        raise cls("boom")


def test_invalid_input_error_is_value_error():
    err = InvalidInputError("bad k")
    assert isinstance(err, ValueError)
    assert isinstance(err, FrugalError)
    assert str(err) == "bad k"


def test_backend_unavailable_error_names_the_extra():
    err = BackendUnavailableError("the Ray executor", "ray", "distributed", detail="No module")
    assert isinstance(err, ImportError)
    assert isinstance(err, FrugalError)
    assert (err.what, err.package, err.extra) == ("the Ray executor", "ray", "distributed")
    msg = str(err)
    assert "frugalml[distributed]" in msg
    assert "'ray'" in msg
    assert "the Ray executor" in msg
    assert "(No module)" in msg
    bare = str(BackendUnavailableError("x", "lithops", "serverless"))
    assert bare.endswith("pip install 'frugalml[serverless]'")


# -- check_array ------------------------------------------------------------------------------


def test_check_array_converts_and_passes_good_input():
    out = check_array([[1, 2], [3, 4]], "a", ndim=2, shape=(2, None))
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, np.array([[1.0, 2.0], [3.0, 4.0]]))
    kept = check_array(np.arange(3, dtype=np.int32), "a", dtype=None)
    assert kept.dtype == np.int32
    assert check_array(np.array([1 + 2j]), "z", dtype=complex)[0] == 1 + 2j
    assert check_array([True, False], "b").tolist() == [1.0, 0.0]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_array_rejects_non_finite(bad):
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        check_array([1.0, bad, 2.0], "x")
    # allowed when asked for
    out = check_array([1.0, bad], "x", finite=False)
    assert out.shape == (2,)


def test_check_array_rejects_wrong_ndim_and_shape():
    with pytest.raises(InvalidInputError, match="dimension"):
        check_array(np.zeros((2, 2)), "x", ndim=1)
    with pytest.raises(InvalidInputError, match="dimension"):
        check_array(np.zeros(3), "x", ndim=(2, 3))
    assert check_array(np.zeros((2, 2)), "x", ndim=(1, 2)).shape == (2, 2)
    with pytest.raises(InvalidInputError, match=r"shape \(3, \*\)"):
        check_array(np.zeros((2, 5)), "x", shape=(3, None))
    with pytest.raises(InvalidInputError, match="shape"):
        check_array(np.zeros((2, 5)), "x", shape=(2, 5, 1))
    with pytest.raises(InvalidInputError, match="at least 1"):
        check_array([], "x")


def test_check_array_rejects_complex_to_real():
    with pytest.raises(InvalidInputError, match="real"):
        check_array(np.array([1.0 + 1j, 2.0]), "x")


@pytest.mark.parametrize(
    "bad",
    [
        np.array([1, "a", None], dtype=object),
        np.array([np.zeros(2), np.zeros(3)], dtype=object),
        np.array(["1.0", "2.0"]),
    ],
    ids=["object", "ragged-object", "strings"],
)
def test_check_array_rejects_non_numeric(bad):
    with pytest.raises(InvalidInputError, match="numeric"):
        check_array(bad, "x")


def test_check_array_rejects_ragged_list():
    with pytest.raises(InvalidInputError):
        check_array([[1.0, 2.0], [3.0]], "x")


# -- scalar checks ----------------------------------------------------------------------------


def test_check_int():
    assert check_int(3, "k") == 3
    assert check_int(np.int64(4), "k") == 4
    assert type(check_int(np.int64(4), "k")) is int
    assert check_int(5.0, "k") == 5
    assert check_int(2, "k", low=2, high=2) == 2


@pytest.mark.parametrize("bad", [True, False, 2.5, "3", None, float("nan")])
def test_check_int_rejects_non_integers(bad):
    with pytest.raises(InvalidInputError, match="integer"):
        check_int(bad, "k")


def test_check_int_bounds():
    with pytest.raises(InvalidInputError, match=">= 1"):
        check_int(0, "k", low=1)
    with pytest.raises(InvalidInputError, match="<= 5"):
        check_int(6, "k", high=5)


def test_float_checks():
    assert check_positive_float(2, "r") == 2.0
    assert check_nonnegative_float(0, "d") == 0.0
    assert check_probability(1, "p") == 1.0
    for fn, bad in [
        (check_positive_float, 0.0),
        (check_positive_float, -1.0),
        (check_positive_float, float("inf")),
        (check_positive_float, True),
        (check_positive_float, "1"),
        (check_nonnegative_float, -1e-9),
        (check_nonnegative_float, float("nan")),
        (check_probability, 1.5),
        (check_probability, -0.1),
    ]:
        with pytest.raises(InvalidInputError):
            fn(bad, "v")
    with pytest.raises(InvalidInputError, match=r"\[0, 1\)"):
        check_probability(1.0, "p", allow_one=False)


def test_check_choice():
    assert check_choice("a", "mode", ("a", "b")) == "a"
    with pytest.raises(InvalidInputError, match="'a', 'b'"):
        check_choice("c", "mode", ("a", "b"))


# -- check_rng --------------------------------------------------------------------------------


def test_check_rng_int_seed_is_reproducible():
    a = check_rng(123).random(5)
    b = check_rng(123).random(5)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, np.random.default_rng(123).random(5))
    assert not np.array_equal(a, check_rng(124).random(5))


def test_check_rng_passes_generator_through_and_makes_fresh_one():
    gen = np.random.default_rng(0)
    assert check_rng(gen) is gen
    assert isinstance(check_rng(None), np.random.Generator)
    assert isinstance(check_rng(np.int64(3)), np.random.Generator)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "seed", np.random.RandomState(0)])
def test_check_rng_rejects_bad_seeds(bad):
    with pytest.raises(InvalidInputError):
        check_rng(bad)


def test_one_solver_failed_error_for_every_area():
    """One class in frugalml.errors: catching it through any area's name catches all of them
    (the convex SDPs and the convex GAN used to define unrelated classes)."""
    from frugalml import errors
    from frugalml.convex import SolverFailedError as from_convex
    from frugalml.convex.gan import SolverFailedError as from_gan
    from frugalml.convex.gan.wgan import SolverFailedError as from_wgan
    from frugalml.convex.poly_sdp import SolverFailedError as from_poly

    assert from_convex is from_gan is from_wgan is from_poly is errors.SolverFailedError
    err = errors.SolverFailedError("SCS stopped: infeasible_inaccurate", status="infeasible")
    assert isinstance(err, errors.FrugalError) and isinstance(err, RuntimeError)
    assert err.status == "infeasible"
    assert errors.SolverFailedError("no status").status is None
