"""Straggler-resilient evolution strategies with coded search directions, and baselines
(Bartan & Pilanci, "Distributed Black-Box Optimization via Error Correcting Codes", arXiv
1907.05984): the public path of 0.1, re-exporting the optimiser (:mod:`.coded_es`, where the
algorithm, the two ways to run workers, divergence and data placement are described), the
baselines :class:`WaitAllES`, :class:`DropStragglersES`, :class:`StructuredES`
(:mod:`.baselines`) and the results (:mod:`.results`).
"""

from __future__ import annotations

from ...progress import Progress  # noqa: F401 - the type of run(progress=), as in 0.1
from .baselines import DropStragglersES, StructuredES, WaitAllES
from .coded_es import CodedES, DivergedError, DivergenceWarning, Wait
from .results import ESResult, StepInfo

__all__ = [
    "CodedES",
    "DivergedError",
    "DivergenceWarning",
    "DropStragglersES",
    "ESResult",
    "StepInfo",
    "StructuredES",
    "Wait",
    "WaitAllES",
]
