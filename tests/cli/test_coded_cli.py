"""``frugalml coded matmul`` and ``frugalml coded es`` on a process pool: the JSON reports
the bytes placed once and sent per task/round (the data plane)."""

from __future__ import annotations

import json

from frugalml.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_matmul_on_process_pool_reports_bytes(capsys):
    code, out, err = run_cli(
        capsys, "coded", "matmul", "--m", "256", "--n", "32", "--p", "16", "--workers", "8",
        "--backend", "local", "--model", "none", "--json",
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
                             "--iterations", 3, "--json")  # fmt: skip
    assert code == 0, err
    p = json.loads(out)
    assert 0 < p["bytes_sent_per_round"] <= 8 * (2 * 8 * 8 + 2048)
    assert p["bytes_placed"] > 0
