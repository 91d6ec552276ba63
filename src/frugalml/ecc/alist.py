"""LDPC codes in MacKay's alist format: parse, write, and the alist files shipped with frugalml.

LDPC codes are a test bed of Bennatan, Choukroun & Kisilev, "Deep Learning for Decoding of
Linear Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741) and of Choukroun & Wolf,
"Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966). The format is MacKay's
(``N M``, the maximum weights, the column and row weights, then the 1-based row indices of each
column and the column indices of each row, optionally zero-padded).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError
from .gf2 import as_bits
from .linear_code import BinaryLinearCode, code_from_h

__all__ = ["bundled_alist", "ldpc_from_alist", "resolve_alist", "to_alist"]


def _alist_lines(text: str, source: str) -> list[tuple[int, list[int]]]:
    """(line number, integers) of the non-blank lines."""
    out = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        s = raw.strip()
        if not s:
            continue
        try:
            out.append((lineno, [int(t) for t in s.split()]))
        except ValueError:
            raise InvalidInputError(
                f"{source} line {lineno}: expected integers, got {s[:60]!r}"
            ) from None
    return out


def _parse_alist(text: str, source: str) -> np.ndarray:
    lines = _alist_lines(text, source)
    pos = 0

    def take(what: str, count: int | None = None) -> tuple[int, list[int]]:
        nonlocal pos
        if pos >= len(lines):
            raise InvalidInputError(f"{source}: unexpected end of file; expected {what}")
        lineno, vals = lines[pos]
        pos += 1
        if count is not None and len(vals) != count:
            raise InvalidInputError(
                f"{source} line {lineno}: expected {count} integer(s) ({what}), got {len(vals)}"
            )
        return lineno, vals

    lineno, (n, m) = take("'N M' (columns, rows)", 2)
    if n < 1 or m < 1:
        raise InvalidInputError(f"{source} line {lineno}: N and M must be >= 1, got {n} {m}")
    lineno, (max_col, max_row) = take("'max column weight, max row weight'", 2)
    if not (0 <= max_col <= m and 0 <= max_row <= n):
        raise InvalidInputError(
            f"{source} line {lineno}: maximum weights {max_col} {max_row} out of range "
            f"for an {m} x {n} matrix"
        )
    lineno, col_w = take(f"{n} column weights", n)
    if min(col_w) < 0 or max(col_w) > max_col:
        raise InvalidInputError(
            f"{source} line {lineno}: column weights must lie in [0, {max_col}]"
        )
    lineno, row_w = take(f"{m} row weights", m)
    if min(row_w) < 0 or max(row_w) > max_row:
        raise InvalidInputError(f"{source} line {lineno}: row weights must lie in [0, {max_row}]")
    if sum(col_w) != sum(row_w):
        raise InvalidInputError(
            f"{source} line {lineno}: row weights sum to {sum(row_w)} but column weights "
            f"to {sum(col_w)}"
        )

    def entries(
        index: int, weight: int, width: int, limit: int, kind: str
    ) -> tuple[int, list[int]]:
        other = "row" if kind == "column" else "column"
        lineno, vals = take(f"the {other} indices of {kind} {index + 1}")
        nz = [v for v in vals if v != 0]
        if len(vals) not in (weight, width) or len(nz) != weight or vals[:weight] != nz:
            raise InvalidInputError(
                f"{source} line {lineno}: {kind} {index + 1} must list {weight} {other} "
                f"indices (optionally zero-padded to {width}), got {vals}"
            )
        if any(v < 1 or v > limit for v in nz):
            raise InvalidInputError(
                f"{source} line {lineno}: {other} indices must lie in 1..{limit}, got {nz}"
            )
        if len(set(nz)) != len(nz):
            raise InvalidInputError(f"{source} line {lineno}: repeated {other} index in {nz}")
        return lineno, nz

    h = np.zeros((m, n), dtype=np.uint8)
    for j in range(n):
        h[np.asarray(entries(j, col_w[j], max_col, m, "column")[1], dtype=np.intp) - 1, j] = 1
    for i in range(m):
        lineno, cols = entries(i, row_w[i], max_row, n, "row")
        row = np.zeros(n, dtype=np.uint8)
        row[np.asarray(cols, dtype=np.intp) - 1] = 1
        if not np.array_equal(row, h[i]):
            raise InvalidInputError(
                f"{source} line {lineno}: row {i + 1} lists columns {cols}, which disagrees "
                f"with the column lists (columns {[int(c) + 1 for c in np.flatnonzero(h[i])]})"
            )
    if pos < len(lines):
        raise InvalidInputError(
            f"{source} line {lines[pos][0]}: unexpected content after the {m} row lists"
        )
    return h


def ldpc_from_alist(path_or_text: str | Path, name: str | None = None) -> BinaryLinearCode:
    """Code with the parity-check matrix of a MacKay alist file (a path, or the text itself).

    Format: ``N M``, ``max_col_weight max_row_weight``, N column weights, M row weights,
    then N lines of (1-based) row indices per column and M lines of column indices per row,
    each optionally zero-padded to the maximum weight. Malformed input raises
    ``InvalidInputError`` naming the offending line. Redundant (linearly dependent) checks
    are dropped, keeping the first independent rows, so ``H`` is (n - k, n) full rank; ``G``
    comes from the GF(2) null space. A ``str`` containing a newline is parsed as alist text,
    anything else is a path. ``name`` defaults to ``"ldpc-<file name>"``.
    """
    if isinstance(path_or_text, str) and "\n" in path_or_text:
        text, source = path_or_text, "alist"
        default = "ldpc-alist"
    elif isinstance(path_or_text, (str, Path)):
        path = Path(path_or_text)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInputError(f"cannot read alist file {str(path)!r}: {exc}") from exc
        source, default = f"alist file {str(path)!r}", f"ldpc-{path.name}"
    else:
        raise InvalidInputError(
            f"path_or_text must be a path or alist text, got {type(path_or_text).__name__}"
        )
    h = _parse_alist(text, source)
    return code_from_h(default if name is None else name, h)


def to_alist(code: BinaryLinearCode | np.ndarray) -> str:
    """MacKay alist text of a code's parity-check matrix (or of a 0/1 matrix), zero-padded."""
    h = code.H if isinstance(code, BinaryLinearCode) else as_bits(code, "H", ndim=2)
    m, n = h.shape
    col_w = h.sum(axis=0).astype(int)
    row_w = h.sum(axis=1).astype(int)
    max_c, max_r = int(col_w.max(initial=0)), int(row_w.max(initial=0))

    def padded(idx: np.ndarray, width: int) -> str:
        vals = [int(v) + 1 for v in idx] + [0] * (width - len(idx))
        return " ".join(map(str, vals))

    out = [f"{n} {m}", f"{max_c} {max_r}", " ".join(map(str, col_w)), " ".join(map(str, row_w))]
    out += [padded(np.flatnonzero(h[:, j]), max_c) for j in range(n)]
    out += [padded(np.flatnonzero(h[i]), max_r) for i in range(m)]
    return "\n".join(out) + "\n"


def bundled_alist(name: str = "ldpc_96_48") -> Path:
    """Path of an alist file shipped with frugalml (``ldpc_96_48``: a (3, 6)-regular
    (96, 48) code without 4-cycles, made by ``ldpc_regular(96, 3, 6, rng=0)``)."""
    stem = name[: -len(".alist")] if name.endswith(".alist") else name
    path = Path(str(importlib.resources.files("frugalml.ecc") / "data" / f"{stem}.alist"))
    if not path.is_file():
        raise InvalidInputError(f"no bundled alist file named {stem!r}")
    return path


def resolve_alist(spec: str) -> Path:
    """``spec`` as a path: an existing file, else a bundled alist file of that name."""
    path = Path(spec)
    if path.is_file():
        return path
    if path.parent == Path("."):
        bundled = Path(str(importlib.resources.files("frugalml.ecc") / "data" / path.name))
        if bundled.is_file():
            return bundled
    raise InvalidInputError(f"alist file {spec!r} not found (neither a path nor bundled)")
