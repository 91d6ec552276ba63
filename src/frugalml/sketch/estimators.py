"""scikit-learn-style estimators trained by the distributed Newton sketch.

``SketchedRidge`` and ``SketchedLogisticRegression`` follow the scikit-learn estimator API
(hyper-parameters in ``__init__``, ``fit(X, y)`` returns ``self``, learned state with a trailing
underscore, ``predict``), and minimise exactly the objectives of :mod:`.newton` with
debiased averaging (``debias=True``) or naive GIANT-style averaging (``debias=False``):

* ridge: ``1/2 ||X w + c - y||^2 + lam/2 ||w||^2``; the intercept ``c`` is not penalised
  (the data are centred, and ``c`` recovered from the means, which is exact for ridge);
* logistic: ``sum log(1 + exp(-y_i (x_i^T w + c))) + lam/2 (||w||^2 + c^2)`` — the intercept is
  a constant feature and *is* penalised (unlike scikit-learn, where ``C = 1/lam`` and the
  intercept is free).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special

from .._validate import check_array, check_int, check_nonnegative_float
from ..errors import InvalidInputError
from .newton import NewtonResult, distributed_newton

__all__ = ["SketchedLogisticRegression", "SketchedRidge"]


class _SketchedBase:
    _loss = "least-squares"

    def __init__(
        self,
        lam: float = 1.0,
        *,
        n_workers: int = 8,
        sketch: str = "gaussian",
        sketch_size: int | None = None,
        executor: Any = None,
        debias: bool = True,
        max_iter: int = 50,
        tol: float = 1e-10,
        fit_intercept: bool = True,
        random_state: int | None = None,
    ):
        self.lam = lam
        self.n_workers = n_workers
        self.sketch = sketch
        self.sketch_size = sketch_size
        self.executor = executor
        self.debias = debias
        self.max_iter = max_iter
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.random_state = random_state

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {
            "lam": self.lam, "n_workers": self.n_workers, "sketch": self.sketch,
            "sketch_size": self.sketch_size, "executor": self.executor, "debias": self.debias,
            "max_iter": self.max_iter, "tol": self.tol, "fit_intercept": self.fit_intercept,
            "random_state": self.random_state,
        }  # fmt: skip

    def set_params(self, **params: Any) -> _SketchedBase:
        for key, value in params.items():
            if key not in self.get_params():
                raise InvalidInputError(f"unknown parameter {key!r} for {type(self).__name__}")
            setattr(self, key, value)
        return self

    def _run(self, a: np.ndarray, y: np.ndarray) -> NewtonResult:
        return distributed_newton(
            a, y, loss=self._loss, lam=check_nonnegative_float(self.lam, "lam"),
            q=check_int(self.n_workers, "n_workers", low=1), m=self.sketch_size,
            sketch=self.sketch, averaging="debiased" if self.debias else "naive",
            executor=self.executor, max_iter=self.max_iter, tol=self.tol,
            rng=self.random_state,
        )  # fmt: skip

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise InvalidInputError(f"this {type(self).__name__} is not fitted yet; call fit()")

    def _check_x(self, x: Any) -> np.ndarray:
        x = check_array(x, "X", ndim=2)
        if x.shape[1] != self.coef_.shape[0]:
            raise InvalidInputError(
                f"X has {x.shape[1]} features, the model was fitted with {self.coef_.shape[0]}"
            )
        return x

    def decision_function(self, x: Any) -> np.ndarray:
        self._check_fitted()
        return self._check_x(x) @ self.coef_ + self.intercept_


class SketchedRidge(_SketchedBase):
    """Ridge regression by the debiased distributed Newton sketch."""

    _loss = "least-squares"

    def fit(self, x: Any, y: Any) -> SketchedRidge:
        x = check_array(x, "X", ndim=2)
        y = check_array(y, "y", shape=(x.shape[0],))
        if self.fit_intercept:
            xm, ym = x.mean(axis=0), y.mean()
            res = self._run(x - xm, y - ym)
            self.coef_ = res.x
            self.intercept_ = float(ym - xm @ res.x)
        else:
            res = self._run(x, y)
            self.coef_, self.intercept_ = res.x, 0.0
        self.n_iter_ = res.iterations
        self.result_ = res
        return self

    def predict(self, x: Any) -> np.ndarray:
        return self.decision_function(x)


class SketchedLogisticRegression(_SketchedBase):
    """L2-regularised binary logistic regression by the debiased distributed Newton sketch."""

    _loss = "logistic"

    def fit(self, x: Any, y: Any) -> SketchedLogisticRegression:
        x = check_array(x, "X", ndim=2)
        y_raw = np.asarray(y)
        if y_raw.shape != (x.shape[0],):
            raise InvalidInputError(f"y must have shape ({x.shape[0]},), got {y_raw.shape}")
        classes = np.unique(y_raw)
        if classes.size != 2:
            raise InvalidInputError(
                f"logistic regression needs exactly two classes in y, got {classes.size}"
            )
        yy = np.where(y_raw == classes[1], 1.0, -1.0)
        a = np.hstack([x, np.ones((x.shape[0], 1))]) if self.fit_intercept else x
        res = self._run(a, yy)
        self.classes_ = classes
        if self.fit_intercept:
            self.coef_, self.intercept_ = res.x[:-1], float(res.x[-1])
        else:
            self.coef_, self.intercept_ = res.x, 0.0
        self.n_iter_ = res.iterations
        self.result_ = res
        return self

    def predict_proba(self, x: Any) -> np.ndarray:
        p1 = scipy.special.expit(self.decision_function(x))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, x: Any) -> np.ndarray:
        self._check_fitted()
        return self.classes_[(self.decision_function(x) > 0).astype(int)]
