"""The torch device argument of the convex area's torch-backed functions.

Reference: the solvers and baselines that use it — B. Bartan and M. Pilanci,
arXiv:2101.02429 (polynomial networks) and arXiv:2105.01420 (quantized networks), and
A. Sahiner et al., arXiv:2107.05680 (convex GANs).
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInputError

__all__ = ["torch_device"]


def torch_device(torch: Any, device: Any) -> Any:
    """``torch.device(device)`` (``None``: the CPU), or
    :class:`~frugalml.errors.InvalidInputError` for a string torch does not know."""
    try:
        return torch.device(device or "cpu")
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"device must be a torch device such as 'cpu' or 'cuda', got "
                                f"{device!r}") from exc  # fmt: skip
