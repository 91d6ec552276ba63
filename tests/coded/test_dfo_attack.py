"""Black-box attacks (frugalml.coded.dfo.attack): the in-house CNNs, the logits-only oracle,
the margin objective against a direct torch computation, success that a random-sign search
with the same query budget does not reach, and coded vs wait-for-all time under stragglers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from frugalml.coded.dfo.attack import (  # noqa: E402
    LogitsOracle,
    MarginObjective,
    load_dataset,
    perturbation_dim,
    run_attack,
    train_classifier,
    upsample,
)
from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.runtime import (  # noqa: E402
    BimodalStragglers,
    ShiftedExponential,
    make_executor,
)

torch.set_num_threads(1)
HEAVY = BimodalStragglers(ShiftedExponential(1.0, 1.0), p_slow=0.2, slowdown=10.0)


@pytest.fixture(scope="module")
def digits():
    return train_classifier("digits")


def _predict(clf, x):
    with torch.no_grad():
        return clf.model(torch.from_numpy(np.asarray(x, np.float32))).argmax(1).numpy()


def test_digits_cnn_is_accurate_and_cached(digits):
    assert digits.test_accuracy > 0.95
    assert digits.input_shape == (1, 8, 8) and digits.clip == (0.0, 1.0)
    assert train_classifier("digits") is digits
    assert "digits" in digits.summary()


def test_mnist1d_cnn_trains_and_caches_to_disk(tmp_path):
    clf = train_classifier("mnist1d", epochs=15, cache_dir=tmp_path)
    assert clf.input_shape == (1, 40) and clf.test_accuracy > 0.6  # chance is 0.1
    files = list(tmp_path.glob("*.pt"))
    assert len(files) == 1
    # a fresh load from disk gives the same predictions
    from frugalml.coded.dfo import classifiers as mod

    mod._CACHE.pop(("mnist1d", 0, 15, "cpu"))
    again = train_classifier("mnist1d", epochs=15, cache_dir=tmp_path)
    assert again.train_seconds == 0.0
    np.testing.assert_array_equal(_predict(again, clf.x_test), _predict(clf, clf.x_test))


def test_dataset_shapes_and_ranges():
    xtr, ytr, xte, _ = load_dataset("digits", rng=0)
    assert xtr.shape[1:] == (1, 8, 8) and xtr.min() >= 0 and xtr.max() <= 1
    assert len(xtr) + len(xte) == 1797 and set(np.unique(ytr)) == set(range(10))
    state = np.random.get_state()[1].copy()
    xtr, _, xte, _ = load_dataset("mnist1d", rng=0)
    assert xtr.shape == (3200, 1, 40) and xte.shape == (800, 1, 40)
    np.testing.assert_array_equal(np.random.get_state()[1], state)  # global RNG untouched


def test_upsample_preserves_linf_and_blocks():
    d = np.arange(16.0).reshape(1, 16)
    img = upsample(d, (1, 8, 8))
    assert img.shape == (1, 1, 8, 8)
    np.testing.assert_array_equal(img[0, 0, ::2, ::2], d.reshape(4, 4))
    np.testing.assert_array_equal(img[0, 0, 1::2, 1::2], d.reshape(4, 4))
    sig = upsample(np.array([[1.0, -2.0]]), (1, 4))
    np.testing.assert_array_equal(sig, [[[1.0, 1.0, -2.0, -2.0]]])
    assert perturbation_dim((1, 8, 8)) == 16 and perturbation_dim((1, 40)) == 20


def test_margin_objective_matches_torch(digits):
    oracle = LogitsOracle(digits.model)
    x, y = digits.x_test[0], int(digits.y_test[0])
    obj = MarginObjective(oracle, x, y, clip=(0.0, 1.0), kappa=100.0)
    rng = np.random.default_rng(0)
    deltas = rng.uniform(-0.3, 0.3, size=(5, 16))
    got = obj(deltas)
    for delta, g in zip(deltas, got, strict=True):
        xi = np.clip(x + np.kron(delta.reshape(4, 4), np.ones((2, 2)))[None], 0, 1)
        with torch.no_grad():
            z = digits.model(torch.from_numpy(xi[None].astype(np.float32)))[0].double().numpy()
        assert g == pytest.approx(z[y] - np.max(np.delete(z, y)), rel=1e-5, abs=1e-5)
    assert obj(deltas[0]) == pytest.approx(got[0])
    assert oracle.queries == 6
    assert isinstance(oracle(x[None]), np.ndarray)  # logits only


def test_coded_attack_beats_random_signs_at_equal_budget(digits):
    """eps = 0.15, 3 ES iterations (195 queries): the coded attack breaks examples that random
    +-eps corners with the same budget do not; successes are verified on the model directly."""
    kw = dict(n_examples=30, eps=0.15, n_workers=32, max_iter=3, rng=1)
    coded = run_attack(digits, method="coded", **kw)
    rand = run_attack(digits, method="random", **kw)
    np.testing.assert_array_equal(coded.examples, rand.examples)
    assert (coded.success & ~rand.success).sum() >= 3
    assert coded.success.sum() > rand.success.sum()
    assert np.all(coded.queries <= 3 * 65 + 1)
    for i, ok, delta in zip(coded.examples, coded.success, coded.perturbations, strict=True):
        assert np.abs(delta).max() <= 0.15 + 1e-12
        xi = np.clip(digits.x_test[i] + upsample(delta[None], (1, 8, 8))[0], 0, 1)
        assert (_predict(digits, xi[None])[0] != digits.y_test[i]) == ok


def test_coded_time_to_success_beats_wait_all_under_heavy_stragglers(digits):
    kw = dict(n_examples=10, eps=0.2, n_workers=32, max_iter=20, stragglers=HEAVY, rng=2)
    coded = run_attack(digits, method="coded", **kw)
    wait = run_attack(digits, method="wait-all", **kw)
    both = coded.success & wait.success
    assert both.sum() >= 5
    assert wait.sim_seconds[both].mean() >= 2 * coded.sim_seconds[both].mean()
    assert coded.n_directions == 16 and "coded attack" in coded.summary()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "boundary"}, "method must be one of"),
        ({"eps": 0.0}, "eps must be > 0"),
        ({"n_examples": 0}, "n_examples must be >= 1"),
        ({"n_examples": 10_000}, "classified correctly"),
        ({"n_workers": 8, "n_directions": 16}, "exceeds n_workers"),
        ({"sigma": -1.0}, "sigma must be > 0"),
    ],
)
def test_bad_attack_input(digits, kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        run_attack(digits, **{"n_examples": 2, "max_iter": 1, **kwargs})


def test_bad_classifier_and_dataset():
    with pytest.raises(InvalidInputError, match="train_classifier"):
        run_attack("model")
    with pytest.raises(InvalidInputError, match="dataset must be one of"):
        train_classifier("cifar10")


@pytest.mark.parametrize("backend", ["local-thread", "local"])
def test_attack_on_an_executor_places_the_model_once(digits, backend):
    """Same perturbations as in process; per round a task carries O(p) bytes, not the CNN."""
    kw = dict(method="wait-all", n_examples=2, eps=0.15, n_workers=8, max_iter=2, rng=1)
    ref = run_attack(digits, **kw)
    with make_executor(backend, workers=2) as ex:
        res = run_attack(digits, executor=ex, **kw)
        assert ex.shared == ()  # the model and the objectives were released
    np.testing.assert_array_equal(res.examples, ref.examples)
    np.testing.assert_array_equal(res.success, ref.success)
    np.testing.assert_allclose(res.perturbations, ref.perturbations, rtol=0, atol=1e-12)
    assert res.bytes_sent.shape == (2,) and ref.bytes_sent.sum() == 0
    if backend == "local":
        model_bytes = sum(t.numel() * 4 for t in digits.model.parameters())
        assert res.bytes_placed >= model_bytes
        rounds = res.iterations.sum()
        per_task = res.bytes_sent.sum() / (rounds * 8)
        assert per_task <= 2 * 16 * 8 + 2048 < model_bytes / 10


# -- full resolution (photographs) -------------------------------------------------------------


@pytest.fixture(scope="module")
def photos():
    from frugalml.coded.dfo.attack import photo_classifier

    return photo_classifier(24, steps=30)


def test_photos_load_in_range_and_classifier_is_full_resolution(photos):
    from frugalml.coded.dfo.attack import load_photos

    x = load_photos(24)
    assert x.shape == (2, 3, 24, 24) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0 and x[0].std() > 0.05
    np.testing.assert_array_equal(photos.x_test, x)
    assert photos.full_resolution and photos.input_shape == (3, 24, 24)
    assert photos.test_accuracy == np.mean(_predict(photos, photos.x_test) == photos.y_test)
    with pytest.raises(InvalidInputError, match="size"):
        load_photos(2)


def test_full_resolution_margin_matches_torch(photos):
    oracle = LogitsOracle(photos.model)
    x, y = photos.x_test[1], int(photos.y_test[1])
    obj = MarginObjective(oracle, x, y, clip=(0.0, 1.0), kappa=100.0, full_resolution=True)
    assert obj.dim == 3 * 24 * 24
    deltas = np.random.default_rng(0).uniform(-0.2, 0.2, size=(3, obj.dim))
    for delta, g in zip(deltas, obj(deltas), strict=True):
        xi = np.clip(x + delta.reshape(x.shape), 0, 1)
        with torch.no_grad():
            z = photos.model(torch.from_numpy(xi[None].astype(np.float32)))[0].double().numpy()
        assert g == pytest.approx(z[y] - np.max(np.delete(z, y)), rel=1e-5, abs=1e-5)


def test_full_resolution_attack_is_the_same_with_either_encoding(photos):
    """Every pixel perturbed (p = 1728), K = N/2; fast and dense encoding give the same run;
    a success is verified on the model directly."""
    correct = int((_predict(photos, photos.x_test) == photos.y_test).sum())
    kw = dict(n_examples=correct, eps=0.1, n_workers=16, max_iter=4, rng=0,
              directions="hadamard")  # fmt: skip
    a = run_attack(photos, encoding="fast", **kw)
    b = run_attack(photos, encoding="dense", **kw)
    assert a.n_directions == 8 and a.perturbations.shape == (correct, 3 * 24 * 24)
    np.testing.assert_array_equal(a.success, b.success)
    np.testing.assert_array_equal(a.iterations, b.iterations)
    np.testing.assert_allclose(a.perturbations, b.perturbations, atol=1e-12)
    for i, ok, delta in zip(a.examples, a.success, a.perturbations, strict=True):
        assert np.abs(delta).max() <= 0.1 + 1e-12
        xi = np.clip(photos.x_test[i] + delta.reshape(3, 24, 24), 0, 1)
        assert (_predict(photos, xi[None])[0] != photos.y_test[i]) == ok


# -- rng= (0.1: seed=) and device= -------------------------------------------------------------
def test_seed_keyword_still_works_with_a_warning(digits):
    from frugalml.errors import FrugalDeprecationWarning

    with pytest.warns(FrugalDeprecationWarning, match="'seed' is deprecated.*'rng'"):
        assert train_classifier("digits", seed=0) is digits  # the same int seed, the same model
    with pytest.warns(FrugalDeprecationWarning, match="'seed'"):
        old = load_dataset("digits", seed=3)
    new = load_dataset("digits", rng=3)
    for a, b in zip(old, new, strict=True):
        np.testing.assert_array_equal(a, b)


def test_attack_result_old_names_forward(digits):
    from frugalml.errors import FrugalDeprecationWarning

    res = run_attack(digits, method="random", n_examples=2, eps=0.15, n_workers=8, max_iter=1,
                     stragglers=HEAVY, rng=0)  # fmt: skip
    with pytest.warns(FrugalDeprecationWarning, match="'sim_times'.*'sim_seconds'"):
        np.testing.assert_array_equal(res.sim_times, res.sim_seconds)
    with pytest.warns(FrugalDeprecationWarning, match="'wall_times'.*'wall_seconds'"):
        np.testing.assert_array_equal(res.wall_times, res.wall_seconds)


def test_device_is_checked_and_cpu_is_the_classifier_itself(digits):
    assert digits.device.type == "cpu"
    with pytest.raises(InvalidInputError, match="device"):
        train_classifier("digits", device="tpu")
    with pytest.raises(InvalidInputError, match="device"):
        run_attack(digits, n_examples=1, max_iter=1, device="quantum")
    kw = dict(method="coded", n_examples=2, eps=0.15, n_workers=32, max_iter=2, rng=1)
    np.testing.assert_array_equal(
        run_attack(digits, device="cpu", **kw).perturbations, run_attack(digits, **kw).perturbations
    )
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="cuda"):
            train_classifier("digits", device="cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_classifier_and_attack(digits):  # pragma: no cover - GPU machines only
    clf = train_classifier("digits", device="cuda")
    assert clf.device.type == "cuda" and clf.test_accuracy > 0.95
    res = run_attack(clf, method="coded", n_examples=3, eps=0.2, n_workers=32, max_iter=5, rng=1)
    assert res.success.any()
    # the CPU classifier attacked on the GPU: a copy of its model, the classifier is unchanged
    moved = run_attack(digits, method="coded", n_examples=2, eps=0.2, n_workers=32,
                       max_iter=2, rng=1, device="cuda")  # fmt: skip
    assert digits.device.type == "cpu" and moved.perturbations.shape == (2, 16)
    from frugalml.coded.dfo.attack import photo_classifier

    assert photo_classifier(24, steps=5, device="cuda").device.type == "cuda"
