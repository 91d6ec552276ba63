"""Small CNNs and the deterministic training loop used to evaluate frugalml.quant
(MMSE post-training quantization, Choukroun et al., arXiv:1902.06822)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.quant.data import load_digits_images, load_mnist1d  # noqa: E402
from frugalml.quant.models import (  # noqa: E402
    MNIST1DCNN,
    RECIPES,
    DigitsCNN,
    TrainResult,
    accuracy,
    train_classifier,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits_images(rng=0)


@pytest.fixture(scope="module")
def mnist1d():
    return load_mnist1d(n=2000, rng=0)


def _layers(model):
    return {
        name: type(m).__name__
        for name, m in model.named_modules()
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d))
    }


def test_model_shapes_layers_and_only_quantizable_parameters():
    d, m = DigitsCNN(), MNIST1DCNN()
    assert d(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    assert m(torch.zeros(5, 1, 40)).shape == (5, 10)
    assert _layers(d) == {"conv1": "Conv2d", "conv2": "Conv2d", "fc1": "Linear", "fc2": "Linear"}
    assert _layers(m) == {
        "conv1": "Conv1d",
        "conv2": "Conv1d",
        "conv3": "Conv1d",
        "fc1": "Linear",
        "fc2": "Linear",
    }
    for model in (d, m):  # every parameter belongs to a Conv/Linear layer
        owners = {n.rsplit(".", 1)[0] for n, _ in model.named_parameters()}
        assert owners == set(_layers(model))
    assert sum(p.numel() for p in d.parameters()) == 38282
    assert sum(p.numel() for p in m.parameters()) == 17354
    assert MNIST1DCNN(channels=8, hidden=16, n_classes=3)(torch.zeros(2, 1, 40)).shape == (2, 3)


def test_seeded_init_leaves_global_rng_alone():
    state = torch.random.get_rng_state()
    a, b, c = DigitsCNN(rng=5), DigitsCNN(rng=5), DigitsCNN(rng=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_digits_short_training_well_above_chance(digits):
    calls = []
    res = train_classifier(
        DigitsCNN(rng=0),
        digits.train,
        digits.test,
        epochs=2,
        lr=1e-2,
        rng=0,
        progress=lambda msg, frac: calls.append((msg, frac)),
    )
    assert isinstance(res, TrainResult)
    assert res.test_acc > 0.8 and res.train_acc > 0.8  # chance is 0.1
    assert not res.model.training
    assert [f for _, f in calls] == [0.5, 1.0] and calls[0][0].startswith("epoch 1/2")
    assert "test acc" in res.summary() and np.isfinite(res.final_loss) and res.seconds > 0


def test_mnist1d_short_training_above_chance(mnist1d):
    res = train_classifier(
        MNIST1DCNN(rng=0), mnist1d.train, mnist1d.test, epochs=5, lr=1e-2, batch_size=100, rng=0
    )
    assert res.train_acc > 0.35 and res.test_acc > 0.3  # chance is 0.1


def test_training_is_deterministic(digits):
    small = (digits.X_train[:300], digits.y_train[:300])
    r1 = train_classifier(DigitsCNN(rng=1), small, digits.test, epochs=2, lr=3e-3, rng=4)
    r2 = train_classifier(DigitsCNN(rng=1), small, digits.test, epochs=2, lr=3e-3, rng=4)
    r3 = train_classifier(DigitsCNN(rng=1), small, digits.test, epochs=2, lr=3e-3, rng=5)
    s1, s2, s3 = r1.model.state_dict(), r2.model.state_dict(), r3.model.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    assert r1.test_acc == r2.test_acc and r1.final_loss == r2.final_loss
    assert not all(torch.equal(s1[k], s3[k]) for k in s1)  # batch order depends on rng


def test_accuracy_matches_brute_force_and_restores_mode(digits):
    model = DigitsCNN(rng=2)
    model.train()
    X, y = digits.X_test, digits.y_test
    with torch.no_grad():
        logits = model.eval()(X).numpy()
    model.train()
    ref = np.mean(np.argmax(logits, axis=1) == y.numpy())
    assert accuracy(model, X, y, batch_size=7) == pytest.approx(ref, abs=1e-12)
    assert model.training
    # numpy inputs work too
    assert accuracy(model, X.numpy(), y.numpy()) == pytest.approx(ref, abs=1e-12)


def test_old_seed_keyword_still_works_with_a_warning(digits):
    from frugalml.errors import FrugalDeprecationWarning

    small = (digits.X_train[:100], digits.y_train[:100])
    with pytest.warns(FrugalDeprecationWarning, match="'seed'"):
        old_model = DigitsCNN(seed=3)
    new_model = DigitsCNN(rng=3)
    pairs = zip(old_model.parameters(), new_model.parameters(), strict=True)
    assert all(torch.equal(p, q) for p, q in pairs)
    with pytest.warns(FrugalDeprecationWarning, match="'seed'"):
        old = train_classifier(DigitsCNN(rng=3), small, small, epochs=1, seed=2)
    new = train_classifier(DigitsCNN(rng=3), small, small, epochs=1, rng=2)
    assert old.final_loss == new.final_loss
    with pytest.raises(InvalidInputError):
        train_classifier(DigitsCNN(rng=3), small, small, epochs=1, seed=2, rng=2)


def test_generator_rng_and_explicit_cpu_device(digits):
    small = (digits.X_train[:100], digits.y_train[:100])
    a = DigitsCNN(rng=np.random.default_rng(7), device="cpu")
    b = DigitsCNN(rng=np.random.default_rng(7), device=torch.device("cpu"))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert a.conv1.weight.device.type == "cpu"
    m = MNIST1DCNN(rng=0, device="cpu")
    assert m.fc2.weight.device.type == "cpu"
    r1 = train_classifier(a, small, small, epochs=1, rng=np.random.default_rng(1), device="cpu")
    r2 = train_classifier(b, small, small, epochs=1, rng=np.random.default_rng(1))
    assert r1.final_loss == r2.final_loss
    assert accuracy(r1.model, *small, device="cpu") == accuracy(r2.model, *small)
    with pytest.raises(InvalidInputError, match="device"):
        DigitsCNN(device="nonsense")
    with pytest.raises(InvalidInputError, match="device"):
        accuracy(a, *small, device=1.5)


def test_recipes_are_valid_keywords():
    for recipe in RECIPES.values():
        assert set(recipe) <= {"epochs", "lr", "batch_size", "weight_decay"}


@pytest.mark.parametrize(
    "case",
    ["short_y", "nan_x", "label_too_big", "epochs0", "not_module", "float_labels", "neg_lr"],
)
def test_train_classifier_rejects_bad_input(case, digits):
    X, y = digits.X_train[:50], digits.y_train[:50]
    model, kw = DigitsCNN(), {"epochs": 1, "lr": 1e-3, "rng": 0}
    train = (X, y)
    if case == "short_y":
        train = (X, y[:-1])
    elif case == "nan_x":
        Xn = X.clone()
        Xn[0, 0, 0, 0] = float("nan")
        train = (Xn, y)
    elif case == "label_too_big":
        train = (X, y + 10)
    elif case == "epochs0":
        kw["epochs"] = 0
    elif case == "not_module":
        model = lambda x: x  # noqa: E731
    elif case == "float_labels":
        train = (X, y.double() + 0.5)
    elif case == "neg_lr":
        kw["lr"] = -1.0
    with pytest.raises(InvalidInputError):
        train_classifier(model, train, (X, y), **kw)
