"""The command line: version, JSON output checked against closed forms, one-line errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from frugalml import __version__
from frugalml.cli import main
from frugalml.report import registry


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and out.strip() == f"frugalml {__version__}"


def test_simulate_json_matches_closed_form(capsys):
    code, out, _ = run_cli(
        capsys, "runtime", "simulate", "--workers", "20", "--k", "5", "--k", "20",
        "--shift", "0.5", "--rate", "2", "--trials", "4000", "--seed", "1", "--json",
    )  # fmt: skip
    assert code == 0
    rows = {r["k"]: r for r in json.loads(out)["rows"]}
    for k in (5, 20):
        exact = 0.5 + np.sum(1.0 / np.arange(20 - k + 1, 21)) / 2.0  # shift + (H_n - H_{n-k})/rate
        assert rows[k]["exact"] == pytest.approx(exact, rel=1e-12)
        assert abs(rows[k]["mc_mean"] - exact) < 5 * rows[k]["mc_stderr"]


def test_simulate_writes_plot(tmp_path, capsys):
    png = tmp_path / "sim.png"
    code, _, _ = run_cli(
        capsys, "runtime", "simulate", "--stragglers", "pareto", "--workers", "8",
        "--trials", "200", "--plot", str(png),
    )  # fmt: skip
    assert code == 0 and png.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["runtime", "simulate", "--workers", "0"], "workers must be >= 1"),
        (["runtime", "simulate", "--workers", "4", "--k", "5"], "k=5 exceeds n=4"),
        (["runtime", "simulate", "--stragglers", "weibull"], "stragglers must be one of"),
        (["runtime", "simulate", "--rate", "-1"], "rate must be > 0"),
        (["runtime", "simulate", "--nope"], "No such option"),
        (["runtime", "simulate", "--alpha", "3"], "has no parameter(s) alpha"),
        (["runtime", "simulate", "--workers", "abc"], "--workers"),
        (["runtime", "check", "--backend", "slurm"], "backend must be one of"),
        (["report", "--area", "nope"], "area must be one of"),
        (["frobnicate"], "No such command"),
        (["coded", "matmul", "--workers", "12"], "power of two"),
        (["coded", "matmul", "--mode", "anytime"], "needs a deadline"),
        (["coded", "matmul", "--backend", "mpi"], "backend must be one of"),
        (["coded", "matmul", "--code", "ldpc"], "code must be one of"),
        (["coded", "matmul", "--a", "/nonexistent.npy"], "does not exist"),
        (["coded", "simulate", "--stragglers", "weibull"], "stragglers must be one of"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, args, needle):
    code, _out, err = run_cli(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frugalml: error:")
    assert needle in lines[0]


def test_runtime_check_local_thread_json(capsys):
    code, out, _ = run_cli(capsys, "runtime", "check", "--backend", "local-thread", "--json")
    assert code == 0
    (row,) = json.loads(out)
    assert row["backend"] == "local-thread" and row["status"] == "ok"


def test_runtime_check_table_output(capsys):
    code, out, _ = run_cli(capsys, "runtime", "check", "--backend", "local-thread")
    assert code == 0
    assert "frugalml runtime backends" in out and "local-thread" in out and " ok " in out


def test_runtime_simulate_and_report_table_output(tmp_path, capsys, monkeypatch):
    code, out, _ = run_cli(capsys, "runtime", "simulate", "--workers", "8", "--trials", "50")
    assert code == 0 and "first k of n=8" in out
    monkeypatch.setattr(registry, "_REGISTRY", {})
    (tmp_path / "nobench").mkdir()  # no checkout benchmarks: only the registered tiny area
    monkeypatch.setenv("FRUGALML_BENCHMARKS", str(tmp_path / "nobench"))
    registry.register("tiny", "Tiny", f"{__name__}:_tiny")
    code, out, _ = run_cli(capsys, "report", "--out", str(tmp_path / "r"))
    assert code == 0 and "Summary" in out and "report written to" in out


def _tiny(*, quick: bool, progress=None):
    from frugalml.report import BenchResult, Table

    return BenchResult("tiny", "Tiny", "h", (Table("t", ("a",), ((1,),)),))


def test_report_command_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    (tmp_path / "nobench").mkdir()  # no checkout benchmarks: only the registered tiny area
    monkeypatch.setenv("FRUGALML_BENCHMARKS", str(tmp_path / "nobench"))
    registry.register("tiny", "Tiny", f"{__name__}:_tiny")
    code, out, _ = run_cli(capsys, "report", "--out", str(tmp_path / "r"), "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["failures"] == {}
    assert payload["summary"]["rows"][0][:2] == ["tiny", "ok"]
    assert (tmp_path / "r" / "index.html").is_file()


def test_coded_matmul_json_is_exact(capsys):
    code, out, _ = run_cli(
        capsys, "coded", "matmul", "--m", "96", "--n", "8", "--p", "3", "--workers", "8",
        "--shift", "0.001", "--rate", "1000", "--json",
    )  # fmt: skip
    assert code == 0
    payload = json.loads(out)
    assert payload["exact"] is True and payload["relative_error"] < 1e-12
    assert 4 <= payload["n_arrived"] <= 8


def test_coded_matmul_reads_npy(tmp_path, capsys):
    rng = np.random.default_rng(3)
    np.save(tmp_path / "a.npy", rng.standard_normal((40, 6)))
    np.save(tmp_path / "b.npy", rng.standard_normal((6, 2)))
    code, out, _ = run_cli(
        capsys, "coded", "matmul", "--a", str(tmp_path / "a.npy"), "--b", str(tmp_path / "b.npy"),
        "--workers", "4", "--stragglers", "none", "--code", "mds", "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["relative_error"] < 1e-12


def test_coded_simulate_json(capsys):
    code, out, _ = run_cli(
        capsys, "coded", "simulate", "--workers", "16", "--trials", "60", "--seed", "2", "--json"
    )
    assert code == 0
    by = {r["name"]: r for r in json.loads(out)["schemes"]}
    assert set(by) == {"uncoded", "2-replication", "gaussian-mds", "polar", "ideal-mds"}
    assert by["ideal-mds"]["arrivals_over_k"] == 1.0 and by["ideal-mds"]["decode_s"] == 0.0
    assert by["polar"]["arrivals_over_k"] >= 1.0
    # codes at the same load need >= K arrivals: none finishes before the ideal MDS code
    for name in ("gaussian-mds", "polar"):
        assert by[name]["mean"] >= by["ideal-mds"]["mean"]


@pytest.mark.parametrize(
    "args",
    [
        ["runtime", "simulate", "--workers", "8", "--trials", "10"],
        ["coded", "simulate", "--workers", "16", "--trials", "5"],
        ["subspace", "saddle", "--problem", "bilinear", "--dim", "10"],
        ["ecc", "eval", "--code", "bch-31-16", "--decoders", "hard", "--max-frames", "100"],
    ],
)
def test_plot_without_matplotlib_fails_before_the_work(tmp_path, capsys, monkeypatch, args):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the `plot` extra is not installed
    png = tmp_path / "p.png"
    code, out, err = run_cli(capsys, *args, "--plot", str(png))
    assert code == 2 and out == ""  # nothing computed, nothing printed
    assert "pip install 'frugalml[plot]'" in err and not png.exists()
