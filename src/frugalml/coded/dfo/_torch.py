"""torch for the black-box attacks of :mod:`.attack` (Ilyas et al. 2018, arXiv 1804.08598):
imported on first use (extra ``dfo``), and the check of a ``device=`` argument.

Shared by :mod:`.classifiers` (training the CNNs), :mod:`.blackbox` (the logits oracle) and
:mod:`.attack`; importing this module does not import torch. O(1).
"""

from __future__ import annotations

from typing import Any

from ..._device import check_device as _check_device
from ..._optional import require

__all__ = ["check_device", "torch_module"]


def torch_module() -> Any:
    """The ``torch`` module, or :class:`~frugalml.errors.BackendUnavailableError` naming the
    extra to install."""
    return require("torch", what="black-box attacks on CNNs", extra="dfo")


def check_device(device: Any) -> Any:
    """``device`` as a ``torch.device`` (:func:`frugalml._device.check_device`), after checking
    that torch (the ``dfo`` extra) is installed."""
    torch_module()
    return _check_device(device)
