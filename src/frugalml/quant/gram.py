"""The Gram matrix ``H = sum_x x x^T`` of a layer's inputs, streamed from calibration batches.

References: E. Frantar, S. Ashkboos, T. Hoefler and D. Alistarh, "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers" (ICLR 2023, arXiv:2210.17323), on top of
the post-training scheme of Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of
Neural Networks for Efficient Inference" (ICCV Workshops 2019, arXiv:1902.06822).

The output error of a quantized layer ``y = W x`` on real inputs is
``||(W - W_q) X||^2 = sum_k e_k^T H e_k`` with ``H = X X^T``; the error-compensated rounding of
:mod:`frugalml.quant.gptq` needs that ``H``. A linear layer's columns are its inputs; a
convolution is a linear map of its unfolded input patches (im2col), so :func:`input_columns`
unfolds ``Conv1d`` / ``Conv2d`` inputs (all padding modes, stride, dilation; one block of
columns per group) and :class:`GramAccumulator` sums ``X^T X`` over calibration batches, in
float32 products accumulated in float64.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

import math
from typing import Any

from .._optional import require
from ..errors import InvalidInputError

require("torch", what="frugalml.quant.gram", extra="quant")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

__all__ = ["GramAccumulator", "input_columns"]

_UNFOLD_CHUNK = 1 << 24  # unfolded elements per chunk when accumulating a convolution's Gram


def _check_layer(module: Any) -> None:
    if type(module) not in (nn.Linear, nn.Conv1d, nn.Conv2d):
        raise InvalidInputError(
            f"expected an nn.Linear, nn.Conv1d or nn.Conv2d, got {type(module).__name__}"
        )


def _pad_amounts(module: nn.Module) -> list[int] | None:
    """``F.pad`` amounts (last dimension first) for a zero-padded convolution, or ``None``."""
    nd = len(module.kernel_size)
    if isinstance(module.padding, str):
        if module.padding == "valid":
            return None
        pads: list[int] = []  # "same": total d (k - 1), the odd unit on the right (as torch)
        for i in reversed(range(nd)):
            total = module.dilation[i] * (module.kernel_size[i] - 1)
            pads += [total // 2, total - total // 2]
        return pads
    pads = []
    for i in reversed(range(nd)):
        pads += [module.padding[i], module.padding[i]]
    return pads if any(pads) else None


def input_columns(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The inputs of ``module`` as the columns its weight multiplies: ``(groups, rows, d)``.

    Linear: ``x`` ``(*, in)`` -> ``(1, prod(*), in)``. ``Conv1d`` / ``Conv2d``: the unfolded
    patches (im2col, ``torch.nn.functional.unfold``; a ``Conv1d`` input is unfolded as an image
    of height 1), one row per output position and sample, ``d = in_channels / groups *
    prod(kernel_size)`` ordered as ``weight.reshape(out, -1)``; the padding (number, ``"same"``,
    ``"valid"``, and ``padding_mode``) is applied as the layer applies it, so
    ``columns[g] @ weight[group g].reshape(out / groups, -1).T`` is the layer's output (without
    bias). Unbatched inputs are accepted. Same dtype and device as ``x``.
    """
    _check_layer(module)
    if isinstance(module, nn.Linear):
        return x.reshape(1, -1, x.shape[-1])
    nd = len(module.kernel_size)
    if x.dim() == nd + 1:
        x = x.unsqueeze(0)
    if x.dim() != nd + 2:
        raise InvalidInputError(
            f"a {nd}-d convolution needs an input with {nd + 1} or {nd + 2} dimensions, "
            f"got shape {tuple(x.shape)}"
        )
    if module.padding_mode != "zeros":
        x = F.pad(x, module._reversed_padding_repeated_twice, mode=module.padding_mode)
    else:
        pads = _pad_amounts(module)
        if pads is not None:
            x = F.pad(x, pads)
    if nd == 1:
        x = x.unsqueeze(2)
        kernel, dilation, stride = (
            (1, module.kernel_size[0]),
            (1, module.dilation[0]),
            (1, module.stride[0]),
        )
    else:
        kernel, dilation, stride = module.kernel_size, module.dilation, module.stride
    cols = F.unfold(x, kernel, dilation=dilation, stride=stride)  # (N, C * K, L)
    g = module.groups
    n, ck, length = cols.shape
    cols = cols.reshape(n, g, ck // g, length).permute(1, 0, 3, 2)  # (g, N, L, d)
    return cols.reshape(g, n * length, ck // g)


class GramAccumulator:
    """Streaming Gram matrix ``H = sum_x x x^T`` of a layer's input columns (one per group).

    ``update(x)`` takes what the layer receives (e.g. in a forward pre-hook), unfolds it with
    :func:`input_columns` and adds ``X^T X`` of every group: the products are computed in
    float32 (float64 for float64 inputs) on ``x``'s device and accumulated in float64.
    Convolution inputs are processed in batch chunks of at most ``2^24`` unfolded values.
    ``batch_gram(x)`` / ``add(delta, rows)`` split the two steps (so layers fed the same tensor,
    such as attention's query/key/value projections, can share one product).
    Attributes: ``H``, a ``(groups, d, d)`` float64 tensor (``None`` before the first update);
    ``rows``, the number of columns seen (samples x output positions); ``dim``, ``d``;
    ``groups``.
    """

    def __init__(self, module: nn.Module) -> None:
        _check_layer(module)
        self.module = module
        self.groups = int(getattr(module, "groups", 1))
        if isinstance(module, nn.Linear):
            self.dim = int(module.in_features)
        else:
            self.dim = int(module.in_channels // self.groups * math.prod(module.kernel_size))
        self.H: torch.Tensor | None = None
        self.rows = 0

    def batch_gram(self, x: torch.Tensor) -> tuple[torch.Tensor | None, int]:
        """``(X^T X per group, rows)`` of one input batch (``None`` for an empty batch)."""
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x):
            raise InvalidInputError("GramAccumulator needs a floating point input tensor")
        x = x.detach()
        dt = torch.float64 if x.dtype == torch.float64 else torch.float32
        x = x.to(dt)
        if isinstance(self.module, nn.Linear) or x.dim() == 0:
            chunks = [x]
        else:
            nd = len(self.module.kernel_size)
            batched = x if x.dim() == nd + 2 else x.unsqueeze(0)
            per_sample = max(batched[0].numel() * math.prod(self.module.kernel_size), 1)
            chunks = list(batched.split(max(1, _UNFOLD_CHUNK // per_sample)))
        total: torch.Tensor | None = None
        rows = 0
        for part in chunks:
            cols = input_columns(self.module, part)
            if cols.shape[-1] != self.dim:
                raise InvalidInputError(
                    f"the input has {cols.shape[-1]} features per column, the layer expects "
                    f"{self.dim}"
                )
            if cols.shape[1] == 0:
                continue
            gram = torch.bmm(cols.transpose(1, 2), cols).to(torch.float64)
            total = gram if total is None else total.add_(gram)
            rows += int(cols.shape[1])
        return total, rows

    def add(self, delta: torch.Tensor | None, rows: int) -> None:
        """Add a product from :meth:`batch_gram` (of this or an identical layer)."""
        if delta is None:
            return
        if self.H is None:
            self.H = delta.clone()
        else:
            self.H += delta
        self.rows += int(rows)

    def update(self, x: torch.Tensor) -> None:
        """Add the Gram matrix of one input batch ``x``."""
        self.add(*self.batch_gram(x))

    def gram(self, group: int = 0) -> torch.Tensor:
        """``H`` of one group as a float64 CPU tensor ``(d, d)`` (zeros before any update)."""
        if self.H is None:
            return torch.zeros(self.dim, self.dim, dtype=torch.float64)
        return self.H[group].cpu()
