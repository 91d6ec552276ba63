"""Baseline: train the polynomial-activation network by backpropagation (local search).

The objective is exactly the one whose global optimum the lifted SDP of
:mod:`frugalml.convex.poly_sdp` computes (Bartan and Pilanci, arXiv:2101.02429)::

    min_{U, alpha}  loss(f(X), y) + beta sum_j ||alpha_j||_1,   f(x) = sum_j sigma(x^T u_j) alpha_j,
    s.t. ||u_j||_2 = 1,

with the same loss conventions (sums over samples and outputs: ``"squared"``
``1/2 ||y_hat - y||^2``, ``"absolute"``, ``"huber"``, and ``"logistic"`` / ``"hinge"`` for
labels in ``{-1, +1}``) and vector outputs ``y`` (n, k) with ``alpha_j`` in R^k. So the SDP
optimum is a lower bound for every objective this module reaches, of any width, and the gap is
what local search loses.

The constraint ``||u_j|| = 1`` is kept either by the reparametrisation ``u_j = w_j / ||w_j||``
(``unit_norm=True``, default; the gradient flows through the normalisation) or by projected
gradient (``unit_norm=False``: ``u_j = w_j`` and every step is followed by
``w_j <- w_j / ||w_j||``). Training is full-batch (``optimizer="sgd"`` is gradient descent
with optional heavy-ball momentum; ``"adam"`` is Adam), in torch float64 on one CPU thread.
The objective is a *sum* over samples, so its gradient grows with ``n``: Adam is insensitive
to that scale, but plain gradient descent needs ``lr`` of order ``1 / (n L)``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._optional import require
from .._resources import check_memory
from .._results import ResultRepr
from .._validate import (
    RngLike,
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_rng,
)
from ..errors import InvalidInputError
from ._checks import check_activation, check_data
from ._torch import torch_device
from .activation import Polynomial
from .decompose import PolyNetwork
from .losses import LOSSES, torch_loss

# torch_loss moved to .losses; it stays importable from here
__all__ = ["OPTIMIZERS", "BackpropResult", "torch_loss", "train_poly_backprop"]

OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True, repr=False)
class BackpropResult(ResultRepr):
    """Result of :func:`train_poly_backprop`.

    objective: the objective of ``network`` (re-evaluated in NumPy by
    :meth:`PolyNetwork.objective`), the lowest met during training (the best iterate is kept);
    network: a :class:`~frugalml.convex.decompose.PolyNetwork` with unit-norm ``U`` (d, width);
    final_objective: the objective of the last iterate; history: the objective every
    ``record_every`` steps (at the parameters before that step) and at the end; steps: steps
    taken (fewer than asked when the objective became non-finite, ``diverged=True``);
    seconds: wall time of the training loop (set-up included).
    """

    objective: float
    network: PolyNetwork
    final_objective: float
    history: tuple[float, ...] = field(repr=False)
    steps: int
    seconds: float
    optimizer: str
    lr: float
    diverged: bool = False

    def summary(self) -> str:
        state = ", DIVERGED" if self.diverged else ""
        return (
            f"backprop ({self.optimizer}, lr={self.lr:g}, width {self.network.width}, "
            f"{self.steps} steps{state}): best objective {self.objective:.8g}, last "
            f"{self.final_objective:.8g}, {self.seconds:.2f}s"
        )


def train_poly_backprop(
    X: Any,
    y: Any,
    *,
    activation: Polynomial | tuple[float, float, float],
    beta: float,
    width: int,
    loss: str = "squared",
    optimizer: str = "adam",
    steps: int = 3000,
    lr: float = 1e-2,
    rng: RngLike = None,
    unit_norm: bool = True,
    huber_delta: float = 1.0,
    momentum: float = 0.0,
    init_scale: float | None = None,
    record_every: int = 10,
    num_threads: int | None = 1,
    device: Any = "cpu",
) -> BackpropResult:
    """Train ``f(x) = sum_j sigma(x^T u_j) alpha_j`` (``width`` neurons, ``||u_j|| = 1``) by
    full-batch backpropagation on the SDP's objective (module doc).

    Parameters
    ----------
    X, y:
        (n, d) inputs and (n,) or (n, k) targets (labels in ``{-1, +1}`` for ``"logistic"`` and
        ``"hinge"``), as for :func:`~frugalml.convex.poly_sdp.solve_poly_sdp`.
    activation, beta, loss, huber_delta:
        as for :func:`~frugalml.convex.poly_sdp.solve_poly_sdp`.
    width:
        number of hidden neurons m (``2 (d + 1)`` per output suffices for the global optimum).
    optimizer:
        ``"adam"`` or ``"sgd"`` (full-batch gradient descent, heavy-ball ``momentum``).
    steps, lr:
        number of steps and learning rate.
    rng:
        seed or generator for the initialisation: ``w_j ~ N(0, I_d)`` (the direction is
        uniform on the sphere) and ``alpha ~ N(0, init_scale^2)`` (default ``1 / width``).
        Training is deterministic given ``rng``.
    unit_norm:
        ``True``: ``u_j = w_j / ||w_j||``; ``False``: projected gradient (module doc).
    record_every:
        history stride.
    num_threads:
        torch intra-op threads during training (restored afterwards; ``None`` leaves torch's
        setting).
    device:
        torch device of the training (``"cpu"`` default, ``"cuda"``; the initialisation is
        drawn in NumPy, so it does not depend on the device).

    Returns a :class:`BackpropResult` whose ``network`` is the best iterate. Cost
    ``O(steps n d m k)``. Raises :class:`~frugalml.errors.InvalidInputError` on bad input and
    :class:`~frugalml.errors.BackendUnavailableError` without torch.
    """
    act = check_activation(activation)
    beta = check_positive_float(beta, "beta")
    check_choice(loss, "loss", LOSSES)
    check_choice(optimizer, "optimizer", OPTIMIZERS)
    width = check_int(width, "width", low=1)
    steps = check_int(steps, "steps", low=1)
    lr = check_positive_float(lr, "lr")
    huber_delta = check_positive_float(huber_delta, "huber_delta")
    momentum = check_nonnegative_float(momentum, "momentum")
    if momentum >= 1.0:
        raise InvalidInputError(f"momentum must be < 1, got {momentum}")
    if init_scale is not None:
        init_scale = check_positive_float(init_scale, "init_scale")
    record_every = check_int(record_every, "record_every", low=1)
    if num_threads is not None:
        num_threads = check_int(num_threads, "num_threads", low=1)
    if not isinstance(unit_norm, bool):
        raise InvalidInputError(f"unit_norm must be True or False, got {unit_norm!r}")
    Xa, ya = check_data(X, y, loss)
    k = 1 if ya.ndim == 1 else ya.shape[1]
    check_memory(
        8 * 6 * width * (Xa.shape[1] + k + 2 * Xa.shape[0]),
        f"a network of width {width} (d = {Xa.shape[1]}, n = {Xa.shape[0]}) with its gradients",
        fix="lower the width",
    )
    gen = check_rng(rng)
    torch = require("torch", what="train_poly_backprop", extra="torch")
    dev = torch_device(torch, device)

    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train(torch, Xa, ya, act, beta, width, loss, optimizer, steps, lr, gen,
                      unit_norm, huber_delta, momentum, init_scale, record_every,
                      dev)  # fmt: skip
    finally:
        torch.set_num_threads(old_threads)


def _train(torch, Xa, ya, act, beta, width, loss, optimizer, steps, lr, gen, unit_norm,
           huber_delta, momentum, init_scale, record_every, dev) -> BackpropResult:  # fmt: skip
    t0 = time.perf_counter()
    d = Xa.shape[1]
    alpha_shape = (width,) if ya.ndim == 1 else (width, ya.shape[1])
    scale = 1.0 / width if init_scale is None else init_scale
    W0 = gen.standard_normal((d, width))
    W0 /= np.maximum(np.linalg.norm(W0, axis=0), 1e-300)
    A0 = scale * gen.standard_normal(alpha_shape)
    dt = torch.float64
    W = torch.tensor(W0, dtype=dt, device=dev, requires_grad=True)
    A = torch.tensor(A0, dtype=dt, device=dev, requires_grad=True)
    Xt = torch.as_tensor(Xa, dtype=dt, device=dev)
    Yt = torch.as_tensor(ya, dtype=dt, device=dev)
    a, b, c = act.a, act.b, act.c
    tiny = torch.finfo(dt).tiny

    def units() -> Any:
        if unit_norm:
            return W / W.norm(dim=0, keepdim=True).clamp_min(tiny)
        return W

    def objective() -> Any:
        t = Xt @ units()
        f = ((a * t + b) * t + c) @ A
        return torch_loss(torch, loss, f, Yt, huber_delta) + beta * A.abs().sum()

    if optimizer == "adam":
        opt = torch.optim.Adam([W, A], lr=lr)
    else:
        opt = torch.optim.SGD([W, A], lr=lr, momentum=momentum)
    history: list[float] = []
    best = math.inf
    best_W, best_A = W.detach().clone(), A.detach().clone()
    diverged = False
    done = 0
    for step in range(steps):
        opt.zero_grad()
        val = objective()
        value = float(val.detach())
        if not math.isfinite(value):
            diverged = True
            break
        if step % record_every == 0:
            history.append(value)
        if value < best:
            best = value
            best_W, best_A = W.detach().clone(), A.detach().clone()
        val.backward()
        opt.step()
        done += 1
        if not unit_norm:
            with torch.no_grad():
                W /= W.norm(dim=0, keepdim=True).clamp_min(tiny)
    final = math.nan
    if not diverged:
        with torch.no_grad():
            final = float(objective())
        if math.isfinite(final):
            history.append(final)
            if final < best:
                best = final
                best_W, best_A = W.detach().clone(), A.detach().clone()
        else:
            diverged = True
    Wb = best_W.cpu().numpy()
    U = Wb / np.maximum(np.linalg.norm(Wb, axis=0), 1e-300)
    net = PolyNetwork(U=U, alpha=best_A.cpu().numpy().copy(), activation=act)
    obj = net.objective(Xa, ya, loss=loss, beta=beta, huber_delta=huber_delta)
    return BackpropResult(
        objective=obj,
        network=net,
        final_objective=final,
        history=tuple(history),
        steps=done,
        seconds=time.perf_counter() - t0,
        optimizer=optimizer,
        lr=lr,
        diverged=diverged,
    )
