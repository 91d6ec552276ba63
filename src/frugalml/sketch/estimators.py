"""scikit-learn estimators trained by the distributed Newton sketch.

Derezinski, Bartan, Pilanci & Mahoney, "Debiasing Distributed Second Order Optimization with
Surrogate Sketching and Scaled Regularization" (NeurIPS 2020, arXiv 2007.01327); naive
averaging as in GIANT (Wang, Roosta, Xu & Mahoney, NeurIPS 2018).

``SketchedRidge`` (a ``RegressorMixin, BaseEstimator``) and ``SketchedLogisticRegression`` (a
``ClassifierMixin, BaseEstimator``, binary) are scikit-learn estimators: ``get_params`` /
``set_params``, ``clone``, ``score``, ``GridSearchCV`` and ``Pipeline`` work, ``__init__`` only
stores the hyper-parameters (validated by ``fit``), learned state has a trailing underscore
(``coef_``, ``intercept_``, ``n_features_in_``, ``classes_``, ``n_iter_``, ``result_``), and
``fit(X, y)`` returns ``self``. They minimise exactly the objectives of :mod:`.newton` with
debiased averaging (``debias=True``) or naive GIANT-style averaging (``debias=False``):

* ridge: ``1/2 ||X w + c - y||^2 + lam/2 ||w||^2``; the intercept ``c`` is not penalised
  (the data are centred, and ``c`` recovered from the means, which is exact for ridge);
* logistic: ``sum log(1 + exp(-y_i (x_i^T w + c))) + lam/2 (||w||^2 + c^2)`` — the intercept is
  a constant feature and *is* penalised (unlike scikit-learn, where ``C = 1/lam`` and the
  intercept is free). ``classes_`` is ``numpy.unique(y)``; the class sorted last is the
  positive one, as in scikit-learn. More than two classes raise ``InvalidInputError`` (a
  ``ValueError``).

Errors: bad input raises :class:`~frugalml.errors.InvalidInputError` (a ``ValueError``; the
message is scikit-learn's where its input validation caught it); ``predict`` & co. before
``fit`` raise :class:`NotFittedError`, both an ``InvalidInputError`` and scikit-learn's
``NotFittedError``. ``executor`` is shared, not copied, by ``clone`` (a thread or process pool
cannot be deep-copied), so every clone made by ``GridSearchCV`` runs on the same pool.
Cost of ``fit``: that of :func:`~frugalml.sketch.newton.distributed_newton` on ``X`` (n, d):
``n_workers`` sketched ``m x d`` solves per Newton step.

Needs scikit-learn (``pip install 'frugalml[sketch]'``); ``frugalml.sketch`` exports these
classes lazily, so importing the area does not import it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.special

from .._validate import check_int, check_nonnegative_float
from ..errors import BackendUnavailableError, FrugalError, InvalidInputError
from .newton import NewtonResult, distributed_newton

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    from sklearn.utils.multiclass import check_classification_targets, type_of_target
    from sklearn.utils.validation import check_is_fitted
except ImportError as exc:  # pragma: no cover - the "sketch" extra is missing
    raise BackendUnavailableError(
        "SketchedRidge and SketchedLogisticRegression", "scikit-learn", "sketch", detail=str(exc)
    ) from exc

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # pragma: no cover - scikit-learn < 1.6

    def validate_data(estimator: Any, X: Any = "no_validation", y: Any = "no_validation",
                      reset: bool = True, **check_params: Any) -> Any:  # fmt: skip
        return estimator._validate_data(X, y, reset=reset, **check_params)


__all__ = ["NotFittedError", "SketchedLogisticRegression", "SketchedRidge"]


class NotFittedError(InvalidInputError, SklearnNotFittedError):
    """``predict``, ``decision_function`` or ``predict_proba`` called before ``fit``: both a
    frugalml :class:`~frugalml.errors.InvalidInputError` and scikit-learn's
    ``NotFittedError``."""


def _validated(estimator: BaseEstimator, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data`` with its ``ValueError`` raised as
    :class:`InvalidInputError` (same message)."""
    try:
        return validate_data(estimator, *args, **kwargs)
    except ValueError as exc:
        if isinstance(exc, FrugalError):
            raise
        raise InvalidInputError(str(exc)) from exc


class _SketchedNewtonEstimator(BaseEstimator):
    """Hyper-parameters and the Newton-sketch fit shared by both estimators.

    lam: L2 regularisation ``>= 0`` (logistic: ``> 0``). n_workers: sketches averaged per
    Newton step. sketch: a family of :data:`~frugalml.sketch.SKETCHES` or ``"surrogate"``.
    sketch_size: rows of each sketch (default ``max(4 d, 4 d_lambda + 10)``). executor: a
    :mod:`frugalml.runtime` executor (default a local thread pool per fit). debias: debiased
    (True) or naive averaging. max_iter, tol: Newton steps and the stop
    ``||g|| <= tol ||g_0||``. fit_intercept: fit an intercept. random_state: seed (int) or
    ``numpy.random.Generator`` of the sketches; ``None`` draws fresh ones on every fit.
    """

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
        random_state: int | np.random.Generator | None = None,
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

    def __sklearn_clone__(self) -> _SketchedNewtonEstimator:
        """A clone with the same hyper-parameters; ``executor`` is passed by reference (a
        pool cannot be deep-copied, and clones share it), every other one is cloned as by
        :func:`sklearn.base.clone`."""
        params = {
            name: value if name == "executor" else clone(value, safe=False)
            for name, value in self.get_params(deep=False).items()
        }
        return type(self)(**params)

    def _run(self, a: np.ndarray, y: np.ndarray) -> NewtonResult:
        return distributed_newton(
            a, y, loss=self._loss, lam=check_nonnegative_float(self.lam, "lam"),
            q=check_int(self.n_workers, "n_workers", low=1), m=self.sketch_size,
            sketch=self.sketch, averaging="debiased" if self.debias else "naive",
            executor=self.executor, max_iter=self.max_iter, tol=self.tol,
            rng=self.random_state,
        )  # fmt: skip

    def _check_fitted(self) -> None:
        try:
            check_is_fitted(self, "coef_")
        except SklearnNotFittedError as exc:
            raise NotFittedError(str(exc)) from None

    def _linear(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_`` (n,) for ``X`` (n, d), after the fitted and input
        checks; ``O(n d)``."""
        self._check_fitted()
        x = _validated(self, X, reset=False, dtype=np.float64)
        return x @ self.coef_ + self.intercept_


class SketchedRidge(RegressorMixin, _SketchedNewtonEstimator):
    """Ridge regression by the debiased distributed Newton sketch (parameters: see the
    module docstring). ``score`` is scikit-learn's R^2."""

    _loss = "least-squares"

    def fit(self, X: Any, y: Any) -> SketchedRidge:
        """Fit on ``X`` (n, d) and ``y`` (n,); returns ``self``."""
        x, y = _validated(self, X, y, dtype=np.float64, y_numeric=True)
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

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``X @ coef_ + intercept_`` (n,) for ``X`` (n, d); ``O(n d)``."""
        return self._linear(X)


class SketchedLogisticRegression(ClassifierMixin, _SketchedNewtonEstimator):
    """L2-regularised binary logistic regression by the debiased distributed Newton sketch
    (parameters: see the module docstring). ``score`` is scikit-learn's accuracy."""

    _loss = "logistic"

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"binary_only": True}

    def fit(self, X: Any, y: Any) -> SketchedLogisticRegression:
        """Fit on ``X`` (n, d) and two-class labels ``y`` (n,); returns ``self``."""
        x, y_raw = _validated(self, X, y, dtype=np.float64)
        try:
            check_classification_targets(y_raw)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
        kind = type_of_target(y_raw, input_name="y")
        if kind != "binary":
            raise InvalidInputError(
                f"Only binary classification is supported. The type of the target is {kind}: "
                f"logistic regression needs exactly two classes in y, got "
                f"{np.unique(y_raw).size}"
            )
        classes = np.unique(y_raw)
        if classes.size != 2:  # one class
            raise InvalidInputError(
                f"logistic regression needs exactly two classes in y, got {classes.size} class"
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

    def decision_function(self, X: Any) -> np.ndarray:
        """``X @ coef_ + intercept_`` (n,) for ``X`` (n, d): positive for ``classes_[1]``;
        ``O(n d)``."""
        return self._linear(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """``[P(classes_[0]), P(classes_[1])]`` (n, 2) for ``X`` (n, d)."""
        p1 = scipy.special.expit(self.decision_function(X))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels (n,), from ``classes_``, for ``X`` (n, d)."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]
