"""Straggler-resilient coded computation.

Real-valued polar codes with successive-cancellation decoding and anytime estimation
(Bartan & Pilanci, arXiv 1901.06811 and 2309.00682), baselines (uncoded, replication,
Gaussian MDS, Vandermonde/polynomial codes), and coded matrix products on any
:mod:`frugalml.runtime` executor.
"""

from typing import Any

from .._deprecation import warn_renamed
from .anytime import Estimate, anytime_estimate, unbiased_error
from .base import Decoded, RealLinearCode
from .baselines import GaussianMDS, Replication, Uncoded, VandermondeCode
from .matmul import CodedMatVec, CodedResult, coded_matmul, make_code
from .oversketch import sketch_matmul
from .polar import PolarCode, erasure_profile, polar_transform
from .product import ProductCode, ProductDecoded

__all__ = [
    "CodedMatVec",
    "CodedResult",
    "Decoded",
    "Estimate",
    "GaussianMDS",
    "PolarCode",
    "ProductCode",
    "ProductDecoded",
    "RealLinearCode",
    "Replication",
    "Uncoded",
    "VandermondeCode",
    "anytime_estimate",
    "coded_matmul",
    "erasure_profile",
    "make_code",
    "polar_transform",
    "sketch_matmul",
    "unbiased_error",
]


def __getattr__(name: str) -> Any:
    """``LinearCode``, the 0.1 name of :class:`RealLinearCode`, with a deprecation warning."""
    if name == "LinearCode":
        warn_renamed("LinearCode", "RealLinearCode", __name__)
        return RealLinearCode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
