"""Export a quantized model to ONNX with integer operands, and the artifact's metadata.

:func:`export_onnx` writes a model quantized by :func:`~frugalml.quant.convert.quantize_model`
(the post-training scheme of Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of
Neural Networks for Efficient Inference", ICCV Workshops 2019, arXiv:1902.06822, with this
library's per-token, group-wise and smoothing options) as one ONNX file that ONNX Runtime
runs with integer kernels:

1. Each :class:`~frugalml.quant.modules.QuantizedLayer` is traced as one opaque node
   (``torch.onnx.export``, TorchScript exporter); the rest of the model (embeddings, attention,
   normalisation, pooling) is exported as PyTorch exports it, in float.
2. Each opaque node is replaced by the integer subgraph of :mod:`frugalml.quant.onnx_lower`
   (QDQ with int8 / packed int4 weights, or ``MatMulInteger`` with per-token scales), so the
   file holds integer codes, never float copies of the quantized weights.
3. The file records what it is (``metadata_props``: format, version, per-layer settings) so
   :func:`frugalml.quant.artifact.load` can refuse foreign files; it is written to a temporary
   file in the target directory and renamed, so no partial file is ever left.

The output equals :meth:`~frugalml.quant.modules.QuantizedLayer.integer_forward` of every
layer up to float rounding (tested on MiniLM and the CNNs). Cost: one traced forward pass plus
``O(weights)``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from .._results import ResultRepr
from ..errors import InvalidInputError
from ..progress import Progress

require("torch", what="the ONNX export of frugalml.quant", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .artifact import FORMAT, FORMAT_VERSION  # noqa: E402
from .modules import QuantizedConv1d, QuantizedConv2d, QuantizedLayer, QuantizedLinear  # noqa: E402
from .onnx_lower import MS_DOMAIN, OPSET, LayerSpec, WeightTerm, lower_layer  # noqa: E402

__all__ = ["FORMAT", "FORMAT_VERSION", "ExportReport", "export_onnx", "initializer_bytes"]

_DOMAIN = "frugalml"


@dataclass(eq=False, repr=False)
class ExportReport(ResultRepr):
    """What :func:`export_onnx` wrote: ``path``; ``layers``: quantized layers lowered to
    integer subgraphs; ``bytes``: file size; ``initializer_bytes``: by kind (see
    :func:`initializer_bytes`)."""

    path: Path
    layers: int
    bytes: int
    initializer_bytes: dict[str, int]

    def summary(self) -> str:
        b = self.initializer_bytes
        return (
            f"{self.path}: {self.layers} integer layers, {self.bytes / 2**20:.2f} MiB "
            f"(integer weights {b['integer'] / 2**20:.2f} MiB, embedding tables "
            f"{b['embedding'] / 2**20:.2f} MiB, other float {b['float'] / 2**20:.2f} MiB)"
        )


def initializer_bytes(model: Any) -> dict[str, int]:
    """Bytes of an ONNX model's initializers by kind: ``integer`` (int8 / packed int4 /
    uint8 tensors), ``embedding`` (float tables read by ``Gather``: token embeddings, which
    stay float), ``float`` (every other float tensor) and ``total``. ``O(initializers)``."""
    onnx = require("onnx", what="ONNX size accounting", extra="quant")
    gathered = {n.input[0] for n in model.graph.node if n.op_type == "Gather" and n.input}
    out = {"integer": 0, "embedding": 0, "float": 0}
    tp = onnx.TensorProto
    ints = {tp.INT8, tp.UINT8, tp.INT4, tp.UINT4}
    for t in model.graph.initializer:
        n = len(t.raw_data) if t.raw_data else _field_bytes(t)
        if t.data_type in ints:
            out["integer"] += n
        elif t.name in gathered and t.data_type in (tp.FLOAT, tp.FLOAT16, tp.BFLOAT16):
            out["embedding"] += n
        else:
            out["float"] += n
    out["total"] = sum(out.values())
    return out


def _field_bytes(t: Any) -> int:
    from onnx import numpy_helper

    return int(numpy_helper.to_array(t).nbytes)


class _Opaque(torch.autograd.Function):
    """The quantized layer as one node ``frugalml::QLayer(x)`` while tracing."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, index: int, out: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return out.clone()

    @staticmethod
    def symbolic(g: Any, x: Any, index: int, out: Any) -> Any:  # pragma: no cover - tracing
        node = g.op(f"{_DOMAIN}::QLayer", x, index_i=index)
        node.setType(out.type())
        return node


class _OpaqueLayer(nn.Module):
    def __init__(self, layer: QuantizedLayer, index: int) -> None:
        super().__init__()
        object.__setattr__(self, "layer", layer)  # not a submodule: the tree stays a tree
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            y = self.layer.integer_forward(x)
        return _Opaque.apply(x, self.index, y)


def _geometry(layer: QuantizedLayer) -> dict[str, Any]:
    if isinstance(layer, QuantizedLinear):
        return {}
    if layer.padding_mode != "zeros":
        raise InvalidInputError(
            f"the ONNX export supports zero padding only; a convolution has padding_mode="
            f"{layer.padding_mode!r}"
        )
    nd = layer._nd
    k = list(layer.kernel_size)
    dil = list(layer.dilation)
    if isinstance(layer.padding, str):
        if layer.padding == "valid":
            pads = [0] * nd
            pads_end = [0] * nd
        else:  # "same" (stride 1): torch pads the extra element at the end
            total = [d * (kk - 1) for d, kk in zip(dil, k, strict=True)]
            pads = [t // 2 for t in total]
            pads_end = [t - t // 2 for t in total]
    else:
        pads = list(layer.padding)
        pads_end = list(layer.padding)
    return {
        "kernel_shape": k,
        "strides": list(layer.stride),
        "dilations": dil,
        "pads": pads + pads_end,
        "group": int(layer.groups),
    }


def layer_spec(name: str, layer: QuantizedLayer) -> LayerSpec:
    """The :class:`~frugalml.quant.onnx_lower.LayerSpec` of a quantized layer (its buffers as
    NumPy arrays)."""

    def np32(t: torch.Tensor | None) -> np.ndarray | None:
        return None if t is None else t.detach().cpu().to(torch.float32).numpy()

    terms = [WeightTerm(layer.w_codes.detach().cpu().numpy(), np32(layer.w_scale))]
    if layer.w2_codes is not None:
        terms.append(WeightTerm(layer.w2_codes.detach().cpu().numpy(), np32(layer.w2_scale)))
    act: tuple[Any, ...] | None = None
    if layer.a_grid is not None:
        if layer.a_dynamic:
            act = ("dynamic", layer.a_grid.bits)
        else:
            act = (
                "static",
                layer.a_grid.bits,
                layer.a_grid.signed,
                float(layer.a_scale),
                int(layer.a_zero_point),
            )
    act2 = None
    if layer.a2_grid is not None:
        act2 = (layer.a2_grid.bits, float(layer.a2_scale))
    kind = {QuantizedLinear: "linear", QuantizedConv1d: "conv1d", QuantizedConv2d: "conv2d"}[
        type(layer)
    ]
    return LayerSpec(
        name=name,
        kind=kind,
        w_bits=layer.w_bits,
        terms=tuple(terms),
        bias=np32(layer.bias),
        act=act,
        act2=act2,
        in_scale=np32(layer.in_scale),
        group_size=layer.group_size,
        conv=_geometry(layer),
    )


def _layer_meta(name: str, layer: QuantizedLayer) -> dict[str, Any]:
    return {
        "name": name,
        "kind": type(layer).__name__,
        "w_bits": layer.w_bits,
        "a_bits": None if layer.a_grid is None else layer.a_grid.bits,
        "act_mode": None if layer.a_grid is None else ("dynamic" if layer.a_dynamic else "static"),
        "group_size": layer.group_size,
        "residual_kernels": layer.n_residual,
        "input_residual": layer.a2_grid is not None,
        "smoothed": layer.in_scale is not None,
    }


def _check_writable(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise InvalidInputError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    if path.exists() and path.is_dir():
        raise InvalidInputError(f"{path} is a directory; give a file name ending in .onnx")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise InvalidInputError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise InvalidInputError(f"cannot write {path}: directory {parent} is not writable")


def _as_args(example_inputs: Any) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    """``(positional, keyword)`` inputs of the traced call."""
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,), {}
    if isinstance(example_inputs, dict) and all(
        isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in example_inputs.items()
    ):
        return (), dict(example_inputs)
    if isinstance(example_inputs, (tuple, list)) and all(
        isinstance(t, torch.Tensor) for t in example_inputs
    ):
        return tuple(example_inputs), {}
    raise InvalidInputError(
        "example_inputs must be a tensor, a tuple of tensors (positional inputs) or a dict of "
        f"tensors (keyword inputs); got {type(example_inputs).__name__}"
    )


def export_onnx(
    model: nn.Module,
    example_inputs: Any,
    path: str | os.PathLike[str],
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
    opset: int = OPSET,
    overwrite: bool = True,
    progress: Progress | None = None,
) -> ExportReport:
    """Write ``model`` (quantized or not) to ``path`` as ONNX with integer quantized layers.

    Parameters
    ----------
    model:
        typically ``quantize_model(...).model``; its quantized layers become integer
        subgraphs (module doc), everything else is exported in float. Not modified.
    example_inputs:
        inputs the model is traced with: a tensor, a tuple of tensors (``model(*inputs)``) or a
        dict of tensors (``model(**inputs)``, e.g. a tokenizer's ``input_ids`` and
        ``attention_mask``; their keys become the input names).
    input_names, output_names, dynamic_axes:
        as for ``torch.onnx.export`` (default input names ``input_0, ...`` or the dict's
        keys; default output ``output``; ``dynamic_axes`` ``None`` makes dimension 0 of every
        input and output dynamic).
    opset:
        ONNX opset (>= 21 for packed 4-bit weights).
    overwrite:
        replace an existing file (default) or refuse.
    progress:
        ``progress(message, fraction)``.

    Returns an :class:`ExportReport`. Raises :class:`~frugalml.errors.InvalidInputError` for
    inputs the model cannot be traced with, a path that cannot be written (checked before the
    work), a layer the export cannot represent, and
    :class:`~frugalml.errors.BackendUnavailableError` without ``onnx``.
    """
    onnx = require("onnx", what="frugalml.quant.export_onnx", extra="quant")
    say = progress or (lambda s, f: None)
    if not isinstance(model, nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(opset, int) or opset < 17:
        raise InvalidInputError(f"opset must be an integer >= 17, got {opset!r}")
    path = Path(path)
    if path.suffix != ".onnx":
        raise InvalidInputError(f"the output file must end in .onnx, got {path}")
    _check_writable(path, overwrite)
    args, kwargs = _as_args(example_inputs)
    names = (
        list(input_names)
        if input_names is not None
        else (list(kwargs) if kwargs else [f"input_{i}" for i in range(len(args))])
    )
    outs = list(output_names) if output_names is not None else ["output"]
    if dynamic_axes is None:
        dynamic_axes = {n: {0: "batch"} for n in names + outs}

    # the quantized layers and their specs (checked before tracing)
    qlayers = [(n, m) for n, m in model.named_modules() if isinstance(m, QuantizedLayer)]
    if isinstance(model, QuantizedLayer):
        qlayers = [("layer", model)]
    specs = [layer_spec(n or "layer", m) for n, m in qlayers]
    for spec in specs:
        if spec.w_bits <= 4 and opset < 21:
            raise InvalidInputError(
                f"layer {spec.name!r} has {spec.w_bits}-bit weights, stored as INT4, which "
                f"needs opset >= 21 (got {opset}); supported with opset {opset}: 5-8 bit weights"
            )
    say("tracing", 0.1)

    # swap each quantized layer for a module traced as one opaque node
    opaque = {id(m): _OpaqueLayer(m, i) for i, (_, m) in enumerate(qlayers)}
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    root: nn.Module = model
    if isinstance(model, QuantizedLayer):
        root = opaque[id(model)]
    else:
        for parent in list(model.modules()):
            for child_name, child in list(parent._modules.items()):
                if child is not None and id(child) in opaque:
                    swapped.append((parent, child_name, child))
        for parent, child_name, child in swapped:
            parent._modules[child_name] = opaque[id(child)]
    modes = [(mod, mod.training) for mod in root.modules()]
    modes += [(mod, mod.training) for mod in model.modules()]
    model.eval()
    root.eval()
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad(), _eager_attention(model):
            warnings.simplefilter("ignore")
            target = _KwargsWrapper(root, list(kwargs)) if kwargs else root
            traced_args = tuple(kwargs.values()) if kwargs else args
            torch.onnx.export(
                target,
                traced_args,
                buf,
                input_names=names,
                output_names=outs,
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                custom_opsets={_DOMAIN: 1} if qlayers else None,
                dynamo=False,
            )
    except InvalidInputError:
        raise
    except Exception as exc:
        raise InvalidInputError(
            f"torch.onnx.export failed on the model ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:300]}); example_inputs must be what the model is "
            "called with, and the model must be traceable (no data-dependent Python control "
            "flow on tensor values)"
        ) from exc
    finally:
        for parent, child_name, child in swapped:
            parent._modules[child_name] = child
        for mod, mode in modes:  # each module's own flag (train() would set them all)
            mod.training = mode
    say("lowering the quantized layers", 0.5)
    proto = onnx.load_model_from_string(buf.getvalue())
    _replace_opaque(proto, specs, opset)
    meta = {
        "frugalml.format": FORMAT,
        "frugalml.format_version": FORMAT_VERSION,
        "frugalml.layers": json.dumps([_layer_meta(n or "layer", m) for n, m in qlayers]),
        "frugalml.inputs": json.dumps(names),
    }
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:  # pragma: no cover - a lowering bug, not user input
        raise InvalidInputError(f"the exported graph is not valid ONNX: {exc}") from exc
    say("writing", 0.9)
    data = proto.SerializeToString()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    say("done", 1.0)
    return ExportReport(
        path=path,
        layers=len(specs),
        bytes=len(data),
        initializer_bytes=initializer_bytes(proto),
    )


class _KwargsWrapper(nn.Module):
    """Positional front for a model called with keyword inputs."""

    def __init__(self, model: nn.Module, keys: list[str]) -> None:
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, *args: torch.Tensor) -> Any:
        return self.model(**dict(zip(self.keys, args, strict=True)))


def onnx_helper() -> Any:
    """``onnx.helper``."""
    return require("onnx", what="the ONNX export of frugalml.quant", extra="quant").helper


@contextlib.contextmanager
def _eager_attention(model: nn.Module) -> Any:
    """Hugging Face modules whose config selects ``sdpa`` attention use the ``eager``
    implementation while tracing: the same function (softmax of the masked scores), but the
    traced SDPA graph adds ``IsNaN`` / ``Where`` guards that cost ONNX Runtime 15% of an
    FP32 MiniLM pass here. The configs are restored afterwards."""
    changed = []
    for mod in model.modules():
        cfg = getattr(mod, "config", None)
        if cfg is not None and getattr(cfg, "_attn_implementation", None) == "sdpa":
            changed.append(cfg)
    seen: set[int] = set()
    try:
        for cfg in changed:
            if id(cfg) not in seen:
                seen.add(id(cfg))
                cfg._attn_implementation = "eager"
        yield
    finally:
        for cfg in changed:
            cfg._attn_implementation = "sdpa"


def _replace_opaque(proto: Any, specs: list[LayerSpec], opset: int) -> None:
    """Replace every ``frugalml::QLayer`` node by its integer subgraph, in place."""
    graph = proto.graph
    new_nodes = []
    inits = []
    seen = set()
    for node in graph.node:
        if node.domain != _DOMAIN:
            new_nodes.append(node)
            continue
        index = next(a.i for a in node.attribute if a.name == "index")
        spec = specs[index]
        prefix = spec.name if index not in seen else f"{spec.name}#{len(seen)}"
        seen.add(index)
        spec = LayerSpec(**{**spec.__dict__, "name": prefix})
        nodes, layer_inits = lower_layer(spec, node.input[0], node.output[0], opset=opset)
        new_nodes.extend(nodes)
        inits.extend(layer_inits)
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(inits)
    # the opaque domain is gone; ONNX Runtime's contrib domain is declared when used
    keep = [o for o in proto.opset_import if o.domain not in (_DOMAIN, MS_DOMAIN)]
    if any(n.domain == MS_DOMAIN for n in graph.node):
        keep.append(onnx_helper().make_opsetid(MS_DOMAIN, 1))
    del proto.opset_import[:]
    proto.opset_import.extend(keep)
    # value_info of the removed nodes' outputs may carry the old opaque types: drop them
    del graph.value_info[:]
