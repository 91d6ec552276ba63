"""Memory guards: refuse sizes that would exhaust this machine's memory before allocating.

A public function estimates its largest allocation (bytes, from the sizes it was given) and
calls :func:`check_memory`; above the memory the machine has available it raises
:class:`~frugalml.errors.TooLargeError` naming the estimate, the available memory and the
option to change, instead of a ``MemoryError`` traceback or minutes of swapping.
"""

from __future__ import annotations

import os

from .errors import TooLargeError

__all__ = ["available_memory", "check_memory", "fmt_size"]

#: environment variable that overrides the detected available memory (bytes; for tests and
#: for users on shared machines who want a lower cap)
ENV_LIMIT = "FRUGALML_MEMORY_LIMIT"


def fmt_size(nbytes: float) -> str:
    """``n`` bytes as ``"512 B"``, ``"1.5 KiB"``, ``"3.0 MiB"``, ... ``"1.2 PiB"`` (binary units;
    also ``frugalml.runtime.fmt_bytes``)."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def available_memory() -> int:
    """Bytes this process may still allocate: ``$FRUGALML_MEMORY_LIMIT`` if set, else Linux's
    ``MemAvailable`` (``/proc/meminfo``), else physical memory (``sysconf``)."""
    env = os.environ.get(ENV_LIMIT)
    if env:
        try:
            return int(float(env))
        except ValueError:
            pass
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - exotic platforms
        return 1 << 62


def check_memory(nbytes: float, what: str, *, fix: str, fraction: float = 0.9) -> None:
    """Raise :class:`TooLargeError` when ``nbytes`` exceeds ``fraction`` of the memory
    available now.

    ``what`` names the allocation (e.g. ``"the 1000000 x 1000000 saddle matrix"``), ``fix``
    says what to change (e.g. ``"lower --n"``).
    """
    limit = available_memory() * fraction
    if nbytes > limit:
        raise TooLargeError(
            f"{what} would need about {fmt_size(nbytes)}, but this machine has "
            f"{fmt_size(available_memory())} available; {fix}"
        )
