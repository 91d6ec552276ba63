"""Old spellings kept for one release: renamed keyword arguments and attributes.

``@renamed_parameters(seed="rng")`` lets a function whose parameter was renamed still accept
the old keyword, with a :class:`~frugalml.errors.FrugalDeprecationWarning`; passing both
spellings is an error. ``deprecated_alias("elapsed", "seconds")`` is a read-only property that
forwards an old attribute name. Removal is planned for the release after :data:`REMOVED_IN`'s
predecessor.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import FrugalDeprecationWarning, InvalidInputError

__all__ = ["REMOVED_IN", "deprecated_alias", "renamed_parameters", "warn_renamed"]

#: the release that drops the old spellings
REMOVED_IN = "0.3"

F = TypeVar("F", bound=Callable[..., Any])


def warn_renamed(old: str, new: str, where: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` (in ``where``) is now spelled ``new``."""
    warnings.warn(
        f"{where}: {old!r} is deprecated and will be removed in frugalml {REMOVED_IN}; "
        f"use {new!r} instead",
        FrugalDeprecationWarning,
        stacklevel=stacklevel,
    )


def renamed_parameters(**renames: str) -> Callable[[F], F]:
    """Accept ``old=value`` keywords of renamed parameters (``old="new"`` pairs) with a warning.

    The wrapped function keeps its signature (``functools.wraps``); only keyword use of the
    old name is accepted. Passing both the old and the new name raises
    :class:`InvalidInputError`.
    """

    def decorate(func: F) -> F:
        where = func.__qualname__

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise InvalidInputError(
                            f"{where}: pass {new!r} only ({old!r} is its deprecated spelling)"
                        )
                    warn_renamed(old, new, where)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def deprecated_alias(old: str, new: str) -> property:
    """A read-only property ``old`` that returns ``self.<new>`` with a warning."""

    def getter(self: Any) -> Any:
        warn_renamed(old, new, type(self).__name__)
        return getattr(self, new)

    return property(getter, doc=f"Deprecated spelling of :attr:`{new}`.")
