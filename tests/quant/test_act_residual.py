"""Residual input tensors (act_residual): integer path, error reduction, MAC budget, errors."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from frugalml.errors import InvalidInputError  # noqa: E402
from frugalml.quant.convert import quantize_model  # noqa: E402


def _model():
    gen = torch.Generator().manual_seed(3)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(1, 8, 5),
        torch.nn.ReLU(),
        torch.nn.Conv1d(8, 8, 3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 26, 4),
    )
    for p in model.parameters():
        p.data = torch.randn(p.shape, generator=gen) * 0.4
    x = torch.randn(256, 1, 32, generator=gen)
    return model.eval(), x


def _rel_err(model, ref, x):
    with torch.no_grad():
        return float(((model(x) - ref(x)) ** 2).sum() / (ref(x) ** 2).sum())


def test_input_residual_lowers_error_within_budget():
    model, x = _model()
    base = quantize_model(model, x, w_bits=4, a_bits=4)
    res = quantize_model(model, x, w_bits=4, a_bits=4, act_residual=0.5)
    chosen = [layer for layer in res.layers if layer.input_residual]
    assert chosen, "a 50% budget must admit at least one layer"
    assert res.extra_mac_fraction <= 0.5 + 1e-12
    # each chosen layer costs one more pass over its MACs
    assert res.extra_macs == pytest.approx(sum(layer.macs for layer in chosen))
    held_out = torch.randn(128, 1, 32, generator=torch.Generator().manual_seed(9))
    assert _rel_err(res.model, model, held_out) < 0.8 * _rel_err(base.model, model, held_out)


def test_integer_path_matches_simulation_with_input_residual():
    model, x = _model()
    res = quantize_model(model, x, w_bits=4, a_bits=4, act_residual=2.0, residual=0.25)
    layers = {name: m for name, m in res.model.named_modules() if hasattr(m, "a2_grid")}
    assert all(m.a2_grid is not None for m in layers.values())  # a budget of 2x admits all
    h = x[:16]
    for name in ("0", "2"):
        mod = layers[name]
        inp = h if name == "0" else torch.relu(layers["0"](h))
        assert torch.allclose(mod.integer_forward(inp), mod(inp), rtol=1e-4, atol=1e-5)
        assert "a2_scale" in mod.export()
        assert mod.extra_macs(tuple(inp.shape)) >= mod.macs(tuple(inp.shape))


def test_act_residual_bad_input():
    model, x = _model()
    with pytest.raises(InvalidInputError, match="act_residual"):
        quantize_model(model, x, act_residual=0.0)
    with pytest.raises(InvalidInputError, match="quantize_activations"):
        quantize_model(model, x, act_residual=0.1, quantize_activations=False)
