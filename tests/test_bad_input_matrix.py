"""The bad-input matrix harness classifies outcomes as it says (clean/traceback/hang/silent)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "benchmarks" / "bad_input_matrix.py"


@pytest.fixture(scope="module")
def matrix():
    spec = importlib.util.spec_from_file_location("bad_input_matrix", HARNESS)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("kind", "text", "timeout", "verdict"),
    [
        ("cli", "runtime simulate --n 0", 60, "clean"),
        ("cli", "runtime simulate --n 4 --trials 10", 60, "silent"),  # valid input: accepted
        ("py", "from frugalml._validate import check_int; check_int(-1, 'n', low=0)", 60, "clean"),
        ("py", "raise ValueError('not ours')", 60, "traceback"),
        ("py", "import time; time.sleep(30)", 1, "hang"),
        ("check", "assert 1 + 1 == 2", 60, "clean"),
        ("check", "assert 1 + 1 == 3", 60, "silent"),
    ],
)
def test_verdicts(matrix, kind, text, timeout, verdict):
    outcome = matrix.run_case(matrix.Case("t", 1, kind, text, timeout))
    assert outcome.verdict == verdict, outcome


def test_every_case_file_parses(matrix):
    cases = matrix.load_cases(None)
    assert len(cases) > 1000
    areas = {c.area for c in cases}
    assert {"coded", "convex", "ecc", "quant", "remat", "runtime", "sketch", "subspace"} <= areas
