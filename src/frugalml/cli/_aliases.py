"""Deprecated option spellings of the command line, kept as hidden aliases for one release.

The vocabulary every command follows is the table in ``docs/cli.md``. When an option was
renamed to fit it, its old spelling goes in :data:`DEPRECATED_OPTIONS` under the command path;
:func:`rewrite_deprecated` maps it to the new spelling before typer parses the arguments and
prints one warning per old spelling on stderr. Old spellings are not declared as typer options,
so ``--help`` shows only the vocabulary.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .._deprecation import REMOVED_IN

__all__ = ["DEPRECATED_OPTIONS", "rewrite_deprecated"]

#: command path (subcommands joined by spaces) -> {old option: new option}
DEPRECATED_OPTIONS: dict[str, dict[str, str]] = {
    "runtime simulate": {"--n": "--workers", "--model": "--stragglers"},
    "coded matmul": {"--model": "--stragglers"},
    "coded simulate": {"--n": "--workers", "--model": "--stragglers"},
    "coded es": {"--model": "--stragglers", "--iterations": "--steps", "--tolerance": "--tol"},
    "coded attack": {"--model": "--stragglers", "--iterations": "--steps"},
    "sketch lstsq": {"--m": "--sketch-size"},
    "sketch distributed": {"--q": "--workers", "--m": "--sketch-size"},
    "sketch newton": {"--q": "--workers", "--m": "--sketch-size", "--max-iter": "--steps"},
    "remat solve": {"--workers": "--threads"},
    "remat model": {"--workers": "--threads"},
    "convex fit": {"--n-samples": "--samples"},
    "convex gan sample": {"--n": "--samples"},
    "convex gan metrics": {"--n": "--samples"},
    "subspace train": {"--timeout": "--time-limit"},
    "subspace saddle": {"--n": "--dim"},
}


def _command_path(args: Sequence[str], paths: set[str]) -> tuple[str, int]:
    """The longest known command path that ``args`` starts with, and how many tokens it used."""
    best, used = "", 0
    for i in range(1, len(args) + 1):
        candidate = " ".join(args[:i])
        if args[i - 1].startswith("-"):
            break
        if candidate in paths:
            best, used = candidate, i
    return best, used


def rewrite_deprecated(
    args: Sequence[str], table: dict[str, dict[str, str]] | None = None
) -> list[str]:
    """``args`` with deprecated option spellings replaced by the current ones (a warning on
    stderr for each). ``--old=value`` and ``--old value`` are both handled; everything after a
    bare ``--`` is left alone."""
    table = DEPRECATED_OPTIONS if table is None else table
    path, used = _command_path(args, set(table))
    renames = table.get(path)
    out = list(args)
    if not renames:
        return out
    warned: set[str] = set()
    for i in range(used, len(out)):
        token = out[i]
        if token == "--":
            break
        name, eq, value = token.partition("=")
        new = renames.get(name)
        if new is None:
            continue
        out[i] = new + eq + value
        if name not in warned:
            warned.add(name)
            print(
                f"frugalml: warning: '{path} {name}' is deprecated and will be removed in "
                f"frugalml {REMOVED_IN}; use {new}",
                file=sys.stderr,
            )
    return out
