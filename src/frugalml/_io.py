"""Atomic file output: write to a temporary sibling, then rename. Nothing half-written."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_output_path"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _normal_mode(path: Path, mode: int) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; give them the usual permissions."""
    os.chmod(path, mode & ~_umask())


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (same-directory temp file + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        _normal_mode(Path(tmp), 0o666)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def check_output_path(path: str | Path, option: str = "--out", *, directory: bool = False) -> Path:
    """Check, before any work, that ``path`` can be written as a file (or, with
    ``directory=True``, created or filled as a directory); return it as a ``Path``.

    Raises :class:`~frugalml.errors.InvalidInputError` naming ``option`` when the path is an
    existing directory (for a file) or file (for a directory), when its parent directory does
    not exist or is not a directory, or when it cannot be written.
    """
    from .errors import InvalidInputError

    path = Path(path).expanduser()
    if str(path) in ("", "-"):
        raise InvalidInputError(f"{option}: give a file path")
    if directory:
        if path.exists() and not path.is_dir():
            raise InvalidInputError(f"{option} {path}: is a file, expected a directory")
        target = path if path.exists() else path.parent
    else:
        if path.is_dir():
            raise InvalidInputError(f"{option} {path}: is a directory; give a file name inside it")
        target = path.parent
    target = target if str(target) else Path(".")
    if not target.exists():
        raise InvalidInputError(
            f"{option} {path}: the directory {target} does not exist; create it first"
        )
    if not target.is_dir():
        raise InvalidInputError(f"{option} {path}: {target} is not a directory")
    if not os.access(target, os.W_OK | os.X_OK):
        raise InvalidInputError(f"{option} {path}: the directory {target} is not writable")
    if not directory and path.exists() and not os.access(path, os.W_OK):
        raise InvalidInputError(f"{option} {path}: the file exists and is not writable")
    return path
