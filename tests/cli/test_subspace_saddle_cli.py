"""``frugalml subspace saddle`` (the sub-app, run with typer's CliRunner): JSON checked against
the library, the plot file, and one-line errors for bad options."""

from __future__ import annotations

import json
import math

from typer.testing import CliRunner

from frugalml.cli.subspace import subspace_app
from frugalml.subspace import bilinear_game, pd_sesop

runner = CliRunner()


def test_saddle_bilinear_json_and_plot(tmp_path):
    png = tmp_path / "conv.png"
    args = [
        "saddle",
        "--problem",
        "bilinear",
        "--n",
        "20",
        "--kappa",
        "5",
        "--methods",
        "pd-sesop,extragradient,gda",
        "--max-evals",
        "20000",
        "--plot",
        str(png),
        "--json",
    ]
    out = runner.invoke(subspace_app, args)
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    by = {m["method"]: m for m in payload["methods"]}
    assert by["pd-sesop"]["state"] == "converged" and by["extragradient"]["state"] == "converged"
    assert by["gda"]["state"] == "diverged"
    assert by["pd-sesop"]["evals_to_tol"] < by["extragradient"]["evals_to_tol"]
    p = bilinear_game(20, 5.0, rng=0)
    ref = pd_sesop(p, [0.0] * 20, [0.0] * 20, memory=1, prox=math.inf,
                   inner="exact_quadratic", directions=("gradient", "steps"))  # fmt: skip
    assert by["pd-sesop"]["grad_evals"] == ref.grad_evals
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_saddle_constrained_table():
    out = runner.invoke(subspace_app, ["saddle", "--problem", "constrained", "--n", "30",
                                       "--kappa", "5", "--methods", "pd-sesop,admm"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "admm" in out.stdout and "converged" in out.stdout


def test_saddle_bad_options():
    from frugalml.errors import InvalidInputError

    for args, match in (
        (["--problem", "nope"], "--problem"),
        (["--methods", "adam"], "method"),
        (["--methods", "admm"], "constrained"),
        (["--memory", "0"], "memory"),
        (["--eta", "0"], "eta"),
        (["--inner", "newton"], "--inner"),
    ):
        out = runner.invoke(subspace_app, ["saddle", "--n", "5", *args])
        assert out.exit_code != 0
        assert isinstance(out.exception, InvalidInputError), args
        assert match in str(out.exception)
