"""Low-bit post-training quantization by minimum mean squared error, with residual tensors.

Paper: Y. Choukroun, E. Kravchik, F. Yang, P. Kisilev, "Low-bit Quantization of Neural Networks
for Efficient Inference", ICCV Workshops 2019 (arXiv 1902.06822).

* :mod:`.uniform` — uniform grids (2-8 bits, signed/unsigned), quantize / dequantize, the exact
  MSE of many candidate scales in one pass.
* :mod:`.scale_result` — :class:`ScaleResult`, the parameters every scale method returns;
  :mod:`.scale_search` — the coarse-grid / golden-section / zero-point searches they share.
* :mod:`.mmse` — MMSE scale search (coarse grid, golden section, alternating closed form),
  per tensor or per output channel; :class:`MMSEQuantizer`.
* :mod:`.baselines` — min-max, percentile, ACIQ analytical clipping, PyTorch's
  ``HistogramObserver``; :data:`SCALE_METHODS`.
* :mod:`.calibrate` — streaming activation histograms and MMSE from them (no labels).
* :mod:`.residual` — second low-bit tensors for the worst-approximated kernels.
* :mod:`.gptq` (torch) — activation-aware, error-compensated rounding of the weights (GPTQ /
  Optimal Brain Quantization, arXiv 2210.17323) for the same scales and integer kernels;
  ``quantize_model(..., rounding="gptq")``; :mod:`.gram` accumulates the input Gram matrices,
  :mod:`.gptq_layer` applies the rounding group by group to a layer.
* :mod:`.modules` (torch) — integer-simulated ``Linear`` / ``Conv1d`` / ``Conv2d``
  (:mod:`.layer_params` checks their parameters).
* :mod:`.convert` (torch) — :func:`quantize_model`, composed of the steps
  :mod:`.prepare` (copy, sort the modules), :mod:`.calibration_pass` (observe the layers'
  inputs, :mod:`.observers`, :mod:`.calibration_data`), :mod:`.plan` (weight scales, codes,
  residual choice), the conversion itself and :mod:`.input_residual`; reports in
  :mod:`.report`.
* :mod:`.dynamic` (torch) — per-token activation scales computed at run time
  (``act_mode="dynamic"``); :mod:`.groups` — group-wise weight scales (``group_size=``);
  :mod:`.smooth` (torch) — SmoothQuant-style migration of input outliers into the weights,
  its strength chosen per layer by the MMSE criterion (``smooth="mmse"``).
* :mod:`.onnx_export` (torch) — :func:`export_onnx`: an ONNX file ONNX Runtime runs with
  integer kernels (QDQ / ``MatMulInteger``, packed int4 weights; the layer subgraphs are built
  in :mod:`.onnx_lower`); :mod:`.artifact` — :func:`load` gives it back as a runnable
  :class:`QuantizedOnnxModel`, refusing corrupted or foreign files (no unpickling).
* :mod:`.data`, :mod:`.models`, :mod:`.minilm` — evaluation data, in-house CNNs and the
  all-MiniLM-L6-v2 sentence encoder (offline).

The torch modules are imported lazily, so ``import frugalml.quant`` needs only NumPy.
"""

from __future__ import annotations

from .._optional import lazy_exports
from .baselines import (
    SCALE_METHODS,
    aciq_scale,
    histogram_observer_scale,
    minmax_scale,
    percentile_scale,
)
from .calibrate import ActivationHistogram, calibrate_activation, mmse_from_histogram
from .mmse import MMSEQuantizer, ScaleResult, mmse_scale
from .residual import ResidualPlan, ResidualTensor, rank_kernels, residual_quantize, select_residual
from .uniform import Grid, dequantize, fake_quantize, quant_mse, quantize

_LAZY = {
    "quantize_model": "convert",
    "QuantizationReport": "report",
    "LayerReport": "report",
    "QuantizationWarning": "report",
    "QuantizedLinear": "modules",
    "QuantizedConv1d": "modules",
    "QuantizedConv2d": "modules",
    "quantize_layer": "modules",
    "GramAccumulator": "gram",
    "error_compensated_codes": "gptq",
    "export_onnx": "onnx_export",
    "ExportReport": "onnx_export",
    "load": "artifact",
    "QuantizedOnnxModel": "artifact",
}

__all__ = [
    "SCALE_METHODS",
    "ActivationHistogram",
    "ExportReport",
    "GramAccumulator",
    "Grid",
    "LayerReport",
    "MMSEQuantizer",
    "QuantizationReport",
    "QuantizationWarning",
    "QuantizedConv1d",
    "QuantizedConv2d",
    "QuantizedLinear",
    "QuantizedOnnxModel",
    "ResidualPlan",
    "ResidualTensor",
    "ScaleResult",
    "aciq_scale",
    "calibrate_activation",
    "dequantize",
    "error_compensated_codes",
    "export_onnx",
    "fake_quantize",
    "histogram_observer_scale",
    "load",
    "minmax_scale",
    "mmse_from_histogram",
    "mmse_scale",
    "percentile_scale",
    "quant_mse",
    "quantize",
    "quantize_layer",
    "quantize_model",
    "rank_kernels",
    "residual_quantize",
    "select_residual",
]


__getattr__ = lazy_exports(__name__, _LAZY)
