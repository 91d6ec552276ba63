"""The public surface of every area: each name of ``__all__`` resolves (optional torch parts
lazily, one way in every area), and importing the area does not import torch."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

AREAS = ("runtime", "coded", "sketch", "remat", "convex", "quant", "subspace", "ecc")
#: names that must be exported from the area package, with the module that defines them
DEFINED_IN = {
    "remat": {"MoccasinSolver": "moccasin", "checkmate_milp": "checkmate",
              "extract_graph": "torch_graph"},
    "subspace": {"AdaConsAggregator": "aggregation", "adacons_hook": "aggregation"},
    "quant": {"quantize_model": "convert"},
}  # fmt: skip


@pytest.mark.parametrize("area", AREAS)
def test_every_exported_name_resolves(area):
    pytest.importorskip("torch")
    pkg = importlib.import_module(f"frugalml.{area}")
    for name in pkg.__all__:
        assert getattr(pkg, name) is not None, f"frugalml.{area}.{name}"
    for name, module in DEFINED_IN.get(area, {}).items():
        defined = getattr(importlib.import_module(f"frugalml.{area}.{module}"), name)
        assert getattr(pkg, name) is defined
    with pytest.raises(AttributeError):
        _ = pkg.no_such_name


def test_importing_the_areas_does_not_import_torch():
    code = "import sys\n"
    code += "".join(f"import frugalml.{a}\n" for a in AREAS)
    code += "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
