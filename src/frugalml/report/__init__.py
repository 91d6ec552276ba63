"""The HTML report: runs every registered area benchmark (see :mod:`.registry`)."""

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
