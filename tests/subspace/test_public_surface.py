"""The public surface of frugalml.subspace: every name of ``__all__`` resolves (the torch-backed
aggregation names lazily), and importing the package does not import torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import frugalml.subspace as subspace


def test_every_exported_name_resolves():
    pytest.importorskip("torch")
    for name in subspace.__all__:
        assert getattr(subspace, name) is not None, name
    from frugalml.subspace.aggregation import AdaConsAggregator, adacons_hook

    assert subspace.AdaConsAggregator is AdaConsAggregator
    assert subspace.adacons_hook is adacons_hook
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = subspace.nope


def test_import_does_not_import_torch():
    code = "import sys, frugalml.subspace; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
