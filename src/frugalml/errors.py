"""Exceptions raised by frugalml.

Every error that frugalml raises on purpose derives from :class:`FrugalError`, so a caller can
catch the whole family with one ``except``. The subclasses also derive from the matching
built-in (``ValueError``, ``ImportError``, ``RuntimeError``) so code written against the
standard exceptions keeps working. Messages say what was wrong *and* what to do about it.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "FrugalDeprecationWarning",
    "FrugalError",
    "InfeasibleError",
    "InvalidInputError",
    "NotDecodableError",
    "SharedDataLostError",
    "SolverFailedError",
    "TaskFailedError",
    "TooLargeError",
]


class FrugalError(Exception):
    """Base class of every error raised by frugalml."""


class FrugalDeprecationWarning(FutureWarning):
    """A name (parameter, attribute, CLI option) that still works but will be removed in the
    next release; the message names the replacement. A ``FutureWarning`` so that end users see
    it by default."""


class InvalidInputError(FrugalError, ValueError):
    """An argument has the wrong shape, dtype, value range, or contains NaN/inf."""


class InfeasibleError(FrugalError, ValueError):
    """The problem has no solution as posed (e.g. a memory budget below the minimum)."""


class TooLargeError(FrugalError, ValueError):
    """The requested sizes would need more memory than this machine has (checked before the
    work starts, with the estimate and the machine's available memory in the message)."""


class NotDecodableError(FrugalError, RuntimeError):
    """The set of arrived results is not enough to decode the answer."""


class TaskFailedError(FrugalError, RuntimeError):
    """A task's result was requested but the task failed (it raised, or its worker died)."""


class SharedDataLostError(FrugalError, RuntimeError):
    """The data behind a shared reference is gone (released, its file deleted, its worker or
    object store lost)."""


class SolverFailedError(FrugalError, RuntimeError):
    """A numerical solver (a conic program through CVXPY, an SVD, ...) stopped without a usable
    solution. ``status`` is the solver's own status string when it has one (CVXPY's status)."""

    def __init__(self, message: str, status: str | None = None):
        self.status = status
        super().__init__(message)


class BackendUnavailableError(FrugalError, ImportError):
    """An optional backend or dependency is not installed.

    Parameters
    ----------
    what:
        The feature that needs the dependency, e.g. ``"the Ray executor"``.
    package:
        The Python package that failed to import, e.g. ``"ray"``.
    extra:
        The frugalml extra that installs it, e.g. ``"distributed"``.
    """

    def __init__(self, what: str, package: str, extra: str, detail: str | None = None):
        self.what = what
        self.package = package
        self.extra = extra
        msg = (
            f"{what} needs the '{package}' package, which is not installed; "
            f"install it with: pip install 'frugalml[{extra}]'"
        )
        if detail:
            msg += f" ({detail})"
        super().__init__(msg)
