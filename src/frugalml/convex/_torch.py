"""The torch device argument of the convex area's torch-backed functions.

Reference: the solvers and baselines that use it — B. Bartan and M. Pilanci,
arXiv:2101.02429 (polynomial networks) and arXiv:2105.01420 (quantized networks), and
A. Sahiner et al., arXiv:2107.05680 (convex GANs).
"""

from __future__ import annotations

from typing import Any

from .._device import check_device

__all__ = ["torch_device"]


def torch_device(torch: Any, device: Any) -> Any:
    """``device`` as a ``torch.device`` (``None``: the CPU); see
    :func:`frugalml._device.check_device`."""
    del torch  # kept for the callers' signature: torch is already imported
    return check_device(device)
