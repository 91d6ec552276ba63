"""Kept for the runtime's imports; the helper lives in :mod:`frugalml._optional` (light)."""

from __future__ import annotations

from .._optional import require

__all__ = ["require"]
