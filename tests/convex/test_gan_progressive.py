"""ProCoGAN (Sahiner et al., arXiv:2107.05680): per-stage closed form (constraint active,
moments matched), pooling/upsampling, shapes, save/load round trip, histogram matching, the
GDA baselines, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.convex.gan import ProgressiveConvexGAN, downsample, upsample
from frugalml.convex.gan.data import load_digits_images, load_image_patches
from frugalml.errors import InvalidInputError


@pytest.fixture(scope="module")
def digits():
    return load_digits_images()


def test_pool_and_upsample():
    x = np.arange(16.0).reshape(1, 4, 4)
    assert np.allclose(downsample(x, 2)[0], [[2.5, 4.5], [10.5, 12.5]])
    assert np.allclose(upsample(np.array([[[1.0, 2.0], [3.0, 4.0]]]))[0],
                       [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])  # fmt: skip
    assert np.allclose(downsample(np.array([[1.0, 3.0, 5.0, 7.0]]), 2), [[2.0, 6.0]])


def test_stages_closed_form(digits):
    g = ProgressiveConvexGAN(3, latent_dim=8, truncation=[3, 3, 3]).fit(digits.X, rng=0)
    assert [st.shape for st in g.stages_] == [(2, 2), (4, 4), (8, 8)]
    assert [st.k for st in g.stages_] == [3, 3, 3]
    for st in g.stages_:  # every stage's quadratic-discriminator constraint is active
        assert abs(st.constraint - st.beta) <= 1e-9 * max(1.0, st.beta) + 1e-12
    S = g.sample(20000, rng=1)
    assert S.shape == (20000, 8, 8)
    # fresh latents reproduce the data mean (bias row) up to Monte-Carlo error
    sd = digits.X.reshape(len(digits.X), -1).std(0).max()
    assert np.abs(S.mean(0) - digits.X.mean(0)).max() < 0.05 * sd + 1e-3
    low = g.sample(5, rng=1, stage=1)
    assert low.shape == (5, 2, 2)


def test_truncation_beyond_input_rank_raises(digits):
    with pytest.raises(InvalidInputError, match="exceeds the rank"):
        ProgressiveConvexGAN(3, latent_dim=8, truncation=[2, 5, 5]).fit(digits.X)


def test_stage_noise_raises_rank(digits):
    g = ProgressiveConvexGAN(3, latent_dim=4, stage_noise=8).fit(digits.X, rng=0)
    assert [st.k for st in g.stages_] == [4, 12, 20]


def test_save_load_round_trip(tmp_path, digits):
    g = ProgressiveConvexGAN(3, latent_dim=6, histogram_matching=True).fit(digits.X, rng=0)
    path = g.save(tmp_path / "m.npz")
    h = ProgressiveConvexGAN.load(path)
    assert np.array_equal(g.sample(9, rng=3), h.sample(9, rng=3))
    assert h.stages_ == g.stages_
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros(2))
    with pytest.raises(InvalidInputError, match="not a saved"):
        ProgressiveConvexGAN.load(bad)


def test_histogram_matching_marginals(digits):
    g = ProgressiveConvexGAN(3, latent_dim=6, histogram_matching=True).fit(digits.X, rng=0)
    S = g.sample(5000, rng=4).reshape(5000, -1)
    X = digits.X.reshape(len(digits.X), -1)
    j = 27  # a central pixel: the matched marginal has the data's quantiles
    qs = np.linspace(0.1, 0.9, 9)
    assert np.abs(np.quantile(S[:, j], qs) - np.quantile(X[:, j], qs)).max() < 0.08


def test_one_dimensional_and_patches():
    rng = np.random.default_rng(0)
    sig = np.cumsum(rng.standard_normal((300, 16)), axis=1)
    g = ProgressiveConvexGAN(3, latent_dim=4).fit(sig, rng=0)
    assert g.sample(4, rng=0).shape == (4, 16)
    p = load_image_patches(n=200, size=16, rng=0)
    assert p.X.shape == (200, 16, 16) and p.X.min() >= 0 and p.X.max() <= 1
    g = ProgressiveConvexGAN(3, latent_dim=8).fit(p.X, rng=0)
    assert g.sample(3, rng=0).shape == (3, 16, 16)


def test_bad_inputs(digits):
    with pytest.raises(InvalidInputError, match="inconsistent shape"):
        ProgressiveConvexGAN(2).fit([np.zeros((4, 4)), np.zeros((4, 6))])
    with pytest.raises(InvalidInputError, match="not divisible"):
        ProgressiveConvexGAN(3).fit(np.zeros((10, 6, 6)))
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        ProgressiveConvexGAN(2).fit(np.full((10, 4, 4), np.inf))
    with pytest.raises(InvalidInputError, match="beta\\[0\\] must be > 0"):
        ProgressiveConvexGAN(2, beta=[0.0, None]).fit(digits.X)  # validated by fit
    with pytest.raises(InvalidInputError, match="one entry per stage"):
        ProgressiveConvexGAN(3, truncation=[1, 2]).fit(digits.X)
    with pytest.raises(InvalidInputError, match="n_stages must be <= 32"):
        ProgressiveConvexGAN(10**9).fit(digits.X)
    with pytest.raises(InvalidInputError, match="degenerate"):
        ProgressiveConvexGAN(3, beta=[1e3, None, None]).fit(digits.X)
    with pytest.raises(InvalidInputError, match="not fitted"):
        ProgressiveConvexGAN().sample(2)


def test_gda_baseline_lowers_its_objective(digits):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    from frugalml.convex.gan.baselines import train_dcgan, train_gda_progressive

    b = train_gda_progressive(digits.X[:300], n_stages=1, latent_dim=8, steps=250, rng=0)
    # GDA lowers the moment mismatch the quadratic discriminator detects
    assert b.extra["mismatch_end"][0] < 0.5 * b.extra["mismatch_start"][0]
    assert b.sample(6, rng=0).shape == (6, 8, 8)
    d = train_dcgan(digits.X[:200], steps=5, rng=0)
    assert d.sample(3, rng=0).shape == (3, 8, 8)


def test_scikit_learn_estimator_api_and_progress(digits):
    from sklearn.base import BaseEstimator, clone

    g = ProgressiveConvexGAN(2, 4, truncation=[2, None])
    assert isinstance(g, BaseEstimator)
    assert g.get_params()["truncation"] == [2, None]  # stored as given
    assert repr(g) == "ProgressiveConvexGAN(latent_dim=4, n_stages=2, truncation=[2, None])"
    calls = []
    X = digits.X[:200, ::2, ::2]  # (200, 4, 4)
    g.fit(X, rng=0, progress=lambda m, f: calls.append((m, f)))
    assert calls == [("stage 1/2", 0.0), ("stage 2/2", 0.5), ("done", 1.0)]
    c = clone(g)
    assert c.get_params() == g.get_params() and not hasattr(c, "weights_")
    assert np.array_equal(c.fit(X, rng=0).sample(3, rng=1), g.sample(3, rng=1))


def test_load_mnist1d_rng_and_deprecated_seed():
    pytest.importorskip("mnist1d")
    from frugalml.convex.gan.data import load_mnist1d
    from frugalml.errors import FrugalDeprecationWarning

    a = load_mnist1d(100, rng=3)
    assert a.X.shape == (100, 40) and a.n_stages == 4
    with pytest.warns(FrugalDeprecationWarning, match="'seed' is deprecated"):
        b = load_mnist1d(100, seed=3)
    assert np.array_equal(a.X, b.X)  # an int rng is the seed itself
    assert np.array_equal(load_mnist1d(100).X, load_mnist1d(100, rng=0).X)
    with pytest.raises(InvalidInputError):
        load_mnist1d(100, seed=1, rng=1)
