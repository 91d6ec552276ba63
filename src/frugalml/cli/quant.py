"""``frugalml quant model | eval``: MMSE post-training quantization of PyTorch models and of
Hugging Face text encoders (``--hf DIR|minilm`` with calibration texts).

Paper: Choukroun, Kravchik, Yang, Kisilev, "Low-bit Quantization of Neural Networks for Efficient
Inference" (arXiv 1902.06822).
"""

from __future__ import annotations

import io
import pickle
import re
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.markup import escape

from .._io import atomic_write_bytes, check_output_path
from .._resources import check_memory
from .._validate import check_choice
from ..errors import InvalidInputError
from ..progress import Progress
from ._common import (
    BLAS_OPTION,
    JSON_OPTION,
    WorkBar,
    console,
    emit_json,
    err_console,
    limit_blas_threads,
)

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
ALL_LAYERS = typer.Option(
    False, "--all", help="List every layer (default: the worst-quantized ones)."
)
ACT_MODE = typer.Option(
    "static",
    "--act-mode",
    help="static (per-tensor activation scales from calibration) | dynamic (scales computed "
    "at run time).",
)
GROUP_SIZE = typer.Option(
    None, "--group-size", help="Weight scales per group of this many input channels."
)
SMOOTH = typer.Option(
    None, "--smooth", help="Move activation outliers into the weights: mmse | an alpha in [0, 1]."
)
HF = typer.Option(
    None,
    "--hf",
    help="A Hugging Face text encoder: a local directory (sentence-transformers or "
    "transformers; nothing is downloaded) or 'minilm' (the bundled all-MiniLM-L6-v2).",
)
BATCH_SIZE = typer.Option(32, "--batch-size", min=1, help="Texts per batch (with --hf).")
#: layers the table shows without --all (the worst by relative weight MSE)
WORST_LAYERS = 12
ACT_MODES = ("static", "dynamic")


def _stage(update: Progress, lo: float, hi: float) -> Progress:
    """The callback of one stage that fills the part [lo, hi] of the whole bar."""
    return lambda message, fraction: update(message, lo + (hi - lo) * fraction)


#: calibration arrays: floats become float32, integers (token ids, masks) int64
_CALIB_HELP = (
    "a .npy array, a .npz (one array, or several named ones passed as keyword arguments, e.g. "
    "input_ids and attention_mask), or a .pt holding a tensor or a dict of tensors"
)


def _calib_tensor(value: Any, where: str) -> Any:
    import torch

    array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if array.dtype.kind == "f":
        dtype = torch.float32
    elif array.dtype.kind in "iub":
        dtype = torch.int64
    else:
        raise InvalidInputError(
            f"{where} holds {array.dtype} values; calibration inputs must be numbers"
        )
    if array.ndim == 0 or array.shape[0] == 0:
        raise InvalidInputError(
            f"{where} must have a batch dimension with at least one sample, got shape "
            f"{tuple(array.shape)}"
        )
    return torch.as_tensor(np.ascontiguousarray(array)).to(dtype)


def _calib_bytes(path: Path) -> int:
    """Bytes the calibration inputs take once loaded (as float32/int64; header only)."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        return int(arr.size) * 8
    if suffix == ".npz":
        with zipfile.ZipFile(path) as z:
            return 2 * sum(info.file_size for info in z.infolist())
    return 2 * path.stat().st_size


def _load_calib(path: Path) -> Any:
    """Calibration inputs (never unpickles): a tensor, or a dict of named tensors."""
    import torch

    if not path.exists():
        raise InvalidInputError(f"--calib: calibration file {path} does not exist")
    if path.is_dir():
        raise InvalidInputError(f"--calib {path} is a directory; give {_CALIB_HELP}")
    suffix = path.suffix.lower()
    if suffix not in (".pt", ".npy", ".npz"):
        raise InvalidInputError(f"--calib must be {_CALIB_HELP}; got {path.name!r}")
    try:
        nbytes = _calib_bytes(path)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise InvalidInputError(f"--calib {path} is not a valid {suffix} file: {exc}") from None
    check_memory(
        nbytes,
        f"the calibration inputs in {path.name}",
        fix="use fewer calibration samples (a few hundred are enough)",
    )
    try:
        if suffix == ".pt":
            data = torch.load(path, map_location="cpu", weights_only=True)
        elif suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as z:
                data = {name: z[name] for name in z.files}
    except Exception as exc:  # garbage, a truncated file, an object array (needs pickle)
        reason = " ".join(str(exc).split())[:200]
        raise InvalidInputError(
            f"--calib {path} could not be read as {suffix} ({type(exc).__name__}: {reason}); "
            f"give {_CALIB_HELP}"
        ) from None
    if isinstance(data, dict):
        if not data:
            raise InvalidInputError(f"--calib {path} holds no arrays")
        if not all(isinstance(k, str) for k in data):
            raise InvalidInputError(f"--calib {path}: a dict's keys must be argument names")
        if len(data) == 1 and suffix == ".npz":
            return _calib_tensor(next(iter(data.values())), f"--calib {path}")
        return {k: _calib_tensor(v, f"--calib {path} [{k!r}]") for k, v in data.items()}
    if isinstance(data, (np.ndarray, torch.Tensor)):
        return _calib_tensor(data, f"--calib {path}")
    raise InvalidInputError(f"--calib {path} holds a {type(data).__name__}; give {_CALIB_HELP}")


def _load_model(path: Path, trust_pickle: bool) -> Any:
    """A whole ``nn.Module`` from ``torch.save(model, path)``; unpickles only with
    ``trust_pickle`` (a pickle runs code of the file's choosing while it loads)."""
    import torch

    if not path.exists():
        raise InvalidInputError(f"model file {path} does not exist")
    if path.is_dir():
        raise InvalidInputError(f"model file {path} is a directory; give a .pt file")
    try:
        with warnings.catch_warnings():  # (torch warns about the pickle protocol of raw pickles)
            warnings.simplefilter("ignore")
            model = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        if not trust_pickle and "weights_only" in str(exc).lower():
            raise InvalidInputError(
                f"{path} holds pickled Python objects (a whole saved model), which a safe load "
                "refuses: unpickling it runs code of the file's choosing. If you made it or "
                "trust its source, pass --trust-pickle"
            ) from None
        reason = " ".join(str(exc).split())[:200]
        raise InvalidInputError(f"could not load a torch model from {path}: {reason}") from None
    except Exception as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InvalidInputError(
            f"could not load a torch model from {path} ({type(exc).__name__}: {reason})"
        ) from None
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(
            f"{path} holds a {type(model).__name__}, not an nn.Module (a state_dict has no "
            "architecture); save the whole model with torch.save(model, path) and load it with "
            "--trust-pickle"
        )
    return model


def _calib_arguments(data: Any, call: str) -> Any:
    """quantize_model's calib_data: a dict passed as keywords (model(**d)) or, with
    ``--calib-call positional``, as the one argument (model(d), e.g. a SentenceTransformer)."""
    if not isinstance(data, dict) or call == "kwargs":
        return data
    n = {v.shape[0] for v in data.values()}
    if len(n) > 1:
        raise InvalidInputError(f"--calib arrays must share one batch size, got {sorted(n)}")
    size = n.pop()
    step = 32
    return [({k: v[i : i + step] for k, v in data.items()},) for i in range(0, size, step)]


def _model_bytes(model: Any) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def _extra_options(act_mode: str, group_size: int | None, smooth: str | None) -> dict[str, Any]:
    """quantize_model's keyword arguments for --act-mode, --group-size and --smooth, only those
    that differ from the defaults (so that a default run works with any quantize_model)."""
    check_choice(act_mode, "--act-mode", ACT_MODES)
    extra: dict[str, Any] = {}
    if act_mode != "static":
        extra["act_mode"] = act_mode
    if group_size is not None:
        if isinstance(group_size, bool) or group_size < 1:
            raise InvalidInputError(f"--group-size must be a positive integer, got {group_size}")
        extra["group_size"] = int(group_size)
    if smooth is not None:
        value = smooth.strip().lower()
        if value == "mmse":
            extra["smooth"] = "mmse"
        else:
            try:
                alpha = float(value)
            except ValueError:
                raise InvalidInputError(
                    f"--smooth must be mmse or a number in [0, 1], got {smooth!r}"
                ) from None
            if not 0.0 <= alpha <= 1.0:
                raise InvalidInputError(f"--smooth alpha must be in [0, 1], got {alpha}")
            extra["smooth"] = alpha
    return extra


def _check_options(
    w_bits, a_bits, method, residual, act_residual, rounding, weights_only, extra=None
):
    """The quantization options, checked before any file is read or model trained."""
    from ..quant.convert import check_options

    try:
        check_options(
            w_bits=w_bits,
            a_bits=a_bits,
            method=method,
            rounding=rounding,
            residual=residual,
            act_residual=act_residual,
            quantize_activations=not weights_only,
            **(extra or {}),
        )
    except InvalidInputError as exc:  # name the CLI options, not the Python arguments
        names = (
            "act_residual", "w_bits", "a_bits", "method", "rounding", "residual", "act_mode",
            "group_size", "smooth",
        )  # fmt: skip
        text = re.sub(
            r"^\w+", lambda m: "--" + m[0].replace("_", "-") if m[0] in names else m[0], str(exc)
        )
        text = text.replace(
            "quantize_activations=True", "activation quantization (no --weights-only)"
        )
        raise InvalidInputError(text) from None


def _quantize(
    model,
    calib,
    w_bits,
    a_bits,
    method,
    residual,
    act_residual,
    rounding,
    weights_only,
    progress,
    extra=None,
):
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
        progress=progress,
        **(extra or {}),
    )


def _layer_table(report, show_all: bool) -> Any:
    """Per-layer table that fits 100 columns: names wrap, numbers do not; without ``show_all``
    only the worst-quantized layers (by relative weight MSE), the rest counted in the caption."""
    from rich.table import Table

    head = report.summary().splitlines()[0]
    layers = list(report.layers)
    hidden = 0
    if not show_all and len(layers) > WORST_LAYERS:
        keep = sorted(layers, key=lambda lay: -lay.weight_rel_mse)[:WORST_LAYERS]
        hidden = len(layers) - len(keep)
        layers = [lay for lay in report.layers if lay in keep]
    caption = (
        f"the {len(layers)} worst of {len(report.layers)} layers by weight rel. MSE; --all lists "
        "every layer"
        if hidden
        else None
    )
    table = Table(title=escape(head), caption=caption)
    table.add_column("layer", overflow="fold", ratio=1)
    table.add_column("kind", no_wrap=True)
    table.add_column("W rel. MSE", justify="right", no_wrap=True)
    table.add_column("residual", justify="right", no_wrap=True)
    table.add_column("A bits", justify="right", no_wrap=True)
    table.add_column("in. res.", justify="right", no_wrap=True)
    for layer in layers:
        table.add_row(
            escape(layer.name),
            layer.kind,
            f"{layer.weight_rel_mse:.3g}",
            f"{layer.residual_kernels}/{layer.kernels}",
            "float" if layer.a_bits is None else str(layer.a_bits),
            "yes" if layer.input_residual else "",
        )
    return table


def _settings_json(
    w_bits, a_bits, method, residual, act_residual, rounding, weights_only, extra=None
) -> dict[str, Any]:
    """The quantization options as recorded in an export's meta and in ``--json`` output
    (``a_bits`` None when only weights are quantized)."""
    extra = extra or {}
    return {
        "w_bits": w_bits,
        "a_bits": None if weights_only else a_bits,
        "method": method,
        "residual": residual,
        "act_residual": act_residual,
        "rounding": rounding,
        "act_mode": extra.get("act_mode", "static"),
        "group_size": extra.get("group_size"),
        "smooth": extra.get("smooth"),
    }


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


def _export_torch(report, meta: dict[str, Any], out: Path) -> None:
    """``--out X.pt``: the quantized layers' integer codes and scales, with the settings."""
    import torch

    export = {
        "layers": {
            name: mod.export()
            for name, mod in report.model.named_modules()
            if hasattr(mod, "export") and hasattr(mod, "w_codes")
        },
        "meta": {**meta, "paper": "arXiv 1902.06822"},
    }
    buf = io.BytesIO()
    torch.save(export, buf)
    atomic_write_bytes(out, buf.getvalue())


def _is_onnx(out: Path) -> bool:
    return out.suffix.lower() == ".onnx"


def _onnx_exporter() -> Any:
    """``frugalml.quant.export_onnx`` (imports torch and onnx when called)."""
    from ..quant.onnx_export import export_onnx

    return export_onnx


def _check_sources(model_path: Path | None, hf: str | None) -> None:
    if model_path is not None and hf is not None:
        raise InvalidInputError(
            f"give a model file (MODEL_PATH {model_path}) or --hf {hf}, not both"
        )
    if model_path is None and hf is None:
        raise InvalidInputError(
            "no model: give MODEL_PATH (a torch model file) or --hf DIR|minilm (a Hugging Face "
            "text encoder)"
        )


def _print_warnings(caught: list[Any]) -> list[str]:
    """Each distinct warning message once, on stderr; returns them."""
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    for message in messages:
        err_console.print(f"[yellow]warning:[/] {escape(message)}")
    return messages


def _load_texts(path: Path, option: str, minimum: int = 1) -> list[str]:
    from ..quant.hf import read_texts

    texts = read_texts(path, what=option)
    if len(texts) < minimum:
        raise InvalidInputError(
            f"{option} {path} holds {len(texts)} text(s); give at least {minimum} (one a line)"
        )
    return texts


def _load_hf(source: str, update: Progress, blas_threads: int | None) -> Any:
    """The Hugging Face encoder of ``--hf``, after a memory check for quantizing it."""
    import torch

    from ..quant.hf import load_hf

    torch.set_num_threads(blas_threads or 1)
    hf = load_hf(source, progress=update)
    nbytes = _model_bytes(hf.encoder)
    check_memory(
        3 * nbytes,
        f"quantizing the {nbytes / 4:.3g}-parameter model (a copy plus float64 weights per layer)",
        fix="quantize a smaller model",
    )
    return hf


def _onnx_signature(hf: Any) -> dict[str, Any]:
    """input/output names and dynamic (batch, sequence) axes of a TextEncoder's ONNX graph."""
    names = list(hf.input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes["embedding"] = {0: "batch"}
    return {"input_names": names, "output_names": ["embedding"], "dynamic_axes": axes}


def _model_file(
    model_path, calib, trust_pickle, calib_call, out, settings, quant_args, json_out
) -> tuple[Any, list[Any]]:
    """``quant model MODEL_PATH``: (report, caught warnings)."""
    import torch

    data = _load_calib(calib)
    if _is_onnx(out) and not isinstance(data, torch.Tensor):
        raise InvalidInputError(
            "--out *.onnx with MODEL_PATH needs --calib holding one array (the model's one "
            "input); write a .pt export instead"
        )
    model = _load_model(model_path, trust_pickle)
    check_memory(
        3 * _model_bytes(model),
        f"quantizing the {_model_bytes(model) / 4:.3g}-parameter model (a copy plus float64 "
        "weights per layer)",
        fix="quantize a smaller model",
    )
    torch.set_num_threads(quant_args["blas_threads"] or 1)
    calib_data = _calib_arguments(data, calib_call)
    onnx = _is_onnx(out)
    with (
        warnings.catch_warnings(record=True) as caught,
        WorkBar("quantizing", 1.0, disable=json_out) as bar,
    ):
        warnings.simplefilter("always")
        report = _quantize(
            model, calib_data, *settings, _stage(bar.callback, 0.0, 0.8 if onnx else 1.0),
            quant_args["extra"],
        )  # fmt: skip
        if onnx:
            _onnx_exporter()(
                report.model, (data[:1],), out, progress=_stage(bar.callback, 0.8, 1.0)
            )
    return report, caught


def _hf_model(
    hf_source, calib, eval_path, out, settings, quant_args, json_out
) -> tuple[Any, list[Any], Any]:
    """``quant model --hf``: (report, caught warnings, agreement on --eval texts or None)."""
    from ..quant.hf import evaluate

    texts = _load_texts(calib, "--calib")
    held_out = _load_texts(eval_path, "--eval", 2) if eval_path is not None else None
    onnx = _is_onnx(out)
    # stages of the bar: load, tokenize + quantize, export, evaluation
    cut = (0.1, 0.75 if held_out else 0.9) if onnx else (0.1, 0.8 if held_out else 1.0)
    agreement = None
    with (
        warnings.catch_warnings(record=True) as caught,
        WorkBar(f"quant model {hf_source}", 1.0, disable=json_out) as bar,
    ):
        warnings.simplefilter("always")
        update = bar.callback
        hf = _load_hf(hf_source, _stage(update, 0.0, cut[0]), quant_args["blas_threads"])
        batches = hf.batches(texts, quant_args["batch_size"], what="calibration texts")
        report = _quantize(
            hf.encoder, batches, *settings, _stage(update, cut[0], cut[1]), quant_args["extra"]
        )
        end = 0.9 if held_out else 1.0
        if onnx:
            example = tuple(t[:2] for t in batches[0])
            _onnx_exporter()(
                report.model, example, out, progress=_stage(update, cut[1], end),
                **_onnx_signature(hf),
            )  # fmt: skip
        else:
            _export_torch(report, {**quant_args["meta"], "hf": hf.source}, out)
        if held_out is not None:
            agreement = evaluate(
                hf, report.model, held_out, batch_size=quant_args["batch_size"],
                progress=_stage(update, end if onnx else cut[1], 1.0),
            )  # fmt: skip
    return report, caught, agreement


@quant_app.command("model")
def model_cmd(
    model_path: Path = typer.Argument(
        None, help="A whole torch model saved with torch.save (or give --hf)."
    ),
    hf: str = HF,
    calib: Path = typer.Option(
        ...,
        help="Unlabeled calibration inputs: .pt, .npy or .npz for MODEL_PATH; with --hf a UTF-8 "
        "text file, one text a line.",
    ),
    eval_path: Path = typer.Option(
        None,
        "--eval",
        help="With --hf: held-out texts (one a line) on which to compare the quantized "
        "encoder with FP32.",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Write the export here: X.onnx (a runnable integer ONNX model) or X.pt (int8 "
        "codes + scales).",
    ),
    trust_pickle: bool = typer.Option(
        False,
        "--trust-pickle",
        help="Load MODEL_PATH as a full pickle. DANGEROUS: unpickling runs code of the file's "
        "choosing, so only use it for files you made or trust. A whole saved model needs it; "
        "without it only tensors are loaded.",
    ),
    calib_call: str = typer.Option(
        "kwargs",
        "--calib-call",
        help="How a dict of calibration arrays is passed: kwargs (model(**d), Hugging Face "
        "models) | positional (model(d), e.g. a SentenceTransformer).",
    ),
    w_bits: int = W_BITS,
    a_bits: int = A_BITS,
    method: str = METHOD,
    residual: float = RESIDUAL,
    act_residual: float = ACT_RESIDUAL,
    rounding: str = ROUNDING,
    weights_only: bool = WEIGHTS_ONLY,
    act_mode: str = ACT_MODE,
    group_size: int = GROUP_SIZE,
    smooth: str = SMOOTH,
    batch_size: int = BATCH_SIZE,
    show_all: bool = ALL_LAYERS,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Quantize a saved model's, or a Hugging Face text encoder's, Linear/Conv1d/Conv2d layers
    and export them (integer ONNX model, or int8 codes + scales)."""
    limit_blas_threads(blas_threads)
    _check_sources(model_path, hf)
    extra = _extra_options(act_mode, group_size, smooth)
    settings = (w_bits, a_bits, method, residual, act_residual, rounding, weights_only)
    _check_options(*settings, extra)
    check_choice(calib_call, "--calib-call", ("kwargs", "positional"))
    if hf is not None and trust_pickle:
        raise InvalidInputError("--trust-pickle applies to MODEL_PATH only, not to --hf")
    if hf is None and eval_path is not None:
        raise InvalidInputError("--eval (held-out texts) applies to --hf only")
    out = check_output_path(out, "--out")
    if _is_onnx(out):
        _onnx_exporter()
    meta = _settings_json(*settings, extra)
    quant_args = {"extra": extra, "blas_threads": blas_threads, "batch_size": batch_size}
    agreement = None
    if hf is None:
        report, caught = _model_file(
            model_path, calib, trust_pickle, calib_call, out, settings, quant_args, json_out
        )
        if not _is_onnx(out):
            _export_torch(report, meta, out)
    else:
        report, caught, agreement = _hf_model(
            hf, calib, eval_path, out, settings, {**quant_args, "meta": meta}, json_out
        )
    payload: dict[str, Any] = {
        "out": str(out),
        "format": "onnx" if _is_onnx(out) else "pt",
        **({"hf": hf} if hf is not None else {}),
        **meta,
        "layers": _layers_json(report),
        "skipped": list(report.skipped),
        "extra_mac_fraction": report.extra_mac_fraction,
        "seconds": report.seconds,
        "warnings": list(dict.fromkeys(str(w.message) for w in caught)),
    }
    if agreement is not None:
        payload["eval"] = {
            "mean_cosine": agreement.mean_cosine,
            "nn_agreement": agreement.nn_top1_agreement,
        }
    if json_out:
        emit_json(payload)
        return 0
    _print_warnings(caught)
    console.print(_layer_table(report, show_all))
    if agreement is not None:
        console.print(
            f"quantized vs FP32 on {eval_path.name}: mean cosine {agreement.mean_cosine:.4f}, "
            f"nearest-neighbour agreement {agreement.nn_top1_agreement:.4f}"
        )
    console.print(f"wrote {escape(str(out))}")
    return 0


def _builtin(name: str, seed: int, say: Progress) -> tuple[Any, Any, Any]:
    """(model, calibration data, evaluate(model, progress) -> metrics dict) of a built-in
    task; ``say(message, fraction)`` reports the preparation (training, loading)."""
    if name == "minilm":
        from ..quant.data import stdlib_docstrings
        from ..quant.minilm import calibration_batches, embed, embedding_agreement, load_minilm

        say("loading MiniLM", 0.0)
        texts = stdlib_docstrings(limit=628)
        model = load_minilm()
        eval_texts = texts[128:]
        ref: list[Any] = []

        def evaluate(m, progress):
            emb = embed(m, eval_texts, progress=progress)
            if not ref:
                ref.append(emb)
            agree = embedding_agreement(ref[0], emb)
            return {"mean_cosine": agree.mean_cosine, "nn_agreement": agree.nn_top1_agreement}

        return model, calibration_batches(model, texts[:128], batch_size=32), evaluate
    from ..quant.data import load_digits_images, load_mnist1d
    from ..quant.models import MNIST1DCNN, RECIPES, DigitsCNN, accuracy, train_classifier

    say(f"loading the {name} data", 0.0)
    if name == "digits-cnn":
        split, cls, recipe = load_digits_images(rng=seed), DigitsCNN, RECIPES["digits"]
    else:
        split, cls, recipe = load_mnist1d(n=5000, rng=seed), MNIST1DCNN, RECIPES["mnist1d"]
    trained = train_classifier(
        cls(rng=seed),
        split.train,
        split.test,
        rng=seed,
        progress=lambda msg, f: say(f"training {name}: {msg}", f),
        **recipe,
    )
    X_te, y_te = split.test

    def evaluate(m, progress):
        acc = accuracy(m, X_te, y_te)
        progress("accuracy", 1.0)
        return {"accuracy": acc}

    return trained.model, split.X_train[:256], evaluate


def _hf_eval(hf_source, calib, texts_path, settings, extra, batch_size, blas_threads, json_out):
    """``quant eval --hf``: (report, agreement, caught warnings, calibration and held-out
    text counts)."""
    from ..quant.hf import evaluate

    texts = _load_texts(calib, "--calib")
    held_out = _load_texts(texts_path, "--texts", 2)
    # stages of the bar: load, tokenize + quantize, evaluation (FP32 and quantized)
    with (
        warnings.catch_warnings(record=True) as caught,
        WorkBar(f"quant eval {hf_source}", 1.0, disable=json_out) as bar,
    ):
        warnings.simplefilter("always")
        update = bar.callback
        hf = _load_hf(hf_source, _stage(update, 0.0, 0.1), blas_threads)
        batches = hf.batches(texts, batch_size, what="calibration texts")
        report = _quantize(hf.encoder, batches, *settings, _stage(update, 0.1, 0.8), extra)
        agreement = evaluate(
            hf, report.model, held_out, batch_size=batch_size, progress=_stage(update, 0.8, 1.0)
        )
    return report, agreement, caught, len(texts), len(held_out)


@quant_app.command("eval")
def eval_cmd(
    model: str = typer.Option(
        None, help="digits-cnn | mnist1d-cnn | minilm (default digits-cnn; or give --hf)"
    ),
    hf: str = HF,
    calib: Path = typer.Option(
        None, "--calib", help="With --hf: calibration texts, UTF-8, one text a line."
    ),
    texts: Path = typer.Option(
        None, "--texts", help="With --hf: held-out texts (at least 2) to compare on."
    ),
    w_bits: int = W_BITS,
    a_bits: int = A_BITS,
    method: str = METHOD,
    residual: float = RESIDUAL,
    act_residual: float = ACT_RESIDUAL,
    rounding: str = ROUNDING,
    weights_only: bool = WEIGHTS_ONLY,
    act_mode: str = ACT_MODE,
    group_size: int = GROUP_SIZE,
    smooth: str = SMOOTH,
    batch_size: int = BATCH_SIZE,
    seed: int = typer.Option(0, min=0, help="Seed of the CNN's training and data split."),
    show_all: bool = ALL_LAYERS,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Quantize a built-in model, or a Hugging Face text encoder (--hf), and compare it with
    FP32 (accuracy, or embedding agreement: mean cosine and nearest-neighbour agreement)."""
    limit_blas_threads(blas_threads)
    if hf is not None:
        if model is not None:
            raise InvalidInputError(f"give --model {model} or --hf {hf}, not both")
        if calib is None or texts is None:
            raise InvalidInputError(
                "--hf needs --calib (calibration texts) and --texts (held-out texts), UTF-8 "
                "text files with one text a line"
            )
    elif calib is not None or texts is not None:
        raise InvalidInputError("--calib and --texts apply to --hf only")
    model = "digits-cnn" if model is None and hf is None else model
    if hf is None:
        check_choice(model, "--model", BUILTIN)
    extra = _extra_options(act_mode, group_size, smooth)
    settings = (w_bits, a_bits, method, residual, act_residual, rounding, weights_only)
    _check_options(*settings, extra)
    if hf is not None:
        t0 = time.perf_counter()
        report, agreement, caught, n_calib, n_texts = _hf_eval(
            hf, calib, texts, settings, extra, batch_size, blas_threads, json_out
        )
        quant = {"mean_cosine": agreement.mean_cosine, "nn_agreement": agreement.nn_top1_agreement}
        payload = {
            "hf": hf,
            **_settings_json(*settings, extra),
            "calib_texts": n_calib,
            "texts": n_texts,
            "reference": "fp32",
            "quantized": quant,
            "extra_mac_fraction": report.extra_mac_fraction,
            "quantize_seconds": report.seconds,
            "seconds": time.perf_counter() - t0,
            "skipped": list(report.skipped),
            "layers": _layers_json(report),
            "warnings": list(dict.fromkeys(str(w.message) for w in caught)),
        }
        if json_out:
            emit_json(payload)
            return 0
        _print_warnings(caught)
        console.print(_layer_table(report, show_all))
        console.print(
            f"quantized vs FP32 on {n_texts} held-out texts: mean cosine "
            f"{agreement.mean_cosine:.4f}, nearest-neighbour agreement "
            f"{agreement.nn_top1_agreement:.4f}"
        )
        console.print(
            f"extra MACs {100 * report.extra_mac_fraction:.1f}%, quantized in "
            f"{report.seconds:.1f} s"
        )
        return 0
    import torch

    torch.set_num_threads(blas_threads or 1)
    t0 = time.perf_counter()
    # stages of the bar: prepare (train / load), FP32 evaluation, quantization, evaluation
    with WorkBar(f"quant eval {model}", 1.0, disable=json_out) as bar:
        update = bar.callback
        net, calib_data, evaluate = _builtin(model, seed, _stage(update, 0.0, 0.3))
        fp32 = evaluate(net, _stage(update, 0.3, 0.5))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # LayerNorm/Embedding stay float (listed in JSON)
            report = _quantize(net, calib_data, *settings, _stage(update, 0.5, 0.8), extra)
        quant = evaluate(report.model, _stage(update, 0.8, 1.0))
    payload = {
        "model": model,
        **_settings_json(*settings, extra),
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
    console.print(_layer_table(report, show_all))
    for key in fp32:
        console.print(f"{key}: FP32 {fp32[key]:.4f} -> quantized {quant[key]:.4f}")
    console.print(
        f"extra MACs {100 * report.extra_mac_fraction:.1f}%, quantized in {report.seconds:.1f} s"
    )
    return 0
