"""The ``device=`` argument of every torch-backed public function.

One check for the whole library: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``
becomes a ``torch.device``; anything else, and CUDA on a machine without it, raises
:class:`~frugalml.errors.InvalidInputError` before any work. torch is imported on first use.
"""

from __future__ import annotations

from typing import Any

from .errors import InvalidInputError

__all__ = ["check_device"]

_TYPES = ("cpu", "cuda")


def check_device(device: Any, name: str = "device") -> Any:
    """``device`` as a ``torch.device`` of type cpu or an available cuda (``None``: the CPU)."""
    import torch

    if device is None:
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)) or (isinstance(device, str) and not device):
        raise InvalidInputError(
            f"{name} must be 'cpu', 'cuda', 'cuda:<i>' or a torch.device, got {device!r}"
        )
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"{name} must be 'cpu', 'cuda', 'cuda:<i>' or a torch.device, got {device!r}"
        ) from exc
    if dev.type not in _TYPES:
        raise InvalidInputError(f"{name} type must be one of {list(_TYPES)}, got {dev.type!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            f"{name}={str(device)!r} was requested but torch.cuda.is_available() is False: "
            "pass device='cpu' or run on a machine with a CUDA GPU"
        )
    return dev
