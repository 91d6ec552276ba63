"""Debiased averaging of sketched second-order estimates: scaled regularisation and step sizes.

Derezinski, Bartan, Pilanci & Mahoney, "Debiasing Distributed Second Order Optimization with
Surrogate Sketching and Scaled Regularization" (NeurIPS 2020, arXiv 2007.01327); Bartan &
Pilanci, "Distributed Averaging Methods for Randomized Second Order Optimization"
(arXiv 2002.06540).

Averaging ``q`` sketched inverse-Hessian estimates converges, as ``q`` grows, to
``E[(A^T S^T S A + lam I)^{-1}]``, which is *not* ``H^{-1} = (A^T A + lam I)^{-1}``: the error of
naive averaging stops improving with ``q``. With ``d_lambda`` the effective dimension
(:mod:`.effective`) and sketches normalised so that ``E[S^T S] = I``:

* **scaled regularisation** ``lam' = lam (1 - d_lambda / m)`` and **step**
  ``mu = 1 - d_lambda / m``: ``mu (A^T S^T S A + lam' I)^{-1}`` is an exactly unbiased estimate
  of ``H^{-1}`` for the surrogate (determinantal) sketch of :mod:`.surrogate`, and nearly
  unbiased for Gaussian sketches;
* **unregularised** Gaussian sketches: ``E[(A^T S^T S A)^{-1}] = m / (m - d - 1) (A^T A)^{-1}``
  exactly (inverse-Wishart mean), so ``mu = (m - d - 1) / m``;
* **ridge sketch-and-solve** ``x = (A^T S^T S A + lam' I)^{-1} A^T S^T S b``: the scaled
  ``lam'`` alone (no step) removes most of the averaging bias.

Every convention is pinned by a Monte-Carlo test that measures the bias with and without it.
For the unregularised Gaussian Newton step the contraction is exact:
``E ||A(x+ - x*)||^2 = rho / q ||A(x - x*)||^2`` with
``rho = (m - d - 1)(m - 1) / ((m - d)(m - d - 3)) - 1`` (:func:`gaussian_newton_rate`).
"""

from __future__ import annotations

from dataclasses import dataclass

from .._results import ResultRepr
from .._validate import check_int, check_nonnegative_float
from ..errors import InvalidInputError

__all__ = [
    "Correction",
    "correction",
    "gaussian_newton_rate",
    "newton_step_size",
    "scaled_regularization",
    "unregularized_step_size",
]


def _check_m_over_dlam(d_lam: float, m: int) -> tuple[float, int]:
    m = check_int(m, "sketch size m", low=1)
    d_lam = check_nonnegative_float(d_lam, "d_lambda")
    if m <= d_lam:
        raise InvalidInputError(
            f"sketch size m={m} must exceed the effective dimension d_lambda={d_lam:.4g}: the "
            f"correction lambda (1 - d_lambda/m) is undefined otherwise; use m >= "
            f"{max(int(2 * d_lam) + 1, 2)}"
        )
    return d_lam, m


def scaled_regularization(lam: float, d_lam: float, m: int) -> float:
    """``lam' = lam (1 - d_lambda / m)`` (requires ``m > d_lambda``)."""
    lam = check_nonnegative_float(lam, "lam")
    d_lam, m = _check_m_over_dlam(d_lam, m)
    return lam * (1.0 - d_lam / m)


def newton_step_size(d_lam: float, m: int) -> float:
    """``mu = 1 - d_lambda / m`` for the regularised Newton step (requires ``m > d_lambda``)."""
    d_lam, m = _check_m_over_dlam(d_lam, m)
    return 1.0 - d_lam / m


def unregularized_step_size(m: int, d: int) -> float:
    """``mu = (m - d - 1) / m`` (Gaussian, ``lam = 0``; requires ``m > d + 1``)."""
    m = check_int(m, "sketch size m", low=1)
    d = check_int(d, "d", low=1)
    if m <= d + 1:
        raise InvalidInputError(
            f"the unregularised correction needs m > d + 1 (E[(A^T S^T S A)^-1] is infinite "
            f"otherwise); got m={m}, d={d}; use m >= {2 * d + 2}"
        )
    return (m - d - 1) / m


def gaussian_newton_rate(m: int, d: int, q: int = 1) -> float:
    """Exact ``E ||A e+||^2 / ||A e||^2`` of one debiased averaged Gaussian Newton step for
    least squares (``lam = 0``, exact gradient, ``q`` workers; requires ``m > d + 3``)."""
    m = check_int(m, "m", low=1)
    d = check_int(d, "d", low=1)
    q = check_int(q, "q", low=1)
    if m <= d + 3:
        raise InvalidInputError(f"the rate is finite only for m > d + 3; got m={m}, d={d}")
    rho = (m - d - 1) * (m - 1) / ((m - d) * (m - d - 3)) - 1.0
    return rho / q


@dataclass(frozen=True, repr=False)
class Correction(ResultRepr):
    """Per-worker local regularisation ``lam_local`` and step ``step`` for sketch size ``m``."""

    lam_local: float
    step: float
    m: int
    d_lam: float

    def summary(self) -> str:
        return (
            f"m={self.m}: local lam {self.lam_local:.6g}, step {self.step:.6g} "
            f"(d_lambda {self.d_lam:.4g})"
        )


def correction(
    lam: float, d_lam: float, m: int, *, debias: bool = True, sketch: str = "gaussian"
) -> Correction:
    """The debiasing correction for a worker with sketch size ``m``.

    ``debias=False``: naive (GIANT-style) ``(lam, 1)``. Otherwise ``(lam', 1 - d_lambda/m)``,
    except for unregularised Gaussian sketches (``lam = 0``, ``sketch="gaussian"``), whose exact
    inverse-Wishart correction is ``(0, (m - d - 1)/m)`` with ``d = d_lambda`` (the rank). The
    surrogate sketch (``lam > 0`` only) is exact with ``(lam', 1 - d_lambda/m)``.
    """
    lam = check_nonnegative_float(lam, "lam")
    m = check_int(m, "sketch size m", low=1)
    if not debias:
        return Correction(lam, 1.0, m, float(d_lam))
    if lam == 0.0 and sketch == "gaussian":
        return Correction(0.0, unregularized_step_size(m, round(d_lam)), m, float(d_lam))
    return Correction(
        scaled_regularization(lam, d_lam, m), newton_step_size(d_lam, m), m, float(d_lam)
    )
