"""scikit-learn-style estimators for the convex (globally optimal) training of two-layer
quadratic-activation networks.

* :class:`PolySDPRegressor` and :class:`PolySDPClassifier` solve the lifted SDP of
  :func:`~frugalml.convex.poly_sdp.solve_poly_sdp` (Bartan & Pilanci, arXiv:2101.02429) and
  decompose its solution into a network with :func:`~frugalml.convex.decompose.decompose`;
* :class:`QuantizedSDPRegressor` and :class:`QuantizedSDPClassifier` solve the SDP relaxation
  of binary-weight networks (:func:`~frugalml.convex.quantized.solve_quantized_sdp`, Bartan &
  Pilanci, ICML 2021, arXiv:2105.01420) and round it
  (:func:`~frugalml.convex.quantized.round_quantized`), with a certified optimality gap.

They follow the estimator conventions of :mod:`frugalml.sketch.estimators`: hyper-parameters
are stored unchanged by ``__init__`` and validated by ``fit``; ``get_params``/``set_params``
(so ``sklearn.base.clone`` works, without scikit-learn being required); learned state has a
trailing underscore; ``fit`` returns ``self``; calling ``predict`` & co. before ``fit`` raises
:class:`~frugalml.errors.InvalidInputError` ("... is not fitted yet"). Importing this module
imports neither CVXPY nor torch nor SciPy.

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

from .._validate import check_array, check_choice, check_int
from ..errors import InvalidInputError
from .activation import Polynomial

__all__ = [
    "ACTIVATIONS",
    "PolySDPClassifier",
    "PolySDPRegressor",
    "QuantizedSDPClassifier",
    "QuantizedSDPRegressor",
    "resolve_activation",
]

#: named activations accepted by the estimators (and ``frugalml convex fit --activation``)
ACTIVATIONS = ("relu-fit", "relu-fit-normal", "swish-fit", "square")
REGRESSION_LOSSES = ("squared", "absolute", "huber")
QUANTIZED_REGRESSION_LOSSES = ("squared", "absolute")
CLASSIFICATION_LOSSES = ("logistic", "hinge")


def resolve_activation(activation: Any) -> Polynomial:
    """The :class:`Polynomial` of a name in :data:`ACTIVATIONS`, a Polynomial or ``(a, b, c)``.

    ``"relu-fit"``: :meth:`Polynomial.fit_relu` on ``U[-1, 1]`` (the paper's
    ``~0.47 t^2 + 0.5 t + 0.09``); ``"relu-fit-normal"``: the fit on ``N(0, 1)``;
    ``"swish-fit"``: :meth:`Polynomial.fit_swish` on ``U[-1, 1]``; ``"square"``: ``t^2``.
    """
    if isinstance(activation, Polynomial):
        return activation
    if isinstance(activation, str):
        check_choice(activation, "activation", ACTIVATIONS)
        if activation == "relu-fit":
            return Polynomial.fit_relu("uniform")
        if activation == "relu-fit-normal":
            return Polynomial.fit_relu("normal")
        if activation == "swish-fit":
            return Polynomial.fit_swish("uniform")
        return Polynomial.square()
    if isinstance(activation, (tuple, list)) and len(activation) == 3:
        return Polynomial(*activation)
    raise InvalidInputError(
        f"activation must be one of {', '.join(map(repr, ACTIVATIONS))}, a Polynomial or a "
        f"tuple (a, b, c) for sigma(t) = a t^2 + b t + c; got {activation!r}"
    )


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


class _ConvexEstimator:
    """Shared parameter handling, standardisation and fitted-state checks."""

    _param_names: tuple[str, ...] = ()

    # -- parameters -------------------------------------------------------------------------

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names}

    def set_params(self, **params: Any) -> _ConvexEstimator:
        valid = self.get_params()
        for key in params:
            if key not in valid:
                raise InvalidInputError(f"unknown parameter {key!r} for {type(self).__name__}")
        for key, value in params.items():
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- fitted state -------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "network_"):
            raise InvalidInputError(f"this {type(self).__name__} is not fitted yet; call fit()")

    def _fit_x(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Validated X (n, d) and its standardisation ``(mean, scale)``."""
        X = check_array(X, "X", ndim=2)
        d = X.shape[1]
        if _check_bool(self.standardize, "standardize"):
            mean = X.mean(axis=0)
            scale = X.std(axis=0)
            tiny = np.finfo(np.float64).eps * np.maximum(1.0, np.abs(mean)) * 16.0
            scale = np.where(scale > tiny, scale, 1.0)
        else:
            mean, scale = np.zeros(d), np.ones(d)
        return X, mean, scale

    def _transform(self, X: Any) -> np.ndarray:
        """``(X - x_mean_) / x_scale_`` for a fitted estimator."""
        self._check_fitted()
        X = check_array(X, "X", ndim=2)
        if X.shape[1] != self.n_features_in_:
            raise InvalidInputError(
                f"X has {X.shape[1]} features, the model was fitted with {self.n_features_in_}"
            )
        return (X - self.x_mean_) / self.x_scale_

    def _set_x_state(self, X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> None:
        self.n_features_in_ = int(X.shape[1])
        self.x_mean_ = mean
        self.x_scale_ = scale


def _check_rows(X: np.ndarray, n_y: int) -> None:
    if n_y != X.shape[0]:
        raise InvalidInputError(
            f"X and y must have the same number of rows (samples): X has {X.shape[0]}, y has {n_y}"
        )


def _center(y: np.ndarray, loss: str, fit_intercept: bool) -> np.ndarray | float:
    if not fit_intercept:
        return np.zeros(y.shape[1]) if y.ndim == 2 else 0.0
    center = np.median(y, axis=0) if loss == "absolute" else np.mean(y, axis=0)
    return center if y.ndim == 2 else float(center)


class _RegressorMixin(_ConvexEstimator):
    """``score`` for the regressors (each defines ``predict``)."""

    predict: Any

    def score(self, X: Any, y: Any) -> float:
        """Coefficient of determination ``R^2`` of ``predict(X)`` (averaged over outputs)."""
        pred = self.predict(X)
        y = check_array(y, "y", shape=pred.shape)
        ss_res = np.sum((y - pred) ** 2, axis=0)
        ss_tot = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
        r2 = 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)
        return float(np.mean(r2))


class _ClassifierMixin(_ConvexEstimator):
    loss: str
    classes_: np.ndarray

    #: three or more classes: one-vs-rest through vector outputs
    _multiclass = True

    def fit(self, X: Any, y: Any) -> Any:
        """Solve on standardised ``X`` with the labels mapped to ``+-1`` (or one-vs-rest)."""
        check_choice(self.loss, "loss", CLASSIFICATION_LOSSES)
        X, mean, scale = self._fit_x(X)
        classes, t = self._encode(y, X.shape[0], multiclass=self._multiclass)
        self._solve((X - mean) / scale, t, self.loss)
        self._set_x_state(X, mean, scale)
        self.classes_ = classes
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Network outputs: ``(n,)`` (positive means ``classes_[1]``) or ``(n, K)``."""
        Xs = self._transform(X)  # (checks that the estimator is fitted)
        return self.network_.predict(Xs)

    def _encode(self, y: Any, n: int, *, multiclass: bool) -> tuple[np.ndarray, np.ndarray]:
        """``(classes, targets)``: targets ``(n,)`` in ``{-1, +1}`` for two classes, the
        one-vs-rest ``(n, K)`` matrix of ``+-1`` for ``K >= 3``."""
        y_raw = np.asarray(y)
        if y_raw.ndim != 1 or y_raw.shape[0] != n:
            raise InvalidInputError(f"y must have shape ({n},) (one label per row of X), got "
                                    f"{y_raw.shape}")  # fmt: skip
        if y_raw.dtype.kind in "fc" and not np.all(np.isfinite(y_raw)):
            raise InvalidInputError("y contains NaN or inf labels; clean the input")
        try:
            classes = np.unique(y_raw)
        except TypeError as exc:
            raise InvalidInputError(f"the labels in y cannot be sorted: {exc}") from exc
        if classes.size < 2:
            raise InvalidInputError(
                f"classification needs at least two classes in y, got {classes.size}"
            )
        if classes.size == 2:
            return classes, np.where(y_raw == classes[1], 1.0, -1.0)
        if not multiclass:
            raise InvalidInputError(
                f"{type(self).__name__} is binary (the quantized relaxation has one output); "
                f"got {classes.size} classes (use PolySDPClassifier for one-vs-rest)"
            )
        return classes, np.where(y_raw[:, None] == classes[None, :], 1.0, -1.0)

    def predict(self, X: Any) -> np.ndarray:
        """The predicted labels (values of ``classes_``)."""
        scores = self.decision_function(X)
        if scores.ndim == 2:
            return self.classes_[np.argmax(scores, axis=1)]
        return self.classes_[(scores > 0).astype(int)]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` (columns in the order of ``classes_``);
        logistic loss only (module doc)."""
        self._check_fitted()
        if self.loss != "logistic":
            raise InvalidInputError(
                f"predict_proba needs loss='logistic' (the {self.loss!r} loss is not a "
                "likelihood); use decision_function"
            )
        scores = self.decision_function(X)
        p = _sigmoid(scores)
        if scores.ndim == 1:
            return np.column_stack([1.0 - p, p])
        return p / np.sum(p, axis=1, keepdims=True)

    def score(self, X: Any, y: Any) -> float:
        """Mean accuracy of ``predict(X)`` against the labels ``y``."""
        pred = self.predict(X)
        y_raw = np.asarray(y)
        if y_raw.shape != pred.shape:
            raise InvalidInputError(f"y must have shape {pred.shape}, got {y_raw.shape}")
        return float(np.mean(pred == y_raw))


# ------------------------------------------------------------------------- polynomial SDP


class _PolySDPBase(_ConvexEstimator):
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


class PolySDPRegressor(_RegressorMixin, _PolySDPBase):
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

    _param_names = ("activation", "beta", "loss", "solver", "polish", "standardize",
                    "fit_intercept", "huber_delta")  # fmt: skip

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

    def fit(self, X: Any, y: Any) -> PolySDPRegressor:
        if self.loss in CLASSIFICATION_LOSSES:
            raise InvalidInputError(
                f"loss={self.loss!r} is a classification loss; use PolySDPClassifier"
            )
        check_choice(self.loss, "loss", REGRESSION_LOSSES)
        fit_intercept = _check_bool(self.fit_intercept, "fit_intercept")
        X, mean, scale = self._fit_x(X)
        y = check_array(y, "y", ndim=(1, 2))
        _check_rows(X, y.shape[0])
        intercept = _center(y, self.loss, fit_intercept)
        self._solve((X - mean) / scale, y - intercept, self.loss)
        self._set_x_state(X, mean, scale)
        self.intercept_ = intercept
        self.n_outputs_ = 1 if y.ndim == 1 else int(y.shape[1])
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``(n,)`` (or ``(n, k)`` for vector targets)."""
        Xs = self._transform(X)
        return self.network_.predict(Xs) + self.intercept_


class PolySDPClassifier(_ClassifierMixin, _PolySDPBase):
    """Binary or one-vs-rest classifier with a globally optimal two-layer polynomial network
    (module doc: label mapping, one-vs-rest by vector outputs, probabilities).

    Parameters as :class:`PolySDPRegressor`, with ``loss="logistic"`` (default) or
    ``"hinge"`` (``solver="first-order"`` handles logistic only). Attributes as the regressor's
    (no ``intercept_``) plus ``classes_``; ``network_`` has one output per class for
    ``K >= 3`` classes.
    """

    _param_names = ("activation", "beta", "loss", "solver", "polish", "standardize")

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


class _QuantizedBase(_ConvexEstimator):
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


class QuantizedSDPRegressor(_RegressorMixin, _QuantizedBase):
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

    _param_names = ("activation", "beta", "loss", "n_samples", "random_state", "solver",
                    "standardize", "fit_intercept")  # fmt: skip

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

    def fit(self, X: Any, y: Any) -> QuantizedSDPRegressor:
        if self.loss in CLASSIFICATION_LOSSES:
            raise InvalidInputError(
                f"loss={self.loss!r} is a classification loss; use QuantizedSDPClassifier"
            )
        check_choice(self.loss, "loss", QUANTIZED_REGRESSION_LOSSES)
        fit_intercept = _check_bool(self.fit_intercept, "fit_intercept")
        X, mean, scale = self._fit_x(X)
        y = check_array(y, "y", ndim=1)
        _check_rows(X, y.shape[0])
        intercept = _center(y, self.loss, fit_intercept)
        self._solve((X - mean) / scale, y - intercept, self.loss)
        self._set_x_state(X, mean, scale)
        self.intercept_ = intercept
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``(n,)``."""
        Xs = self._transform(X)
        return self.network_.predict(Xs) + self.intercept_


class QuantizedSDPClassifier(_ClassifierMixin, _QuantizedBase):
    """Binary classifier with a binary-weight network (SDP relaxation and rounding).

    Parameters as :class:`QuantizedSDPRegressor` (no ``fit_intercept``) with
    ``loss="logistic"`` (default) or ``"hinge"``; labels of any two values (``classes_``).
    Attributes as the regressor's, plus ``classes_``.
    """

    _param_names = ("activation", "beta", "loss", "n_samples", "random_state", "solver",
                    "standardize")  # fmt: skip

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

    _multiclass = False  # one output: the quantized relaxation is single-output
