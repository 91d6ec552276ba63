"""Baseline for the quantized network: straight-through sign backpropagation
(Courbariaux et al., BinaryConnect), compared with the SDP of Bartan & Pilanci.

Paper: Bartan & Pilanci, "Training Quantized Neural Networks to Global Optimality via
Semidefinite Programming" (ICML 2021, arXiv 2105.01420).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..._optional import require
from ..._resources import check_memory
from ..._results import ResultRepr
from ..._validate import RngLike, check_choice, check_int, check_positive_float, check_rng
from .._torch import torch_device
from .network import QuantizedNetwork, refit_output_weights, unique_neurons
from .problem import LOSSES, as_activation, check_quantized_data, is_even

__all__ = ["SignBackpropResult", "sign_backprop"]


@dataclass(frozen=True, repr=False)
class SignBackpropResult(ResultRepr):
    """Result of :func:`sign_backprop`.

    ``network``: binarised first layer with the trained output weights, ``objective`` its
    objective; ``refit``: the same neurons with convex-refitted output weights,
    ``refit_objective`` (<= ``objective`` up to solver tolerance); ``history``: the training
    objective (latent forward = binarised) every ``record_every`` steps.
    """

    network: QuantizedNetwork
    objective: float
    refit: QuantizedNetwork
    refit_objective: float
    history: tuple[float, ...]
    steps: int
    seconds: float

    def summary(self) -> str:
        return (
            f"sign backprop (STE, width {self.network.width}, {self.steps} steps): objective "
            f"{self.objective:.8g}, after convex refit {self.refit_objective:.8g} "
            f"({self.refit.width} neurons), {self.seconds:.2f}s"
        )


def sign_backprop(
    X: Any,
    y: Any,
    *,
    width: int,
    activation: Any = None,
    a: float | None = None,
    b: float | None = None,
    c: float | None = None,
    beta: float,
    loss: str = "squared",
    steps: int = 2000,
    lr: float = 1e-2,
    rng: RngLike = None,
    init_scale: float = 0.01,
    record_every: int = 50,
    num_threads: int | None = 1,
    solver: str = "clarabel",
    device: Any = "cpu",
) -> SignBackpropResult:
    """Baseline: train the quantized network by gradient descent with a straight-through
    estimator (Courbariaux et al., BinaryConnect): latent real weights ``W`` ``(d, width)`` in
    ``[-1, 1]``, the forward pass uses ``sign(W)``, the backward pass treats the sign as the
    identity; Adam (learning rate ``lr``) on ``W`` and ``alpha``, ``W`` clipped to ``[-1, 1]``
    after each step. The objective is the module's ``loss + beta ||alpha||_1``.
    ``W`` starts uniform in ``[-init_scale, init_scale]`` (small, so that signs can still flip:
    on a planted d=6 problem with width 4, ``init_scale=1`` left the objective ~100x above the
    optimum where ``0.01`` came within 20%), ``alpha`` ~ ``N(0, 1/width^2)``. ``num_threads``: torch
    intra-op threads during training (restored afterwards; 1 is fastest for these small
    matrices, ``None`` leaves torch's setting).

    Returns the binarised network with its trained ``alpha`` and, for a fair comparison, a
    convex refit of ``alpha`` for the same (deduplicated) neurons. Initialisation from ``rng``
    (NumPy), so runs are reproducible. ``device``: torch device of the training (``"cpu"``
    default, ``"cuda"``). Cost ``O(steps n d width)`` plus one refit.
    """
    torch = require("torch", what="sign_backprop", extra="torch")
    loss = check_choice(loss, "loss", LOSSES)
    beta = check_positive_float(beta, "beta")
    lr = check_positive_float(lr, "lr")
    width = check_int(width, "width", low=1)
    steps = check_int(steps, "steps", low=1)
    record_every = check_int(record_every, "record_every", low=1)
    init_scale = check_positive_float(init_scale, "init_scale")
    if num_threads is not None:
        num_threads = check_int(num_threads, "num_threads", low=1)
    act = as_activation(activation, a, b, c)
    Xa, ya = check_quantized_data(X, y, loss)
    d = Xa.shape[1]
    check_memory(
        8 * 6 * width * (d + 1 + 2 * Xa.shape[0]),
        f"a sign network of width {width} (d = {d}, n = {Xa.shape[0]}) with its gradients",
        fix="lower the width",
    )
    gen = check_rng(rng)
    dev = torch_device(torch, device)
    t0 = time.perf_counter()
    W = torch.tensor(
        gen.uniform(-init_scale, init_scale, (d, width)), dtype=torch.float64, device=dev,
        requires_grad=True,
    )  # fmt: skip
    al = torch.tensor(gen.standard_normal(width) / width, dtype=torch.float64, device=dev,
                      requires_grad=True)  # fmt: skip
    Xt = torch.as_tensor(Xa, dtype=torch.float64, device=dev)
    yt = torch.as_tensor(ya, dtype=torch.float64, device=dev)
    opt = torch.optim.Adam([W, al], lr=lr)

    def objective() -> Any:
        Ub = torch.where(W >= 0, 1.0, -1.0).to(torch.float64)
        U = W + (Ub - W).detach()  # straight-through: forward sign(W), backward identity
        t = Xt @ U
        f = ((act.a * t + act.b) * t + act.c) @ al
        if loss == "squared":
            lval = 0.5 * ((f - yt) ** 2).sum()
        elif loss == "absolute":
            lval = (f - yt).abs().sum()
        elif loss == "logistic":
            lval = torch.nn.functional.softplus(-yt * f).sum()
        else:
            lval = torch.relu(1.0 - yt * f).sum()
        return lval + beta * al.abs().sum()

    history: list[float] = []
    old_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        for step in range(steps):
            opt.zero_grad()
            val = objective()
            val.backward()
            opt.step()
            with torch.no_grad():
                W.clamp_(-1.0, 1.0)
            if step % record_every == 0:
                history.append(float(val.detach()))
    finally:
        torch.set_num_threads(old_threads)
    with torch.no_grad():
        U_final = np.where(W.cpu().numpy() >= 0, 1.0, -1.0)
        alpha = al.detach().cpu().numpy().copy()
    net = QuantizedNetwork(U=U_final, alpha=alpha, activation=act, loss=loss, beta=beta)
    obj = net.objective(Xa, ya)
    net = replace(net, train_objective=obj)
    refit = refit_output_weights(
        Xa,
        ya,
        unique_neurons(U_final, is_even(act)),
        activation=act,
        beta=beta,
        loss=loss,
        solver=solver,
    )
    assert refit.train_objective is not None
    return SignBackpropResult(
        network=net,
        objective=obj,
        refit=refit,
        refit_objective=refit.train_objective,
        history=tuple(history),
        steps=steps,
        seconds=time.perf_counter() - t0,
    )
