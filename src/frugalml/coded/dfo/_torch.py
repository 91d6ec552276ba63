"""torch for the black-box attacks of :mod:`.attack` (Ilyas et al. 2018, arXiv 1804.08598):
imported on first use (extra ``dfo``), and the check of a ``device=`` argument.

Shared by :mod:`.classifiers` (training the CNNs), :mod:`.blackbox` (the logits oracle) and
:mod:`.attack`; importing this module does not import torch. O(1).
"""

from __future__ import annotations

from typing import Any

from ..._optional import require
from ..._validate import check_choice
from ...errors import InvalidInputError

__all__ = ["check_device", "torch_module"]


def torch_module() -> Any:
    """The ``torch`` module, or :class:`~frugalml.errors.BackendUnavailableError` naming the
    extra to install."""
    return require("torch", what="black-box attacks on CNNs", extra="dfo")


def check_device(device: Any) -> Any:
    """``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"`` or a ``torch.device``) as a
    ``torch.device``; raises :class:`~frugalml.errors.InvalidInputError` for anything else or
    for CUDA when torch has none."""
    torch = torch_module()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(f"device must be 'cpu' or 'cuda[:i]', got {device!r}") from exc
    check_choice(dev.type, "device type", ("cpu", "cuda"))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(
            "device='cuda' was requested but torch.cuda.is_available() is False"
        )
    return dev
