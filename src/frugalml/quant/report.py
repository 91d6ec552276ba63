"""What :func:`~frugalml.quant.convert.quantize_model` did: per-layer and whole-model reports.

The conversion follows Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of Neural
Networks for Efficient Inference" (ICCV Workshops 2019, arXiv:1902.06822): per-kernel weight
scales, optional residual tensors for the worst kernels (whose extra multiply-accumulates the
reports count), per-tensor activation scales. :class:`LayerReport` describes one quantized
layer, :class:`QuantizationReport` the whole model (the quantized copy included);
:class:`QuantizationWarning` is the warning category for what was left in float.

Torch is required (extra ``quant``): the report holds the quantized ``nn.Module``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._optional import require
from .._results import ResultRepr

require("torch", what="frugalml.quant.quantize_model", extra="quant")

from torch import nn  # noqa: E402

__all__ = ["LayerReport", "QuantizationReport", "QuantizationWarning"]


class QuantizationWarning(UserWarning):
    """Something in the model was left in float, or the model's mode was changed."""


@dataclass(frozen=True, repr=False)
class LayerReport(ResultRepr):
    """What :func:`quantize_model` did to one layer.

    ``weight_mse`` / ``weight_rel_mse``: mean squared error and relative squared error
    ``||W - W_q||^2 / ||W||^2`` of the dequantized weight (residual included);
    ``base_weight_mse``: the same MSE without the residual tensors; ``kernels``: output
    channels; ``residual_kernels``: kernels with a second tensor; ``macs`` / ``extra_macs``:
    multiply-accumulates per calibration sample (the leading dimension of the first tensor of
    the first calibration batch, looking inside tuples and dicts) of the layer and of its
    residual pass; ``a_scale``, ``a_zero_point``, ``a_signed``, ``a_mse``: the input's grid and
    the calibration estimate of its quantization MSE (``None`` without activation
    quantization). ``rounding``: how the weight codes were chosen; with ``"gptq"``,
    ``output_rel_err`` is the relative output-space error ``tr(E H E^T) / tr(W H W^T)`` of the
    dequantized weight (residual included; ``E = W - W_q``, ``H`` the Gram matrix of the
    layer's calibration inputs) and ``output_rel_err_nearest`` the same for round-to-nearest
    with the method's scales, without residual (the paper's first term); both ``None`` with
    ``"nearest"`` (no Gram matrix is collected).
    """

    name: str
    kind: str
    weight_shape: tuple[int, ...]
    w_bits: int
    a_bits: int | None
    weight_mse: float
    weight_rel_mse: float
    base_weight_mse: float
    kernels: int
    residual_kernels: int
    macs: float
    extra_macs: float
    a_scale: float | None = None
    a_zero_point: int | None = None
    a_signed: bool | None = None
    a_mse: float | None = None
    rounding: str = "nearest"
    output_rel_err: float | None = None
    output_rel_err_nearest: float | None = None
    input_residual: bool = False

    def summary(self) -> str:
        if self.a_bits is None:
            act = "float input"
        elif self.a_scale is None:
            act = f"A{self.a_bits} per-token scales at run time"
        else:
            kind = "signed" if self.a_signed else "unsigned"
            zp = f" zp {self.a_zero_point}" if self.a_zero_point else ""
            act = f"A{self.a_bits} {kind} scale {self.a_scale:.4g}{zp}"
        res = f", residual {self.residual_kernels}/{self.kernels}" if self.residual_kernels else ""
        out = ""
        if self.output_rel_err is not None:
            out = f", output rel err {self.output_rel_err:.3e}"
            if self.output_rel_err_nearest is not None:
                out += f" (nearest {self.output_rel_err_nearest:.3e})"
        return (
            f"{self.name} ({self.kind} {tuple(self.weight_shape)}): W{self.w_bits} rel MSE "
            f"{self.weight_rel_mse:.3e}{res}{out}; {act}; {self.macs:.4g} MACs"
        )


@dataclass(frozen=True, repr=False)
class QuantizationReport(ResultRepr):
    """Result of :func:`quantize_model`.

    ``model``: the quantized copy; ``layers``: one :class:`LayerReport` per quantized layer in
    model order; ``skipped``: names of the modules left in float (``skip``, unsupported types
    with parameters, never called), also split into ``unsupported`` and ``not_called``;
    ``extra_macs`` / ``total_macs``: residual MACs and MACs of the quantized layers per
    calibration sample; ``seconds``: wall time of the whole conversion; ``rounding``: the
    weight rounding (``"nearest"`` or ``"gptq"``).
    """

    model: nn.Module = field(repr=False)
    layers: tuple[LayerReport, ...]
    skipped: tuple[str, ...]
    extra_macs: float
    total_macs: float
    seconds: float
    method: str = "mmse"
    w_bits: int = 4
    a_bits: int | None = 8
    unsupported: tuple[str, ...] = ()
    not_called: tuple[str, ...] = ()
    calib_batches: int = 0
    rounding: str = "nearest"

    @property
    def extra_mac_fraction(self) -> float:
        """``extra_macs / total_macs`` (0 when there are no MACs)."""
        return self.extra_macs / self.total_macs if self.total_macs else 0.0

    def summary(self) -> str:
        act = "float activations" if self.a_bits is None else f"A{self.a_bits}"
        res = sum(lay.residual_kernels for lay in self.layers)
        rnd = "" if self.rounding == "nearest" else f", {self.rounding} rounding"
        head = (
            f"quantize_model ({self.method}{rnd}, W{self.w_bits} {act}): {len(self.layers)} layers "
            f"quantized, {len(self.skipped)} left float, {res} residual kernels "
            f"(+{100 * self.extra_mac_fraction:.2f}% MACs), {self.calib_batches} calibration "
            f"batches, {self.seconds:.2f}s"
        )
        lines = [head] + ["  " + lay.summary() for lay in self.layers]
        if self.skipped:
            lines.append("  float: " + ", ".join(self.skipped))
        return "\n".join(lines)
