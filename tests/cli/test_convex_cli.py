"""``frugalml convex fit``: JSON fields checked against the estimators, the --out network file,
and one-line errors with exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from frugalml.cli import main

pytest.importorskip("cvxpy")

N, D = 40, 3


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((N, D))
    y = X[:, 0] ** 2 + X[:, 1] + 0.05 * rng.standard_normal(N)
    labels = (X[:, 0] + 0.5 * X[:, 2] > 0).astype(float)
    return X, y, labels


@pytest.fixture
def npz(tmp_path, data):
    X, y, _ = data
    path = tmp_path / "reg.npz"
    np.savez(path, A=X, b=y)
    return path


def test_poly_regression_json_and_out(capsys, tmp_path, npz, data):
    from frugalml.convex import PolySDPRegressor

    out_path = tmp_path / "nets" / "network.npz"
    out_path.parent.mkdir()  # (a missing directory is refused before the fit)
    code, out, err = run_cli(capsys, "convex", "fit", npz, "--beta", "0.05", "--json",
                             "--out", out_path)  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert (payload["model"], payload["task"], payload["loss"]) == ("poly", "regression", "squared")
    assert (payload["n"], payload["d"], payload["beta"]) == (N, D, 0.05)
    assert payload["activation"] == {"a": 15 / 32, "b": 0.5, "c": 3 / 32}
    assert payload["status"] == "optimal" and payload["seconds"] > 0
    assert payload["out"] == str(out_path)
    X, y, _ = data
    est = PolySDPRegressor(beta=0.05).fit(X, y)
    assert payload["objective"] == pytest.approx(est.objective_, rel=1e-6)
    assert payload["network_objective"] == pytest.approx(payload["objective"], rel=1e-5)
    assert payload["neurons"] == est.n_neurons_ >= 1
    assert 0.0 < payload["train_r2"] <= 1.0
    with np.load(out_path, allow_pickle=False) as z:
        U, alpha, act = z["U"], z["alpha"], z["activation"]
        assert U.shape == (D, payload["neurons"]) and alpha.shape == (payload["neurons"],)
        np.testing.assert_allclose(act, [15 / 32, 0.5, 3 / 32])
        Xs = (X - z["x_mean"]) / z["x_scale"]
        t = Xs @ U
        pred = ((act[0] * t + act[1]) * t + act[2]) @ alpha + z["intercept"]
        assert str(z["model"]) == "poly" and str(z["task"]) == "regression"
    np.testing.assert_allclose(pred, est.predict(X), rtol=1e-5, atol=1e-6)
    assert not list(out_path.parent.glob(".*.tmp"))  # atomic write left no temporary file


def test_quantized_classification_json(capsys, tmp_path, data):
    X, _, labels = data
    path = tmp_path / "clf.csv"
    np.savetxt(path, np.column_stack([X, labels]), delimiter=",", header="x0,x1,x2,label")
    code, out, err = run_cli(capsys, "convex", "fit", path, "--model", "quantized", "--task",
                             "classification", "--samples", "100", "--beta", "0.01",
                             "--activation", "0.5,0.5,0.1", "--json")  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert payload["loss"] == "logistic" and payload["classes"] == [0.0, 1.0]
    assert payload["activation"] == {"a": 0.5, "b": 0.5, "c": 0.1}
    assert payload["certified_gap"] >= -1e-6
    assert payload["lower_bound"] <= payload["objective"] * (1 + 1e-6)
    assert payload["train_accuracy"] > 0.9 and payload["neurons"] >= 1


def test_text_output(capsys, npz):
    code, out, err = run_cli(capsys, "convex", "fit", npz, "--model", "quantized",
                             "--samples", "50")  # fmt: skip
    assert code == 0, err
    assert "objective" in out and "neurons" in out and "certified relative gap" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--beta", "-1"], "beta must be > 0"),
        (["--beta", "0"], "beta must be > 0"),
        (["--model", "lasso"], "--model must be one of"),
        (["--loss", "logistic"], "--loss must be one of"),
        (["--activation", "1,2"], "three numbers a,b,c"),
        (["--activation", "0,1,0"], "quadratic coefficient a must be non-zero"),
        (["--model", "quantized", "--solver", "first-order"], "solver must be one of"),
    ],
)
def test_bad_options_exit_2(capsys, npz, args, message):
    code, out, err = run_cli(capsys, "convex", "fit", npz, *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frugalml: error: ") and message in lines[0]


def test_missing_file_exits_2(capsys, tmp_path):
    out_path = tmp_path / "never.npz"
    code, out, err = run_cli(capsys, "convex", "fit", tmp_path / "missing.npz", "--out", out_path)
    assert code == 2 and out == ""
    assert err.strip() == f"frugalml: error: data file {tmp_path / 'missing.npz'} does not exist"
    assert not out_path.exists()


# -- hardening: output paths and sizes checked before the work -----------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--out", "{tmp}"], "is a directory"),
        (["--out", "{tmp}/no/net.npz"], "does not exist"),
        (["--json", "--out", "{tmp}"], "is a directory"),
        (["--model", "quantized", "--samples", "10000000000000"], "would need about"),
    ],
)
def test_outputs_and_sizes_refused_before_the_fit(capsys, tmp_path, npz, args, needle):
    args = [a.format(tmp=tmp_path) for a in args]
    code, out, err = run_cli(capsys, "convex", "fit", npz, *args)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frugalml: error:"), err
    assert needle in lines[0]


def test_one_sample_and_bad_solver_options_are_refused(capsys, tmp_path):
    from frugalml.convex import solve_poly_sdp
    from frugalml.errors import InvalidInputError

    path = tmp_path / "one.npz"
    np.savez(path, X=np.ones((1, 3)), y=np.ones(1))
    code, _, err = run_cli(capsys, "convex", "fit", path)
    assert code == 2 and "needs at least 2" in err
    X = np.random.default_rng(0).standard_normal((8, 2))
    with pytest.raises(InvalidInputError, match="bad solver_options"):  # was a TypeError
        solve_poly_sdp(X, X[:, 0], activation=(1, 1, 0), beta=0.1, solver_options={"bogus": 1})


def test_lifted_sdp_too_large_is_refused_before_cvxpy(capsys, tmp_path, monkeypatch):
    path = tmp_path / "wide.npz"
    rng = np.random.default_rng(0)
    np.savez(path, X=rng.standard_normal((10, 120)), y=rng.standard_normal(10))
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(100 << 20))
    for model in ("poly", "quantized"):
        code, _, err = run_cli(capsys, "convex", "fit", path, "--model", model)
        assert code == 2 and "the lifted SDP (d = 120" in err and "--solver" in err


def test_deprecated_n_samples_spelling_still_works(capsys, npz):
    code, out, err = run_cli(capsys, "convex", "fit", npz, "--model", "quantized",
                             "--n-samples", "50", "--json")  # fmt: skip
    assert code == 0, err
    assert "'convex fit --n-samples' is deprecated" in err and "use --samples" in err
    assert json.loads(out)["certified_gap"] >= -1e-6


def test_blas_threads_option(capsys, npz):
    code, out, err = run_cli(capsys, "convex", "fit", npz, "--blas-threads", "1", "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "optimal"
