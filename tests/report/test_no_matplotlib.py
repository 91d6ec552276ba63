"""Without matplotlib (the ``plot`` extra) the report still runs and writes its tables, with a
note in place of the figures; asking for a plot names the extra."""

from __future__ import annotations

import html
import subprocess
import sys

import pytest

from frugalml.errors import BackendUnavailableError
from frugalml.report import BenchResult, Table, registry, run_report
from frugalml.report.output import (
    PLOT_EXTRA_NOTE,
    optional_figures,
    plotting_available,
    pyplot,
    require_plotting,
)


def _figure() -> dict:
    plt = pyplot()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return {"line": fig}


def _area(*, quick: bool, progress=None) -> BenchResult:
    return BenchResult(
        "plain",
        "Plain area",
        "headline",
        (Table("T", ("a", "b"), ((1, 2.5),)),),
        figures=optional_figures(_figure),
    )


@pytest.fixture
def no_matplotlib(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    monkeypatch.setattr(registry, "_REGISTRY", {})
    registry.register("plain", "Plain area", f"{__name__}:_area")
    from frugalml.report import runner

    monkeypatch.setattr(runner, "machine_info", lambda: {"cpu_count": 1})


def test_pyplot_names_the_plot_extra(no_matplotlib):
    assert not plotting_available()
    with pytest.raises(BackendUnavailableError, match=r"pip install 'frugalml\[plot\]'") as info:
        pyplot()
    assert info.value.extra == "plot" and info.value.package == "matplotlib"
    with pytest.raises(BackendUnavailableError, match="--plot needs the 'matplotlib'"):
        require_plotting("--plot")
    assert optional_figures(_figure) == {}


def test_report_writes_tables_and_a_note_without_matplotlib(tmp_path, no_matplotlib):
    out = run_report(tmp_path / "rep")
    assert out.ok, out.failures
    files = {p.name for p in (tmp_path / "rep").iterdir()}
    assert files == {".frugalml-report.json", "index.html", "plain.json"}
    index = (tmp_path / "rep" / "index.html").read_text()
    assert html.escape(PLOT_EXTRA_NOTE) in index and "<img" not in index
    assert "<caption>T</caption>" in index


def test_report_mentions_nothing_with_matplotlib(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(registry, "_REGISTRY", {})
    registry.register("plain", "Plain area", f"{__name__}:_area")
    from frugalml.report import runner

    monkeypatch.setattr(runner, "machine_info", lambda: {"cpu_count": 1})
    run_report(tmp_path / "rep")
    index = (tmp_path / "rep" / "index.html").read_text()
    assert html.escape(PLOT_EXTRA_NOTE) not in index and "plain_line.png" in index


def test_importing_the_library_does_not_import_matplotlib():
    code = (
        "import sys, frugalml, frugalml.report, frugalml.report.runner, frugalml.cli; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
