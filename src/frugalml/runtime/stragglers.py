"""Straggler models: distributions of task completion times.

Each model samples i.i.d. completion times and gives the exact expected k-th order statistic
E[T_(k:n)] (the latency of "first k of n"): a closed form where one exists (shifted
exponential, Pareto) and otherwise the integral

    E[T_(k:n)] = ∫_0^∞ P(T_(k:n) > t) dt = ∫_0^∞ (1 - I_{F(t)}(k, n - k + 1)) dt,

with I the regularised incomplete beta function, since T_(k:n) <= t iff Binomial(n, F(t)) >= k
(David & Nagaraja, *Order Statistics*, 2003, eq. 2.1.5). The shifted-exponential model is the
one used by Lee et al., "Speeding up distributed machine learning using codes" (IEEE T-IT
2018) and by the polar-code papers this package implements.
"""

from __future__ import annotations

import itertools
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import integrate, special

from .._resources import check_memory
from .._validate import (
    RngLike,
    check_array,
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_probability,
    check_rng,
)
from ..errors import InvalidInputError

__all__ = [
    "MODEL_NAMES",
    "BimodalStragglers",
    "Pareto",
    "ShiftedExponential",
    "StragglerModel",
    "TraceReplay",
    "model_from_spec",
]


def _check_kn(k: int, n: int) -> tuple[int, int]:
    n = check_int(n, "n", low=1)
    k = check_int(k, "k", low=1, high=n)
    return k, n


def _check_sample_size(n: int) -> int:
    """``n`` >= 0 draws whose float64 array (and one temporary) fits in memory."""
    n = check_int(n, "n", low=0)
    check_memory(16.0 * n, f"{n} completion-time draws", fix="draw fewer samples")
    return n


class StragglerModel(ABC):
    """A distribution of non-negative task completion times (seconds)."""

    name: str = "model"

    @abstractmethod
    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        """``n`` i.i.d. completion times, shape ``(n,)``."""

    @abstractmethod
    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        """P(T <= t), vectorised."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """JSON-serialisable parameters (for reports)."""

    def _support_points(self) -> list[float]:
        """Points where the CDF has kinks or jumps (helps the quadrature)."""
        return []

    def expected_order_statistic(self, k: int, n: int) -> float:
        """E[T_(k:n)], the expected time until k of n tasks have finished."""
        k, n = _check_kn(k, n)

        def survival(t: float) -> float:
            return float(1.0 - special.betainc(k, n - k + 1, float(self.cdf(t))))

        points = sorted(p for p in self._support_points() if p > 0)
        edges = [0.0, *points]
        total = 0.0
        for a, b in itertools.pairwise(edges):
            total += integrate.quad(survival, a, b, limit=200)[0]
        tail, _ = integrate.quad(survival, edges[-1], np.inf, limit=400)
        return total + tail

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, **self.params()}


@dataclass(frozen=True)
class ShiftedExponential(StragglerModel):
    """T = shift + Exp(rate): a minimum time plus an exponential tail.

    Closed form: E[T_(k:n)] = shift + (H_n - H_{n-k}) / rate, H the harmonic numbers.
    """

    shift: float = 1.0
    rate: float = 1.0
    name: str = field(default="shifted-exponential", init=False)

    def __post_init__(self) -> None:
        check_nonnegative_float(self.shift, "shift")
        check_positive_float(self.rate, "rate")

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        n = _check_sample_size(n)
        return self.shift + check_rng(rng).exponential(1.0 / self.rate, size=n)

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        return np.where(t < self.shift, 0.0, -np.expm1(-self.rate * (t - self.shift)))

    def expected_order_statistic(self, k: int, n: int) -> float:
        k, n = _check_kn(k, n)
        harmonic = float(np.sum(1.0 / np.arange(n - k + 1, n + 1)))
        return self.shift + harmonic / self.rate

    def _support_points(self) -> list[float]:
        return [self.shift]

    def params(self) -> dict[str, Any]:
        return {"shift": self.shift, "rate": self.rate}


@dataclass(frozen=True)
class Pareto(StragglerModel):
    """Heavy-tailed T = scale * U^(-1/alpha), P(T > t) = (scale / t)^alpha for t >= scale.

    Closed form: E[T_(k:n)] = scale * Γ(n+1) Γ(n-k+1-1/α) / (Γ(n-k+1) Γ(n+1-1/α)), finite iff
    (n - k + 1) α > 1.
    """

    scale: float = 1.0
    alpha: float = 2.0
    name: str = field(default="pareto", init=False)

    def __post_init__(self) -> None:
        check_positive_float(self.scale, "scale")
        check_positive_float(self.alpha, "alpha")

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        n = _check_sample_size(n)
        u = 1.0 - check_rng(rng).random(size=n)  # in (0, 1]
        return self.scale * u ** (-1.0 / self.alpha)

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        safe = np.maximum(t, self.scale)
        return np.where(t < self.scale, 0.0, 1.0 - (self.scale / safe) ** self.alpha)

    def expected_order_statistic(self, k: int, n: int) -> float:
        k, n = _check_kn(k, n)
        m = n - k + 1
        if m * self.alpha <= 1:
            raise InvalidInputError(
                f"E[T_({k}:{n})] is infinite for a Pareto tail with alpha={self.alpha}: "
                f"need (n - k + 1) * alpha > 1; lower k or raise alpha"
            )
        inv = 1.0 / self.alpha
        log_e = (
            special.gammaln(n + 1)
            + special.gammaln(m - inv)
            - special.gammaln(m)
            - special.gammaln(n + 1 - inv)
        )
        return float(self.scale * np.exp(log_e))

    def _support_points(self) -> list[float]:
        return [self.scale]

    def params(self) -> dict[str, Any]:
        return {"scale": self.scale, "alpha": self.alpha}


@dataclass(frozen=True)
class BimodalStragglers(StragglerModel):
    """A few heavy stragglers: each task is slowed by ``slowdown`` with probability ``p_slow``.

    T = B * (slowdown if slow else 1), B from ``base``; F(t) = (1-p) F_B(t) + p F_B(t / s).
    """

    base: StragglerModel = field(default_factory=ShiftedExponential)
    p_slow: float = 0.1
    slowdown: float = 10.0
    name: str = field(default="bimodal", init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.base, StragglerModel):
            raise InvalidInputError("base must be a StragglerModel")
        check_probability(self.p_slow, "p_slow")
        check_positive_float(self.slowdown, "slowdown")

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        n = _check_sample_size(n)
        rng = check_rng(rng)
        times = self.base.sample(n, rng)
        slow = rng.random(n) < self.p_slow
        return np.where(slow, times * self.slowdown, times)

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        return (1 - self.p_slow) * self.base.cdf(t) + self.p_slow * self.base.cdf(t / self.slowdown)

    def _support_points(self) -> list[float]:
        pts = self.base._support_points()
        return pts + [p * self.slowdown for p in pts]

    def params(self) -> dict[str, Any]:
        return {"base": self.base.describe(), "p_slow": self.p_slow, "slowdown": self.slowdown}


@dataclass(frozen=True, eq=False)
class TraceReplay(StragglerModel):
    """Replay measured durations.

    ``mode="bootstrap"`` draws with replacement (i.i.d. from the empirical distribution, for
    which the order-statistic expectation is exact); ``mode="cycle"`` returns the trace in
    order, wrapping around, which reproduces a recorded run exactly.
    """

    durations: np.ndarray
    mode: Literal["bootstrap", "cycle"] = "bootstrap"
    name: str = field(default="trace", init=False)

    def __post_init__(self) -> None:
        check_choice(self.mode, "mode", ("bootstrap", "cycle"))
        arr = check_array(self.durations, "durations", ndim=1)
        if np.any(arr < 0):
            raise InvalidInputError("durations must be >= 0 seconds")
        object.__setattr__(self, "durations", arr)
        object.__setattr__(self, "_cursor", [0])

    @classmethod
    def from_file(cls, path: str | Path, mode: Literal["bootstrap", "cycle"] = "bootstrap"):
        """Read durations from JSON (a list, or ``{"durations": [...]}``) or text/CSV (the
        first column of each non-empty, non-comment line; a non-numeric header is skipped)."""
        path = Path(path)
        if not path.is_file():
            raise InvalidInputError(f"trace file {path} does not exist")
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError) as exc:
            raise InvalidInputError(
                f"trace file {path} is not a readable text/JSON file: {exc}"
            ) from exc
        if path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"trace file {path} is not valid JSON: {exc}") from exc
            if isinstance(data, dict):
                data = data.get("durations")
            if not isinstance(data, list):
                raise InvalidInputError(
                    f"trace file {path} must hold a list of durations or {{'durations': [...]}}"
                )
            values = data
        else:
            values = []
            for lineno, line in enumerate(text.splitlines(), 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                fields = line.replace(";", ",").split(",")[0].split()
                first = fields[0] if fields else ""
                try:
                    values.append(float(first))
                except ValueError:
                    if values:  # only a header line may be non-numeric
                        raise InvalidInputError(
                            f"{path}:{lineno}: {first!r} is not a duration in seconds"
                        ) from None
        try:
            durations = np.asarray(values, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"trace file {path} must hold a flat list of durations in seconds: {exc}"
            ) from exc
        return cls(durations, mode=mode)

    def sample(self, n: int, rng: RngLike = None) -> np.ndarray:
        n = _check_sample_size(n)
        if self.mode == "bootstrap":
            return check_rng(rng).choice(self.durations, size=n, replace=True)
        cursor = self._cursor  # type: ignore[attr-defined]
        idx = (cursor[0] + np.arange(n)) % self.durations.size
        cursor[0] = int((cursor[0] + n) % self.durations.size)
        return self.durations[idx].copy()

    def cdf(self, t: np.ndarray | float) -> np.ndarray:
        sorted_d = np.sort(self.durations)
        return np.searchsorted(sorted_d, np.asarray(t, dtype=float), side="right") / sorted_d.size

    def expected_order_statistic(self, k: int, n: int) -> float:
        """Exact for the bootstrap: the survival function is a step function."""
        k, n = _check_kn(k, n)
        values = np.unique(self.durations)
        surv = 1.0 - special.betainc(k, n - k + 1, self.cdf(values))
        widths = np.diff(np.concatenate(([0.0], values)))
        before = np.concatenate(([1.0], surv[:-1]))  # survival on [v_{j-1}, v_j)
        return float(np.sum(widths * before))

    def params(self) -> dict[str, Any]:
        d = self.durations
        return {"size": int(d.size), "mode": self.mode, "mean": float(d.mean())}


_SPEC_PARAMS: dict[str, tuple[str, ...]] = {
    "shifted-exponential": ("shift", "rate"),
    "pareto": ("scale", "alpha"),
    "bimodal": ("shift", "rate", "p_slow", "slowdown"),
}


#: the names :func:`model_from_spec` accepts (the CLI's ``--stragglers``)
MODEL_NAMES: tuple[str, ...] = tuple(_SPEC_PARAMS)


def model_from_spec(name: str, **params: float) -> StragglerModel:
    """Build a model from a name and keyword parameters (used by the CLI).

    ``shifted-exponential`` (shift, rate), ``pareto`` (scale, alpha), ``bimodal`` (shift,
    rate, p_slow, slowdown over a shifted-exponential base). Missing parameters take the
    class defaults; a parameter the model does not have is an error, not silently ignored.
    """
    name = check_choice(name, "model", _SPEC_PARAMS)
    unknown = sorted(set(params) - set(_SPEC_PARAMS[name]))
    if unknown:
        raise InvalidInputError(
            f"model {name!r} has no parameter(s) {', '.join(unknown)}; "
            f"it takes {', '.join(_SPEC_PARAMS[name])}"
        )
    if name == "shifted-exponential":
        return ShiftedExponential(**params)
    if name == "pareto":
        return Pareto(**params)
    base = ShiftedExponential(**{k: v for k, v in params.items() if k in ("shift", "rate")})
    return BimodalStragglers(
        base, **{k: v for k, v in params.items() if k in ("p_slow", "slowdown")}
    )
