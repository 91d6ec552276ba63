"""Malicious pickles for the "never unpickle an untrusted file" tests."""

from __future__ import annotations

import pickle
from pathlib import Path


class Payload:
    """Unpickling this runs ``open(marker, "w")``: a stand-in for arbitrary code."""

    def __init__(self, marker: str | Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_malicious(path: Path, marker: Path, how: str, key: str = "state") -> Path:
    """Write a file whose unpickling creates ``marker``: ``how`` is ``"raw-pickle"`` (plain
    pickle), ``"torch-save"`` (the payload saved by torch) or ``"in-a-dict"`` (torch-saved as
    the value of ``key`` in a dict, like a checkpoint)."""
    if how == "raw-pickle":
        path.write_bytes(pickle.dumps(Payload(marker)))
    else:
        import torch

        torch.save(Payload(marker) if how == "torch-save" else {key: Payload(marker)}, path)
    return path
