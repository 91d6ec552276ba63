"""`frugalml report --out DIR` writes only its own files and never deletes anything else."""

from __future__ import annotations

import json
import os

import pytest

from frugalml.cli import main
from frugalml.errors import InvalidInputError
from frugalml.report import BenchResult, Table, registry, run_report
from frugalml.report.outdir import MANIFEST, prepare_output

CALLS: list[str] = []


def _tiny(*, quick: bool, progress=None) -> BenchResult:
    CALLS.append("tiny")
    return BenchResult("tiny", "Tiny", "h", (Table("t", ("a",), ((1,),)),))


def _other(*, quick: bool, progress=None) -> BenchResult:
    CALLS.append("other")
    return BenchResult("other", "Other", "h", (Table("t", ("a",), ((2,),)),))


@pytest.fixture(autouse=True)
def tiny_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    registry.register("tiny", "Tiny", f"{__name__}:_tiny")
    registry.register("other", "Other", f"{__name__}:_other")
    from frugalml.report import runner

    monkeypatch.setattr(runner, "machine_info", lambda: {"cpu_count": 1})  # skip torch import
    CALLS.clear()


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def listing(path) -> set[str]:
    return set(os.listdir(path))


def test_foreign_file_survives_and_is_refused_without_force(tmp_path, capsys):
    d = tmp_path / "d"
    d.mkdir()
    (d / "thesis.txt").write_text("x\n")
    code, _, err = cli(capsys, "--area", "tiny", "--out", str(d))
    assert code == 2 and CALLS == []  # refused before any benchmark
    assert "holds files frugalml did not write (thesis.txt)" in err
    assert "--force" in err and "Traceback" not in err
    assert listing(d) == {"thesis.txt"}

    code, _, _ = cli(capsys, "--area", "tiny", "--out", str(d), "--force")
    assert code == 0 and CALLS == ["tiny"]
    assert (d / "thesis.txt").read_text() == "x\n"
    assert listing(d) == {"thesis.txt", "index.html", "tiny.json", MANIFEST}
    manifest = json.loads((d / MANIFEST).read_text())
    assert manifest["files"] == ["index.html", "tiny.json"]

    # a second forced run over it still keeps the foreign file
    code, _, _ = cli(capsys, "--area", "other", "--out", str(d), "--force")
    assert code == 0
    assert listing(d) == {"thesis.txt", "index.html", "other.json", MANIFEST}
    assert (d / "thesis.txt").read_text() == "x\n"


def test_out_dot_writes_into_the_working_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "--area", "tiny", "--out", ".")
    assert code == 0, err
    assert listing(tmp_path) == {"index.html", "tiny.json", MANIFEST}
    # a second run replaces its own files, and a foreign one then blocks it
    code, _, _ = cli(capsys, "--area", "tiny", "--out", ".")
    assert code == 0
    (tmp_path / "notes.md").write_text("mine")
    code, _, err = cli(capsys, "--area", "tiny", "--out", ".")
    assert code == 2 and "notes.md" in err
    assert listing(tmp_path) == {"index.html", "tiny.json", MANIFEST, "notes.md"}


def test_second_run_replaces_its_own_previous_output(tmp_path):
    d = tmp_path / "rep"
    run_report(d, areas=["tiny", "other"])
    assert listing(d) == {"index.html", "tiny.json", "other.json", MANIFEST}
    (d / "tiny.json").write_text("stale")
    run_report(d, areas=["tiny"])
    # other.json was written by the first run and is no longer part of the report
    assert listing(d) == {"index.html", "tiny.json", MANIFEST}
    assert json.loads((d / "tiny.json").read_text())["name"] == "tiny"
    assert listing(tmp_path) == {"rep"}  # no temporary folder beside it


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda t: t / "missing" / "rep", "does not exist"),
        (lambda t: (t / "f").write_text("x") and t / "f", "is a file"),
    ],
)
def test_bad_outputs_error_before_any_benchmark(tmp_path, capsys, make, match):
    out = make(tmp_path)
    code, _, err = cli(capsys, "--area", "tiny", "--out", str(out))
    assert code == 2 and match in err and CALLS == []
    assert err.startswith("frugalml: error:") and len(err.strip().splitlines()) == 1


def test_unwritable_output_errors_before_any_benchmark(tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: let the permission check see 0o555
        real = os.access
        monkeypatch.setattr(
            os, "access", lambda p, mode: False if str(p) == str(ro) else real(p, mode)
        )
    try:
        code, _, err = cli(capsys, "--area", "tiny", "--out", str(ro / "rep"))
        assert code == 2 and "not writable" in err and CALLS == []
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_interrupted_write_leaves_no_temp_files_and_keeps_files_ours(tmp_path, monkeypatch):
    d = tmp_path / "rep"
    run_report(d, areas=["tiny"])
    from frugalml.report import outdir

    real = outdir.atomic_write_bytes
    calls = []

    def flaky(path, data):
        calls.append(path.name)
        if len(calls) == 2:  # the second report file: Ctrl-C mid-way
            raise KeyboardInterrupt
        return real(path, data)

    monkeypatch.setattr(outdir, "atomic_write_bytes", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_report(d, areas=["tiny", "other"])
    monkeypatch.setattr(outdir, "atomic_write_bytes", real)
    assert not [n for n in listing(d) if n.endswith(".tmp")]
    assert listing(tmp_path) == {"rep"}
    # everything present is listed in the manifest, so the next run accepts the directory
    prepare_output(d)
    run_report(d, areas=["other"])
    assert listing(d) == {"index.html", "other.json", MANIFEST}


def test_force_never_overwrites_a_foreign_file_with_a_report_name(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "index.html").write_text("my page")
    with pytest.raises(InvalidInputError, match="holds files frugalml did not write"):
        prepare_output(d)
    with pytest.raises(InvalidInputError, match=r"index\.html.*nothing was written"):
        run_report(d, areas=["tiny"], force=True)
    assert listing(d) == {"index.html"} and (d / "index.html").read_text() == "my page"


def test_manifest_cannot_point_outside_the_directory(tmp_path):
    d = tmp_path / "rep"
    d.mkdir()
    victim = tmp_path / "thesis.txt"
    victim.write_text("x")
    (d / MANIFEST).write_text(
        json.dumps({"format": "frugalml-report/1", "files": ["../thesis.txt", "a/b"]})
    )
    run_report(d, areas=["tiny"])
    assert victim.read_text() == "x"
    assert json.loads((d / MANIFEST).read_text())["files"] == ["index.html", "tiny.json"]


def test_unreadable_manifest_is_foreign(tmp_path):
    d = tmp_path / "rep"
    d.mkdir()
    (d / MANIFEST).write_text("not json")
    with pytest.raises(InvalidInputError, match=MANIFEST):
        prepare_output(d)


def _wide(*, quick: bool, progress=None) -> BenchResult:
    columns = ("a rather long method name", *(f"measured value {i}" for i in range(12)))
    row = ("sketch-and-precondition (momentum)", *(1.23456789e-7 * (i + 1) for i in range(12)))
    return BenchResult("wide", "Wide", "h", (Table("wide table", columns, (row,)),))


def test_cli_tables_fit_100_columns(tmp_path, capsys, monkeypatch):
    from frugalml.cli import _common

    monkeypatch.setattr(_common.console, "_width", 160)  # a wide terminal: still <= 100
    registry.register("wide", "Wide", f"{__name__}:_wide")
    code, out, err = cli(capsys, "--area", "wide", "--out", str(tmp_path / "r"))
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    assert "…" not in out and "wide table (continued)" in out
    for i in range(12):
        assert any(f"{1.23456789e-7 * (i + 1):.4g}" in line for line in lines)
