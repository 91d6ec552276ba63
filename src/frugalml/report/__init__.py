"""The HTML report: runs the area benchmarks of a checkout (found by :mod:`.discovery`) and
the registered ones (:mod:`.registry`), and writes the page (:mod:`.runner`)."""

from .registry import AreaBenchmark, get, register, registered
from .results import BenchResult, Table, machine_info
from .runner import ReportOutcome, run_report

__all__ = [
    "AreaBenchmark",
    "BenchResult",
    "ReportOutcome",
    "Table",
    "get",
    "machine_info",
    "register",
    "registered",
    "run_report",
]
