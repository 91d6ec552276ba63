"""A GAN on a 2-D mixture of Gaussians as a saddle-point problem, its mode metrics and the
Adam-GDA baseline.

The nonconvex-nonconcave test problem of Choukroun, Zibulevsky & Kisilev, "Primal-Dual
Sequential Subspace Optimization for Saddle-point Problems" (arXiv 2008.09149): the original
minimax GAN value ``min_x max_y F(x, y)`` over the flat parameter vectors of a small generator
``x`` and discriminator ``y`` (tanh MLPs), on ``modes`` Gaussians evenly spaced on a circle.
:func:`mode_metrics` measures mode coverage and sample quality; :func:`adam_gda` is the usual
GAN training loop (simultaneous Adam descent-ascent) that PD-SESOP is compared with at equal
gradient evaluations. Needs torch (extra ``torch``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._deprecation import renamed_parameters
from .._device import check_device
from .._optional import require
from .._resources import check_memory
from .._validate import (
    RngLike,
    check_array,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_rng,
    seed_from_rng,
)
from .saddle_problem import NonFiniteError

__all__ = ["GANProblem", "adam_gda", "mixture_gan", "mode_metrics"]


def mode_metrics(
    samples: np.ndarray, centers: np.ndarray, std: float, *, min_share: float = 0.01
) -> dict[str, float]:
    """Mode coverage and quality of 2-D ``samples`` (shape (N, 2)) for a Gaussian mixture.

    A sample is **high quality** if it lies within ``3 std`` of its nearest center; a mode is
    **covered** if at least ``min_share`` of all samples are high-quality samples of it.
    Returns ``modes`` (covered count), ``quality`` (high-quality fraction), ``mean_distance``
    (mean distance to the nearest center) and ``balance`` (total-variation distance between
    the high-quality samples' mode histogram and uniform). ``O(N K)``.
    """
    samples = check_array(samples, "samples", shape=(None, 2))
    centers = check_array(centers, "centers", shape=(None, 2))
    std = check_positive_float(std, "std")
    min_share = check_nonnegative_float(min_share, "min_share")
    check_memory(8.0 * 3 * samples.shape[0] * centers.shape[0],
                 f"the distances of {samples.shape[0]} samples to {centers.shape[0]} centers",
                 fix="pass fewer samples")  # fmt: skip
    d = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=2)
    nearest = d.argmin(axis=1)
    dmin = d[np.arange(len(samples)), nearest]
    good = dmin <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(centers))
    share = counts / max(1, len(samples))
    hist = counts / max(1, counts.sum())
    return {
        "modes": int(np.count_nonzero(share >= min_share)),
        "quality": float(good.mean()),
        "mean_distance": float(dmin.mean()),
        "balance_tv": float(0.5 * np.abs(hist - 1.0 / len(centers)).sum()),
    }


@dataclass
class GANProblem:
    """A GAN on a 2-D Gaussian mixture as ``min_x max_y F(x, y)`` over flat parameter vectors.

    ``F(x, y) = mean log sigmoid(D_y(real)) + mean log sigmoid(-D_y(G_x(z)))`` (the original
    minimax GAN value) on a fixed batch of real samples and latent codes; ``x0``/``y0`` are the
    initial generator/discriminator parameters (float64 1-D tensors on ``device``).
    ``generator(x, z)`` is the generator network as a function of its flat parameters ``x``
    and latent codes ``z`` (shape ``(count, latent)``). Use :meth:`evaluate` for mode coverage
    and quality on fresh latent samples.
    """

    loss: Any
    x0: Any
    y0: Any
    centers: np.ndarray
    std: float
    latent: int
    generator: Any
    gen_params: Any
    device: Any = "cpu"

    @renamed_parameters(seed="rng")
    def sample(
        self, x: Any, count: int = 2000, *, rng: int | np.random.Generator = 123
    ) -> np.ndarray:
        """``count`` generator samples (NumPy, shape (count, 2)) for flat generator parameters
        ``x``. The latent codes are drawn on the CPU by a torch generator seeded with ``rng``
        (an int is used as is; a Generator gives a drawn seed), so they do not depend on the
        device. O(count * hidden^2)."""
        torch = require("torch", what="the mixture-of-Gaussians GAN", extra="torch")
        gen = torch.Generator().manual_seed(seed_from_rng(rng))
        z = torch.randn(count, self.latent, generator=gen, dtype=torch.float64)
        with torch.no_grad():
            xt = torch.as_tensor(x, dtype=torch.float64, device=self.device)
            out = self.generator(xt, z.to(self.device))
        return out.cpu().numpy()

    @renamed_parameters(seed="rng")
    def evaluate(
        self, x: Any, count: int = 2000, *, rng: int | np.random.Generator = 123
    ) -> dict[str, float]:
        """:func:`mode_metrics` of ``count`` fresh samples (:meth:`sample` with ``rng``)."""
        return mode_metrics(self.sample(x, count, rng=rng), self.centers, self.std)


def mixture_gan(
    *,
    modes: int = 8,
    radius: float = 2.0,
    std: float = 0.05,
    hidden: int = 32,
    latent: int = 2,
    batch: int = 512,
    rng: RngLike = 0,
    device: Any = "cpu",
) -> GANProblem:
    """A small GAN (tanh MLPs ``latent -> hidden -> hidden -> 2`` and ``2 -> hidden -> hidden
    -> 1``) on ``modes`` Gaussians of standard deviation ``std`` evenly spaced on a circle.

    The objective uses ``batch`` fixed real samples and ``batch`` fixed latent codes, so it is
    a deterministic saddle problem (both PD-SESOP and the Adam-GDA baseline see the same one).
    Parameters are float64 so finite-difference Hessian products are accurate. All random
    draws (mixture samples, latent codes, initial parameters) are NumPy draws from ``rng``, then
    moved to ``device`` (a torch device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``), so the problem is
    the same on every device.
    """
    torch = require("torch", what="the mixture-of-Gaussians GAN", extra="torch")
    device = check_device(device)
    modes = check_int(modes, "modes", low=1)
    radius = check_positive_float(radius, "radius")
    std = check_positive_float(std, "std")
    hidden = check_int(hidden, "hidden", low=1)
    latent = check_int(latent, "latent", low=1)
    batch = check_int(batch, "batch", low=1)
    # both networks' float64 parameters and activations, with gradients and Hessian products
    floats = 2 * (hidden * hidden + hidden * (latent + 6) + 3) + 6 * batch * hidden
    check_memory(3 * 8.0 * floats, f"the GAN with hidden={hidden}, batch={batch}",
                 fix="use a smaller hidden width or batch")  # fmt: skip
    gen = check_rng(rng)
    ang = 2 * np.pi * np.arange(modes) / modes
    centers = radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    which = gen.integers(0, modes, batch)
    real = torch.as_tensor(centers[which] + std * gen.standard_normal((batch, 2)), device=device)
    z = torch.as_tensor(gen.standard_normal((batch, latent)), device=device)

    def shapes(din: int, dout: int) -> list[tuple[int, ...]]:
        return [(hidden, din), (hidden,), (hidden, hidden), (hidden,), (dout, hidden), (dout,)]

    g_shapes, d_shapes = shapes(latent, 2), shapes(2, 1)

    def init(shp: list[tuple[int, ...]]) -> Any:
        parts = []
        for s in shp:
            fan_in = s[1] if len(s) == 2 else s[0]
            scale = 1.0 / math.sqrt(fan_in) if len(s) == 2 else 0.0
            parts.append(scale * gen.standard_normal(int(np.prod(s))))
        return torch.as_tensor(np.concatenate(parts), device=device)

    def mlp(flat: Any, shp: list[tuple[int, ...]], inp: Any) -> Any:
        ps, off = [], 0
        for s in shp:
            size = int(np.prod(s))
            ps.append(flat[off : off + size].reshape(s))
            off += size
        h = torch.tanh(inp @ ps[0].T + ps[1])
        h = torch.tanh(h @ ps[2].T + ps[3])
        return h @ ps[4].T + ps[5]

    def generator(x: Any, zz: Any) -> Any:
        return mlp(x, g_shapes, zz)

    def loss(x: Any, y: Any) -> Any:
        fake = generator(x, z)
        d_real = mlp(y, d_shapes, real)
        d_fake = mlp(y, d_shapes, fake)
        F = torch.nn.functional
        return F.logsigmoid(d_real).mean() + F.logsigmoid(-d_fake).mean()

    return GANProblem(
        loss=loss, x0=init(g_shapes), y0=init(d_shapes), centers=centers, std=std,
        latent=latent, generator=generator, gen_params=g_shapes, device=device,
    )  # fmt: skip


def adam_gda(
    F: Any,
    x0: Any,
    y0: Any,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.5, 0.999),
    max_evals: int = 1000,
    callback: Any = None,
) -> tuple[Any, Any, int]:
    """Simultaneous Adam descent-ascent on a torch objective ``F(x, y)`` (the usual GAN
    training loop, full batch): one gradient evaluation per step. Returns ``(x, y, evals)``.
    ``callback(evals, x, y)`` is called after every step."""
    torch = require("torch", what="Adam-GDA", extra="torch")
    lr = check_positive_float(lr, "lr")
    max_evals = check_int(max_evals, "max_evals", low=1)
    x = x0.detach().clone().requires_grad_(True)
    y = y0.detach().clone().requires_grad_(True)
    opt_x = torch.optim.Adam([x], lr=lr, betas=betas)
    opt_y = torch.optim.Adam([y], lr=lr, betas=betas)
    for it in range(1, max_evals + 1):
        val = F(x, y)
        gx, gy = torch.autograd.grad(val, (x, y))
        if not (torch.isfinite(gx).all() and torch.isfinite(gy).all()):
            raise NonFiniteError("adam_gda: non-finite gradient", x=x.detach(), y=y.detach(),
                                 iteration=it, grad_evals=it)  # fmt: skip
        x.grad, y.grad = gx, -gy  # ascent in y
        opt_x.step()
        opt_y.step()
        if callback is not None:
            callback(it, x.detach(), y.detach())
    return x.detach(), y.detach(), max_evals
