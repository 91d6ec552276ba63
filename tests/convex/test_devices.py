"""The ``device=`` argument of the convex area's torch-backed functions: a bad device is an
InvalidInputError, and on CUDA (when there is one) the results match the CPU's."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from frugalml.convex import Polynomial, sign_backprop, train_poly_backprop
from frugalml.convex.first_order import first_order_sdp
from frugalml.convex.gan.baselines import train_dcgan, train_gda_progressive
from frugalml.convex.gan.metrics import fit_feature_map
from frugalml.errors import InvalidInputError

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
ACT = Polynomial.fit_relu()


def _data(n=40, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, X[:, 0] ** 2 + X[:, 1] + 0.05 * rng.standard_normal(n)


def _images(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8)), rng.integers(0, 3, n)


def test_bad_device_is_invalid_input():
    X, y = _data()
    imgs, labels = _images()
    calls = [
        lambda: train_poly_backprop(X, y, activation=ACT, beta=0.1, width=3, steps=2,
                                    device="nope"),
        lambda: sign_backprop(X, y, width=3, a=1.0, beta=0.1, steps=2, device="nope"),
        lambda: fit_feature_map(imgs, labels, epochs=1, device="nope"),
        lambda: train_gda_progressive(imgs, n_stages=1, latent_dim=4, steps=2, device="nope"),
        lambda: train_dcgan(imgs, steps=1, device="nope"),
        lambda: first_order_sdp(X, y, a=1.0, b=0.5, c=0.0, beta=0.1, device="nope"),
    ]  # fmt: skip
    for call in calls:
        with pytest.raises(InvalidInputError, match="device must be 'cpu', 'cuda'"):
            call()


@CUDA
def test_cuda_matches_cpu():
    X, y = _data()
    kw = dict(activation=ACT, beta=0.1, width=4, steps=60, rng=1)
    cpu = train_poly_backprop(X, y, **kw)
    gpu = train_poly_backprop(X, y, device="cuda", **kw)
    assert gpu.objective == pytest.approx(cpu.objective, rel=1e-6)
    kw = dict(width=3, a=1.0, b=0.5, beta=0.1, steps=40, rng=2)
    assert np.isfinite(sign_backprop(X, y, device="cuda", **kw).objective)
    imgs, labels = _images()
    fm = fit_feature_map(imgs, labels, n_features=8, epochs=2, device="cuda")
    assert fm(imgs).shape == (64, 8)
    b = train_gda_progressive(imgs, n_stages=2, latent_dim=4, steps=5, device="cuda")
    assert b.sample(3, rng=0).shape == (3, 8, 8)
    d = train_dcgan(imgs, steps=2, device="cuda")
    assert d.sample(2, rng=0).shape == (2, 8, 8)
    sol = first_order_sdp(X, y, a=ACT.a, b=ACT.b, c=ACT.c, beta=0.1, device="cuda")
    ref = first_order_sdp(X, y, a=ACT.a, b=ACT.b, c=ACT.c, beta=0.1)
    assert sol.objective == pytest.approx(ref.objective, rel=1e-5)


@CUDA
def test_poly_network_to_torch_on_cuda():
    from frugalml.convex import PolyNetwork

    X, _ = _data()
    rng = np.random.default_rng(4)
    U = rng.standard_normal((3, 5))
    net = PolyNetwork(U=U / np.linalg.norm(U, axis=0), alpha=rng.standard_normal(5), activation=ACT)
    module = net.to_torch(device="cuda")
    assert next(module.parameters()).device.type == "cuda"
    out = module(torch.as_tensor(X, dtype=torch.float64, device="cuda"))
    np.testing.assert_allclose(out.detach().cpu().numpy(), net.predict(X), rtol=1e-10)
