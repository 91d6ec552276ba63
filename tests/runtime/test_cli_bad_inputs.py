"""Bad input of ``frugalml runtime ...`` (cases of benchmarks/bad_inputs/runtime.txt that gave
tracebacks or were silently accepted): one line, exit 2, before any work."""

from __future__ import annotations

import json

import pytest

from frugalml.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seed", "-1"], "seed must be >= 0"),
        (["--workers", "100000000"], "would need about"),
        (["--trials", "10000000000"], "would need about"),
        (["--workers", "1000000", "--trials", "100000"], "would need about"),
        (["--workers", "0"], "workers must be >= 1"),
        (["--stragglers", "weibull"], "stragglers must be one of"),
        (["--blas-threads", "0"], "--blas-threads"),
        (["--trials", "1"], "trials must be >= 2"),
    ],
)
def test_simulate_bad_input_exits_2_with_one_line(capsys, monkeypatch, args, needle):
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(8 * 2**30))
    code, _out, err = run_cli(capsys, "runtime", "simulate", *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frugalml: error:"), err
    assert needle in lines[0]


def test_plot_path_is_checked_before_the_simulation(tmp_path, capsys, monkeypatch):
    import frugalml.cli.runtime as cli

    def never(*args, **kwargs):
        raise AssertionError("the simulation ran before the output path was checked")

    monkeypatch.setattr(cli, "simulate_first_k", never)
    existing = tmp_path / "file.txt"
    existing.write_text("x")
    for plot, needle in [
        (tmp_path, "is a directory"),
        (tmp_path / "missing" / "x.png", "does not exist"),
        (existing / "x.png", "is not a directory"),
    ]:
        code, _, err = run_cli(capsys, "runtime", "simulate", "--plot", plot)
        assert code == 2 and err.startswith("frugalml: error: --plot") and needle in err, err


def test_json_output_has_no_progress_bar(capsys):
    code, out, _ = run_cli(capsys, "runtime", "simulate", "--workers", 8, "--trials", 50, "--json")
    assert code == 0
    assert json.loads(out)["n"] == 8  # nothing but the JSON on stdout


def test_a_plot_the_file_system_refuses_is_one_line(tmp_path, capsys, monkeypatch):
    import frugalml.report.output as output

    def refuse(fig, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(output, "save_png", refuse)
    for area in ("runtime", "coded"):
        code, _, err = run_cli(capsys, area, "simulate", "--workers", 8, "--trials", 20,
                               "--plot", tmp_path / "p.png")  # fmt: skip
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert lines[0].startswith("frugalml: error: --plot") and "cannot write" in lines[0]


def test_old_option_spellings_still_work_with_a_warning(capsys):
    """``--n`` and ``--model`` (0.1) are rewritten to ``--workers`` and ``--stragglers``."""
    code, out, err = run_cli(capsys, "runtime", "simulate", "--n", 8, "--model", "pareto",
                             "--trials", 50, "--json")  # fmt: skip
    assert code == 0
    got = json.loads(out)
    assert got["n"] == 8 and got["model"]["model"] == "pareto"
    assert "'runtime simulate --n' is deprecated" in err and "use --workers" in err
    assert "'runtime simulate --model' is deprecated" in err and "use --stragglers" in err
