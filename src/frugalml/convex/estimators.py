"""scikit-learn-style estimators for the convex (globally optimal) training of two-layer
quadratic-activation networks.

* :class:`PolySDPRegressor` and :class:`PolySDPClassifier` solve the lifted SDP of
  :func:`~frugalml.convex.poly_sdp.solve_poly_sdp` (Bartan & Pilanci, arXiv:2101.02429) and
  decompose its solution into a network with :func:`~frugalml.convex.decompose.decompose`;
* :class:`QuantizedSDPRegressor` and :class:`QuantizedSDPClassifier` solve the SDP relaxation
  of binary-weight networks (:func:`~frugalml.convex.quantized.solve_quantized_sdp`, Bartan &
  Pilanci, ICML 2021, arXiv:2105.01420) and round it
  (:func:`~frugalml.convex.quantized.round_quantized`), with a certified optimality gap.

They are scikit-learn estimators (:class:`sklearn.base.BaseEstimator` with
``RegressorMixin`` / ``ClassifierMixin``), so ``clone``, ``get_params``/``set_params``,
``score``, ``GridSearchCV``, ``Pipeline`` and scikit-learn's ``repr`` work: hyper-parameters are
stored unchanged by ``__init__`` and validated by ``fit``, which validates ``X`` and ``y`` with
scikit-learn's ``validate_data`` (so ``n_features_in_`` and, for DataFrames,
``feature_names_in_`` are set, and bad data raise
:class:`~frugalml.errors.InvalidInputError`, a ``ValueError``, with scikit-learn's message);
learned state has a trailing underscore; ``fit`` returns ``self``; calling ``predict`` & co.
before ``fit`` raises scikit-learn's ``NotFittedError``. No ``sample_weight``: the SDPs weight
every sample equally. Importing this module imports scikit-learn (and SciPy) but neither CVXPY
nor torch; ``frugalml.convex`` exports the estimators lazily.

**Pre-processing** (part of the model, applied again by ``predict``):

* ``standardize=True``: every feature is centred and scaled to unit standard deviation
  (``x_mean_``, ``x_scale_``; constant features keep scale 1). The penalty
  ``beta sum_j |alpha_j|`` with unit-norm (or sign) first-layer weights is not invariant to
  feature scales, so without it the fit depends on the units of ``X``; the activation presets
  are least-squares fits of ReLU / swish on ``[-1, 1]``, i.e. meant for pre-activations of
  order one. With ``standardize=False`` ``x_mean_ = 0`` and ``x_scale_ = 1``.
* regressors, ``fit_intercept=True``: the targets are centred before the SDP by the
  unpenalised constant ``intercept_`` (the column means; the medians for ``loss="absolute"``),
  and the network fits ``y - intercept_``. The constant is *fixed* before training, not
  optimised jointly with the network (the lifted SDP has no free offset; the activation's
  constant ``c`` only gives a penalised one), so the joint optimum over (network, offset) can
  be slightly lower; but a large mean of ``y`` no longer has to be paid for through
  ``beta sum |alpha_j|``. ``objective_``, ``lower_bound_`` etc. refer to the centred problem.
  Classifiers have no separate intercept (their offset comes from the activation's ``c`` and
  the quadratic term, both penalised).

**Classification**: any two label values are mapped to ``-1`` (``classes_[0]``) and ``+1``
(``classes_[1]``, ``classes_`` sorted as by ``numpy.unique``). For ``K >= 3`` classes
:class:`PolySDPClassifier` trains one-vs-rest *in one SDP with vector outputs*: the target is
the ``(n, K)`` matrix with ``+1`` in the column of the sample's class and ``-1`` elsewhere, the
network has ``K`` outputs (the problem separates over outputs, so this is ``K`` binary
problems solved together), ``decision_function`` returns ``(n, K)`` and ``predict`` the class
of the largest output. ``predict_proba`` (logistic loss only) is ``sigmoid(decision)`` for two
classes and, one-vs-rest, the per-class sigmoids normalised to sum to one (scikit-learn's OvR
convention). The quantized relaxation has a single output, so :class:`QuantizedSDPClassifier`
is binary only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_choice, check_int
from ..errors import BackendUnavailableError, InvalidInputError
from .activation import ACTIVATIONS, resolve_activation

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted
except ImportError as _exc:  # pragma: no cover - scikit-learn is part of the convex extra
    raise BackendUnavailableError(
        "the convex scikit-learn estimators", "sklearn", "convex", detail=str(_exc)
    ) from _exc
try:
    from sklearn.utils.validation import validate_data as _sk_validate_data
except ImportError:  # pragma: no cover - scikit-learn < 1.6

    def _sk_validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
        return estimator._validate_data(*args, **kwargs)


# ACTIVATIONS and resolve_activation live in .activation; they stay importable from here
__all__ = [
    "ACTIVATIONS",
    "PolySDPClassifier",
    "PolySDPRegressor",
    "QuantizedSDPClassifier",
    "QuantizedSDPRegressor",
    "resolve_activation",
]

REGRESSION_LOSSES = ("squared", "absolute", "huber")
QUANTIZED_REGRESSION_LOSSES = ("squared", "absolute")
CLASSIFICATION_LOSSES = ("logistic", "hinge")


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _sigmoid(t: np.ndarray) -> np.ndarray:
    # numerically stable logistic function without SciPy
    out = np.empty_like(t, dtype=np.float64)
    pos = t >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-t[pos]))
    e = np.exp(t[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def _validate_data(estimator: Any, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data`` with its ``ValueError`` raised as
    :class:`~frugalml.errors.InvalidInputError` (also a ``ValueError``, same message)."""
    try:
        return _sk_validate_data(estimator, *args, **kwargs)
    except InvalidInputError:
        raise
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from exc


class _ConvexEstimator(BaseEstimator):
    """Shared standardisation, data validation and fitted-state checks."""

    #: ``y`` may be ``(n, k)`` (the lifted SDP has vector outputs)
    _multi_output = False

    def __sklearn_tags__(self) -> Any:  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = self._multi_output
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {"multioutput": self._multi_output}

    def _standardization(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, scale)`` of the validated X (n, d); ``O(n d)``."""
        d = X.shape[1]
        if _check_bool(self.standardize, "standardize"):
            mean = X.mean(axis=0)
            scale = X.std(axis=0)
            tiny = np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean)) * 16.0
            scale = np.where(scale > tiny, scale, 1.0)
        else:
            mean, scale = np.zeros(d), np.ones(d)
        return mean, scale

    def _transform(self, X: Any) -> np.ndarray:
        """``(X - x_mean_) / x_scale_`` for a fitted estimator (NotFittedError before ``fit``;
        X checked against ``n_features_in_``)."""
        check_is_fitted(self, "network_")
        X = _validate_data(self, X, reset=False, dtype=np.float64)
        return (X - self.x_mean_) / self.x_scale_


def _center(y: np.ndarray, loss: str, fit_intercept: bool) -> np.ndarray | float:
    if not fit_intercept:
        return np.zeros(y.shape[1]) if y.ndim == 2 else 0.0
    center = np.median(y, axis=0) if loss == "absolute" else np.mean(y, axis=0)
    return center if y.ndim == 2 else float(center)


class _Regressor(_ConvexEstimator):
    """``fit`` (standardised ``X``, centred targets) and ``predict`` of the regressors."""

    _classifier_name = ""
    _losses: tuple[str, ...] = ()

    def fit(self, X: Any, y: Any) -> Any:
        """Solve on standardised ``X`` (n, d) for the targets ``y`` minus ``intercept_``."""
        if self.loss in CLASSIFICATION_LOSSES:
            raise InvalidInputError(
                f"loss={self.loss!r} is a classification loss; use {self._classifier_name}"
            )
        check_choice(self.loss, "loss", self._losses)
        fit_intercept = _check_bool(self.fit_intercept, "fit_intercept")
        X, y = _validate_data(self, X, y, dtype=np.float64, y_numeric=True,
                              multi_output=self._multi_output)  # fmt: skip
        y = np.asarray(y, dtype=np.float64)
        mean, scale = self._standardization(X)
        intercept = _center(y, self.loss, fit_intercept)
        self._solve((X - mean) / scale, y - intercept, self.loss)
        self.x_mean_ = mean
        self.x_scale_ = scale
        self.intercept_ = intercept
        if self._multi_output:
            self.n_outputs_ = 1 if y.ndim == 1 else int(y.shape[1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``(n,)`` (or ``(n, k)`` for vector targets)."""
        Xs = self._transform(X)
        return self.network_.predict(Xs) + self.intercept_


def _has_probabilities(estimator: Any) -> bool:
    if estimator.loss != "logistic":
        raise AttributeError(
            f"predict_proba needs loss='logistic' (the {estimator.loss!r} loss is not a "
            "likelihood); use decision_function"
        )
    return True


class _Classifier(_ConvexEstimator):
    """``fit`` (labels mapped to ``+-1`` or one-vs-rest), ``decision_function``, ``predict``
    and ``predict_proba`` of the classifiers."""

    loss: str
    classes_: np.ndarray

    #: three or more classes: one-vs-rest through vector outputs
    _multiclass = True

    def fit(self, X: Any, y: Any) -> Any:
        """Solve on standardised ``X`` (n, d) with the labels ``y`` (n,) mapped to ``+-1``
        (or one-vs-rest)."""
        check_choice(self.loss, "loss", CLASSIFICATION_LOSSES)
        X, y = _validate_data(self, X, y, dtype=np.float64)
        mean, scale = self._standardization(X)
        classes, t = self._encode(y)
        self._solve((X - mean) / scale, t, self.loss)
        self.x_mean_ = mean
        self.x_scale_ = scale
        self.classes_ = classes
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Network outputs: ``(n,)`` (positive means ``classes_[1]``) or ``(n, K)``."""
        Xs = self._transform(X)  # (checks that the estimator is fitted)
        return self.network_.predict(Xs)

    def _encode(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(classes, targets)``: targets ``(n,)`` in ``{-1, +1}`` for two classes, the
        one-vs-rest ``(n, K)`` matrix of ``+-1`` for ``K >= 3``."""
        if y.dtype.kind in "fc" and not np.all(np.isfinite(y)):
            raise InvalidInputError("y contains NaN or inf labels; clean the input")
        try:
            check_classification_targets(y)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
        try:
            classes = np.unique(y)
        except TypeError as exc:
            raise InvalidInputError(f"the labels in y cannot be sorted: {exc}") from exc
        if classes.size < 2:
            raise InvalidInputError("classification needs at least two classes in y, got 1 class")
        if classes.size == 2:
            return classes, np.where(y == classes[1], 1.0, -1.0)
        if not self._multiclass:
            raise InvalidInputError(
                f"Only binary classification is supported. {type(self).__name__} is binary "
                f"(the quantized relaxation has one output); got {classes.size} classes (use "
                "PolySDPClassifier for one-vs-rest)"
            )
        return classes, np.where(y[:, None] == classes[None, :], 1.0, -1.0)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted labels (values of ``classes_``)."""
        scores = self.decision_function(X)
        if scores.ndim == 2:
            return self.classes_[np.argmax(scores, axis=1)]
        return self.classes_[(scores > 0).astype(int)]

    @available_if(_has_probabilities)
    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` (columns in the order of ``classes_``);
        logistic loss only (module doc; other losses have no ``predict_proba`` attribute)."""
        scores = self.decision_function(X)
        p = _sigmoid(scores)
        if scores.ndim == 1:
            return np.column_stack([1.0 - p, p])
        return p / np.sum(p, axis=1, keepdims=True)


# ------------------------------------------------------------------------- polynomial SDP


class _PolySDP(_ConvexEstimator):
    def _solve(self, X: np.ndarray, t: np.ndarray, loss: str) -> None:
        from .decompose import decompose
        from .poly_sdp import solve_poly_sdp

        act = resolve_activation(self.activation)
        polish = _check_bool(self.polish, "polish")
        huber_delta = getattr(self, "huber_delta", 1.0)
        solution = solve_poly_sdp(
            X, t, activation=act, beta=self.beta, loss=loss, solver=self.solver,
            huber_delta=huber_delta,
        )  # fmt: skip
        network = decompose(solution, polish=polish)
        self.activation_ = act
        self.solution_ = solution
        self.network_ = network
        self.objective_ = float(solution.objective)
        self.network_objective_ = float(
            network.objective(X, t, loss=loss, beta=solution.beta, huber_delta=huber_delta)
        )
        self.n_neurons_ = int(network.width)


class PolySDPRegressor(RegressorMixin, _Regressor, _PolySDP):
    """Two-layer network ``f(x) = sum_j sigma(x^T u_j) alpha_j + intercept`` trained to global
    optimality by the lifted SDP (module doc for the pre-processing).

    Parameters
    ----------
    activation:
        a name in :data:`ACTIVATIONS` (default ``"relu-fit"``), a :class:`Polynomial` or
        ``(a, b, c)`` for ``sigma(t) = a t^2 + b t + c``.
    beta:
        > 0, the weight of ``sum_j ||alpha_j||_1``.
    loss:
        ``"squared"`` (``1/2 ||r||^2``), ``"absolute"`` or ``"huber"`` (``huber_delta``);
        sums over samples, as in :func:`~frugalml.convex.poly_sdp.solve_poly_sdp`.
    solver:
        ``"clarabel"``, ``"scs"`` or ``"first-order"`` (torch; squared/huber only).
    polish:
        re-fit the output weights over the decomposed neurons (:func:`decompose`).
    standardize, fit_intercept:
        feature standardisation and target centring (module doc).

    ``y`` may be ``(n,)`` or ``(n, k)`` (vector outputs; ``predict`` returns the same shape).

    Attributes: ``network_`` (:class:`PolyNetwork` on standardised inputs), ``solution_``
    (:class:`PolySDPSolution`), ``objective_`` (the SDP optimum = the global optimum of the
    training objective on the pre-processed data), ``network_objective_`` (the decomposed
    network's objective: equal up to solver accuracy, lower with ``polish``), ``n_neurons_``,
    ``intercept_`` (float, or (k,)), ``x_mean_``, ``x_scale_``, ``n_features_in_``,
    ``activation_`` (the resolved :class:`Polynomial`).
    """

    _multi_output = True
    _classifier_name = "PolySDPClassifier"
    _losses = REGRESSION_LOSSES

    def __init__(
        self,
        activation: Any = "relu-fit",
        beta: float = 1e-3,
        *,
        loss: str = "squared",
        solver: str = "clarabel",
        polish: bool = False,
        standardize: bool = True,
        fit_intercept: bool = True,
        huber_delta: float = 1.0,
    ):
        self.activation = activation
        self.beta = beta
        self.loss = loss
        self.solver = solver
        self.polish = polish
        self.standardize = standardize
        self.fit_intercept = fit_intercept
        self.huber_delta = huber_delta


class PolySDPClassifier(ClassifierMixin, _Classifier, _PolySDP):
    """Binary or one-vs-rest classifier with a globally optimal two-layer polynomial network
    (module doc: label mapping, one-vs-rest by vector outputs, probabilities).

    Parameters as :class:`PolySDPRegressor`, with ``loss="logistic"`` (default) or
    ``"hinge"`` (``solver="first-order"`` handles logistic only). Attributes as the regressor's
    (no ``intercept_``) plus ``classes_``; ``network_`` has one output per class for
    ``K >= 3`` classes.
    """

    def __init__(
        self,
        activation: Any = "relu-fit",
        beta: float = 1e-3,
        *,
        loss: str = "logistic",
        solver: str = "clarabel",
        polish: bool = False,
        standardize: bool = True,
    ):
        self.activation = activation
        self.beta = beta
        self.loss = loss
        self.solver = solver
        self.polish = polish
        self.standardize = standardize


# ------------------------------------------------------------------------- quantized SDP


class _QuantizedSDP(_ConvexEstimator):
    def _solve(self, X: np.ndarray, t: np.ndarray, loss: str) -> None:
        from .quantized import round_quantized, solve_quantized_sdp

        act = resolve_activation(self.activation)
        n_samples = check_int(self.n_samples, "n_samples", low=1)
        solution = solve_quantized_sdp(
            X, t, activation=act, beta=self.beta, loss=loss, solver=self.solver
        )
        network = round_quantized(
            solution, X, t, n_samples=n_samples, rng=self.random_state, solver=self.solver
        )
        self.activation_ = act
        self.solution_ = solution
        self.network_ = network
        self.lower_bound_ = float(solution.lower_bound)
        self.objective_ = float(network.train_objective)
        self.certified_gap_ = float(network.certified_gap)
        self.n_neurons_ = int(network.width)


class QuantizedSDPRegressor(RegressorMixin, _Regressor, _QuantizedSDP):
    """Binary-weight network ``f(x) = sum_j alpha_j sigma(x^T u_j) + intercept``,
    ``u_j in {-1, +1}^d``, by the SDP relaxation and randomized rounding.

    Parameters: ``activation``, ``beta``, ``standardize``, ``fit_intercept`` as for
    :class:`PolySDPRegressor`; ``loss`` ``"squared"`` or ``"absolute"``; ``n_samples`` sign
    neurons sampled per matrix by the rounding; ``random_state`` (int, Generator or None) for
    the rounding; ``solver`` ``"clarabel"`` or ``"scs"`` (the SDP and the refit).

    Attributes: ``network_`` (:class:`QuantizedNetwork` on standardised inputs),
    ``solution_`` (:class:`QuantizedSDPSolution`), ``lower_bound_`` (the SDP optimum: no
    quantized network of any width does better on the pre-processed data), ``objective_`` (the
    rounded network's training objective), ``certified_gap_`` (``(objective_ - lower_bound_)
    / objective_``, >= 0 up to solver tolerance), ``n_neurons_``, ``intercept_``, ``x_mean_``,
    ``x_scale_``, ``n_features_in_``, ``activation_``. ``y`` must be 1-D.
    """

    _classifier_name = "QuantizedSDPClassifier"
    _losses = QUANTIZED_REGRESSION_LOSSES

    def __init__(
        self,
        activation: Any = "relu-fit",
        beta: float = 1e-3,
        *,
        loss: str = "squared",
        n_samples: int = 2000,
        random_state: Any = None,
        solver: str = "clarabel",
        standardize: bool = True,
        fit_intercept: bool = True,
    ):
        self.activation = activation
        self.beta = beta
        self.loss = loss
        self.n_samples = n_samples
        self.random_state = random_state
        self.solver = solver
        self.standardize = standardize
        self.fit_intercept = fit_intercept


class QuantizedSDPClassifier(ClassifierMixin, _Classifier, _QuantizedSDP):
    """Binary classifier with a binary-weight network (SDP relaxation and rounding).

    Parameters as :class:`QuantizedSDPRegressor` (no ``fit_intercept``) with
    ``loss="logistic"`` (default) or ``"hinge"``; labels of any two values (``classes_``).
    Attributes as the regressor's, plus ``classes_``.
    """

    _multiclass = False  # one output: the quantized relaxation is single-output

    def __sklearn_tags__(self) -> Any:  # scikit-learn >= 1.6 (after ClassifierMixin's)
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _more_tags(self) -> dict[str, Any]:  # scikit-learn < 1.6
        return {**super()._more_tags(), "binary_only": True}

    def __init__(
        self,
        activation: Any = "relu-fit",
        beta: float = 1e-3,
        *,
        loss: str = "logistic",
        n_samples: int = 2000,
        random_state: Any = None,
        solver: str = "clarabel",
        standardize: bool = True,
    ):
        self.activation = activation
        self.beta = beta
        self.loss = loss
        self.n_samples = n_samples
        self.random_state = random_state
        self.solver = solver
        self.standardize = standardize
