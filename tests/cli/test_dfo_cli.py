"""``frugalml coded es`` and ``frugalml coded attack``: JSON output checked against the test
functions' optima, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest

from frugalml.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("method", ["coded", "wait-all", "drop", "structured"])
def test_es_reaches_target_json(capsys, method):
    code, out, err = run_cli(capsys, "coded", "es", "--method", method, "--dim", 8,
                             "--workers", 16, "--iterations", 300, "--json")  # fmt: skip
    assert code == 0, err
    p = json.loads(out)
    assert p["reached"] and p["loss"] <= p["target"]
    assert p["target"] == pytest.approx(1e-4 * p["f0"])  # quadratic: f* = 0
    assert p["evaluations"] == 2 * 16 * p["iterations"]
    if method == "coded":
        assert p["exact_decodes"] == p["iterations"] and p["n_directions"] == 8


def test_es_on_executor_and_text_output(capsys):
    code, out, err = run_cli(capsys, "coded", "es", "--function", "logistic", "--dim", 8,
                             "--workers", 16, "--code", "mds", "--backend", "local-thread",
                             "--iterations", 100)  # fmt: skip
    assert code == 0, err
    assert "coded-es" in out and "reached" in out


def test_attack_json(capsys):
    code, out, err = run_cli(capsys, "coded", "attack", "--examples", 3, "--eps", 0.25,
                             "--iterations", 10, "--json")  # fmt: skip
    assert code == 0, err
    p = json.loads(out)
    assert p["dataset"] == "digits" and len(p["success"]) == 3
    assert p["success_rate"] > 0 and p["n_directions"] == 16


@pytest.mark.parametrize(
    "args, match",
    [
        (["es", "--sigma", 0], "sigma must be > 0"),
        (["es", "--workers", 16, "--k", 32], "exceeds n_workers"),
        (["es", "--workers", 24], "power of two"),
        (["es", "--function", "ackley"], "function must be one of"),
        (["es", "--method", "wait-all", "--k", 4], "--k applies"),
        (["es", "--tolerance", 2], "tolerance"),
        (["es", "--directions", "sobol"], "directions must be one of"),
        (["attack", "--method", "boundary"], "method must be one of"),
        (["attack", "--eps", -1], "eps must be > 0"),
        (["attack", "--dataset", "cifar"], "dataset must be one of"),
    ],
)
def test_bad_input_exits_2(capsys, args, match):
    code, _, err = run_cli(capsys, "coded", *args)
    assert code == 2
    assert err.startswith("frugalml: error:") and match in err
