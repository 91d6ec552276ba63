"""Evaluation data for frugalml.quant (digits images, MNIST-1D generated offline, stdlib
docstrings). Quantization method: Choukroun et al., arXiv:1902.06822."""

from __future__ import annotations

import inspect
import json
import os
import random
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.quant.data import (  # noqa: E402
    TensorSplit,
    load_digits_images,
    load_mnist1d,
    stdlib_docstrings,
)

# --------------------------------------------------------------------------- digits


def test_digits_shapes_range_and_labels():
    from sklearn.datasets import load_digits

    split = load_digits_images(rng=0)
    assert isinstance(split, TensorSplit)
    (Xtr, ytr), (Xte, yte) = split  # iterable: train, test
    assert Xtr.shape == (1347, 1, 8, 8) and Xte.shape == (450, 1, 8, 8)
    assert Xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert float(Xtr.min()) == 0.0 and float(Xtr.max()) == 1.0
    # the split is a partition of the 1797 images: compare the multiset of (image, label) rows
    ref = load_digits()
    ref_rows = np.hstack([ref.images.reshape(-1, 64) / 16.0, ref.target[:, None]])
    got = np.vstack(
        [
            np.hstack([Xtr.reshape(-1, 64).numpy(), ytr.numpy()[:, None]]),
            np.hstack([Xte.reshape(-1, 64).numpy(), yte.numpy()[:, None]]),
        ]
    )
    np.testing.assert_allclose(
        got[np.lexsort(got.T[::-1])], ref_rows[np.lexsort(ref_rows.T[::-1])], atol=1e-7
    )
    # stratified: each class contributes round(0.25 * n_c) test images
    counts = np.bincount(ref.target)
    np.testing.assert_array_equal(np.bincount(yte.numpy()), np.round(0.25 * counts))
    assert "1347 train / 450 test" in split.summary()


def test_digits_split_is_seeded():
    a, b, c = load_digits_images(rng=3), load_digits_images(rng=3), load_digits_images(rng=4)
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.X_train, c.X_train)


@pytest.mark.parametrize(
    "kwargs", [{"rng": -1}, {"rng": 1.5}, {"rng": True}, {"test_fraction": 0.0}]
)
def test_digits_rejects_bad_arguments(kwargs):
    args = {"rng": 0, **kwargs}
    with pytest.raises(InvalidInputError):
        load_digits_images(**args)


# --------------------------------------------------------------------------- MNIST-1D


def test_mnist1d_generated_offline_without_side_effects(tmp_path, monkeypatch):
    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("load_mnist1d tried to download")

    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.chdir(tmp_path)
    np.random.seed(123)
    random.seed(123)
    np_before, py_before = np.random.get_state(), random.getstate()
    split = load_mnist1d(n=500, rng=0)
    assert os.listdir(tmp_path) == []  # no pickle cache written
    np_after = np.random.get_state()
    assert np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1])
    assert random.getstate() == py_before
    assert split.X_train.shape == (400, 1, 40) and split.X_test.shape == (100, 1, 40)
    assert split.X_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    y = torch.cat([split.y_train, split.y_test]).numpy()
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 50))
    X = torch.cat([split.X_train, split.X_test]).double()
    assert abs(float(X.mean())) < 1e-6 and abs(float(X.std(unbiased=False)) - 1) < 1e-6


def test_mnist1d_matches_package_generator_and_is_seeded():
    from mnist1d.data import get_dataset_args, make_dataset

    split = load_mnist1d(n=500, rng=7)
    args = get_dataset_args()
    args.num_samples, args.seed = 500, 7
    ref = make_dataset(args)
    np.testing.assert_allclose(split.X_train[:, 0].numpy(), ref["x"].astype(np.float32))
    np.testing.assert_array_equal(split.y_test.numpy(), ref["y_test"])
    again = load_mnist1d(n=500, rng=7)
    other = load_mnist1d(n=500, rng=8)
    assert torch.equal(split.X_train, again.X_train)
    assert not torch.equal(split.X_train, other.X_train)


def test_mnist1d_sample_count_rounds_down_to_classes():
    split = load_mnist1d(205, rng=0)  # 20 per class
    assert len(split.y_train) + len(split.y_test) == 200
    with pytest.raises(InvalidInputError):
        load_mnist1d(n=5)


def test_old_seed_spellings_still_work_with_a_warning():
    from frugalml.errors import FrugalDeprecationWarning

    ref_d, ref_m = load_digits_images(rng=2), load_mnist1d(n=200, rng=3)
    for call in (lambda: load_digits_images(2), lambda: load_digits_images(seed=2)):
        with pytest.warns(FrugalDeprecationWarning):
            assert torch.equal(call().X_train, ref_d.X_train)
    for call in (lambda: load_mnist1d(3, n=200), lambda: load_mnist1d(seed=3, n=200)):
        with pytest.warns(FrugalDeprecationWarning):
            assert torch.equal(call().X_train, ref_m.X_train)
    with pytest.raises(InvalidInputError, match="rng"):
        load_digits_images(2, rng=2)
    with pytest.raises(InvalidInputError, match="rng"):
        load_mnist1d(seed=3, rng=3, n=200)


def test_positional_int_is_now_the_sample_count():
    with pytest.raises(InvalidInputError, match=r"n \(the number of samples.*got 0"):
        load_mnist1d(0)


def test_loaders_take_a_generator_and_a_device():
    a = load_digits_images(rng=np.random.default_rng(5), device="cpu")
    b = load_digits_images(rng=np.random.default_rng(5), device=torch.device("cpu"))
    assert torch.equal(a.X_train, b.X_train) and a.X_train.device.type == "cpu"
    m1 = load_mnist1d(n=200, rng=np.random.default_rng(1), device="cpu")
    m2 = load_mnist1d(n=200, rng=np.random.default_rng(1))
    assert torch.equal(m1.X_test, m2.X_test) and m1.y_test.device.type == "cpu"
    with pytest.raises(InvalidInputError, match="device"):
        load_digits_images(device="nonsense")
    with pytest.raises(InvalidInputError, match="device"):
        load_mnist1d(n=200, device=3)


# --------------------------------------------------------------------------- docstrings

needs_docstrings = pytest.mark.skipif(sys.flags.optimize >= 2, reason="docstrings stripped")


@needs_docstrings
def test_stdlib_docstrings_deterministic_unique_and_bounded():
    docs = stdlib_docstrings(limit=None, min_chars=40, max_chars=600)
    assert len(docs) > 1000
    assert docs == stdlib_docstrings(limit=None, min_chars=40, max_chars=600)
    assert len(set(docs)) == len(docs)
    assert all(isinstance(d, str) and 40 <= len(d) <= 600 for d in docs)
    assert stdlib_docstrings(limit=50, min_chars=40, max_chars=600) == docs[:50]
    assert stdlib_docstrings(limit=0) == []


@needs_docstrings
def test_stdlib_docstrings_are_the_real_ones():
    docs = stdlib_docstrings(limit=None, max_chars=None)
    assert inspect.cleandoc(json.dumps.__doc__) in docs
    assert inspect.cleandoc(json.__doc__) in docs
    # first the module docstring of the first module (abc), then its members
    import abc

    assert docs[0] == inspect.cleandoc(abc.__doc__)
    assert not any("frugalml" in d for d in docs)


@pytest.mark.parametrize(
    "kwargs", [{"limit": -1}, {"min_chars": -2}, {"max_chars": 0}, {"limit": 2.5}]
)
def test_stdlib_docstrings_rejects_bad_arguments(kwargs):
    with pytest.raises(InvalidInputError):
        stdlib_docstrings(**kwargs)
