"""The public surface of frugalml.remat: every name of ``__all__`` resolves, the solvers and the
PyTorch front end included, and importing the package does not import torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

import frugalml.remat as remat


def test_every_exported_name_resolves():
    pytest.importorskip("torch")
    for name in remat.__all__:
        assert getattr(remat, name) is not None, name
    from frugalml.remat.checkmate import checkmate_milp
    from frugalml.remat.moccasin import MoccasinSolver
    from frugalml.remat.torch_graph import extract_graph

    assert remat.MoccasinSolver is MoccasinSolver
    assert remat.checkmate_milp is checkmate_milp
    assert remat.extract_graph is extract_graph
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = remat.nope


def test_import_does_not_import_torch():
    code = "import sys, frugalml.remat; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
