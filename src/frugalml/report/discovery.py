"""Find the benchmarks of a frugalml checkout: ``benchmarks/bench_*.py`` outside the package.

The benchmark bodies are not installed with frugalml (as scikit-learn keeps
``asv_benchmarks/`` outside its package); ``frugalml report`` runs those of a checkout. A
benchmark file declares, at module level, the report area it measures::

    REPORT_AREA = "sketch-newton"
    REPORT_TITLE = "Second-order: debiased distributed Newton sketch"

    def run(*, quick: bool, progress: Progress | None = None, tiny: bool = False) -> BenchResult:
        ...

:func:`scan` reads those two string constants with :mod:`ast` (nothing is imported or run);
files without ``REPORT_AREA`` are scripts only (scale benchmarks, regime sweeps).
:func:`load_benchmark` imports one file by path, with its directory on ``sys.path`` while it
loads (so it can import shared helpers such as ``benchmarks/_common.py``), and registers every
module of that directory to be pickled by value, so that its task functions run in process
pools, Ray and Dask workers that cannot import it by name.

Where the directory is (:func:`find_benchmarks`): an explicit ``--benchmarks DIR``, else
``$FRUGALML_BENCHMARKS``, else ``./benchmarks``, else the nearest ``benchmarks/`` holding a
``bench_*.py`` in a parent of the working directory. Scanning is O(files); loading runs the
module's top level only.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import InvalidInputError

__all__ = [
    "BENCHMARKS_ENV",
    "NOT_FOUND_HINT",
    "DiscoveredBenchmark",
    "find_benchmarks",
    "importable",
    "load_benchmark",
    "scan",
]

#: environment variable naming the benchmarks directory
BENCHMARKS_ENV = "FRUGALML_BENCHMARKS"
#: what to do when no benchmarks are found
NOT_FOUND_HINT = (
    "run from a frugalml checkout or pass --benchmarks DIR (or set "
    f"{BENCHMARKS_ENV}): the benchmarks are not installed with the package"
)


@dataclass(frozen=True)
class DiscoveredBenchmark:
    """A ``bench_*.py`` file that declares ``REPORT_AREA`` (and ``REPORT_TITLE``)."""

    area: str
    title: str
    path: Path


def _has_benchmarks(directory: Path) -> bool:
    return directory.is_dir() and any(directory.glob("bench_*.py"))


def find_benchmarks(
    benchmarks: str | Path | None = None, *, start: str | Path | None = None
) -> Path | None:
    """The benchmarks directory to use, or ``None`` when there is none.

    ``benchmarks`` (e.g. ``--benchmarks DIR``) or ``$FRUGALML_BENCHMARKS`` must name an
    existing directory (else :class:`InvalidInputError`); otherwise ``START/benchmarks``
    (``START`` = the working directory) if it exists, else the first ``P/benchmarks`` holding
    a ``bench_*.py`` for ``P`` a parent of ``START``.
    """
    explicit, where = benchmarks, "--benchmarks"
    if explicit is None and os.environ.get(BENCHMARKS_ENV):
        explicit, where = os.environ[BENCHMARKS_ENV], BENCHMARKS_ENV
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise InvalidInputError(f"{where} {str(explicit)!r} is not a directory")
        return path.resolve()
    here = Path(start if start is not None else Path.cwd()).resolve()
    if (here / "benchmarks").is_dir():
        return here / "benchmarks"
    for parent in here.parents:
        if _has_benchmarks(parent / "benchmarks"):
            return parent / "benchmarks"
    return None


def _constants(path: Path) -> dict[str, str]:
    """Module-level ``NAME = "string"`` assignments of ``path`` (not executed)."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, UnicodeDecodeError, SyntaxError) as exc:
        raise InvalidInputError(f"benchmark {path} cannot be read: {exc}") from exc
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    out[target.id] = value.value
    return out


def scan(directory: str | Path) -> list[DiscoveredBenchmark]:
    """The report areas declared in ``directory/bench_*.py``, sorted by area name.

    Raises :class:`InvalidInputError` if a file cannot be parsed or two files declare the
    same area.
    """
    directory = Path(directory)
    found: dict[str, DiscoveredBenchmark] = {}
    for path in sorted(directory.glob("bench_*.py")):
        consts = _constants(path)
        area = consts.get("REPORT_AREA")
        if not area:
            continue  # a script only, not a report area
        if area in found:
            raise InvalidInputError(
                f"report area {area!r} is declared by both {found[area].path.name} and "
                f"{path.name} in {directory}"
            )
        found[area] = DiscoveredBenchmark(area, consts.get("REPORT_TITLE", area), path.resolve())
    return [found[a] for a in sorted(found)]


@contextlib.contextmanager
def _on_sys_path(directory: str) -> Iterator[None]:
    added = directory not in sys.path
    if added:
        sys.path.insert(0, directory)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(directory)


@contextlib.contextmanager
def importable(directory: str | Path) -> Iterator[None]:
    """While the block runs, ``directory`` is importable here and in every worker process the
    block starts: first on ``sys.path`` (spawned process pools, Dask's nanny workers inherit
    it) and on ``$PYTHONPATH`` (Ray and Lithops workers start from the environment). Pickling
    by value alone is not enough: Dask pickles an importable function by reference first, and
    its workers then fail with ``ModuleNotFoundError``. Both are restored afterwards."""
    directory = str(Path(directory).resolve())
    before = os.environ.get("PYTHONPATH")
    parts = [p for p in (before or "").split(os.pathsep) if p]
    if directory not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([directory, *parts])
    try:
        with _on_sys_path(directory):
            yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def _pickle_by_value(directory: Path) -> None:
    """Let cloudpickle ship the functions of every loaded module of ``directory`` by value."""
    import cloudpickle

    where = os.path.normcase(str(directory))
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if file and os.path.normcase(os.path.dirname(os.path.abspath(file))) == where:
            with contextlib.suppress(ValueError):  # e.g. already registered
                cloudpickle.register_pickle_by_value(module)


def load_benchmark(path: str | Path) -> ModuleType:
    """Import the benchmark file ``path`` as module ``<stem>`` (once per process and file).

    Its directory is on ``sys.path`` while it loads; its modules are pickled by value
    afterwards (see the module docstring).
    """
    path = Path(path).resolve()
    name = path.stem
    cached = sys.modules.get(name)
    if cached is not None and Path(getattr(cached, "__file__", "") or "").resolve() == path:
        return cached
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidInputError(f"benchmark {path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with _on_sys_path(str(path.parent)):
            spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _pickle_by_value(path.parent)
    return module
