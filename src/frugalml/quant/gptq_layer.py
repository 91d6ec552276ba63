"""GPTQ rounding of a whole layer: every group of a convolution against its own Gram matrix.

References: E. Frantar, S. Ashkboos, T. Hoefler and D. Alistarh, "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers" (ICLR 2023, arXiv:2210.17323), applied to
the per-kernel scales of Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of Neural
Networks for Efficient Inference" (ICCV Workshops 2019, arXiv:1902.06822).

:mod:`frugalml.quant.gptq` rounds one weight matrix against one Gram matrix ``H``. A grouped
convolution has one ``H`` per group (:class:`~frugalml.quant.gram.GramAccumulator`), for the
output rows of that group (:func:`group_slices`). This module applies the rounding group by
group to a layer's weight ``(out, -1)``: :func:`fit_layer_weights` (codes for the scales a
scale method chose, with both roundings' output errors), :func:`fit_layer_residual` (the
second low-bit term of the residual kernels) and :func:`layer_output_error`.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._optional import require
from .._results import ResultRepr

require("torch", what="frugalml.quant.quantize_model", extra="quant")

import torch  # noqa: E402

from .gptq import error_compensated_residual, fit_layer, fit_layer_grouped  # noqa: E402
from .gram import GramAccumulator  # noqa: E402
from .groups import group_rows  # noqa: E402
from .residual import ResidualTensor  # noqa: E402
from .scale_result import ScaleResult  # noqa: E402

__all__ = [
    "LayerGptqFit",
    "fit_layer_residual",
    "fit_layer_weights",
    "group_slices",
    "layer_output_error",
]


@dataclass(frozen=True, eq=False, repr=False)
class LayerGptqFit(ResultRepr):
    """Error-compensated weight codes of one layer (all its groups), from
    :func:`fit_layer_weights`.

    ``result``: the method's per-kernel scales rounded to float32, with the codes' per-kernel
    MSE; ``codes``: ``int8`` ``(out, -1)``; ``out_err``: the relative output error
    ``tr(E H E^T) / tr(W H W^T)`` of those codes; ``out_err_nearest``: the same for
    round-to-nearest with the method's scales.
    """

    result: ScaleResult
    codes: np.ndarray
    out_err: float
    out_err_nearest: float

    def summary(self) -> str:
        out, d = self.codes.shape
        return (
            f"error-compensated codes of a {out} x {d} layer: output rel. error "
            f"{self.out_err:.3e} (round-to-nearest {self.out_err_nearest:.3e})"
        )


def group_slices(out: int, groups: int) -> list[slice]:
    """The output rows of each of ``groups`` equal groups of ``out`` rows."""
    per = out // groups
    return [slice(g * per, (g + 1) * per) for g in range(groups)]


def fit_layer_weights(
    W2: np.ndarray, res: ScaleResult, gram: GramAccumulator, group_size: int | None = None
) -> LayerGptqFit:
    """Error-compensated codes of ``W2`` ``(out, -1)`` with ``res``'s scales (one Gram matrix
    per group, :func:`~frugalml.quant.gptq.fit_layer` without scale refit) and the
    output-space errors of both roundings. With ``group_size`` (Linear), ``res`` holds one
    scale per kernel and group of inputs (kernel-major) and the result keeps them.
    ``O(groups (d^3 + rows d^2))`` for ``d`` inputs per kernel and ``rows`` kernels per
    group."""
    grid = res.grid
    out = W2.shape[0]
    if group_size is not None:
        return _fit_grouped(W2, res, gram, group_size)
    # the quantized layer stores float32 scales: round with those
    scale0 = np.broadcast_to(np.asarray(res.scale, dtype=np.float64).reshape(-1), (out,))
    scale0 = scale0.astype(np.float32).astype(np.float64)
    codes = np.zeros(W2.shape, dtype=np.int8)
    scale = scale0.copy()
    num = num_near = den = 0.0
    for g, sl in enumerate(group_slices(out, gram.groups)):
        fit = fit_layer(W2[sl], gram.gram(g), scale0[sl], grid, refit=False)
        codes[sl], scale[sl] = fit.codes, fit.scale
        num += float(fit.row_err.sum())
        num_near += float(fit.row_err_nearest.sum())
        den += float(fit.row_power.sum())
    deq = codes * scale[:, None]
    mse = ((W2 - deq) ** 2).mean(axis=1) if W2.shape[1] else np.zeros(out)
    result = ScaleResult(
        scale=scale,
        zero_point=np.zeros(out, dtype=np.int64),
        mse=mse,
        grid=grid,
        method=res.method,
    )
    return LayerGptqFit(
        result=result,
        codes=codes,
        out_err=num / den if den > 0 else 0.0,
        out_err_nearest=num_near / den if den > 0 else 0.0,
    )


def _fit_grouped(
    W2: np.ndarray, res: ScaleResult, gram: GramAccumulator, group_size: int
) -> LayerGptqFit:
    out, d = W2.shape
    per_group = np.asarray(res.scale, dtype=np.float64).reshape(out, d // group_size)
    per_group = per_group.astype(np.float32).astype(np.float64)
    fit = fit_layer_grouped(W2, gram.gram(0), np.repeat(per_group, group_size, axis=1), res.grid)
    den = float(fit.row_power.sum())
    deq = fit.codes * np.repeat(per_group, group_size, axis=1)
    rows = group_rows(W2 - deq, group_size)
    result = ScaleResult(
        scale=per_group.reshape(-1),
        zero_point=np.zeros(per_group.size, dtype=np.int64),
        mse=(rows**2).mean(axis=1),
        grid=res.grid,
        method=res.method,
    )
    return LayerGptqFit(
        result=result,
        codes=fit.codes,
        out_err=float(fit.row_err.sum()) / den if den > 0 else 0.0,
        out_err_nearest=float(fit.row_err_nearest.sum()) / den if den > 0 else 0.0,
    )


def fit_layer_residual(
    W2: np.ndarray, mask: np.ndarray, info: LayerGptqFit, gram: GramAccumulator, method: str
) -> ResidualTensor:
    """Two-term fit of the ``mask`` kernels, the second term error-compensated on the residual
    of the first (:func:`~frugalml.quant.gptq.error_compensated_residual`), group by group."""
    grid = info.result.grid
    scale = np.asarray(info.result.scale, dtype=np.float32).astype(np.float64)
    parts: list[ResidualTensor] = []
    for g, sl in enumerate(group_slices(W2.shape[0], gram.groups)):
        rows = np.flatnonzero(mask[sl]) + sl.start
        if rows.size:
            parts.append(
                error_compensated_residual(
                    W2[rows],
                    gram.gram(g),
                    info.codes[rows],
                    scale[rows],
                    grid,
                    scale_method=method,
                )
            )
    return ResidualTensor(
        codes1=np.concatenate([p.codes1 for p in parts]),
        scale1=np.concatenate([p.scale1 for p in parts]),
        codes2=np.concatenate([p.codes2 for p in parts]),
        scale2=np.concatenate([p.scale2 for p in parts]),
        mask=np.ones(sum(p.mask.size for p in parts), dtype=bool),
        mse1=np.concatenate([p.mse1 for p in parts]),
        mse=np.concatenate([p.mse for p in parts]),
        grid=grid,
        method=method,
    )


def layer_output_error(W2: np.ndarray, deq2: np.ndarray, gram: GramAccumulator) -> float:
    """Relative output error ``tr(E H E^T) / tr(W H W^T)`` of the dequantized weight ``deq2``
    (``E = W2 - deq2``, both ``(out, -1)``) summed over the groups (0 when ``W H W^T``
    vanishes). ``O(out d^2)``."""
    num = den = 0.0
    for g, sl in enumerate(group_slices(W2.shape[0], gram.groups)):
        Wg = torch.from_numpy(np.ascontiguousarray(W2[sl]))
        E = Wg - torch.from_numpy(np.ascontiguousarray(deq2[sl]))
        H = gram.gram(g)
        num += float(((E @ H) * E).sum())
        den += float(((Wg @ H) * Wg).sum())
    return num / den if den > 0 else 0.0
