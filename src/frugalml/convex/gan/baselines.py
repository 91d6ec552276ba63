"""GDA-trained baselines for the convex WGAN (torch, CPU by default).

Reference for the comparison: A. Sahiner et al., arXiv:2107.05680 (ProCoGAN vs gradient
descent-ascent on the same architecture). Both baselines are trained here from scratch.

* :func:`train_gda_progressive` — the *same architecture* as
  :class:`~frugalml.convex.gan.progressive.ProgressiveConvexGAN`: per stage a linear generator
  with a bias row fed by the upsampled previous stage, against a two-layer discriminator with
  ``width`` quadratic neurons on the centred input plus a linear neuron,
  ``D(x) = sum_j v_j (u_j^T (x - mu_X))^2 / ||u_j||^2 + w^T x``, trained by simultaneous
  gradient descent-ascent with Adam. The discriminator's penalty is
  ``beta/2 (||v||^2 + ||w||^2)`` (a smooth version of the paper's weight decay: the inner
  maximum stays finite, so plain GDA does not diverge); the generator adds
  ``gen_reg ||W||_F^2``.
* :func:`train_dcgan` — a small DCGAN-style GAN: transposed-convolution generator and
  strided-convolution discriminator (2-D for images, 1-D for signals; spatial sizes divisible
  by 4), non-saturating logistic loss, Adam(2e-4, betas (0.5, 0.999)).

Each returns a :class:`TrainedBaseline` with ``sample(n, rng)``, the loss history and the
wall time. Cost per step ``O(batch * params)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..._optional import require
from ..._results import ResultRepr
from ..._validate import RngLike, check_array, check_int, check_positive_float, check_rng
from ...errors import InvalidInputError
from .._torch import torch_device
from .pooling import downsample, upsample

__all__ = ["TrainedBaseline", "train_dcgan", "train_gda_progressive"]


@dataclass(frozen=True, repr=False)
class TrainedBaseline(ResultRepr):
    """A trained baseline: ``sampler(n, generator) -> (n, *shape)``, per-step generator and
    discriminator losses, wall-clock seconds of training, steps in all; ``extra`` holds, for
    the GDA model, the per-stage moment mismatch ``||A_X - H_G||_2 + ||mu_X - mu_G||`` before
    and after training (``mismatch_start``, ``mismatch_end``)."""

    name: str
    sampler: Callable[[int, Any], np.ndarray]
    gen_losses: np.ndarray
    disc_losses: np.ndarray
    seconds: float
    steps: int
    extra: dict[str, Any] = field(default_factory=dict)

    def sample(self, n: int, *, rng: RngLike = None) -> np.ndarray:
        """``n`` samples (numpy, float64)."""
        n = check_int(n, "n", low=1)
        return self.sampler(n, check_rng(rng))

    def summary(self) -> str:
        return (f"{self.name}: {self.steps} steps in {self.seconds:.3g} s, final losses "
                f"G {self.gen_losses[-1]:.4g} D {self.disc_losses[-1]:.4g}")  # fmt: skip


def _torch() -> Any:
    return require("torch", what="the GDA baselines", extra="torch")


def _data(X: Any) -> np.ndarray:
    if isinstance(X, list | tuple) and len({np.shape(x) for x in X}) > 1:
        raise InvalidInputError("X holds samples of inconsistent shape; crop them to one shape")
    Xa = check_array(X, "X", ndim=(2, 3))
    if Xa.shape[0] < 2:
        raise InvalidInputError("X needs at least 2 samples")
    return Xa


def train_gda_progressive(
    X: Any,
    *,
    n_stages: int = 3,
    latent_dim: int = 16,
    steps: int = 1000,
    width: int | None = None,
    beta: float = 0.01,
    gen_reg: float = 1e-3,
    lr: float = 1e-3,
    batch: int = 256,
    rng: RngLike = 0,
    device: Any = "cpu",
) -> TrainedBaseline:
    """Progressive linear-generator / quadratic-discriminator WGAN trained by Adam GDA,
    ``steps`` per stage. ``X`` ``(n, L)`` or ``(n, h, w)``; see the module docstring.
    ``device``: torch device of the training (``"cpu"`` default, ``"cuda"``); the random draws
    are made on the CPU, so they do not depend on it."""
    torch = _torch()
    Xa = _data(X)
    n_stages = check_int(n_stages, "n_stages", low=1)
    latent_dim = check_int(latent_dim, "latent_dim", low=1)
    steps = check_int(steps, "steps", low=1)
    beta = check_positive_float(beta, "beta")
    gen_reg = check_positive_float(gen_reg, "gen_reg") if gen_reg else 0.0
    lr = check_positive_float(lr, "lr")
    batch = check_int(batch, "batch", low=2)
    factor = 2 ** (n_stages - 1)
    if any(s % factor for s in Xa.shape[1:]):
        raise InvalidInputError(f"sample shape {Xa.shape[1:]} not divisible by {factor}")
    gen = check_rng(rng)
    dev = torch_device(torch, device)
    torch.manual_seed(int(gen.integers(2**31 - 1)))
    n = Xa.shape[0]
    t0 = time.perf_counter()
    weights: list[np.ndarray] = []
    shapes: list[tuple[int, ...]] = []
    g_hist, d_hist = [], []
    start: list[float] = []
    end: list[float] = []
    prev: np.ndarray | None = None
    for s in range(n_stages):
        target = downsample(Xa, 2 ** (n_stages - 1 - s))
        shapes.append(tuple(target.shape[1:]))
        T = torch.tensor(target.reshape(n, -1), dtype=torch.float32, device=dev)
        d = T.shape[1]
        mu = T.mean(0)
        p = width or d
        r_in = latent_dim if s == 0 else int(np.prod(upsample(prev[:1]).shape[1:]))
        W = torch.nn.Parameter((0.1 * torch.randn(r_in + 1, d) / np.sqrt(r_in)).to(dev))
        U = torch.nn.Parameter((torch.randn(d, p) / np.sqrt(d)).to(dev))
        v = torch.nn.Parameter(torch.zeros(p, device=dev))
        w = torch.nn.Parameter(torch.zeros(d, device=dev))
        opt_g = torch.optim.Adam([W], lr=lr, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam([U, v, w], lr=lr, betas=(0.5, 0.999))
        Zin = (torch.randn(n, latent_dim).to(dev) if s == 0 else
               torch.tensor(upsample(prev).reshape(n, -1), dtype=torch.float32,
                            device=dev))  # fmt: skip

        def mismatch(W=W, T=T, Zin=Zin, s=s) -> float:
            """``||A_X - H_G||_2 + ||mu_X - mu_G||`` on the fitting latents (what the
            discriminator can detect)."""
            with torch.no_grad():
                z = Zin if s else torch.randn(n, latent_dim).to(dev)
                G = (z @ W[:-1] + W[-1]).double()
                Td = T.double()
                dA = Td.T @ Td / n - G.T @ G / n
                dm = Td.mean(0) - G.mean(0)
                return float(torch.linalg.matrix_norm(dA, ord=2) + dm.norm())

        start.append(mismatch())

        def disc(x: Any, U=U, v=v, w=w, mu=mu) -> Any:
            Un = U / U.norm(dim=0, keepdim=True)
            return ((x - mu) @ Un) ** 2 @ v + x @ w

        for _ in range(steps):
            idx = torch.randint(0, n, (min(batch, n),)).to(dev)
            z = Zin[idx] if s else torch.randn(min(batch, n), latent_dim).to(dev)
            fake = z @ W[:-1] + W[-1]
            real = T[torch.randint(0, n, (min(batch, n),)).to(dev)]
            d_obj = disc(real).mean() - disc(fake.detach()).mean() - beta / 2 * (
                v.pow(2).sum() + w.pow(2).sum())  # fmt: skip
            opt_d.zero_grad()
            (-d_obj).backward()
            opt_d.step()
            g_loss = -disc(fake).mean() + gen_reg * W[:-1].pow(2).sum()
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
            g_hist.append(float(g_loss.detach()))
            d_hist.append(float(d_obj.detach()))
        end.append(mismatch())
        Wn = W.detach().cpu().numpy().astype(np.float64)
        weights.append(Wn)
        prev = (Zin.cpu().numpy().astype(np.float64) @ Wn[:-1] + Wn[-1]).reshape(n, *shapes[-1])
    seconds = time.perf_counter() - t0

    def sampler(m: int, g: np.random.Generator) -> np.ndarray:
        out = None
        for s, Wn in enumerate(weights):
            z = g.standard_normal((m, latent_dim)) if s == 0 else upsample(out).reshape(m, -1)
            out = (z @ Wn[:-1] + Wn[-1]).reshape(m, *shapes[s])
        return out

    return TrainedBaseline("gda-linear-quadratic", sampler, np.array(g_hist), np.array(d_hist),
                           seconds, steps * n_stages,
                           {"mismatch_start": start, "mismatch_end": end})  # fmt: skip


def train_dcgan(
    X: Any,
    *,
    latent_dim: int = 32,
    steps: int = 2000,
    channels: int = 32,
    lr: float = 2e-4,
    batch: int = 64,
    rng: RngLike = 0,
    device: Any = "cpu",
) -> TrainedBaseline:
    """Small DCGAN-style GAN for ``(n, h, w)`` images or ``(n, L)`` signals (sizes divisible
    by 4): generator ``z -> 2c x (s/4) -> c x (s/2) -> 1 x s`` by transposed convolutions with
    BatchNorm + ReLU, discriminator two stride-2 convolutions with LeakyReLU and a linear
    head; non-saturating logistic GAN loss. ``device``: torch device of the training
    (``"cpu"`` default, ``"cuda"``); the random draws are made on the CPU."""
    torch = _torch()
    nn = torch.nn
    Xa = _data(X)
    latent_dim = check_int(latent_dim, "latent_dim", low=1)
    steps = check_int(steps, "steps", low=1)
    c = check_int(channels, "channels", low=1)
    lr = check_positive_float(lr, "lr")
    batch = check_int(batch, "batch", low=2)
    spatial = Xa.shape[1:]
    if any(s % 4 for s in spatial):
        raise InvalidInputError(f"train_dcgan needs spatial sizes divisible by 4, got {spatial}")
    gen = check_rng(rng)
    dev = torch_device(torch, device)
    torch.manual_seed(int(gen.integers(2**31 - 1)))
    two_d = len(spatial) == 2
    Conv, ConvT, BN = ((nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d) if two_d
                       else (nn.Conv1d, nn.ConvTranspose1d, nn.BatchNorm1d))  # fmt: skip
    small = tuple(s // 4 for s in spatial)
    n_small = int(np.prod(small))

    class Gen(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(latent_dim, 2 * c * n_small)
            self.body = nn.Sequential(
                BN(2 * c), nn.ReLU(), ConvT(2 * c, c, 4, 2, 1), BN(c), nn.ReLU(),
                ConvT(c, 1, 4, 2, 1),
            )  # fmt: skip

        def forward(self, z: Any) -> Any:
            return self.body(self.fc(z).view(z.shape[0], 2 * c, *small))

    G = Gen().to(dev)
    D = nn.Sequential(
        Conv(1, c, 4, 2, 1), nn.LeakyReLU(0.2), Conv(c, 2 * c, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(2 * c * n_small, 1),
    ).to(dev)  # fmt: skip
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(0.5, 0.999))
    data = torch.tensor(Xa[:, None], dtype=torch.float32, device=dev)
    n = data.shape[0]
    bce = nn.functional.binary_cross_entropy_with_logits
    g_hist, d_hist = [], []
    t0 = time.perf_counter()
    for _ in range(steps):
        b = min(batch, n)
        real = data[torch.randint(0, n, (b,)).to(dev)]
        fake = G(torch.randn(b, latent_dim).to(dev))
        ones, zeros = torch.ones(b, 1, device=dev), torch.zeros(b, 1, device=dev)
        d_loss = bce(D(real), ones) + bce(D(fake.detach()), zeros)
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = bce(D(fake), ones)
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        g_hist.append(float(g_loss.detach()))
        d_hist.append(float(d_loss.detach()))
    seconds = time.perf_counter() - t0
    G.eval()

    def sampler(m: int, g: np.random.Generator) -> np.ndarray:
        z = torch.tensor(g.standard_normal((m, latent_dim)), dtype=torch.float32, device=dev)
        with torch.no_grad():
            return G(z)[:, 0].cpu().numpy().astype(np.float64)

    return TrainedBaseline("dcgan", sampler, np.array(g_hist), np.array(d_hist), seconds, steps)
