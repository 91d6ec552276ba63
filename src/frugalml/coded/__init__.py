"""Straggler-resilient coded computation.

Real-valued polar codes with successive-cancellation decoding and anytime estimation
(Bartan & Pilanci, arXiv 1901.06811 and 2309.00682), baselines (uncoded, replication,
Gaussian MDS, Vandermonde/polynomial codes), and coded matrix products on any
:mod:`frugalml.runtime` executor.
"""

from .anytime import Estimate, anytime_estimate, unbiased_error
from .base import Decoded, LinearCode
from .baselines import GaussianMDS, Replication, Uncoded, VandermondeCode
from .polar import PolarCode, erasure_profile, polar_transform

__all__ = [
    "Decoded",
    "Estimate",
    "GaussianMDS",
    "LinearCode",
    "PolarCode",
    "Replication",
    "Uncoded",
    "VandermondeCode",
    "anytime_estimate",
    "erasure_profile",
    "polar_transform",
    "unbiased_error",
]
