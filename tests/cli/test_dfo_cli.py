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
                             "--workers", 16, "--steps", 300, "--json")  # fmt: skip
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
                             "--steps", 100)  # fmt: skip
    assert code == 0, err
    assert "coded-es" in out and "reached" in out


def test_attack_json(capsys):
    code, out, err = run_cli(capsys, "coded", "attack", "--examples", 3, "--eps", 0.25,
                             "--steps", 10, "--json")  # fmt: skip
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
        (["es", "--tol", 2], "--tol must lie in (0, 1)"),
        (["es", "--stragglers", "weibull"], "stragglers must be one of"),
        (["es", "--steps", -1], "steps must be >= 0"),
        (["attack", "--steps", 0], "steps must be >= 1"),
        (["attack", "--stragglers", "weibull"], "stragglers must be one of"),
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


def test_es_old_option_spellings_still_work(capsys):
    """``--iterations``, ``--tolerance`` and ``--model`` (0.1) map to ``--steps``, ``--tol``
    and ``--stragglers``, with a warning each."""
    code, out, err = run_cli(capsys, "coded", "es", "--dim", 4, "--workers", 8,
                             "--iterations", 2, "--tolerance", 0.5, "--model", "none",
                             "--json")  # fmt: skip
    assert code == 0, err
    p = json.loads(out)
    assert p["iterations"] <= 2 and p["clock"] == "none"
    for old, new in (("--iterations", "--steps"), ("--tolerance", "--tol"),
                     ("--model", "--stragglers")):  # fmt: skip
        assert f"'coded es {old}' is deprecated" in err and f"use {new}" in err


def test_attack_old_option_spellings_still_work(capsys, monkeypatch):
    """``--iterations`` and ``--model`` map to ``--steps`` and ``--stragglers`` (checked
    without training: the attack is replaced by a stub that records its arguments)."""
    import frugalml.coded.dfo.attack as attack

    seen = {}

    class Stop(Exception):
        pass

    def stub(dataset, *, rng):
        seen["rng"] = rng
        raise Stop

    monkeypatch.setattr(attack, "train_classifier", stub)
    with pytest.raises(Stop):
        run_cli(capsys, "coded", "attack", "--iterations", 3, "--model", "pareto")
    err = capsys.readouterr().err
    assert seen == {"rng": 0}
    assert "'coded attack --iterations' is deprecated" in err and "use --steps" in err
    assert "'coded attack --model' is deprecated" in err and "use --stragglers" in err
