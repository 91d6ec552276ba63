"""The report: registry, atomic output, HTML content, and the real runtime benchmark."""

from __future__ import annotations

import json
import os
import stat

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
from tests._bench_scripts import load_bench

from frugalml.errors import InvalidInputError
from frugalml.report import BenchResult, Table, registry, run_report


def _fake_ok(*, quick: bool, progress=None) -> BenchResult:
    if progress:
        progress("half", 0.5)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return BenchResult(
        name="fake",
        title="Fake area",
        headline=f"quick={quick}",
        tables=(Table("T", ("a", "b"), ((1, 2.5), ("x<y", None))),),
        figures={"line": fig},
        data={"value": 3},
    )


def _fake_fail(*, quick: bool, progress=None) -> BenchResult:
    raise RuntimeError("benchmark exploded")


@pytest.fixture
def fake_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    registry.register("fake", "Fake area", f"{__name__}:_fake_ok")
    registry.register("broken", "Broken area", f"{__name__}:_fake_fail")
    return registry


def test_report_writes_html_json_png_and_records_failures(tmp_path, fake_registry):
    calls = []
    out = run_report(tmp_path / "rep", quick=True, progress=lambda *a: calls.append(a))
    assert not out.ok
    assert set(out.failures) == {"broken"}
    assert "benchmark exploded" in out.failures["broken"]
    rows = {r[0]: r for r in out.summary.rows}
    assert rows["fake"][1:4] == ("ok", "not checked (quick size)", "quick=True")
    assert rows["broken"][1] == "failed"
    index = (tmp_path / "rep" / "index.html").read_text()
    assert "Fake area" in index and "x&lt;y" in index  # escaped
    assert "fake_line.png" in index and "benchmark exploded" in index
    png = (tmp_path / "rep" / "fake_line.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    data = json.loads((tmp_path / "rep" / "fake.json").read_text())
    assert data["data"] == {"value": 3}
    assert data["tables"][0]["rows"][0] == [1, 2.5]
    assert "cpu_count" in data["machine"]
    assert ("fake", "half", 0.5) in calls


def test_report_replaces_directory_atomically(tmp_path, fake_registry, monkeypatch):
    target = tmp_path / "rep"
    run_report(target, areas=["fake"])
    before = (target / "index.html").read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    from frugalml.report import runner

    monkeypatch.setattr(runner, "render_index", boom)
    with pytest.raises(OSError, match="disk full"):
        run_report(target, areas=["fake"])
    assert (target / "index.html").read_text() == before  # old report untouched
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "rep"]
    assert leftovers == []  # no half-written temp directory left behind


def test_unknown_area_and_bad_target(fake_registry):
    with pytest.raises(InvalidInputError, match="area must be one of"):
        run_report("unused", areas=["nope"])
    with pytest.raises(InvalidInputError, match="module:function"):
        registry.register("x", "X", "no_colon_here")


def test_runtime_benchmark_measures_no_faster_than_ideal():
    """Each straggler sleeps at least its injected duration, so time-to-first-k can never beat
    the k-th smallest duration: measured / ideal >= 1 is a hard invariant of a real run."""
    runtime_bench = load_bench("bench_runtime")
    res = runtime_bench.run(quick=True, backends=["local-thread"])
    assert res.data["errors"] == {}
    trials = res.data["backends"]["local-thread"]["trials"]
    assert len(trials) == 2
    for t in trials:
        assert len(t["measured"]) == runtime_bench.N_TASKS
        for measured, ideal in zip(t["measured"], t["ideal"], strict=True):
            assert measured >= ideal
    first_k = {(r[0], r[1]): r for r in res.tables[1].rows}
    assert set(first_k) == {("local-thread", k) for k in runtime_bench.KS}
    assert all(r[4] >= 1.0 for r in first_k.values())
    assert set(res.figures) == {"first_k_ratio", "arrivals"}
    plt.close("all")


def test_runtime_benchmark_rejects_unknown_backend():
    with pytest.raises(InvalidInputError, match="backend must be one of"):
        load_bench("bench_runtime").run(backends=["nope"])


def test_report_files_get_normal_permissions(tmp_path, fake_registry):
    run_report(tmp_path / "rep", areas=["fake"])
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "rep").stat().st_mode) == 0o777 & ~umask
    for f in (tmp_path / "rep").iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o666 & ~umask, f


def test_dataplane_serverless_section_coded_beats_wait_all():
    """The simulated serverless section (local-thread, simulated clock): every product is
    correct, bytes per task are counted, and coded / first-k beat waiting for all."""
    tables, data = load_bench("_dataplane").run_dataplane(quick=True, sections=("serverless",))
    (table,) = tables
    assert all(row[-1] is True for row in table.rows)
    assert all(row[4] > 0 for row in table.rows)  # bytes measured on the thread pool too
    cases = data["serverless"]["cases"]
    for label in ("lithops localhost (measured)", "cloud"):
        coded = np.mean(cases[f"matvec/{label}/polar"]["sim_seconds"])
        uncoded = np.mean(cases[f"matvec/{label}/uncoded"]["sim_seconds"])
        assert coded < uncoded
        first_k = cases[f"newton/{label}/first 3/4 of q"]["sim_seconds"]
        assert first_k < cases[f"newton/{label}/wait for all q"]["sim_seconds"]


def test_index_has_contents_and_one_figure_per_area_at_the_top(tmp_path, fake_registry):
    run_report(tmp_path / "rep", quick=True)
    index = (tmp_path / "rep" / "index.html").read_text()
    contents = index.index("<h2>Contents</h2>")
    glance = index.index("<h2>At a glance</h2>")
    first_section = index.index("<h2 id='area-fake'>")
    assert contents < glance < first_section
    toc = index[contents:glance]
    assert "href='#area-fake'>Fake area</a>" in toc and "not checked (quick size)" in toc
    assert "href='#area-broken'>broken</a>" in toc and "status-failed" in toc
    assert "<h2 id='area-broken' class='failed'>" in index
    top = index[glance:first_section]
    assert top.count("<img ") == 1 and "fake_line.png" in top
