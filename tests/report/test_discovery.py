"""Finding the benchmarks of a checkout: where, what is an area (read, not imported), loading
by path (helpers beside the file, tasks in process pools), old area names, and a clear error
when there are none."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from frugalml.cli import main
from frugalml.errors import FrugalDeprecationWarning, InvalidInputError
from frugalml.report import registry, run_report
from frugalml.report.discovery import find_benchmarks, load_benchmark, scan

CHECKOUT = Path(__file__).resolve().parents[2] / "benchmarks"

BENCH = '''
"""A toy report area."""
from _toyhelper import VALUE

from frugalml.report.results import BenchResult, Table

REPORT_AREA = "{area}"
REPORT_TITLE = "Toy {area}"


def _square(x):
    return x * x


def run(*, quick: bool, progress=None, tiny: bool = False) -> BenchResult:
    from frugalml.runtime import make_executor

    with make_executor("{backend}", workers=1) as ex:
        got = ex.gather([ex.submit(_square, VALUE)], deadline=120)
    return BenchResult("{area}", "Toy", f"square {{got.results[0]}}",
                       (Table("t", ("quick", "value"), ((quick, got.results[0]),)),))
'''


def _write_benchmarks(directory: Path, area: str = "toy", backend: str = "local-thread") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "_toyhelper.py").write_text("VALUE = 7\n")
    (directory / f"bench_{area.replace('-', '_')}.py").write_text(
        textwrap.dedent(BENCH.format(area=area, backend=backend))
    )
    return directory


@pytest.fixture(autouse=True)
def forget_loaded_toys(tmp_path):
    """Modules loaded from this test's directories do not outlive it."""
    yield
    for name, module in list(sys.modules.items()):
        if str(tmp_path) in str(getattr(module, "__file__", "") or ""):
            del sys.modules[name]


@pytest.fixture
def no_registrations(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    from frugalml.report import runner

    monkeypatch.setattr(runner, "machine_info", lambda: {"cpu_count": 1})  # skip torch import


def test_the_checkout_declares_the_report_areas_of_docs_cli():
    areas = [b.area for b in scan(CHECKOUT)]
    assert areas == sorted(
        ["runtime", "coded", "coded-es", "sketch", "sketch-newton", "remat", "remat-training",
         "convex", "convex-gan", "quant", "quant-deploy",
         "ecc", "subspace-saddle", "subspace-train"]
    )  # fmt: skip
    assert all(b.path.parent == CHECKOUT.resolve() for b in scan(CHECKOUT))


def test_scan_reads_constants_without_importing(tmp_path):
    (tmp_path / "bench_boom.py").write_text(
        'REPORT_AREA = "boom"\nREPORT_TITLE = "Boom"\nraise SystemExit("imported!")\n'
    )
    (tmp_path / "bench_script_only.py").write_text('"""No area here."""\nX = "y"\n')
    (tmp_path / "helper.py").write_text('REPORT_AREA = "not a bench file"\n')
    found = scan(tmp_path)
    assert [(b.area, b.title, b.path.name) for b in found] == [("boom", "Boom", "bench_boom.py")]


def test_scan_rejects_unparsable_files_and_duplicate_areas(tmp_path):
    (tmp_path / "bench_a.py").write_text('REPORT_AREA = "x"\n')
    (tmp_path / "bench_b.py").write_text('REPORT_AREA = "x"\n')
    with pytest.raises(InvalidInputError, match=r"declared by both bench_a\.py and bench_b\.py"):
        scan(tmp_path)
    (tmp_path / "bench_b.py").write_text("def (:\n")
    with pytest.raises(InvalidInputError, match=r"bench_b\.py cannot be read"):
        scan(tmp_path)


def test_where_the_benchmarks_are_found(tmp_path, monkeypatch):
    monkeypatch.delenv("FRUGALML_BENCHMARKS", raising=False)
    repo = tmp_path / "repo"
    _write_benchmarks(repo / "benchmarks")
    deep = repo / "src" / "pkg"
    deep.mkdir(parents=True)
    assert find_benchmarks(start=repo) == repo / "benchmarks"  # ./benchmarks
    assert find_benchmarks(start=deep) == (repo / "benchmarks").resolve()  # searched upward
    assert find_benchmarks(start=tmp_path) is None
    other = _write_benchmarks(tmp_path / "other")
    monkeypatch.setenv("FRUGALML_BENCHMARKS", str(other))
    assert find_benchmarks(start=deep) == other.resolve()  # the environment first
    assert find_benchmarks(repo / "benchmarks", start=deep) == (repo / "benchmarks").resolve()
    with pytest.raises(InvalidInputError, match=r"--benchmarks .*missing.* is not a directory"):
        find_benchmarks(tmp_path / "missing")
    monkeypatch.setenv("FRUGALML_BENCHMARKS", str(tmp_path / "gone"))
    with pytest.raises(InvalidInputError, match=r"FRUGALML_BENCHMARKS .* is not a directory"):
        find_benchmarks()


def test_report_runs_a_discovered_benchmark_with_its_helper_in_a_process_pool(
    tmp_path, no_registrations
):
    """The area's module and its helper (imported from the benchmarks directory) ship to a
    spawned worker by value: the worker could not import them by name."""
    bench = _write_benchmarks(tmp_path / "benchmarks", backend="local")
    out = run_report(tmp_path / "rep", benchmarks=bench)
    assert out.ok, out.failures
    (res,) = out.results
    assert res.headline == "square 49" and res.tables[0].rows == ((True, 49),)
    assert str(bench) not in sys.path  # only while loading
    assert out.summary.rows[0][:2] == ("toy", "ok")


def test_dask_workers_import_a_discovered_benchmark_by_name(tmp_path, no_registrations):
    """Dask pickles an importable function by reference: its workers must be able to import the
    benchmark's modules, and only while the benchmark runs."""
    pytest.importorskip("distributed")
    bench = _write_benchmarks(tmp_path / "benchmarks", backend="dask")
    before = os.environ.get("PYTHONPATH")
    out = run_report(tmp_path / "rep", benchmarks=bench)
    assert out.ok, out.failures
    assert out.results[0].headline == "square 49"
    assert str(bench) not in sys.path and os.environ.get("PYTHONPATH") == before


def test_discovered_and_registered_areas_together(tmp_path, no_registrations):
    bench = _write_benchmarks(tmp_path / "benchmarks")
    registry.register("extra", "Extra", "tests.report.test_report:_fake_ok")
    assert [b.name for b in registry.registered(bench)] == ["toy", "extra"]
    registry.register("toy", "Mine", "tests.report.test_report:_fake_ok")  # replaces it
    assert [(b.name, b.title) for b in registry.registered(bench)] == [
        ("toy", "Mine"),
        ("extra", "Extra"),
    ]


def test_old_area_names_warn_and_map(tmp_path, no_registrations):
    bench = _write_benchmarks(tmp_path / "benchmarks", area="coded-es")
    with pytest.warns(FrugalDeprecationWarning, match="'dfo' is deprecated.*'coded-es'"):
        assert registry.get("dfo", bench).name == "coded-es"


def test_cli_old_area_name_warns_on_stderr(tmp_path, capsys, no_registrations):
    bench = _write_benchmarks(tmp_path / "benchmarks", area="subspace-saddle")
    code = main(["report", "--area", "saddle", "--benchmarks", str(bench),
                 "--out", str(tmp_path / "rep")])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    assert "'report --area saddle' is deprecated" in err and "use --area subspace-saddle" in err
    assert (tmp_path / "rep" / "subspace-saddle.json").exists()


def test_no_benchmarks_is_a_clear_error(tmp_path, capsys, monkeypatch, no_registrations):
    monkeypatch.delenv("FRUGALML_BENCHMARKS", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match="run from a frugalml checkout or pass --bench"):
        run_report(tmp_path / "rep")
    with pytest.raises(InvalidInputError, match="no benchmarks found"):
        run_report(tmp_path / "rep", areas=["runtime"])
    code = main(["report", "--out", str(tmp_path / "rep")])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1
    assert "run from a frugalml checkout or pass --benchmarks DIR" in err
    code = main(["report", "--benchmarks", str(tmp_path / "nope")])
    _, err = capsys.readouterr()
    assert code == 2 and "is not a directory" in err
    assert not (tmp_path / "rep").exists()


def test_load_benchmark_once_per_file(tmp_path):
    bench = _write_benchmarks(tmp_path / "benchmarks")
    first = load_benchmark(bench / "bench_toy.py")
    assert load_benchmark(bench / "bench_toy.py") is first
    assert first.REPORT_AREA == "toy" and first.VALUE == 7
