"""Report content: tables match their headers, goal statuses and headlines read correctly,
the ECC benchmark reads checkpoints without unpickling code."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from tests._bench_scripts import load_bench
from tests._pickles import write_malicious

from frugalml.errors import InvalidInputError
from frugalml.report import BenchResult, Table
from frugalml.report.results import GOAL_STATUSES, MET, NO_GOAL, NOT_CHECKED, NOT_MET

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def test_table_rejects_rows_that_do_not_match_the_header():
    Table("ok", ("a", "b"), ((1, 2), [3, 4]))
    with pytest.raises(InvalidInputError, match=r"row 1 has 3 values for 2 columns"):
        Table("t", ("a", "b"), ((1, 2), (1, 2, 3)))
    with pytest.raises(InvalidInputError, match=r"row 0 has 1 values"):
        Table("t", ["a", "b"], [[1]])


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda p: p.name)
def test_committed_results_tables_match_their_headers(path):
    data = json.loads(path.read_text())
    for table in data.get("tables", []):
        width = len(table["columns"])
        bad = [i for i, row in enumerate(table["rows"]) if len(row) != width]
        assert not bad, f"{table['title']!r}: rows {bad} do not have {width} values"
        Table(table["title"], tuple(table["columns"]), tuple(map(tuple, table["rows"])))


def test_bench_result_status():
    res = BenchResult("a", "A", "h", ())
    assert res.goal_status(quick=True) == NOT_CHECKED
    assert res.goal_status(quick=False) == NO_GOAL
    assert BenchResult("a", "A", "h", (), status=NOT_MET).goal_status(quick=True) == NOT_MET
    assert "ok" not in GOAL_STATUSES
    with pytest.raises(InvalidInputError, match="status must be one of"):
        BenchResult("a", "A", "h", (), status="ok")


def _remat_record(solver, status, cost=10.0, seconds=1.0):
    return {"solver": solver, "status": status, "total_cost": cost, "solve_seconds": seconds}


def test_remat_headline_without_proved_runs_reads_as_a_result():
    _headline = load_bench("bench_remat")._headline

    limits = {"moccasin": 10.0, "checkmate": 10.0, "lp": 10.0}
    records = [
        _remat_record("moccasin", "feasible"),
        _remat_record("checkmate MILP", "time limit"),
        _remat_record("moccasin", "optimal"),
        _remat_record("checkmate MILP", "feasible"),
    ]
    text = _headline(records, [], 0, limits, quick=True)
    assert text.startswith("quick size (10 s / 10 s limits): ")
    assert "MOCCASIN proved optimal on 1/2 runs, Checkmate MILP on 0/2" in text
    assert "no run where both proved optimality" in text
    assert "on 0 runs" not in text and "same cost on 0" not in text
    full = _headline(records, [("g", 0.9, 4.0, 10.0, 10.0)], 1, limits, quick=False)
    assert "where both did (1), same cost on 1/1" in full and "median 4.0x" in full
    assert not full.startswith("quick")


def test_quant_and_ecc_goal_status():
    ecc_status = load_bench("bench_ecc")._status
    quant_status = load_bench("bench_quant")._status

    lm = [{"w_bits": 4, "a_bits": 8, "cosine": 0.99, "nn_agreement": 0.95}]
    res = [("cnn", 0, 0, 0, 0, 0, 0.08, 0.6), ("cnn", 0, 0, 0, 0, 0, 0.3, 0.9)]
    assert quant_status(res, lm) == MET
    assert quant_status(res, [{**lm[0], "cosine": 0.97}]) == NOT_MET
    assert quant_status([("cnn", 0, 0, 0, 0, 0, 0.3, 0.9)], lm) == NOT_MET  # too many MACs

    def gap(ebn0, closed, enough=True, code="bch-63-45", dec="syndrome gru"):
        return {"code": code, "ebn0": ebn0, "decoder": dec, "closed": closed, "enough": enough}

    met = [gap(4.0, 0.6), gap(5.0, 0.7), gap(6.0, 0.55), gap(6.0, 0.1, dec="syndrome mlp")]
    assert ecc_status(met) == MET
    assert ecc_status([*met[:2], gap(6.0, 0.45)]) == NOT_MET  # below half at 6 dB
    assert ecc_status([*met[:2], gap(6.0, 0.9, enough=False)]) == NOT_MET  # < 50 frame errors
    assert ecc_status(met[:2]) == NOT_MET  # no 6 dB figure
    assert ecc_status([gap(e, 0.9, code="polar-64-32") for e in (4.0, 5.0, 6.0)]) == NOT_MET


def test_ecc_checkpoint_metadata_is_read_without_unpickling(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from frugalml.ecc.codes import get_code

    ecc = load_bench("bench_ecc")

    code = get_code("bch-63-36")
    stored = ecc.MODEL_DIR / "bch-63-36-gru.pt"
    if stored.exists():
        _, info = ecc._neural(code, "gru", 1, lambda *a: None, 0.0, path=stored)
        assert info == "stored bch-63-36-gru.pt: 10000 steps x 512 words"
    marker = tmp_path / "pwned"
    evil = write_malicious(tmp_path / "evil.pt", marker, "in-a-dict", key="format")
    with pytest.raises(InvalidInputError):
        ecc._neural(code, "gru", 1, lambda *a: None, 0.0, path=evil)
    assert not marker.exists()
    # the metadata read itself, even past the decoder loader's own check
    import frugalml.ecc.neural as neural

    monkeypatch.setattr(neural, "load_decoder", lambda *a, **k: None)
    with pytest.raises(Exception):  # noqa: B017 - torch's refusal; the point is no payload run
        ecc._neural(code, "gru", 1, lambda *a: None, 0.0, path=evil)
    assert not marker.exists()


def _committed_tables():
    for path in sorted(RESULTS.glob("*.json")):
        for t in json.loads(path.read_text()).get("tables", []):
            yield pytest.param(t, id=f"{path.stem}:{t['title'][:30]}")


@pytest.mark.parametrize("raw", list(_committed_tables()))
def test_terminal_tables_fit_100_columns_and_keep_numbers_whole(raw):
    from rich.console import Console

    from frugalml.report.output import fmt, rich_table

    table = Table(raw["title"], tuple(raw["columns"]), tuple(map(tuple, raw["rows"])), raw["note"])
    console = Console(width=200, record=True, color_system=None, file=io.StringIO())
    console.print(rich_table(table))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "…" not in text  # nothing truncated
    lines = text.splitlines()
    for row in table.rows:
        for v in row:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                assert any(fmt(v) in line for line in lines), fmt(v)  # on one line


def test_wide_table_is_split_into_groups_repeating_the_first_column():
    from rich.console import Console

    from frugalml.report.output import rich_table

    columns = ("name", *(f"value {i}" for i in range(14)))
    table = Table("wide", columns, (("a long row name", *(1.2345678e-10 * i for i in range(14))),))
    console = Console(width=200, record=True, color_system=None, file=io.StringIO())
    console.print(rich_table(table))
    text = console.export_text()
    assert "wide (continued)" in text
    assert text.count("a long row name") == 2
    assert max(len(line) for line in text.splitlines()) <= 100
    assert "1.235e-09" in text and "value 13" in text
