"""The report's output directory: write only our own files, never delete anything else.

``frugalml report --out DIR`` keeps a manifest (:data:`MANIFEST`) in DIR listing the files it
wrote. A later run replaces (or removes, if no longer produced) only files listed there. A
directory holding files that are not in a frugalml manifest is refused before any benchmark
runs, unless ``force=True``: then the report is written beside them, and a foreign file is
never overwritten or deleted. Every file is written atomically (temporary sibling + rename).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .._io import atomic_write_bytes, atomic_write_text, check_output_path
from ..errors import InvalidInputError

__all__ = ["MANIFEST", "OutputDir", "prepare_output"]

MANIFEST = ".frugalml-report.json"
_FORMAT = "frugalml-report/1"
_SHOW = 5  # foreign names listed in an error message


def _plain_name(name: object) -> bool:
    return (
        isinstance(name, str)
        and name not in ("", ".", "..", MANIFEST)
        and "/" not in name
        and "\\" not in name
        and "\0" not in name
    )


def _read_manifest(directory: Path) -> set[str] | None:
    """Names listed in ``directory``'s manifest; ``None`` if it has none or it is unreadable."""
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None
    files = data.get("files")
    if not isinstance(files, list):
        return None
    return {f for f in files if _plain_name(f)}  # never trust a path that leaves the directory


def _names(paths: Iterable[str]) -> str:
    paths = sorted(paths)
    more = f", ... ({len(paths) - _SHOW} more)" if len(paths) > _SHOW else ""
    return ", ".join(paths[:_SHOW]) + more


@dataclass(frozen=True)
class OutputDir:
    """A checked output directory (see :func:`prepare_output`)."""

    path: Path
    ours: frozenset[str]  # files listed in the previous manifest
    foreign: frozenset[str]  # entries frugalml did not write (only with force)
    option: str = "--out"

    def write(self, files: Mapping[str, bytes]) -> list[Path]:
        """Write ``files`` (name -> content) into the directory and update the manifest.

        Files from the previous run that are not in ``files`` are removed; nothing else is.
        Raises :class:`InvalidInputError` (before writing anything) if a name would replace
        a file frugalml did not write.
        """
        bad = [n for n in files if not _plain_name(n)]
        if bad:
            raise ValueError(f"report file names must be plain names, got {bad}")
        self.path.mkdir(exist_ok=True)
        clash = sorted(
            n
            for n in [*files, MANIFEST]
            if n not in self.ours
            and (n in self.foreign or os.path.lexists(self.path / n))
            and not (n == MANIFEST and _read_manifest(self.path) is not None)
        )
        if clash:
            raise InvalidInputError(
                f"{self.option} {self.path} holds files frugalml did not write with the names "
                f"of report files ({_names(clash)}); nothing was written. Move them or choose "
                "another directory."
            )
        # The manifest first lists everything this run may leave behind, so that an
        # interruption never turns our own files into foreign ones.
        self._write_manifest(self.ours | set(files))
        written = [atomic_write_bytes(self.path / n, data) for n, data in files.items()]
        self._write_manifest(set(files))
        for stale in sorted(self.ours - set(files)):
            p = self.path / stale
            if p.is_symlink() or p.is_file():
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        return written

    def _write_manifest(self, names: set[str]) -> None:
        payload = {
            "format": _FORMAT,
            "note": "files written by `frugalml report`; it replaces only these",
            "files": sorted(names),
        }
        atomic_write_text(self.path / MANIFEST, json.dumps(payload, indent=1) + "\n")


def prepare_output(path: str | Path, *, force: bool = False, option: str = "--out") -> OutputDir:
    """Check ``path`` before any work: it must be a new directory in an existing, writable
    parent, an empty directory, or one holding only files a previous report wrote (listed in
    its manifest). With ``force`` other files may be present; they are left alone.
    """
    path = check_output_path(path, option, directory=True)
    if not path.exists():
        return OutputDir(path, frozenset(), frozenset(), option)
    ours = _read_manifest(path) or set()
    entries = set(os.listdir(path)) - {MANIFEST}
    if (path / MANIFEST).exists() and _read_manifest(path) is None:
        entries.add(MANIFEST)  # an unreadable manifest is not ours to trust or replace
    foreign = entries - ours
    if foreign and not force:
        raise InvalidInputError(
            f"{option} {path} holds files frugalml did not write ({_names(foreign)}); choose "
            "an empty or new directory, or pass --force to write beside them"
        )
    return OutputDir(path, frozenset(ours), frozenset(foreign), option)
