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
        "--dim",
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
    out = runner.invoke(subspace_app, ["saddle", "--problem", "constrained", "--dim", "30",
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
        out = runner.invoke(subspace_app, ["saddle", "--dim", "5", *args])
        assert out.exit_code != 0
        assert isinstance(out.exception, InvalidInputError), args
        assert match in str(out.exception)


# -- hardening: bad inputs found by the bad-input matrix, size guards, output paths, progress --


def test_saddle_more_bad_options_are_refused_before_any_work():
    from frugalml.errors import InvalidInputError

    for args, match in (
        (["--seed", "-1"], "--seed"),
        (["--kappa", "nan"], "--kappa"),
        (["--kappa", "inf"], "--kappa"),
        (["--kappa", "0.5"], "--kappa"),
        (["--tol", "nan"], "--tol"),
        (["--tol", "0"], "--tol"),
        (["--eta", "nan"], "--eta"),
        (["--dim", "0"], "--dim"),
        (["--directions", ","], "--directions"),
        (["--directions", "sideways"], "direction"),
    ):
        out = runner.invoke(subspace_app, ["saddle", "--dim", "5", *args])
        assert isinstance(out.exception, InvalidInputError), (args, out.output)
        assert match in str(out.exception), args


def test_saddle_huge_dim_is_refused_with_the_estimate(capsys):
    from frugalml.cli import main

    # before: a numpy MemoryError traceback after trying to allocate 7.28 TiB
    code = main(["subspace", "saddle", "--dim", "1000000"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("frugalml: error: the n = 1000000 bilinear game")
    assert "TiB" in err[0] and "available" in err[0] and "--dim" in err[0]


def test_saddle_old_n_spelling_still_works_with_a_warning(capsys):
    from frugalml.cli import main

    code = main(["subspace", "saddle", "--n", "10", "--kappa", "5", "--methods",
                 "extragradient", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "'subspace saddle --n' is deprecated" in captured.err and "use --dim" in captured.err
    payload = json.loads(captured.out)
    assert payload["problem"].startswith("bilinear(n=10,")


def test_saddle_checks_the_plot_path_before_the_work(tmp_path):
    from frugalml.errors import InvalidInputError

    for plot, match in (
        (tmp_path, "is a directory"),
        (tmp_path / "missing" / "p.png", "does not exist"),
        ("", "is a directory"),  # ("" arrives as ".")
    ):
        # --dim 1000000 would fail later (memory); the path is checked first
        out = runner.invoke(subspace_app, ["saddle", "--dim", "1000000", "--plot", str(plot)])
        assert isinstance(out.exception, InvalidInputError)
        assert "--plot" in str(out.exception) and match in str(out.exception)


def test_saddle_progress_is_shown_except_with_json(monkeypatch):
    import frugalml.cli.subspace as cli

    calls, quiet_flags = [], []

    class Bar:  # stands in for the CLI's WorkBar (which draws only on a terminal's stderr)
        def __init__(self, description, total=None, *, disable=False):
            quiet_flags.append(disable)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

        def callback(self, message, fraction):
            calls.append((message, fraction))

    monkeypatch.setattr(cli, "WorkBar", Bar)
    args = ["saddle", "--dim", "10", "--kappa", "5", "--methods", "extragradient,ogda"]
    assert runner.invoke(subspace_app, args).exit_code == 0
    assert quiet_flags == [False] and calls
    fractions = [f for _, f in calls]
    assert all(0 <= f <= 1 for f in fractions)
    assert any(m.startswith("extragradient") for m, _ in calls)
    assert any(m.startswith("optimistic_gda") and f >= 0.5 for m, f in calls)  # 2nd method
    calls.clear()
    out = runner.invoke(subspace_app, [*args, "--json"])
    assert out.exit_code == 0 and quiet_flags == [False, True] and not calls
    json.loads(out.stdout)  # nothing but the JSON


def test_saddle_table_fits_100_columns(monkeypatch):
    from frugalml.cli._common import console

    monkeypatch.setattr(console, "width", 100)
    out = runner.invoke(subspace_app, ["saddle", "--dim", "10", "--kappa", "5", "--methods",
                                       "proximal-point,extragradient,pd-sesop"])  # fmt: skip
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "…" not in out.stdout  # nothing cut
    assert "extragradient" in out.stdout and "proximal-point" in out.stdout
