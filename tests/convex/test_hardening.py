"""Memory guards (TooLargeError before CVXPY / the allocation) and readable results in the
convex area; the limit is set with FRUGALML_MEMORY_LIMIT so that the tests stay small."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.convex import first_order_sdp, solve_poly_sdp, solve_quantized_sdp
from frugalml.convex.gan import ConvexWGAN, ProgressiveConvexGAN, mmd, relu_wgan
from frugalml.convex.gan.progressive import StageInfo
from frugalml.convex.poly_sdp import sdp_nbytes
from frugalml.errors import InvalidInputError, TooLargeError


@pytest.fixture
def small_memory(monkeypatch):
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(16 << 20))


def test_lifted_sdps_refused_before_cvxpy(small_memory):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((10, 60)), rng.standard_normal(10)
    with pytest.raises(TooLargeError, match="lifted SDP"):
        solve_poly_sdp(X, y, activation=(1, 1, 0), beta=0.1)
    with pytest.raises(TooLargeError, match="lifted SDP"):
        solve_quantized_sdp(X, y, a=1.0, b=1.0, c=0.0, beta=0.1)
    with pytest.raises(TooLargeError, match="first-order SDP"):
        first_order_sdp(rng.standard_normal((10, 700)), y, a=1, b=1, c=0, beta=0.1)


def test_sdp_estimate_grows_with_the_lift():
    # Clarabel's dense PSD blocks: measured 442 MiB at d = 60, n = 20
    assert 300 << 20 < sdp_nbytes(20, 61, 1, "clarabel") < 600 << 20
    assert sdp_nbytes(20, 61, 1, "scs") < sdp_nbytes(20, 61, 1, "clarabel")


def test_gan_latents_and_samples_refused(small_memory):
    X = np.random.default_rng(1).random((40, 8, 8))
    with pytest.raises(TooLargeError, match="latent dimension 100000"):
        ProgressiveConvexGAN(2, latent_dim=100_000).fit(X)
    gan = ProgressiveConvexGAN(2, latent_dim=4).fit(X)
    with pytest.raises(TooLargeError, match="sampling"):
        gan.sample(10**6)
    with pytest.raises(TooLargeError, match="latent"):
        ConvexWGAN(latent_dim=10**5).fit(X.reshape(40, -1))
    with pytest.raises(TooLargeError, match="kernel matrices"):
        mmd(np.zeros((2000, 2)), np.zeros((2000, 2)))
    with pytest.raises(TooLargeError, match="hyperplane arrangements"):
        relu_wgan(X.reshape(40, -1), n_arrangements=10**6)


def test_stage_info_repr_and_summary():
    info = StageInfo((4, 4), 3, 0.25, 5, 0.25)
    assert (
        str(info) == info.summary() == ("stage 4x4: k=3, beta=0.25, input rank 5, constraint 0.25")
    )
    assert repr(info).startswith("StageInfo(shape=(4, 4), k=3")


def test_truncation_beyond_the_data_is_refused():
    X = np.random.default_rng(0).random((30, 4))
    with pytest.raises(InvalidInputError, match=r"truncation=50 exceeds .*min\(n, d\) = 4"):
        ConvexWGAN(truncation=50).fit(X)
    assert ConvexWGAN(truncation=4).fit(X, rng=0).truncation_index_ <= 4
