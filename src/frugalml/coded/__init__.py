"""Straggler-resilient coded computation.

Real-valued polar codes with successive-cancellation decoding and anytime estimation
(Bartan & Pilanci, arXiv 1901.06811 and 2309.00682), baselines (uncoded, replication,
Gaussian MDS, Vandermonde/polynomial codes), and coded matrix products on any
:mod:`frugalml.runtime` executor.
"""

from .anytime import Estimate, anytime_estimate, unbiased_error
from .base import Decoded, LinearCode
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
    "LinearCode",
    "PolarCode",
    "ProductCode",
    "ProductDecoded",
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
