"""Quadratic (degree-two polynomial) activations for the convex SDP training of
:mod:`frugalml.convex.poly_sdp`.

Reference: B. Bartan and M. Pilanci, "Neural Spectrahedra and Semidefinite Lifts: Global Convex
Optimization of Polynomial Activation Neural Networks in Fully Polynomial-Time",
arXiv:2101.02429 (2021).

A :class:`Polynomial` is ``sigma(t) = a t^2 + b t + c`` with ``a != 0``. The paper trains
networks with such activations, including least-squares quadratic fits of ReLU and swish;
:meth:`Polynomial.fit` computes the fit of any scalar function, and the presets use it:

* ``Polynomial.fit_relu("uniform")`` on ``t ~ U[-1, 1]`` has the closed form
  ``15/32 t^2 + 1/2 t + 3/32`` (~ ``0.47 t^2 + 0.5 t + 0.09``, the paper's ReLU approximation);
* ``Polynomial.fit_relu("normal")`` on ``t ~ N(0, 1)`` is ``(t^2 + 1) / sqrt(8 pi) + t / 2``;
* ``Polynomial.fit_swish(...)`` fits ``t * sigmoid(t)`` the same way (by quadrature).

:func:`resolve_activation` maps the preset names of :data:`ACTIVATIONS` (used by the
estimators and the command line) to these.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_choice
from ..errors import InvalidInputError

__all__ = ["ACTIVATIONS", "DOMAINS", "Polynomial", "resolve_activation"]

#: input distributions a least-squares fit can be taken over
DOMAINS = ("uniform", "normal")
#: named activations accepted by the estimators (and ``frugalml convex fit --activation``)
ACTIVATIONS = ("relu-fit", "relu-fit-normal", "swish-fit", "square")


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise InvalidInputError(f"{name} must be a real number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a real number, got {value!r}") from exc
    if not math.isfinite(out):
        raise InvalidInputError(f"{name} must be finite, got {out}")
    return out


@dataclass(frozen=True)
class Polynomial:
    """The activation ``sigma(t) = a t^2 + b t + c``.

    ``a`` must be non-zero (otherwise the network is affine and the semidefinite lift is
    pointless); all coefficients must be finite. Calling it applies ``sigma`` element-wise to
    anything that supports ``*`` and ``+`` (floats, NumPy arrays, torch tensors), ``O(size)``.
    """

    a: float
    b: float = 0.0
    c: float = 0.0

    def __post_init__(self) -> None:
        a = _finite(self.a, "a")
        b = _finite(self.b, "b")
        c = _finite(self.c, "c")
        if a == 0.0:
            raise InvalidInputError(
                "the quadratic coefficient a must be non-zero (a = 0 gives an affine "
                "network, which needs no semidefinite lift)"
            )
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "c", c)

    def __call__(self, t: Any) -> Any:
        return (self.a * t + self.b) * t + self.c

    def derivative(self, t: Any) -> Any:
        """``sigma'(t) = 2 a t + b``."""
        return 2.0 * self.a * t + self.b

    def summary(self) -> str:
        def term(coef: float, power: str) -> str:
            return f" {'-' if coef < 0 else '+'} {abs(coef):.6g}{power}"

        return f"sigma(t) = {self.a:.6g} t^2{term(self.b, ' t')}{term(self.c, '')}"

    # ---------------------------------------------------------------- presets

    @classmethod
    def square(cls) -> Polynomial:
        """``sigma(t) = t^2``."""
        return cls(1.0, 0.0, 0.0)

    @classmethod
    def fit(
        cls,
        func: Callable[[float], float],
        domain: str = "uniform",
        *,
        low: float = -1.0,
        high: float = 1.0,
    ) -> Polynomial:
        """Least-squares quadratic fit ``argmin E[(func(t) - a t^2 - b t - c)^2]``.

        ``domain="uniform"``: ``t ~ U[low, high]``; ``domain="normal"``: ``t ~ N(0, 1)``.
        Solves the 3 x 3 normal equations with moments in closed form and the right-hand side
        ``E[func(t) t^i]`` by adaptive quadrature (``scipy.integrate.quad``, with a break point
        at 0 for kinked functions such as ReLU).
        """
        import scipy.integrate

        check_choice(domain, "domain", DOMAINS)
        if not callable(func):
            raise InvalidInputError(f"func must be callable, got {type(func).__name__}")
        if domain == "uniform":
            low = _finite(low, "low")
            high = _finite(high, "high")
            if not high > low:
                raise InvalidInputError(f"need low < high, got [{low}, {high}]")
            width = high - low

            def moment(k: int) -> float:
                return (high ** (k + 1) - low ** (k + 1)) / ((k + 1) * width)

            def rhs(i: int) -> float:
                pts = [0.0] if low < 0.0 < high else None
                val, _ = scipy.integrate.quad(
                    lambda t: func(t) * t**i, low, high, points=pts, limit=200
                )
                return val / width

        else:
            gauss_moments = {0: 1.0, 1: 0.0, 2: 1.0, 3: 0.0, 4: 3.0}

            def moment(k: int) -> float:
                return gauss_moments[k]

            def rhs(i: int) -> float:
                dens = 1.0 / math.sqrt(2.0 * math.pi)
                total = 0.0
                for lo, hi in ((-np.inf, 0.0), (0.0, np.inf)):
                    val, _ = scipy.integrate.quad(
                        lambda t: func(t) * t**i * dens * math.exp(-0.5 * t * t),
                        lo,
                        hi,
                        limit=200,
                    )
                    total += val
                return total

        # unknowns ordered (c, b, a): powers 0, 1, 2
        gram = np.array([[moment(i + j) for j in range(3)] for i in range(3)])
        r = np.array([rhs(i) for i in range(3)])
        c, b, a = np.linalg.solve(gram, r)
        return cls(float(a), float(b), float(c))

    @classmethod
    def fit_relu(cls, domain: str = "uniform") -> Polynomial:
        """Least-squares quadratic fit of ``max(t, 0)`` (closed form).

        ``"uniform"`` (``t ~ U[-1, 1]``): ``15/32 t^2 + t/2 + 3/32``;
        ``"normal"`` (``t ~ N(0, 1)``): ``(t^2 + 1)/sqrt(8 pi) + t/2``.
        """
        check_choice(domain, "domain", DOMAINS)
        if domain == "uniform":
            return cls(15.0 / 32.0, 0.5, 3.0 / 32.0)
        k = 1.0 / math.sqrt(8.0 * math.pi)
        return cls(k, 0.5, k)

    @classmethod
    def fit_swish(cls, domain: str = "uniform", *, low: float = -1.0, high: float = 1.0):
        """Least-squares quadratic fit of swish ``t * sigmoid(t)`` (see :meth:`fit`)."""

        def swish(t: float) -> float:
            return t / (1.0 + math.exp(-t)) if t > -700 else 0.0

        return cls.fit(swish, domain, low=low, high=high)


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
