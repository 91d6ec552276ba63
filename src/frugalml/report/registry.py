"""Registry of area benchmarks run by ``frugalml report``.

An area adds its quick benchmark with one ``register`` line below (or from its own code). A
benchmark is a function ``run(*, quick: bool, progress: Progress | None) -> BenchResult``,
named as ``"module:function"`` so it is imported only when run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from .._validate import check_choice
from ..errors import InvalidInputError
from ..progress import Progress
from .results import BenchResult

__all__ = ["AreaBenchmark", "Progress", "get", "register", "registered"]

"""``progress(step_description, fraction_done)`` with fraction in [0, 1]."""


@dataclass(frozen=True)
class AreaBenchmark:
    name: str
    title: str
    target: str

    def load(self) -> Callable[..., BenchResult]:
        module, _, func = self.target.partition(":")
        return getattr(importlib.import_module(module), func)


_REGISTRY: dict[str, AreaBenchmark] = {}


def register(name: str, title: str, target: str) -> None:
    """Register (or replace) an area benchmark ``target = "package.module:function"``."""
    if ":" not in target:
        raise InvalidInputError(f"target must look like 'module:function', got {target!r}")
    _REGISTRY[name] = AreaBenchmark(name, title, target)


def registered() -> list[AreaBenchmark]:
    return list(_REGISTRY.values())


def get(name: str) -> AreaBenchmark:
    check_choice(name, "area", _REGISTRY)
    return _REGISTRY[name]


register("runtime", "Runtime: first k of n", "frugalml.report.benches.runtime:run")
register("coded", "Coded computation: polar codes", "frugalml.report.benches.coded:run")
register("sketch", "Sketching and randomized least squares", "frugalml.report.benches.sketch:run")
register(
    "second-order",
    "Second-order: debiased distributed Newton sketch",
    "frugalml.report.benches.second_order:run",
)
register("remat", "Rematerialisation: MOCCASIN vs Checkmate", "frugalml.report.benches.remat:run")
register("convex", "Convex training: SDP vs backprop", "frugalml.report.benches.convex:run")
register("quant", "Low-bit quantization: MMSE vs baselines", "frugalml.report.benches.quant:run")
register("ecc", "ECC: syndrome-based neural decoding", "frugalml.report.benches.ecc:run")
register("dfo", "Coded derivative-free optimisation and attacks", "frugalml.report.benches.dfo:run")
register("convex-gan", "Convex Wasserstein GANs", "frugalml.report.benches.convex_gan:run")
register("saddle", "Saddle points: primal-dual SESOP", "frugalml.report.benches.saddle:run")
register(
    "aggregation",
    "Subspace gradient aggregation (AdaCons)",
    "frugalml.report.benches.aggregation:run",
)
