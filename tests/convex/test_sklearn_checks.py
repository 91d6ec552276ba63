"""scikit-learn's estimator checks on the convex estimators (small, fast settings), and the
meta-estimators they must work in: clone, GridSearchCV over one parameter, a Pipeline with
StandardScaler, scikit-learn's repr."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cvxpy")
pytest.importorskip("sklearn", minversion="1.6")  # (expected_failed_checks)

from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from frugalml.convex import (
    PolySDPClassifier,
    PolySDPRegressor,
    QuantizedSDPClassifier,
    QuantizedSDPRegressor,
)

#: tiny problems: every check fits on at most a few hundred samples with d <= 10, so the
#: whole set runs in about 30 s on one core
FAST = [
    PolySDPRegressor(beta=1e-2),
    PolySDPClassifier(beta=1e-2),
    QuantizedSDPRegressor(beta=1e-2, n_samples=20, random_state=0),
    QuantizedSDPClassifier(beta=1e-2, n_samples=20, random_state=0),
]


def _expected_failures(estimator) -> dict[str, str]:
    if isinstance(estimator, PolySDPClassifier):
        return {
            "check_positive_only_tag_during_fit": (
                "the check fits three-class iris (class 0 linearly separable) as one "
                "one-vs-rest SDP with the logistic loss, and Clarabel stops with a solver "
                "error (SolverFailedError); each column alone, or solver='scs', solves"
            ),
        }
    return {}


@parametrize_with_checks(FAST, expected_failed_checks=_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _regression(n=60, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * np.array([1.0, 10.0, 0.1]) + 5.0
    Xs = (X - X.mean(0)) / X.std(0)
    return X, Xs[:, 0] ** 2 + Xs[:, 1] + 0.05 * rng.standard_normal(n)


@pytest.mark.parametrize("cls", [PolySDPRegressor, QuantizedSDPRegressor])
def test_grid_search_over_beta(cls):
    X, y = _regression()
    extra = {"n_samples": 20, "random_state": 0} if cls is QuantizedSDPRegressor else {}
    search = GridSearchCV(cls(**extra), {"beta": [1e-2, 1.0]}, cv=2).fit(X, y)
    assert search.best_params_["beta"] in (1e-2, 1.0)
    assert search.best_estimator_.predict(X).shape == (60,)
    assert np.isfinite(search.best_score_)


def test_pipeline_with_standard_scaler_equals_built_in_standardization():
    X, y = _regression()
    pipe = make_pipeline(StandardScaler(), PolySDPRegressor(beta=1e-2, standardize=False))
    pipe.fit(X, y)
    own = PolySDPRegressor(beta=1e-2).fit(X, y)
    np.testing.assert_allclose(pipe.predict(X), own.predict(X), rtol=1e-6, atol=1e-6)
    assert pipe.score(X, y) == pytest.approx(own.score(X, y), abs=1e-6)


def test_classifier_in_grid_search_and_clone():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 2))
    y = np.where(X[:, 0] + X[:, 1] ** 2 > 0.5, "a", "b")
    search = GridSearchCV(PolySDPClassifier(), {"beta": [1e-2, 1e-1]}, cv=2).fit(X, y)
    assert search.score(X, y) > 0.8
    c = clone(search.best_estimator_)
    assert c.get_params() == search.best_estimator_.get_params()
    assert not hasattr(c, "classes_")
    assert repr(PolySDPClassifier(beta=0.1, loss="hinge")) == (
        "PolySDPClassifier(beta=0.1, loss='hinge')"
    )
