"""The training example of docs/remat.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("ortools")

DOC = Path(__file__).resolve().parents[2] / "docs" / "remat.md"


def test_the_training_example_of_the_docs_runs(capsys):
    text = DOC.read_text()
    section = text.split("## Training under a memory budget", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15
    exec(compile(code, str(DOC), "exec"), {})
    out = capsys.readouterr().out
    assert "MiB" in out  # the plan's summary
