"""The shared guards: output paths checked before the work, sizes checked against memory."""

from __future__ import annotations

import os

import pytest

from frugalml._io import check_output_path
from frugalml._resources import available_memory, check_memory, fmt_size
from frugalml.errors import InvalidInputError, TooLargeError


def test_output_file_in_existing_directory_is_fine(tmp_path):
    assert check_output_path(tmp_path / "x.json") == tmp_path / "x.json"
    (tmp_path / "x.json").write_text("old")  # overwriting a file the user names is allowed
    assert check_output_path(tmp_path / "x.json") == tmp_path / "x.json"


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: d, "is a directory"),
        (lambda d: d / "missing" / "x.json", "does not exist"),
        (lambda d: d / "file.txt" / "x.json", "is not a directory"),
    ],
)
def test_bad_output_file(tmp_path, make, needle):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InvalidInputError, match=needle) as info:
        check_output_path(make(tmp_path), "--plot")
    assert str(info.value).startswith("--plot ")


def test_output_directory(tmp_path):
    assert check_output_path(tmp_path / "new", directory=True) == tmp_path / "new"
    assert check_output_path(tmp_path, directory=True) == tmp_path
    (tmp_path / "f").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        check_output_path(tmp_path / "f", directory=True)
    with pytest.raises(InvalidInputError, match="does not exist"):
        check_output_path(tmp_path / "a" / "b", directory=True)


def test_unwritable_directory(tmp_path, monkeypatch):
    # (os.access stands in for a read-only directory: root may write into any directory)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if p == tmp_path else real(p, mode))
    with pytest.raises(InvalidInputError, match="not writable"):
        check_output_path(tmp_path / "x.json")


def test_memory_limit_from_environment(monkeypatch):
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(2**30))
    assert available_memory() == 2**30
    check_memory(0.5 * 2**30, "half a GiB", fix="lower --n")
    with pytest.raises(TooLargeError, match=r"about 2\.0 GiB.*1\.0 GiB available; lower --n"):
        check_memory(2 * 2**30, "the matrix", fix="lower --n")


def test_available_memory_is_this_machines(monkeypatch):
    monkeypatch.delenv("FRUGALML_MEMORY_LIMIT", raising=False)
    with open("/proc/meminfo") as fh:
        total = next(int(ln.split()[1]) * 1024 for ln in fh if ln.startswith("MemTotal:"))
    assert 0 < available_memory() <= total


def test_fmt_size():
    assert fmt_size(512) == "512 B"
    assert fmt_size(1536) == "1.5 KiB"
    assert fmt_size(7.28 * 2**40) == "7.3 TiB"
