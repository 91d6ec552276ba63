"""Which rows of a `duplicates` scan share logic: drop the pairs where one side lies wholly in
import blocks, ``__all__`` lists or docstrings (keyword lists and prose, not code).

Usage: duplicates --repo src --most 200 | python benchmarks/duplicates_logic.py src
Prints the count line and the remaining rows (identical-text rows have no ``shape`` mark).
"""

from __future__ import annotations

import io
import re
import sys
import tokenize
from pathlib import Path

ROW = re.compile(r"^D\d+ (\S+):(\d+)-(\d+) ~ (\S+):(\d+)-(\d+)")


def non_logic_lines(text: str) -> list[bool]:
    """Per line of ``text``: True inside an import statement, an ``__all__`` list or a
    triple-quoted string."""
    lines = text.splitlines()
    mark = [False] * len(lines)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING and tok.string.lstrip("rbuRBU")[:3] in ('"""', "'''"):
                for ln in range(tok.start[0], tok.end[0] + 1):
                    mark[ln - 1] = True
    except (tokenize.TokenError, IndentationError):
        pass
    block = False
    for i, line in enumerate(lines):
        s = line.strip()
        if block:
            mark[i] = True
            block = not s.startswith((")", "]"))
        elif re.match(r"^(from \S+ import \($|__all__ = \[$)", s):
            mark[i] = block = True
        elif s.startswith("import ") or (s.startswith("from ") and " import " in s):
            mark[i] = True
    return mark


def logic_rows(rows: list[str], root: Path) -> list[str]:
    """The rows of ``rows`` whose two sides both hold some code."""
    kept = []
    for row in rows:
        m = ROW.match(row)
        if not m:
            continue
        skip = False
        for path, a, b in ((m[1], int(m[2]), int(m[3])), (m[4], int(m[5]), int(m[6]))):
            file = root / path
            if not file.is_file():
                continue
            mark = non_logic_lines(file.read_text())
            if all(mark[i - 1] for i in range(a, b + 1) if i - 1 < len(mark)):
                skip = True
        if not skip:
            kept.append(row.rstrip())
    return kept


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else ".")
    rows = [line for line in sys.stdin if ROW.match(line)]
    kept = logic_rows(rows, root)
    same = sum(" shape" not in r for r in kept)
    print(f"{len(rows)} pairs, {len(kept)} sharing logic ({same} with identical text)")
    print("\n".join(kept))
    return 0


if __name__ == "__main__":
    sys.exit(main())
