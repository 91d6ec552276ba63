"""One HiGHS per process.

OR-Tools (MOCCASIN's CP-SAT) and the ``highspy`` package (pulled in by CVXPY) each bundle their
own build of the HiGHS solver library, and they cannot both be loaded into one process: whichever
is imported second fails with undefined symbols (measured with ortools 9.15 and highspy 1.15).
Importing OR-Tools first is the order that keeps both areas working: ``highspy`` is then marked
unimportable (a clean ``ModuleNotFoundError``), CVXPY simply does not offer its HiGHS interface
(Clarabel and SCS are unaffected), and SciPy's own HiGHS (``scipy.optimize.milp``/``linprog``)
is separate and always works.

:func:`before_highspy` is called by every module that may import ``highspy`` (directly or via
CVXPY) before it does so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys

__all__ = ["before_highspy"]


def before_highspy() -> None:
    """Load OR-Tools' CP-SAT first (when installed and not yet loaded); see the module doc."""
    if "ortools.sat.python.cp_model" in sys.modules or "highspy" in sys.modules:
        return
    if importlib.util.find_spec("ortools") is None:
        return
    with contextlib.suppress(ImportError):  # a broken OR-Tools must not break the caller
        import ortools.sat.python.cp_model  # noqa: F401

        # highspy can no longer load in this process: make ``import highspy`` a clean
        # ModuleNotFoundError (which CVXPY skips quietly) instead of a symbol error
        sys.modules.setdefault("highspy", None)  # type: ignore[arg-type]
