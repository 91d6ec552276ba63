"""``make_sketch(name, m, rng, **options)``: every sketch family by name."""

from __future__ import annotations

from typing import Any

from .._validate import RngLike
from ..errors import InvalidInputError
from .base import Sketch
from .gaussian import GaussianSketch, RademacherSketch
from .hybrid import HybridSketch
from .less import LESSSketch
from .sampling import LeverageScoreSampling, UniformSampling
from .sparse import CountSketch, SparseSignSketch
from .srht import SRHTSketch

__all__ = ["SKETCHES", "make_sketch", "resolve_sketch"]

#: name -> (class, fixed options)
SKETCHES: dict[str, tuple[type[Sketch], dict[str, Any]]] = {
    "gaussian": (GaussianSketch, {}),
    "rademacher": (RademacherSketch, {}),
    "srht": (SRHTSketch, {"transform": "hadamard"}),
    "srdct": (SRHTSketch, {"transform": "dct"}),
    "sparse-sign": (SparseSignSketch, {}),
    "countsketch": (CountSketch, {}),
    "uniform": (UniformSampling, {}),
    "leverage": (LeverageScoreSampling, {"scores": "exact"}),
    "leverage-approx": (LeverageScoreSampling, {"scores": "approx"}),
    "hybrid": (HybridSketch, {}),
    "less": (LESSSketch, {}),
}


def make_sketch(name: str, m: int, rng: RngLike = None, **options: Any) -> Sketch:
    """A sketch of family ``name`` (see :data:`SKETCHES`) with ``m`` rows."""
    if name not in SKETCHES:
        raise InvalidInputError(f"unknown sketch {name!r}; choose one of: {', '.join(SKETCHES)}")
    cls, fixed = SKETCHES[name]
    try:
        return cls(m, rng, **{**fixed, **options})
    except TypeError as exc:
        raise InvalidInputError(f"bad option for the {name} sketch: {exc}") from None


def resolve_sketch(sketch: str | Sketch, m: int, rng: RngLike = None) -> Sketch:
    """A :class:`Sketch` from a name (with ``m`` rows) or an instance (its own size wins)."""
    if isinstance(sketch, Sketch):
        return sketch
    if not isinstance(sketch, str):
        raise InvalidInputError(
            f"sketch must be a name ({', '.join(SKETCHES)}) or a Sketch, "
            f"got {type(sketch).__name__}"
        )
    return make_sketch(sketch, m, rng)
