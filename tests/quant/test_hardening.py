"""Hardening of the quant API: result objects show arrays by shape and print their summary;
options are validated without a model (check_options); a model that rejects its calibration
data is a clean error."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.errors import InvalidInputError

torch = pytest.importorskip("torch")


def test_results_repr_by_shape_and_print_summary():
    from frugalml.quant import mmse_scale, quantize_model

    res = mmse_scale(np.random.default_rng(0).normal(size=(8, 64)), 4, per_channel=True)
    text = repr(res)
    assert text.startswith("ScaleResult(") and "array(shape=(8,)" in text
    assert str(res) == res.summary()
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    report = quantize_model(model.eval(), torch.randn(16, 4))
    assert str(report) == report.summary()
    assert "layers=(LayerReport(" in repr(report) and "\n" not in repr(report)
    assert str(report.layers[0]) == report.layers[0].summary()


def test_layer_fit_summary():
    from frugalml.quant.gptq import fit_layer
    from frugalml.quant.mmse import mmse_scale

    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 8))
    X = rng.normal(size=(32, 8))
    res = mmse_scale(W, 4, per_channel=True)
    fit = fit_layer(W, X.T @ X, res.scale, res.grid)
    assert "4 x 8 weight" in str(fit) and "output rel. error" in str(fit)
    assert repr(fit).startswith("LayerFit(codes=array(shape=(4, 8)")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"w_bits": 9}, "w_bits"),
        ({"a_bits": 1}, "a_bits"),
        ({"method": "magic"}, "method"),
        ({"rounding": "stochastic"}, "rounding"),
        ({"residual": float("nan")}, "residual"),
        ({"residual": 0.0}, "residual"),
        ({"act_residual": float("inf")}, "act_residual"),
        ({"act_residual": 0.1, "quantize_activations": False}, "act_residual"),
    ],
)
def test_check_options(kwargs, message):
    from frugalml.quant.convert import check_options

    with pytest.raises(InvalidInputError, match=message):
        check_options(**kwargs)


def test_check_options_normalises():
    from frugalml.quant.convert import check_options

    assert check_options(w_bits=np.int64(4), residual=1) == (4, 8, 1.0, None, None)


def test_model_that_rejects_calibration_is_a_clean_error():
    from frugalml.quant import quantize_model

    with pytest.raises(InvalidInputError, match=r"calibration batch 0 .*model\(tensor\(4, 5\)"):
        quantize_model(torch.nn.Linear(2, 3).eval(), torch.ones(4, 5))


def test_mnist1d_size_guard():
    from frugalml.errors import TooLargeError
    from frugalml.quant.data import load_mnist1d

    with pytest.raises(TooLargeError, match="MNIST-1D"):
        load_mnist1d(n=10**12)
    with pytest.raises(InvalidInputError, match="n"):
        load_mnist1d(n=-5)
