"""The scikit-learn convex estimators: objectives equal to the underlying SDPs on the
pre-processed data, label mapping, one-vs-rest by vector outputs, the quantized certificate,
the parameter API (clone), not-fitted and bad-input errors, and a light import (scikit-learn's
own checks: test_sklearn_checks.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import NotFittedError

from frugalml.convex import (
    Polynomial,
    PolySDPClassifier,
    PolySDPRegressor,
    QuantizedSDPClassifier,
    QuantizedSDPRegressor,
)
from frugalml.convex.estimators import ACTIVATIONS, resolve_activation
from frugalml.errors import InvalidInputError

ACT = Polynomial.fit_relu()
ESTIMATORS = (PolySDPRegressor, PolySDPClassifier, QuantizedSDPRegressor, QuantizedSDPClassifier)


def standardized(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


@pytest.fixture(scope="module")
def reg_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3)) * np.array([1.0, 4.0, 0.5]) + 2.0
    Xs = standardized(X)
    y = Xs[:, 0] ** 2 + Xs[:, 1] - 0.5 * Xs[:, 2] + 5.0 + 0.05 * rng.standard_normal(40)
    return X, y


@pytest.fixture(scope="module")
def clf_data():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 3))
    margin = X[:, 0] + 0.5 * X[:, 1]
    keep = np.abs(margin) > 0.3  # a clear gap between the classes
    X, margin = X[keep], margin[keep]
    return X, np.where(margin > 0, "pos", "neg")


# -- polynomial SDP regressor ---------------------------------------------------------------------


def test_regressor_objective_equals_sdp(reg_data):
    pytest.importorskip("cvxpy")
    from frugalml.convex import solve_poly_sdp

    X, y = reg_data
    est = PolySDPRegressor(beta=0.05)
    assert est.fit(X, y) is est
    Xs, yc = standardized(X), y - y.mean()
    sol = solve_poly_sdp(Xs, yc, activation=ACT, beta=0.05)
    assert est.objective_ == pytest.approx(sol.objective, rel=1e-6)
    assert est.network_objective_ == pytest.approx(est.objective_, rel=1e-5)
    assert est.n_neurons_ == est.network_.width >= 1
    assert est.intercept_ == pytest.approx(y.mean())
    np.testing.assert_allclose(est.x_mean_, X.mean(axis=0))
    np.testing.assert_allclose(est.x_scale_, X.std(axis=0))
    pred = est.predict(X)
    assert pred.shape == (40,)
    np.testing.assert_allclose(pred, est.network_.predict(Xs) + y.mean(), atol=1e-10)
    np.testing.assert_allclose(pred, sol.predict(Xs) + y.mean(), atol=1e-5)
    assert est.score(X, y) > 0.8


def test_regressor_raw_problem_and_vector_output(reg_data):
    pytest.importorskip("cvxpy")
    from frugalml.convex import solve_poly_sdp

    X, y = reg_data
    Xs = standardized(X)
    raw = PolySDPRegressor(ACT, 0.1, standardize=False, fit_intercept=False).fit(Xs, y)
    assert raw.objective_ == pytest.approx(
        solve_poly_sdp(Xs, y, activation=ACT, beta=0.1).objective, rel=1e-6
    )
    assert raw.intercept_ == 0.0 and np.all(raw.x_scale_ == 1.0)
    Y = np.column_stack([y, -2.0 * y])
    vec = PolySDPRegressor(beta=0.1, polish=True).fit(X, Y)
    assert vec.predict(X).shape == (40, 2) and vec.intercept_.shape == (2,)
    assert vec.network_.alpha.ndim == 2
    assert vec.network_objective_ <= vec.objective_ * (1 + 1e-5)  # polishing only lowers it


# -- polynomial SDP classifier --------------------------------------------------------------------


def test_classifier_string_labels(clf_data):
    pytest.importorskip("cvxpy")
    X, y = clf_data
    clf = PolySDPClassifier(beta=0.01).fit(X, y)
    assert list(clf.classes_) == ["neg", "pos"]
    pred = clf.predict(X)
    assert set(pred) <= {"neg", "pos"}
    assert clf.score(X, y) > 0.9
    scores = clf.decision_function(X)
    np.testing.assert_array_equal(pred, np.where(scores > 0, "pos", "neg"))
    proba = clf.predict_proba(X)
    assert proba.shape == (len(y), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.classes_[np.argmax(proba, axis=1)], pred)
    hinge = PolySDPClassifier(beta=0.01, loss="hinge").fit(X, y)
    assert hinge.score(X, y) > 0.9
    assert not hasattr(hinge, "predict_proba")  # (scikit-learn's available_if)
    with pytest.raises(AttributeError, match="predict_proba") as info:
        hinge.predict_proba(X)
    assert "predict_proba needs loss='logistic'" in str(info.value.__cause__)


def test_classifier_one_vs_rest(clf_data):
    pytest.importorskip("cvxpy")
    from frugalml.convex import solve_poly_sdp

    X, _ = clf_data
    y = np.digitize(X[:, 0], [-0.5, 0.5]) + 7  # labels 7, 8, 9
    clf = PolySDPClassifier(beta=0.01).fit(X, y)
    assert list(clf.classes_) == [7, 8, 9]
    scores = clf.decision_function(X)
    assert scores.shape == (len(y), 3) and clf.network_.alpha.shape[1] == 3
    assert clf.score(X, y) > 0.8
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    T = np.where(y[:, None] == np.array([7, 8, 9])[None, :], 1.0, -1.0)
    sol = solve_poly_sdp(standardized(X), T, activation=ACT, beta=0.01, loss="logistic")
    assert clf.objective_ == pytest.approx(sol.objective, rel=1e-5)


# -- quantized -------------------------------------------------------------------------------------


def test_quantized_regressor_certificate(reg_data):
    pytest.importorskip("cvxpy")
    X, y = reg_data
    est = QuantizedSDPRegressor(beta=0.05, n_samples=200, random_state=0).fit(X, y)
    assert est.certified_gap_ >= -1e-6
    assert est.lower_bound_ <= est.objective_ * (1 + 1e-6)
    assert est.n_neurons_ == est.network_.width >= 1
    assert set(np.unique(est.network_.U)) <= {-1.0, 1.0}
    pred = est.predict(X)
    assert pred.shape == (40,)
    Xs = standardized(X)
    assert est.objective_ == pytest.approx(est.network_.objective(Xs, y - y.mean()), rel=1e-9)
    again = QuantizedSDPRegressor(beta=0.05, n_samples=200, random_state=0).fit(X, y)
    np.testing.assert_allclose(again.predict(X), pred, rtol=1e-6, atol=1e-8)
    with pytest.raises(InvalidInputError, match="1d array"):
        est.fit(X, np.column_stack([y, y]))  # one output only


def test_quantized_classifier(clf_data):
    pytest.importorskip("cvxpy")
    X, y = clf_data
    clf = QuantizedSDPClassifier(beta=0.01, n_samples=100, random_state=1).fit(X, y)
    assert clf.certified_gap_ >= -1e-6 and clf.score(X, y) > 0.9
    assert clf.predict_proba(X).shape == (len(y), 2)
    with pytest.raises(InvalidInputError, match="Only binary classification"):
        clf.fit(X, np.arange(len(y)) % 3)


# -- API -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_params_and_clone(cls):
    est = cls(beta=0.5, activation=(1.0, 0.0, 0.0), standardize=False)
    params = est.get_params()
    assert params["beta"] == 0.5 and params["activation"] == (1.0, 0.0, 0.0)
    assert cls(**params).get_params() == params
    assert est.set_params(beta=2.0) is est and est.beta == 2.0
    with pytest.raises(ValueError, match="Invalid parameter 'lam'"):
        est.set_params(lam=1.0)
    assert repr(est) == f"{cls.__name__}(activation=(1.0, 0.0, 0.0), beta=2.0, standardize=False)"
    from sklearn.base import BaseEstimator, clone

    assert isinstance(est, BaseEstimator)
    cloned = clone(est)
    assert cloned is not est and cloned.get_params() == est.get_params()
    assert not hasattr(cloned, "network_")


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_not_fitted_raises(cls):
    X = np.ones((3, 2))
    methods = ["predict"] + (["decision_function", "predict_proba"] if "Classifier" in
                             cls.__name__ else [])  # fmt: skip
    for method in methods:
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(cls(), method)(X)


def test_bad_input(reg_data, clf_data):
    pytest.importorskip("cvxpy")
    X, y = reg_data
    est = PolySDPRegressor(beta=-1.0)  # stored unchanged, validated at fit
    with pytest.raises(InvalidInputError, match="beta must be > 0"):
        est.fit(X, y)
    assert not hasattr(est, "network_")
    with pytest.raises(InvalidInputError, match="classification loss"):
        PolySDPRegressor(loss="logistic").fit(X, y)
    with pytest.raises(InvalidInputError, match="loss must be one of"):
        PolySDPClassifier(loss="squared").fit(*clf_data)
    with pytest.raises(InvalidInputError, match="inconsistent numbers of samples"):
        PolySDPRegressor().fit(X, y[:-1])
    with pytest.raises(InvalidInputError, match="at least two classes"):
        PolySDPClassifier().fit(X, np.zeros(len(y)))
    with pytest.raises(InvalidInputError, match="activation must be one of"):
        PolySDPRegressor(activation="relu").fit(X, y)
    with pytest.raises(InvalidInputError, match="standardize must be True or False"):
        PolySDPRegressor(standardize="yes").fit(X, y)
    with pytest.raises(InvalidInputError, match="NaN"):
        PolySDPRegressor().fit(np.where(X > 3, np.nan, X), y)
    fitted = PolySDPRegressor(beta=0.1).fit(X, y)
    with pytest.raises(InvalidInputError, match="X has 2 features, but PolySDPRegressor is "
                       "expecting 3 features"):  # fmt: skip
        fitted.predict(X[:, :2])
    with pytest.raises(InvalidInputError, match="Unknown label type"):
        PolySDPClassifier().fit(X, y)  # continuous labels


def test_activation_presets():
    for name in ACTIVATIONS:
        assert isinstance(resolve_activation(name), Polynomial)
    assert resolve_activation("relu-fit") == ACT
    assert resolve_activation([2.0, 1.0, 0.0]) == Polynomial(2.0, 1.0, 0.0)


def test_import_is_light():
    """``import frugalml.convex`` imports none of the backends (the estimators are exported
    lazily); importing the estimators imports scikit-learn but neither CVXPY nor torch."""
    code = (
        "import sys, frugalml.convex; "
        "print(*(m in sys.modules for m in ('cvxpy', 'torch', 'scipy', 'sklearn'))); "
        "from frugalml.convex import PolySDPRegressor; "
        "print(*(m in sys.modules for m in ('cvxpy', 'torch', 'sklearn')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False"] * 4 + ["False", "False", "True"]
