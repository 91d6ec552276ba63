"""The black box of a score-based attack: a logits-only oracle and the margin objective.

NES-PGD (Ilyas, Engstrom, Athalye and Lin, "Black-box Adversarial Attacks with Limited
Queries and Information", ICML 2018, arXiv 1804.08598), driven by coded ES in Bartan &
Pilanci (arXiv 1907.05984): the attacker sees logits only (:class:`LogitsOracle`) and
minimises the margin loss (:class:`MarginObjective`) of one example under a perturbation.

The perturbation lives in a low-dimensional space of dimension p (digits: a 4 x 4 image
upsampled to 8 x 8 by nearest neighbour, p = 16; MNIST-1D: 20 values each repeated twice,
p = 20), so that the number K of coded directions can be close to p -- the regime where coding
recovers the exact finite-difference gradient. Upsampling by repetition preserves the l_inf
norm, so the ball is projected in the low-dimensional space. A full-resolution classifier
perturbs every input entry (p = prod(input_shape)). Cost of one evaluation of m
perturbations: one forward pass of the model on m inputs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..._validate import check_nonnegative_float
from ...runtime import Shared
from ._torch import torch_module

__all__ = ["LogitsOracle", "MarginObjective", "perturbation_dim", "upsample"]


class LogitsOracle:
    """The black box: inputs (m, *input_shape) -> logits (m, C) as NumPy, nothing else.

    ``model``: a torch module, or a :class:`~frugalml.runtime.Shared` reference to one placed
    with an executor (then the oracle pickles as a short token and each worker process reads
    the model once). Counts the queries it answers (``queries``; on a process or remote
    executor, each worker's copy counts its own). Thread-safe enough for a thread pool: the
    counter is only used for reporting. The queries run on the model's device (inputs are
    moved there, logits come back to the CPU).
    """

    def __init__(self, model: Any):
        self._model = model
        self.queries = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        torch = torch_module()
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.queries += x.shape[0]
        model = self._model.get() if isinstance(self._model, Shared) else self._model
        param = next(model.parameters(), None)
        inputs = torch.from_numpy(x)
        if param is not None and param.device.type != "cpu":
            inputs = inputs.to(param.device)
        with torch.no_grad():
            return model(inputs).cpu().numpy().astype(np.float64)


def upsample(delta: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """(m, p) low-dimensional perturbations -> (m, *input_shape) by repetition."""
    m = delta.shape[0]
    if len(input_shape) == 3:  # (1, 8, 8) from (4, 4)
        side = math.isqrt(delta.shape[1])
        img = delta.reshape(m, 1, side, side)
        f = input_shape[1] // side
        return np.repeat(np.repeat(img, f, axis=2), f, axis=3)
    f = input_shape[1] // delta.shape[1]
    return np.repeat(delta.reshape(m, 1, -1), f, axis=2)


def perturbation_dim(input_shape: tuple[int, ...]) -> int:
    """p: 16 for (1, 8, 8) images (4x4 blocks of 2x2 pixels), 20 for (1, 40) signals."""
    if len(input_shape) == 3:
        return (input_shape[1] // 2) * (input_shape[2] // 2)
    return input_shape[1] // 2


class MarginObjective:
    """Margin loss of one example under a low-dimensional perturbation (batched).

    f(delta) = max(z_y - max_{j != y} z_j, -kappa), z the logits of clip(x + up(delta)).
    f < 0 iff the example is misclassified. ``delta`` (p,) -> float or (m, p) -> (m,).
    ``full_resolution``: delta has every input entry, p = x.size, and up is a reshape.
    """

    def __init__(self, oracle: LogitsOracle, x: np.ndarray, label: int, *,
                 clip: tuple[float, float] | None, kappa: float = 0.5,
                 full_resolution: bool = False):  # fmt: skip
        self.oracle = oracle
        self.x = np.asarray(x, dtype=np.float64)
        self.label = int(label)
        self.clip = clip
        self.kappa = check_nonnegative_float(kappa, "kappa")
        self.full_resolution = bool(full_resolution)
        self.dim = self.x.size if self.full_resolution else perturbation_dim(self.x.shape)

    def __call__(self, delta: np.ndarray) -> float | np.ndarray:
        d = np.asarray(delta, dtype=np.float64)
        single = d.ndim == 1
        d = d.reshape(-1, self.dim)
        if self.full_resolution:
            xs = self.x[None] + d.reshape(-1, *self.x.shape)
        else:
            xs = self.x[None] + upsample(d, self.x.shape)
        if self.clip is not None:
            xs = np.clip(xs, *self.clip)
        z = self.oracle(xs)
        true = z[:, self.label].copy()
        z[:, self.label] = -np.inf
        margin = np.maximum(true - z.max(axis=1), -self.kappa)
        return float(margin[0]) if single else margin
