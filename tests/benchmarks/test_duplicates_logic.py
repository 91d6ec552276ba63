"""The duplicate-scan filter keeps pairs of code and drops pairs of imports and docstrings."""

from __future__ import annotations

from tests._bench_scripts import load_bench


def test_rows_in_imports_or_docstrings_are_dropped(tmp_path):
    mod = load_bench("duplicates_logic")
    (tmp_path / "a.py").write_text(
        '"""Doc\nstring\nlines\n"""\n\nfrom x import (\n    a,\n    b,\n)\n\n\ndef f(v):\n'
        "    w = v + 1\n    return w * 2\n"
    )
    rows = [
        "D1 a.py:1-4 ~ a.py:1-4\n",
        "D2 a.py:6-9 ~ a.py:6-9 shape\n",
        "D3 a.py:12-14 ~ a.py:12-14\n",
    ]
    assert mod.logic_rows(rows, tmp_path) == ["D3 a.py:12-14 ~ a.py:12-14"]
