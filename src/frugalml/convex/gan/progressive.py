"""Progressive convex GAN (ProCoGAN): closed-form linear generators stacked over resolutions.

Reference: A. Sahiner et al., "Hidden Convexity of Wasserstein GANs: Interpretable Generative
Models with Closed-Form Solutions", ICLR 2022, arXiv:2107.05680 (Figure 2, ProCoGAN).

Stage 1 maps a Gaussian latent ``[Z, 1]`` (centred and whitened exactly at fit time) to
images at the lowest resolution; stage ``l > 1``
maps the nearest-neighbour 2x upsampled output of stage ``l - 1`` (plus a bias column, and
optionally ``stage_noise`` fresh Gaussian columns) to resolution ``l``. Every stage is the
closed-form quadratic-discriminator WGAN of :mod:`.wgan` (centred, with a bias row) against
the data average-pooled to that resolution, with its own truncation index ``k_l`` (equivalently
``beta_l``). A stage's input has rank at most ``k_{l-1} + stage_noise``, so ``k_l`` is capped by
it (asking for more raises ``InvalidInputError``). Optional histogram matching maps each output
pixel through the monotone transform that takes the generated marginal (on the fitting latents)
to the data marginal (quantile tables, ``quantiles`` levels).

Works for signals ``(n, L)`` (1-D pooling) and images ``(n, h, w)`` (2-D). Cost: one SVD per
stage, ``O(n d_l min(n, d_l))``.
"""

from __future__ import annotations

import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ..._io import atomic_write_bytes, check_output_path
from ..._results import ResultRepr
from ..._validate import RngLike, check_int, check_positive_float, check_rng
from ...errors import InvalidInputError
from ...progress import Progress
from .closed_form import closed_form_generator, truncation_beta
from .linalg import RANK_RTOL, as_matrix, check_latent_memory, gaussian_latent, thin_svd
from .pooling import downsample, upsample

# downsample and upsample live in .pooling; they stay importable from here
__all__ = ["ProgressiveConvexGAN", "StageInfo", "downsample", "upsample"]


@dataclass(frozen=True, repr=False)
class StageInfo(ResultRepr):
    """One stage: resolution ``shape``, truncation index ``k``, ``beta``, the input rank and the
    constraint value ``||A_X - H_G||_2`` (equals ``beta`` when active)."""

    shape: tuple[int, ...]
    k: int
    beta: float
    input_rank: int
    constraint: float

    def summary(self) -> str:
        return (
            f"stage {'x'.join(map(str, self.shape))}: k={self.k}, beta={self.beta:.4g}, input "
            f"rank {self.input_rank}, constraint {self.constraint:.4g}"
        )


#: most progressive stages (a 2^31-pixel side is far beyond any data set)
MAX_STAGES = 32


def _quiet(message: str, fraction: float) -> None:
    """The progress callback used when none is given."""


def _per_stage(value: Any, n_stages: int, name: str, check: Any) -> list[Any]:
    """``value`` (``None``, a scalar or one entry per stage) as a list of ``n_stages``
    entries, each checked by ``check`` (``None`` entries kept)."""
    if value is None or np.isscalar(value):
        vals = [value] * n_stages
    else:
        vals = list(value)
        if len(vals) != n_stages:
            raise InvalidInputError(
                f"{name} must have one entry per stage ({n_stages}), got {len(vals)}"
            )
    if name == "truncation":
        return [None if v is None else check(v, f"{name}[{i}]", low=1)
                for i, v in enumerate(vals)]  # fmt: skip
    return [None if v is None else check(v, f"{name}[{i}]") for i, v in enumerate(vals)]


@dataclass(frozen=True)
class _Settings:
    """The validated hyper-parameters of a :class:`ProgressiveConvexGAN`."""

    n_stages: int
    latent_dim: int
    truncation: list[int | None]
    beta: list[float | None]
    stage_noise: int
    max_truncation: int | None
    histogram_matching: bool
    quantiles: int


class ProgressiveConvexGAN(BaseEstimator):
    """ProCoGAN: progressive closed-form convex WGAN generator.

    A scikit-learn estimator (``get_params``/``set_params``, ``clone``, its ``repr``): the
    hyper-parameters are stored as given and validated by :meth:`fit`.

    Parameters
    ----------
    n_stages:
        Number of resolutions; the lowest is the data shape divided by ``2^(n_stages-1)``
        (each spatial size must be divisible by it).
    latent_dim:
        Columns of the Gaussian latent of stage 1.
    truncation:
        Truncation index per stage (int for all, or a sequence); ``None`` takes the largest
        admissible one (the stage input's rank, capped by ``max_truncation``). Ignored for a
        stage whose ``beta`` is given.
    beta:
        ``beta`` per stage (float or sequence, ``None`` entries use ``truncation``).
    stage_noise:
        Extra Gaussian latent columns at each stage after the first (0 = the paper's model).
    histogram_matching:
        Map each output pixel's marginal to the data's (quantile matching).
    """

    def __init__(
        self,
        n_stages: int = 3,
        latent_dim: int = 16,
        *,
        truncation: int | Sequence[int | None] | None = None,
        beta: float | Sequence[float | None] | None = None,
        stage_noise: int = 0,
        max_truncation: int | None = None,
        histogram_matching: bool = False,
        quantiles: int = 101,
    ):
        self.n_stages = n_stages
        self.latent_dim = latent_dim
        self.truncation = truncation
        self.beta = beta
        self.stage_noise = stage_noise
        self.max_truncation = max_truncation
        self.histogram_matching = histogram_matching
        self.quantiles = quantiles

    def _settings(self) -> _Settings:
        """The hyper-parameters, validated, with ``truncation`` and ``beta`` expanded to one
        entry per stage (``fit`` calls it; ``__init__`` stores them as given, as scikit-learn
        requires)."""
        # each stage halves the resolution: 2^(n_stages-1) must divide the sample shape
        n_stages = check_int(self.n_stages, "n_stages", low=1, high=MAX_STAGES)
        max_truncation = self.max_truncation
        if max_truncation is not None:
            max_truncation = check_int(max_truncation, "max_truncation", low=1)
        return _Settings(
            n_stages=n_stages,
            latent_dim=check_int(self.latent_dim, "latent_dim", low=1),
            truncation=_per_stage(self.truncation, n_stages, "truncation", check_int),
            beta=_per_stage(self.beta, n_stages, "beta",
                            lambda v, name: check_positive_float(v, name)),
            stage_noise=check_int(self.stage_noise, "stage_noise", low=0),
            max_truncation=max_truncation,
            histogram_matching=bool(self.histogram_matching),
            quantiles=check_int(self.quantiles, "quantiles", low=3),
        )  # fmt: skip

    # ---------------------------------------------------------------------------- fit
    def fit(
        self, X: Any, *, rng: RngLike = 0, progress: Progress | None = None
    ) -> ProgressiveConvexGAN:
        """Fit on ``X`` ``(n, L)`` signals or ``(n, h, w)`` images (list of equally shaped
        arrays accepted). The hyper-parameters are validated here
        (:class:`~frugalml.errors.InvalidInputError`). ``progress(message, fraction)``
        (:data:`frugalml.progress.Progress`) is called per stage (``"stage s/S"``) and with
        ``"done"``."""
        t0 = time.perf_counter()
        opt = self._settings()
        M, shape = as_matrix(X)
        if len(shape) > 2:
            raise InvalidInputError(
                f"X must hold (n, L) signals or (n, h, w) images, got samples of shape {shape}"
            )
        Xa = M.reshape((M.shape[0], *shape))
        factor = 2 ** (opt.n_stages - 1)
        if any(s % factor for s in Xa.shape[1:]):
            raise InvalidInputError(
                f"sample shape {Xa.shape[1:]} is not divisible by 2^(n_stages-1)={factor}; "
                "use fewer stages or crop the data"
            )
        gen = check_rng(rng)
        n = Xa.shape[0]
        self._check_memory(opt, n, Xa.shape[1:], "fitting")
        say = progress or _quiet
        self._opt = opt
        self.sample_shape_ = tuple(Xa.shape[1:])
        self.stages_: list[StageInfo] = []
        self.weights_: list[np.ndarray] = []
        self.latent_means_: list[np.ndarray] = []
        prev = None
        for s in range(opt.n_stages):
            say(f"stage {s + 1}/{opt.n_stages}", s / opt.n_stages)
            target = downsample(Xa, 2 ** (opt.n_stages - 1 - s))
            T = target.reshape(n, -1)
            Zs = self._stage_input(opt, s, prev, n, gen, fitting=True)
            W, info = self._fit_stage(opt, s, T, Zs, target.shape[1:], gen)
            self.weights_.append(W)
            self.stages_.append(info)
            prev = (Zs @ W[:-1] + W[-1]).reshape(target.shape)
        G = prev.reshape(n, -1)
        if opt.histogram_matching:
            levels = np.linspace(0, 1, opt.quantiles)
            self.gen_quantiles_ = np.quantile(G, levels, axis=0)
            self.data_quantiles_ = np.quantile(Xa.reshape(n, -1), levels, axis=0)
        self.fit_seconds_ = time.perf_counter() - t0
        say("done", 1.0)
        return self

    def _check_memory(self, opt: _Settings, n: int, shape: tuple[int, ...], what: str) -> None:
        """Refuse sizes whose largest stage (its input ``n x (L_prev + noise)`` or the first
        stage's latent, and its ``n x L`` output) would not fit in memory."""
        size = int(np.prod(shape))
        widest = max(opt.latent_dim, size // 2 ** max(len(shape), 1) + opt.stage_noise)
        check_latent_memory(n, widest, size, f"{what}: the largest stage input")

    def _stage_input(
        self, opt: _Settings, s: int, prev: np.ndarray | None, n: int, gen, fitting: bool = False
    ) -> np.ndarray:
        if s == 0:
            if fitting:
                return gaussian_latent(n, opt.latent_dim, gen)
            return gen.standard_normal((n, opt.latent_dim))
        up = upsample(prev).reshape(n, -1)
        if opt.stage_noise:
            up = np.hstack([up, gen.standard_normal((n, opt.stage_noise))])
        return up

    def _fit_stage(self, opt: _Settings, s, T, Zs, shape, gen) -> tuple[np.ndarray, StageInfo]:
        n = T.shape[0]
        mu = T.mean(axis=0)
        z_mean = Zs.mean(axis=0)
        Tc, Zc = T - mu, Zs - z_mean
        dz = np.linalg.svd(Zc / np.sqrt(n), compute_uv=False)
        rank = int(np.count_nonzero(dz > RANK_RTOL * dz[0])) if dz[0] > 0 else 0
        beta = opt.beta[s]
        if beta is None:
            k_req = opt.truncation[s]
            if k_req is None:
                k_req = rank if opt.max_truncation is None else min(rank, opt.max_truncation)
            k_req = min(k_req, min(T.shape)) if opt.truncation[s] is None else k_req
            if k_req > rank:
                raise InvalidInputError(
                    f"stage {s + 1}: truncation index {k_req} exceeds the rank {rank} of the "
                    f"stage input (latent dimension); lower it to <= {rank}, raise "
                    "latent_dim, the previous stage's truncation or stage_noise"
                )
            _, sv, _ = thin_svd(Tc / np.sqrt(n), min(k_req + 1, *T.shape), "auto", gen)
            if k_req > sv.size:
                raise InvalidInputError(
                    f"stage {s + 1}: truncation index {k_req} exceeds the data dimension "
                    f"{sv.size} at resolution {shape}"
                )
            beta = truncation_beta(sv**2, k_req)
        cf = closed_form_generator(Tc, Zc, beta, rng=gen, x_ref=mu, z_ref=z_mean)
        Wc = cf["W"]
        W = np.vstack([Wc, (mu - z_mean @ Wc)[None, :]])
        G = Zc @ Wc
        H = G.T @ G / n
        A = Tc.T @ Tc / n
        info = StageInfo(tuple(int(v) for v in shape), cf["k"], float(beta), rank,
                         float(np.linalg.norm(A - H, 2)))  # fmt: skip
        return W, info

    # ---------------------------------------------------------------------------- sample
    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise InvalidInputError("this ProgressiveConvexGAN is not fitted; call fit(X) first")

    def sample(self, n: int, *, rng: RngLike = None, stage: int | None = None) -> np.ndarray:
        """``n`` samples ``(n, *sample_shape)`` (or the output of ``stage``, 1-based)."""
        self._check_fitted()
        n = check_int(n, "n", low=1)
        last = len(self.weights_) if stage is None else check_int(
            stage, "stage", low=1, high=len(self.weights_))  # fmt: skip
        opt = self._opt
        self._check_memory(opt, n, self.sample_shape_, "sampling")
        gen = check_rng(rng)
        out = None
        for s in range(last):
            Zs = self._stage_input(opt, s, out, n, gen)
            W = self.weights_[s]
            out = (Zs @ W[:-1] + W[-1]).reshape(n, *self.stages_[s].shape)
        if stage is None and opt.histogram_matching:
            flat = out.reshape(n, -1)
            mapped = np.empty_like(flat)
            for j in range(flat.shape[1]):
                gq = self.gen_quantiles_[:, j]
                mapped[:, j] = np.interp(flat[:, j], gq, self.data_quantiles_[:, j])
            out = mapped.reshape(out.shape)
        return out

    def summary(self) -> str:
        self._check_fitted()
        parts = [f"{'x'.join(map(str, st.shape))}: k={st.k} beta={st.beta:.3g}"
                 for st in self.stages_]  # fmt: skip
        return f"ProgressiveConvexGAN ({self.fit_seconds_:.3g} s) " + "; ".join(parts)

    # ---------------------------------------------------------------------------- save/load
    def save(self, path: str | Path) -> Path:
        """Write the fitted model as ``.npz`` atomically."""
        self._check_fitted()
        path = check_output_path(path, "path")
        opt = self._opt
        arrays: dict[str, Any] = {
            "format": np.array("frugalml.ProgressiveConvexGAN/1"),
            "n_stages": np.array(opt.n_stages), "latent_dim": np.array(opt.latent_dim),
            "stage_noise": np.array(opt.stage_noise),
            "histogram_matching": np.array(opt.histogram_matching),
            "quantiles": np.array(opt.quantiles), "sample_shape": np.array(self.sample_shape_),
            "fit_seconds": np.array(self.fit_seconds_),
        }  # fmt: skip
        for s, (W, st) in enumerate(zip(self.weights_, self.stages_, strict=True)):
            arrays[f"W{s}"] = W
            arrays[f"stage{s}"] = np.array([st.k, st.beta, st.input_rank, st.constraint])
            arrays[f"shape{s}"] = np.array(st.shape)
        if opt.histogram_matching:
            arrays["gen_quantiles"] = self.gen_quantiles_
            arrays["data_quantiles"] = self.data_quantiles_
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> ProgressiveConvexGAN:
        """Read a model written by :meth:`save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except (OSError, ValueError) as exc:
            raise InvalidInputError(
                f"cannot read a ProgressiveConvexGAN from {path}: {exc}"
            ) from exc
        if str(data.get("format", "")) != "frugalml.ProgressiveConvexGAN/1":
            raise InvalidInputError(f"{path} is not a saved ProgressiveConvexGAN")
        model = cls(int(data["n_stages"]), int(data["latent_dim"]),
                    stage_noise=int(data["stage_noise"]),
                    histogram_matching=bool(data["histogram_matching"]),
                    quantiles=int(data["quantiles"]))  # fmt: skip
        model._opt = model._settings()
        model.sample_shape_ = tuple(int(v) for v in data["sample_shape"])
        model.fit_seconds_ = float(data["fit_seconds"])
        model.weights_, model.stages_ = [], []
        for s in range(model.n_stages):
            k, beta, rank, cons = data[f"stage{s}"]
            model.weights_.append(data[f"W{s}"])
            model.stages_.append(StageInfo(tuple(int(v) for v in data[f"shape{s}"]), int(k),
                                           float(beta), int(rank), float(cons)))  # fmt: skip
        if model.histogram_matching:
            model.gen_quantiles_ = data["gen_quantiles"]
            model.data_quantiles_ = data["data_quantiles"]
        return model
