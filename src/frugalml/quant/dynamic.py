"""Per-token dynamic activation quantization: scales computed at run time, one per row.

Static per-tensor activation scales (the scheme of Choukroun, Kravchik, Yang and Kisilev,
"Low-bit Quantization of Neural Networks for Efficient Inference", ICCV Workshops 2019,
arXiv:1902.06822) lose most of a transformer's 8-bit accuracy on a few outlier channels and
tokens. Computing the input's scale per token when the layer runs (as in LLM.int8(), Dettmers
et al. 2022, and ZeroQuant, Yao et al. 2022) removes the token part of that loss at the cost of
one max-reduction per row:

    a_t = max_j |x_tj| / qmax,    q_tj = clip(round(x_tj / a_t), -qmax, qmax),

with ``qmax = 2^(b-1) - 1`` (a signed symmetric grid, zero point 0, so the integer kernel needs
no zero-point correction). A row of zeros gets ``a_t = 1`` and codes 0. ``round`` is round half
to even, as in ONNX ``Round`` and ``QuantizeLinear``, so the exported graph computes the same
codes bit for bit.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

from .._optional import require
from ..errors import InvalidInputError
from .uniform import check_bits

require("torch", what="frugalml.quant.dynamic", extra="quant")

import torch  # noqa: E402

__all__ = ["ACT_MODES", "fake_quantize_tokens", "token_codes"]

ACT_MODES = ("static", "dynamic")
"""Accepted ``act_mode`` values: ``"static"`` (one calibrated scale per tensor) or
``"dynamic"`` (one scale per token, computed at run time)."""


def token_codes(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer codes of ``x`` ``(*, d)`` on a signed ``bits``-bit grid with one scale per row.

    Returns ``(codes, scale)``: ``codes`` in ``x``'s dtype, integer-valued, shape of ``x``;
    ``scale`` ``(*, 1)`` with ``x ~ codes * scale``. ``O(numel(x))``.
    """
    bits = check_bits(bits)
    if not torch.is_floating_point(x):
        raise InvalidInputError(f"input must be a floating point tensor, got {x.dtype}")
    if x.dim() == 0:
        raise InvalidInputError("per-token quantization needs at least one dimension")
    qmax = float(2 ** (bits - 1) - 1)
    amax = x.abs().amax(dim=-1, keepdim=True)
    scale = amax / qmax
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = torch.clamp(torch.round(x / scale), -qmax, qmax)
    return codes, scale


def fake_quantize_tokens(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``codes * scale`` of :func:`token_codes`: ``x`` rounded to its per-token grid."""
    codes, scale = token_codes(x, bits)
    return codes * scale
