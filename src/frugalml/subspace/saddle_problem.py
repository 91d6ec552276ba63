"""The saddle-point problem interface ``min_x max_y f(x, y)`` that every solver of
:mod:`frugalml.subspace` talks to.

:class:`SaddleProblem` holds partial gradients, optional Hessian-vector products, an optional
known saddle point, and a counter of **gradient evaluations** that every method uses the same
way (Choukroun, Zibulevsky & Kisilev, "Primal-Dual Sequential Subspace Optimization for
Saddle-point Problems", arXiv 2008.09149, compare their method with first-order baselines by
this count):

* one evaluation of the pair ``(grad_x f, grad_y f)`` at a point counts **1**;
* one Hessian-vector product ``(Hxx p + Hxy q, Hyx p + Hyy q)`` counts **1** when it is a
  finite difference of gradients or a problem-supplied product of the same cost (for the
  bilinear and quadratic problems of :mod:`.problems` it is the same matrix-vector products as
  one gradient), and **2** when computed by torch double-backward.

:class:`NonFiniteError` is what the solvers raise when the oracle returns NaN or inf.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._validate import check_array, check_int, check_positive_float
from ..errors import FrugalError, InvalidInputError

__all__ = ["NonFiniteError", "SaddleProblem"]


class NonFiniteError(FrugalError, FloatingPointError):
    """An objective, gradient or Hessian-vector product returned NaN or inf.

    ``x`` and ``y`` hold the last iterate whose gradients were finite (copies), ``iteration``
    the iteration at which it happened and ``grad_evals`` the evaluations spent so far.
    """

    def __init__(self, message: str, *, x: Any, y: Any, iteration: int, grad_evals: int):
        self.x = x
        self.y = y
        self.iteration = iteration
        self.grad_evals = grad_evals
        super().__init__(
            f"{message} at iteration {iteration} (after {grad_evals} gradient evaluations); "
            "the last finite iterate is in the error's .x and .y; reduce the step size or "
            "the proximal parameter, or check the objective"
        )


class SaddleProblem:
    """``min_x max_y f(x, y)`` given by its partial gradients.

    Parameters
    ----------
    grad_x, grad_y:
        ``grad_x(x, y) -> (n,)`` and ``grad_y(x, y) -> (m,)`` for ``x`` of shape ``(n,)`` and
        ``y`` of shape ``(m,)`` (may be ``None`` when ``grads`` is given).
    grads:
        Optional ``grads(x, y) -> (grad_x, grad_y)`` computing both at once (e.g. one
        backward pass).
    n, m:
        Primal and dual dimensions.
    value:
        Optional ``f(x, y) -> float``.
    hvp:
        Optional ``hvp(x, y, p, q) -> (Hxx p + Hxy q, Hyx p + Hyy q)`` (the Jacobian of
        ``(grad_x, grad_y)`` applied to ``(p, q)``). Without it, a finite difference of
        gradients is used (one evaluation).
    x_star, y_star:
        A known saddle point (enables the ``distance`` metric).
    affine:
        The gradient map is affine (``f`` quadratic): Hessian-vector products are then exact
        by linearity and ``pd_sesop(inner="exact_quadratic")`` applies.
    bilinear:
        ``Hxx = 0`` and ``Hyy = 0`` (``f = x^T A y + b^T x + c^T y``): one product
        ``hvp(x, y, p, q) = (A q, A^T p)`` serves a primal and a dual direction at once.
    linear_system:
        Optional ``(J, c)`` with ``(grad_x, -grad_y)(z) = J z + c`` for ``z = (x, y)``; needed
        only by :func:`proximal_point`.
    lipschitz:
        Optional Lipschitz constant of the gradient map (default step sizes use it).
    metrics:
        Extra named metrics ``name -> fn(x, y) -> float`` recorded in every history (e.g. the
        constraint violation).

    Complexity: each :meth:`gradients` or :meth:`hvp` call costs what the user functions cost;
    the counter :attr:`grad_evals` is incremented by 1 (2 for torch double-backward HVPs).
    """

    def __init__(
        self,
        grad_x: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
        grad_y: Callable[[np.ndarray, np.ndarray], np.ndarray] | None,
        n: int,
        m: int,
        *,
        grads: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
        value: Callable[[np.ndarray, np.ndarray], float] | None = None,
        hvp: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None,
        x_star: Any = None,
        y_star: Any = None,
        affine: bool = False,
        bilinear: bool = False,
        linear_system: tuple[np.ndarray, np.ndarray] | None = None,
        lipschitz: float | None = None,
        metrics: Mapping[str, Callable[[np.ndarray, np.ndarray], float]] | None = None,
        hvp_cost: int = 1,
        name: str = "saddle",
    ):
        if grads is None and not (callable(grad_x) and callable(grad_y)):
            raise InvalidInputError(
                "grad_x and grad_y must be callables f(x, y) -> array (or pass grads=)"
            )
        if grads is not None and not callable(grads):
            raise InvalidInputError("grads must be a callable (x, y) -> (grad_x, grad_y)")
        self._grads = grads
        self.n = check_int(n, "n", low=1)
        self.m = check_int(m, "m", low=1)
        self._grad_x, self._grad_y = grad_x, grad_y
        self._value, self._hvp = value, hvp
        self.x_star = None if x_star is None else check_array(x_star, "x_star", shape=(self.n,))
        self.y_star = None if y_star is None else check_array(y_star, "y_star", shape=(self.m,))
        if (self.x_star is None) != (self.y_star is None):
            raise InvalidInputError("give both x_star and y_star, or neither")
        self.bilinear = bool(bilinear)
        self.affine = bool(affine) or self.bilinear
        if linear_system is not None:
            jac = check_array(linear_system[0], "J", shape=(self.n + self.m, self.n + self.m))
            off = check_array(linear_system[1], "c", shape=(self.n + self.m,))
            linear_system = (jac, off)
        self.linear_system = linear_system
        self.lipschitz = None if lipschitz is None else check_positive_float(lipschitz, "L")
        self.metrics = dict(metrics or {})
        self.hvp_cost = check_int(hvp_cost, "hvp_cost", low=1)
        self.name = name
        self.grad_evals = 0
        self._zs_norm = (
            None
            if self.x_star is None
            else max(1.0, math.hypot(np.linalg.norm(self.x_star), np.linalg.norm(self.y_star)))
        )

    # -- oracle ---------------------------------------------------------------------------------

    @property
    def has_solution(self) -> bool:
        return self.x_star is not None

    def reset_count(self) -> None:
        self.grad_evals = 0

    def value(self, x: np.ndarray, y: np.ndarray) -> float:
        """``f(x, y)`` (not counted as a gradient evaluation)."""
        if self._value is None:
            raise InvalidInputError(f"problem {self.name!r} was built without value=")
        return float(self._value(x, y))

    def gradients(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(grad_x f(x, y), grad_y f(x, y))`` as float64 arrays; counts one evaluation.

        Raises :class:`NonFiniteError`-compatible ``FloatingPointError`` (caught and re-raised
        with the iterate by the solvers) when a gradient has NaN or inf.
        """
        self.grad_evals += 1
        if self._grads is not None:
            gx, gy = self._grads(x, y)
        else:
            gx, gy = self._grad_x(x, y), self._grad_y(x, y)
        gx = np.asarray(gx, dtype=np.float64)
        gy = np.asarray(gy, dtype=np.float64)
        self._check(gx, gy, "gradient")
        return gx, gy

    def hvp(
        self,
        x: np.ndarray,
        y: np.ndarray,
        p: np.ndarray,
        q: np.ndarray,
        g: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(Hxx p + Hxy q, Hyx p + Hyy q)`` at ``(x, y)``.

        Uses the problem's ``hvp`` (counted ``hvp_cost``) or a one-sided finite difference of
        gradients (counted 1; ``g`` = gradients at ``(x, y)`` if already known, else one more
        evaluation). For affine problems the difference is exact up to rounding, so the step
        is taken large (``||t (p, q)|| = max(1, ||(x, y)||)``).
        """
        if self._hvp is not None:
            self.grad_evals += self.hvp_cost
            hx, hy = self._hvp(x, y, p, q)
            hx = np.asarray(hx, dtype=np.float64)
            hy = np.asarray(hy, dtype=np.float64)
            self._check(hx, hy, "Hessian-vector product")
            return hx, hy
        dn = math.hypot(np.linalg.norm(p), np.linalg.norm(q))
        if dn == 0.0:
            return np.zeros(self.n), np.zeros(self.m)
        zn = max(1.0, math.hypot(np.linalg.norm(x), np.linalg.norm(y)))
        t = zn / dn if self.affine else math.sqrt(np.finfo(float).eps) * zn / dn
        if g is None:
            g = self.gradients(x, y)
        gx1, gy1 = self.gradients(x + t * p, y + t * q)
        return (gx1 - g[0]) / t, (gy1 - g[1]) / t

    def _check(self, gx: np.ndarray, gy: np.ndarray, what: str) -> None:
        if gx.shape != (self.n,) or gy.shape != (self.m,):
            raise InvalidInputError(
                f"{what} of problem {self.name!r} has shapes {gx.shape}, {gy.shape}; "
                f"expected ({self.n},) and ({self.m},)"
            )
        if not (np.isfinite(gx).all() and np.isfinite(gy).all()):
            raise FloatingPointError(f"non-finite {what}")

    # -- metrics --------------------------------------------------------------------------------

    def distance(self, x: np.ndarray, y: np.ndarray) -> float:
        """``||(x, y) - (x*, y*)|| / max(1, ||(x*, y*)||)`` (relative distance to the saddle)."""
        if self.x_star is None:
            raise InvalidInputError(f"problem {self.name!r} has no known saddle point")
        d = math.hypot(np.linalg.norm(x - self.x_star), np.linalg.norm(y - self.y_star))
        return d / self._zs_norm

    def metric_names(self) -> list[str]:
        names = ["residual"]
        if self.has_solution:
            names.append("distance")
        return names + list(self.metrics)

    def check_point(self, x0: Any, y0: Any) -> tuple[np.ndarray, np.ndarray]:
        x = check_array(x0, "x0", shape=(self.n,)).copy()
        y = check_array(y0, "y0", shape=(self.m,)).copy()
        return x, y
