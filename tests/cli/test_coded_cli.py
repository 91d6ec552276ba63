"""``frugalml coded matmul`` and ``frugalml coded es`` on a process pool: the JSON reports
the bytes placed once and sent per task/round (the data plane). Bad input of the coded
commands: one line, exit 2, before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from frugalml.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_matmul_on_process_pool_reports_bytes(capsys):
    code, out, err = run_cli(
        capsys, "coded", "matmul", "--m", "256", "--n", "32", "--p", "16", "--workers", "8",
        "--backend", "local", "--stragglers", "none", "--json",
    )  # fmt: skip
    assert code == 0, err
    p = json.loads(out)
    assert p["exact"] is True and p["relative_error"] < 1e-12
    # A's coded blocks (2x A for K = N/2) and B placed once; 8 tasks of references only
    assert p["bytes_placed"] >= 2 * 256 * 32 * 8 + 32 * 16 * 8
    assert 0 < p["bytes_sent"] <= 8 * 1024
    assert p["bytes_received"] > 0


def test_es_json_reports_bytes(capsys):
    code, out, err = run_cli(capsys, "coded", "es", "--function", "logistic", "--dim", 8,
                             "--workers", 8, "--code", "mds", "--backend", "local",
                             "--steps", 3, "--json")  # fmt: skip
    assert code == 0, err
    p = json.loads(out)
    assert 0 < p["bytes_sent_per_round"] <= 8 * (2 * 8 * 8 + 2048)
    assert p["bytes_placed"] > 0


# -- bad input: the cases of benchmarks/bad_inputs/coded.txt that gave tracebacks or were
# silently accepted; each must end in one line and exit 2, before any work
BAD = [
    (["coded", "matmul", "--seed", "-1"], "seed must be >= 0"),
    (["coded", "matmul", "--m", "-4"], "m must be >= 1"),
    (["coded", "matmul", "--n", "-3"], "n must be >= 1"),
    (["coded", "matmul", "--p", "-1"], "p must be >= 1"),
    (["coded", "matmul", "--k", "20"], "k must be <= 16"),
    (["coded", "matmul", "--deadline", "nan"], "deadline must be finite"),
    (["coded", "matmul", "--m", "100000000", "--n", "100000"], "would need about"),
    (["coded", "matmul", "--workers", "131072", "--m", "131072", "--n", "4", "--p", "4"],
     "thread pool of 131072 workers would need"),
    (["coded", "matmul", "--backend", "local", "--workers", "4096", "--code", "mds",
      "--m", "4096", "--n", "4", "--p", "4"], "process pool of 4096 workers would need"),
    (["coded", "simulate", "--workers", "1048576"], "would need about"),
    (["coded", "simulate", "--workers", "256", "--trials", "1000000000"], "would need about"),
    (["coded", "simulate", "--workers", "12"], "power of two"),
    (["coded", "simulate", "--stragglers", "weibull"], "stragglers must be one of"),
    (["coded", "matmul", "--stragglers", "weibull"], "stragglers must be one of"),
    (["coded", "simulate", "--seed", "-1"], "seed must be >= 0"),
    (["coded", "es", "--dim", "100000000"], "would need about"),
    (["coded", "es", "--workers", "1048576"], "would need about"),
    (["coded", "es", "--seed", "-1"], "seed must be >= 0"),
    (["coded", "es", "--function", "rosenbrock", "--no-adam", "--dim", "4", "--workers", "8"],
     "diverged after"),
    (["coded", "es", "--step", "100", "--dim", "4", "--workers", "8"], "lower --step"),
    (["coded", "attack", "--workers", "1048576"], "would need about"),
    (["coded", "attack", "--workers", "24"], "power of two"),
    (["coded", "attack", "--examples", "0"], "examples must be >= 1"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "needle"), BAD)
def test_bad_input_exits_2_with_one_line(capsys, monkeypatch, args, needle):
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(8 * 2**30))  # the same on every machine
    code, _out, err = run_cli(capsys, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frugalml: error:"), err
    assert needle in lines[0]


def _npy_files(tmp_path):
    garbage = tmp_path / "garbage.npy"
    garbage.write_text("not an array\n")
    three_d = tmp_path / "cube.npy"
    np.save(three_d, np.ones((2, 2, 2)))
    wide = tmp_path / "wide.npy"
    np.save(wide, np.ones((3, 7)))
    return garbage, three_d, wide


def test_bad_matrix_files_are_one_line_errors(tmp_path, capsys):
    garbage, three_d, wide = _npy_files(tmp_path)
    for args, needle in [
        (["--a", tmp_path], "is a directory"),
        (["--a", tmp_path / "missing.npy"], "does not exist"),
        (["--a", garbage], "not a .npy array"),
        (["--b", three_d], "expected a 2-D array"),
        (["--a", wide, "--b", wide], "--b has 3 rows but A has 7 columns"),
    ]:
        code, _, err = run_cli(capsys, "coded", "matmul", *args)
        assert code == 2 and err.startswith("frugalml: error:") and needle in err, err


def test_matmul_takes_n_and_p_from_the_files(tmp_path, capsys):
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    rng = np.random.default_rng(0)
    np.save(a, rng.standard_normal((32, 5)))
    np.save(b, rng.standard_normal((5, 3)))
    code, out, err = run_cli(capsys, "coded", "matmul", "--a", a, "--b", b, "--workers", 4,
                             "--stragglers", "none", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["relative_error"] < 1e-12


def test_plot_path_is_checked_before_the_simulation(tmp_path, capsys, monkeypatch):
    import frugalml.coded.simulate as sim

    def never(*args, **kwargs):
        raise AssertionError("the simulation ran before the output path was checked")

    monkeypatch.setattr(sim, "simulate_latency", never)
    for plot, needle in [
        (tmp_path, "is a directory"),
        (tmp_path / "missing" / "x.png", "does not exist"),
    ]:
        code, _, err = run_cli(capsys, "coded", "simulate", "--workers", 8, "--plot", plot)
        assert code == 2 and "--plot" in err and needle in err, err


def test_simulate_table_fits_100_columns():
    import os
    import subprocess
    import sys

    env = dict(os.environ, COLUMNS="100", TERM="xterm")
    entry = "import sys; from frugalml.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", entry, "coded", "simulate", "--workers", "8", "--trials", "10"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=True)
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100
    rows = [line for line in lines if line.startswith("│")]
    assert len(rows) == 5  # one line per scheme (N=8): no number was wrapped onto a second line


# -- the 0.1 option spellings still work, with one warning each on stderr ---------------------
def test_matmul_old_model_option_still_works(capsys):
    code, out, err = run_cli(capsys, "coded", "matmul", "--m", 32, "--n", 8, "--p", 4,
                             "--workers", 4, "--model", "none", "--json")  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["relative_error"] < 1e-12
    assert "'coded matmul --model' is deprecated" in err and "use --stragglers" in err
    assert "'coded matmul --n'" not in err  # --n of matmul is the matrix size, not renamed


def test_simulate_old_n_and_model_options_still_work(capsys):
    code, out, err = run_cli(capsys, "coded", "simulate", "--n", 8, "--model", "pareto",
                             "--trials", 10, "--json")  # fmt: skip
    assert code == 0, err
    got = json.loads(out)
    assert got["n"] == 8 and got["model"]["model"] == "pareto"
    assert "'coded simulate --n' is deprecated" in err and "use --workers" in err
    assert "'coded simulate --model' is deprecated" in err and "use --stragglers" in err
