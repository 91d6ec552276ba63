"""What calibration records about one layer's input: range, histogram, sample, Gram matrix.

Post-training quantization (Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of
Neural Networks for Efficient Inference", ICCV Workshops 2019, arXiv:1902.06822) picks each
layer's activation scale from its inputs on unlabeled calibration data. A
:class:`LayerObserver` holds, for one layer, what the chosen scale method needs of those inputs
without keeping them: the exact minimum and maximum, a streaming histogram
(:class:`~frugalml.quant.calibrate.ActivationHistogram`, ``method="mmse"``), a uniform random
sample of at most :data:`SAMPLE_CAP` values (:class:`ValueSample`, ``"percentile"``,
``"aciq"``, ``"histogram"``), the input Gram matrix for GPTQ rounding
(:class:`~frugalml.quant.gram.GramAccumulator`), the number of calls and the MACs of the
first batch. :meth:`LayerObserver.activation_scale` turns them into the layer's per-tensor
input scale.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

import math

import numpy as np

from .._optional import require
from .._validate import RngLike, check_rng
from ..errors import InvalidInputError

require("torch", what="frugalml.quant.quantize_model", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .baselines import SCALE_METHODS  # noqa: E402
from .calibrate import ActivationHistogram, mmse_from_histogram  # noqa: E402
from .gram import GramAccumulator  # noqa: E402
from .scale_result import ScaleResult  # noqa: E402

__all__ = ["SAMPLE_CAP", "LayerObserver", "ValueSample"]

SAMPLE_CAP = 1 << 18
"""Values kept per layer for the sample-based activation baselines."""


class ValueSample:
    """Uniform random sample (without replacement) of at most ``cap`` streamed values.

    Bottom-k sampling: every value gets a uniform random key (from ``rng``, default seed 0)
    and the ``cap`` values with the smallest keys are kept. ``values``: the sample (float32);
    :meth:`update` costs ``O(cap + batch size)``.
    """

    def __init__(self, cap: int, rng: RngLike = 0) -> None:
        self.cap = cap
        self.rng = check_rng(rng)
        self.keys = np.empty(0)
        self.values = np.empty(0, dtype=np.float32)

    def update(self, v: np.ndarray) -> None:
        """Add the values ``v`` (1-D float32)."""
        keys = np.concatenate([self.keys, self.rng.random(v.size)])
        values = np.concatenate([self.values, v])
        if keys.size > self.cap:
            keep = np.argpartition(keys, self.cap)[: self.cap]
            keys, values = keys[keep], values[keep]
        self.keys, self.values = keys, values


class LayerObserver:
    """Calibration statistics of one layer's input (module doc).

    ``hist`` / ``sample``: keep a histogram / a random sample of the input values; ``gram_of``:
    the layer whose input Gram matrix to accumulate (``rounding="gptq"``), or ``None``.
    Attributes: ``calls``, ``macs_first`` (MACs of the first calibration batch), ``lo`` /
    ``hi`` (exact range), ``hist``, ``sample``, ``gram`` (``None`` when not kept).
    """

    def __init__(
        self, hist: bool, sample: bool, gram_of: nn.Module | None = None, *, rng: RngLike = 0
    ) -> None:
        self.calls = 0
        self.macs_first = 0
        self.lo = math.inf
        self.hi = -math.inf
        self.hist = ActivationHistogram() if hist else None
        self.sample = ValueSample(SAMPLE_CAP, rng) if sample else None
        self.gram = GramAccumulator(gram_of) if gram_of is not None else None

    def record_values(self, x: torch.Tensor) -> None:
        """Add a (detached, finite, non-empty) input batch to the range, histogram and sample;
        ``O(x.numel())`` plus one copy to the CPU when a histogram or sample is kept."""
        self.lo = min(self.lo, float(x.min()))
        self.hi = max(self.hi, float(x.max()))
        if self.hist is not None or self.sample is not None:
            v = x.to(device="cpu", dtype=torch.float32).reshape(-1).numpy()
            if self.hist is not None:
                self.hist.update(v)
            if self.sample is not None:
                self.sample.update(v)

    def activation_scale(self, method: str, bits: int) -> ScaleResult:
        """The per-tensor input scale of ``method`` (a key of
        :data:`~frugalml.quant.baselines.SCALE_METHODS`): an unsigned grid if the input was
        never negative, else a signed one. ``"mmse"`` searches the histogram, ``"minmax"`` uses
        the exact range, the others the random sample."""
        signed = self.lo < 0
        if method == "mmse":
            if self.hist is None:
                raise InvalidInputError("method 'mmse' needs an observer that keeps a histogram")
            return mmse_from_histogram(self.hist, bits)
        if method == "minmax":
            return SCALE_METHODS["minmax"](
                np.array([self.lo, self.hi]), bits, signed=signed, per_channel=False
            )
        if self.sample is None:
            raise InvalidInputError(f"method {method!r} needs an observer that keeps a sample")
        return SCALE_METHODS[method](
            self.sample.values.astype(np.float64), bits, signed=signed, per_channel=False
        )
