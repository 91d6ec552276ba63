"""The one progress-callback type of the library.

Long-running functions take ``progress: Progress | None``, and call ``progress(message,
fraction)`` as the work advances, with ``fraction`` in [0, 1] and ``message`` a short
description of the current step. The library never prints; the CLI turns these calls into a
rich progress bar (``frugalml.cli._common.WorkBar.callback``).
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress"]

#: ``progress(message, fraction)``: ``fraction`` in [0, 1]
Progress = Callable[[str, float], None]
