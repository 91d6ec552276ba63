"""Report tests run without the checkout's benchmarks unless a test asks for them: the areas
are those a test registers (``$FRUGALML_BENCHMARKS`` is an empty directory)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_discovered_benchmarks(tmp_path_factory, monkeypatch):
    empty = tmp_path_factory.mktemp("no-benchmarks")
    monkeypatch.setenv("FRUGALML_BENCHMARKS", str(empty))
    return empty
