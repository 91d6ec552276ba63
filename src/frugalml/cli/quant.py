"""``frugalml quant model | eval``: MMSE post-training quantization of PyTorch models.

Paper: Choukroun, Kravchik, Yang, Kisilev, "Low-bit Quantization of Neural Networks for Efficient
Inference" (arXiv 1902.06822).
"""

from __future__ import annotations

import io
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import typer

from .._io import atomic_write_bytes
from .._validate import check_choice
from ..errors import InvalidInputError
from ._common import BLAS_OPTION, JSON_OPTION, console, emit_json, limit_blas_threads

__all__ = ["quant_app"]

quant_app = typer.Typer(
    help="Low-bit post-training quantization (MMSE scales, residual tensors).",
    no_args_is_help=True,
)

BUILTIN = ("digits-cnn", "mnist1d-cnn", "minilm")
METHOD_HELP = "mmse (the paper's) | minmax | percentile | aciq | histogram"
W_BITS = typer.Option(4, "--w-bits", help="Weight bits, 2..8 (per output channel).")
A_BITS = typer.Option(8, "--a-bits", help="Activation bits, 2..8 (per tensor).")
METHOD = typer.Option("mmse", help=METHOD_HELP)
RESIDUAL = typer.Option(
    None, help="Fraction of kernels (worst first) that get a second low-bit tensor."
)
ACT_RESIDUAL = typer.Option(
    None, help="MAC budget (fraction) for second low-bit input tensors of the worst layers."
)
ROUNDING = typer.Option("nearest", help="nearest (the paper's) | gptq (error-compensated).")
WEIGHTS_ONLY = typer.Option(False, "--weights-only", help="Keep activations in float.")


def _load_tensor(path: Path) -> Any:
    """A calibration tensor from .pt (a tensor), .npy or .npz (its first array)."""
    import torch

    if not path.exists():
        raise InvalidInputError(f"calibration file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".pt":
        data = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(data, torch.Tensor):
            raise InvalidInputError(f"{path} must hold one tensor, got {type(data).__name__}")
        return data.float()
    if suffix == ".npy":
        return torch.as_tensor(np.load(path)).float()
    if suffix == ".npz":
        with np.load(path) as z:
            if not z.files:
                raise InvalidInputError(f"{path} holds no arrays")
            return torch.as_tensor(z[z.files[0]]).float()
    raise InvalidInputError(f"calibration file must be .pt, .npy or .npz, got {path.name!r}")


def _quantize(model, calib, w_bits, a_bits, method, residual, act_residual, rounding, weights_only):
    from ..quant.convert import quantize_model

    return quantize_model(
        model,
        calib,
        w_bits=w_bits,
        a_bits=a_bits,
        method=method,
        residual=residual,
        act_residual=act_residual,
        rounding=rounding,
        quantize_activations=not weights_only,
    )


def _layer_table(report) -> Any:
    from rich.table import Table

    table = Table(title=report.summary())
    for col in ("layer", "kind", "weight rel. MSE", "residual kernels", "a_bits", "input residual"):
        table.add_column(col, justify="right")
    for layer in report.layers:
        table.add_row(
            layer.name,
            layer.kind,
            f"{layer.weight_rel_mse:.3g}",
            f"{layer.residual_kernels}/{layer.kernels}",
            str(layer.a_bits),
            "yes" if layer.input_residual else "",
        )
    return table


def _layers_json(report) -> list[dict[str, Any]]:
    return [
        {
            "name": layer.name,
            "kind": layer.kind,
            "weight_mse": layer.weight_mse,
            "weight_rel_mse": layer.weight_rel_mse,
            "residual_kernels": layer.residual_kernels,
            "kernels": layer.kernels,
            "a_bits": layer.a_bits,
            "input_residual": layer.input_residual,
        }
        for layer in report.layers
    ]


@quant_app.command("model")
def model_cmd(
    model_path: Path = typer.Argument(..., help="A whole torch model saved with torch.save."),
    calib: Path = typer.Option(..., help="Unlabeled calibration inputs: .pt, .npy or .npz."),
    out: Path = typer.Option(..., "--out", help="Write the integer export (.pt) here."),
    w_bits: int = W_BITS,
    a_bits: int = A_BITS,
    method: str = METHOD,
    residual: float = RESIDUAL,
    act_residual: float = ACT_RESIDUAL,
    rounding: str = ROUNDING,
    weights_only: bool = WEIGHTS_ONLY,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Quantize a saved model's Linear/Conv1d/Conv2d layers and export int8 codes + scales."""
    import torch

    limit_blas_threads(blas_threads)
    if not model_path.exists():
        raise InvalidInputError(f"model file {model_path} does not exist")
    try:  # a whole pickled module: only load files you trust
        model = torch.load(model_path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise InvalidInputError(f"could not load a torch model from {model_path}: {exc}") from exc
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(
            f"{model_path} holds a {type(model).__name__}, not an nn.Module; save the whole "
            "model with torch.save(model, path)"
        )
    data = _load_tensor(calib)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = _quantize(
            model, data, w_bits, a_bits, method, residual, act_residual, rounding, weights_only
        )
    export = {
        "layers": {
            name: mod.export()
            for name, mod in report.model.named_modules()
            if hasattr(mod, "export") and hasattr(mod, "w_codes")
        },
        "meta": {
            "w_bits": w_bits,
            "a_bits": None if weights_only else a_bits,
            "method": method,
            "residual": residual,
            "act_residual": act_residual,
            "rounding": rounding,
            "paper": "arXiv 1902.06822",
        },
    }
    buf = io.BytesIO()
    torch.save(export, buf)
    atomic_write_bytes(out, buf.getvalue())
    payload = {
        "out": str(out),
        "layers": _layers_json(report),
        "skipped": list(report.skipped),
        "extra_mac_fraction": report.extra_mac_fraction,
        "seconds": report.seconds,
        "warnings": [str(w.message) for w in caught],
    }
    if json_out:
        emit_json(payload)
    else:
        for w in caught:
            console.print(f"[yellow]warning:[/] {w.message}")
        console.print(_layer_table(report))
        console.print(f"wrote {out}")
    return 0


def _builtin(name: str, seed: int, say) -> tuple[Any, Any, Any]:
    """(model, calibration data, evaluate(model) -> metrics dict) of a built-in task."""
    if name == "minilm":
        from ..quant.data import stdlib_docstrings
        from ..quant.minilm import calibration_batches, embed, embedding_agreement, load_minilm

        texts = stdlib_docstrings(limit=628)
        model = load_minilm()
        eval_texts = texts[128:]
        ref = embed(model, eval_texts)

        def evaluate(m):
            agree = embedding_agreement(ref, embed(m, eval_texts))
            return {"mean_cosine": agree.mean_cosine, "nn_agreement": agree.nn_top1_agreement}

        return model, calibration_batches(model, texts[:128], batch_size=32), evaluate
    from ..quant.data import load_digits_images, load_mnist1d
    from ..quant.models import MNIST1DCNN, RECIPES, DigitsCNN, accuracy, train_classifier

    if name == "digits-cnn":
        split, cls, recipe = load_digits_images(seed), DigitsCNN, RECIPES["digits"]
    else:
        split, cls, recipe = load_mnist1d(seed, n=5000), MNIST1DCNN, RECIPES["mnist1d"]
    say(f"training {name} (seed {seed})")
    trained = train_classifier(cls(seed=seed), split.train, split.test, seed=seed, **recipe)
    X_te, y_te = split.test
    return trained.model, split.X_train[:256], lambda m: {"accuracy": accuracy(m, X_te, y_te)}


@quant_app.command("eval")
def eval_cmd(
    model: str = typer.Option("digits-cnn", help="digits-cnn | mnist1d-cnn | minilm"),
    w_bits: int = W_BITS,
    a_bits: int = A_BITS,
    method: str = METHOD,
    residual: float = RESIDUAL,
    act_residual: float = ACT_RESIDUAL,
    rounding: str = ROUNDING,
    weights_only: bool = WEIGHTS_ONLY,
    seed: int = typer.Option(0, help="Seed of the CNN's training and data split."),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Quantize a built-in model and compare it with FP32 (accuracy, or embedding agreement)."""
    import torch

    limit_blas_threads(blas_threads)
    check_choice(model, "--model", BUILTIN)
    torch.set_num_threads(blas_threads or 1)
    t0 = time.perf_counter()
    with console.status("preparing") as status:
        net, calib, evaluate = _builtin(model, seed, lambda s: status.update(s))
        fp32 = evaluate(net)
        status.update("quantizing")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LayerNorm/Embedding stay float (listed in JSON)
            report = _quantize(
                net, calib, w_bits, a_bits, method, residual, act_residual, rounding, weights_only
            )
        status.update("evaluating")
        quant = evaluate(report.model)
    payload = {
        "model": model,
        "w_bits": w_bits,
        "a_bits": None if weights_only else a_bits,
        "method": method,
        "residual": residual,
        "act_residual": act_residual,
        "rounding": rounding,
        "fp32": fp32,
        "quantized": quant,
        "extra_mac_fraction": report.extra_mac_fraction,
        "quantize_seconds": report.seconds,
        "seconds": time.perf_counter() - t0,
        "skipped": list(report.skipped),
        "layers": _layers_json(report),
    }
    if json_out:
        emit_json(payload)
        return 0
    console.print(_layer_table(report))
    for key in fp32:
        console.print(f"{key}: FP32 {fp32[key]:.4f} -> quantized {quant[key]:.4f}")
    console.print(
        f"extra MACs {100 * report.extra_mac_fraction:.1f}%, quantized in {report.seconds:.1f} s"
    )
    return 0
