"""The quantizers practitioners use, on the same MiniLM split as ``bench_quant.py``.

Not a report area (no ``REPORT_AREA``): the peer measurements that issue 18's quantization
benchmark (:mod:`bench_quant`) compares frugalml's MMSE quantizer (Choukroun, Kravchik, Yang,
Kisilev, "Low-bit Quantization of Neural Networks for Efficient Inference", ICCV Workshops 2019,
arXiv:1902.06822) against. Every peer quantizes a fresh deep copy of
:func:`frugalml.quant.minilm.load_minilm` (all-MiniLM-L6-v2) with one library's own post-training
workflow, calibrated (where the scheme needs it) on the same calibration docstrings, and the
quantized encoder embeds the same held-out docstrings through
:func:`frugalml.quant.minilm.embed`; :func:`frugalml.quant.minilm.embedding_agreement` gives the
mean cosine to the FP32 embeddings and the nearest-neighbour (top-1) agreement.

Peers (:data:`PEERS`; versions in ``benchmarks/requirements-quant-peers.txt``):

- **Brevitas** (Pappalardo et al., Xilinx/AMD): every ``nn.Linear`` becomes a
  ``brevitas.nn.QuantLinear`` with MSE-searched per-channel weight scales
  (``Int8WeightPerChannelFloatMSE``, 4 or 8 bits) and MSE-searched static per-tensor input
  scales (``Int8ActPerTensorFloatMSE``) collected under ``calibration_mode``; optionally GPTQ
  (Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training Quantization for
  Generative Pre-trained Transformers", ICLR 2023, arXiv:2210.17323) with ``gptq_mode`` as in
  ``brevitas_examples.llm`` (act_order, float activations while the Hessians are collected, one
  pass over the calibration set per layer).
- **optimum-quanto** (Hugging Face): ``quantize(model, weights=qint4|qint8,
  activations=qint8|None)``, ``Calibration()`` over the calibration batches, ``freeze``. qint4
  weights are grouped by 128 input channels (quanto's default), qint8 weights per output
  channel; activations are static per-tensor scales (running absmax). With activations quanto
  also quantizes every LayerNorm's output.
- **torchao** ``quantize_``: ``Int8DynamicActivationInt8WeightConfig`` (per-token dynamic int8
  activations, per-row int8 weights); ``IntxWeightOnlyConfig`` / ``Int8DynamicActivationIntx
  WeightConfig`` with int4 weights in groups of 128, scales by min-max ("affine") or HQQ (Badri
  and Shaji, "Half-Quadratic Quantization of Large Machine Learning Models", 2023; torchao's
  ``hqq_scale_only``). ``Int4WeightOnlyConfig`` is not used: in torchao 0.18 its HQQ path
  needs CUDA and bfloat16 and its plain path the ``mslk`` kernels.
- **ONNX Runtime**: the FP32 encoder is exported with ``torch.onnx.export`` (TorchScript
  exporter, ``dynamo=False``, opset 17, dynamic batch and sequence axes) as
  ``(input_ids, attention_mask, token_type_ids) -> sentence_embedding``, then quantized by
  ``quantize_static`` (QDQ, int8 per-channel weights, int8 activations, MinMax calibration on
  the calibration batches), ``quantize_dynamic`` (``MatMulInteger`` with per-tensor uint8
  activations quantized at run time) or ``MatMulNBitsQuantizer`` (4-bit weight blocks), and run
  by an ``InferenceSession`` with one intra-op thread. ``quant_pre_process`` is not run. A
  control row runs the unquantized export the same way (its cosine should be 1).

Each row's ``quantize_seconds`` is the wall time of the tool's workflow on one thread
(``quantize_cpu_seconds`` its CPU time, the better number on a shared machine):
quantization, calibration forward passes and, for ONNX Runtime, the export and the session
creation; not the loading of the FP32 model nor the evaluation. ``quantized`` says what the tool
actually converted (counted on the result), to check the ``layers`` statement.

Usage: python benchmarks/quant_peers.py [--calib 128] [--eval 500] [--only tool[,tool]]
[--out DIR]. Prints the table; with ``--out`` also writes DIR/quant_peers.json.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import logging
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from frugalml.progress import Progress

__all__ = ["PEERS", "Peer", "format_rows", "main", "run_peers", "standard_split"]

#: The inputs of the exported ONNX encoder (the token tensors of ``model(features)``).
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")

_LINEAR = "the 37 nn.Linear (36 encoder, 1 pooler whose output mean pooling ignores)"
_FLOAT_REST = "embeddings, LayerNorm, attention matmuls and softmax float"


class Peer(NamedTuple):
    """One peer configuration; ``build(model, calib, workdir) -> (encoder, quantized)``."""

    tool: str
    config: str
    scheme: str
    activations: str
    weights: str
    layers: str
    build: Callable[[Any, list, Path], tuple[Any, str]]


@contextmanager
def _quiet():
    """Silence the tools' warnings and root-logger chatter (ONNX Runtime logs to root)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _torch():
    import torch

    return torch


# --------------------------------------------------------------------------- brevitas


def _brevitas(w_bits: int, gptq: bool) -> Callable[[Any, list, Path], tuple[Any, str]]:
    def build(model: Any, calib: list, workdir: Path) -> tuple[Any, str]:
        torch = _torch()
        import brevitas.nn as qnn
        from brevitas.graph.calibrate import calibration_mode
        from brevitas.quant.scaled_int import (
            Int8ActPerTensorFloatMSE,
            Int8WeightPerChannelFloatMSE,
        )

        weight_quant = Int8WeightPerChannelFloatMSE
        if w_bits != 8:
            weight_quant = Int8WeightPerChannelFloatMSE.let(bit_width=w_bits)
        n = 0
        for mod in list(model.modules()):
            for name, child in list(mod.named_children()):
                if type(child) is torch.nn.Linear:
                    q = qnn.QuantLinear(
                        child.in_features,
                        child.out_features,
                        bias=child.bias is not None,
                        weight_quant=weight_quant,
                        input_quant=Int8ActPerTensorFloatMSE,
                        return_quant_tensor=False,
                    )
                    q.load_state_dict(child.state_dict(), strict=False)
                    setattr(mod, name, q)
                    n += 1
        model.eval()
        with torch.no_grad():
            with calibration_mode(model):
                for (features,) in calib:
                    model(features)
            model(calib[0][0])  # initialises the weight quantizers (MSE search)
            if gptq:
                from brevitas.graph.gptq import gptq_mode

                with gptq_mode(model, use_quant_activations=False, act_order=True) as g:
                    for _ in range(g.num_layers):
                        for (features,) in calib:
                            g.model(features)
                        g.update()
        return model, f"{n} QuantLinear"

    return build


# --------------------------------------------------------------------------- optimum-quanto


def _quanto(w_bits: int, a_bits: int | None) -> Callable[[Any, list, Path], tuple[Any, str]]:
    def build(model: Any, calib: list, workdir: Path) -> tuple[Any, str]:
        torch = _torch()
        from optimum.quanto import Calibration, freeze, qint4, qint8, quantize

        weights = {4: qint4, 8: qint8}[w_bits]
        quantize(model, weights=weights, activations=None if a_bits is None else qint8)
        if a_bits is not None:
            with torch.no_grad(), Calibration():
                for (features,) in calib:
                    model(features)
        freeze(model)
        kinds = collections.Counter(
            type(m).__name__ for m in model.modules() if type(m).__module__.startswith("optimum")
        )
        return model, ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))

    return build


# --------------------------------------------------------------------------- torchao


def _torchao(kind: str) -> Callable[[Any, list, Path], tuple[Any, str]]:
    def build(model: Any, calib: list, workdir: Path) -> tuple[Any, str]:
        torch = _torch()
        from torchao.quantization import (
            Int8DynamicActivationInt8WeightConfig,
            Int8DynamicActivationIntxWeightConfig,
            IntxWeightOnlyConfig,
            quantize_,
        )
        from torchao.quantization.granularity import PerGroup

        if kind == "w8a8":
            config: Any = Int8DynamicActivationInt8WeightConfig()
        elif kind in ("w4a16-hqq", "w4a16-minmax"):
            config = IntxWeightOnlyConfig(
                weight_dtype=torch.int4,
                granularity=PerGroup(128),
                intx_choose_qparams_algorithm="hqq_scale_only"
                if kind.endswith("hqq")
                else "affine",
            )
        elif kind == "w4a8-hqq":
            config = Int8DynamicActivationIntxWeightConfig(
                weight_dtype=torch.int4,
                weight_granularity=PerGroup(128),
                intx_choose_qparams_algorithm="hqq_scale_only",
            )
        else:  # pragma: no cover - PEERS only names the kinds above
            raise ValueError(f"unknown torchao kind {kind!r}")
        quantize_(model, config)
        kinds = collections.Counter(
            type(m.weight).__name__
            for m in model.modules()
            if isinstance(m, torch.nn.Linear) and type(m.weight) is not torch.nn.Parameter
        )
        return model, ", ".join(f"{v} Linear with {k} weights" for k, v in sorted(kinds.items()))

    return build


# --------------------------------------------------------------------------- onnxruntime


def _export(model: Any, features: dict, path: Path) -> None:
    """The FP32 SentenceTransformer as ONNX ``(input_ids, attention_mask, token_type_ids) ->
    sentence_embedding`` with dynamic batch and sequence axes (TorchScript exporter)."""
    torch = _torch()

    class Wrapped(torch.nn.Module):
        def __init__(self, st: Any) -> None:
            super().__init__()
            self.st = st

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            feats = dict(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return self.st(feats)["sentence_embedding"]

    axes = {k: {0: "batch", 1: "sequence"} for k in _INPUTS}
    axes["sentence_embedding"] = {0: "batch"}
    with torch.no_grad():
        torch.onnx.export(
            Wrapped(model).eval(),
            tuple(features[k] for k in _INPUTS),
            str(path),
            input_names=list(_INPUTS),
            output_names=["sentence_embedding"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


def _ort_encoder(model: Any, path: Path) -> Any:
    """A torch module that :func:`frugalml.quant.minilm.embed` calls like the FP32 model, running
    the ONNX file ``path`` in an ONNX Runtime session (one thread); tokenization is the FP32
    model's."""
    torch = _torch()
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    class OrtEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokenize = model.tokenize

        def forward(self, features: dict) -> dict:
            feeds = {k: features[k].cpu().numpy() for k in names}
            return {"sentence_embedding": torch.from_numpy(session.run(None, feeds)[0])}

    return OrtEncoder()


def _onnx_ops(path: Path) -> str:
    """What quantization put in the graph: the integer-kernel ops, or the op types whose
    inputs are dequantized (QDQ)."""
    import onnx

    graph = onnx.load(str(path)).graph
    kernels = collections.Counter(
        n.op_type for n in graph.node if n.op_type in ("MatMulInteger", "MatMulNBits")
    )
    if kernels:
        return ", ".join(f"{v} {k}" for k, v in sorted(kernels.items()))
    deq = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    fed = collections.Counter(
        n.op_type for n in graph.node if any(i in deq for i in n.input) and n.op_type != "Shape"
    )
    return "QDQ into " + ", ".join(f"{v} {k}" for k, v in fed.most_common())


def _onnxruntime(kind: str) -> Callable[[Any, list, Path], tuple[Any, str]]:
    def build(model: Any, calib: list, workdir: Path) -> tuple[Any, str]:
        import onnx
        import onnxruntime.quantization as oq

        fp32 = workdir / f"minilm_fp32_{kind}.onnx"
        out = workdir / f"minilm_{kind}.onnx"
        _export(model, calib[0][0], fp32)
        if kind == "fp32":
            return _ort_encoder(model, fp32), "nothing (the FP32 export)"
        if kind.startswith("static"):
            feeds = [{k: f[k].cpu().numpy() for k in _INPUTS} for (f,) in calib]

            class Reader(oq.CalibrationDataReader):
                def __init__(self) -> None:
                    self.it = iter(feeds)

                def get_next(self) -> dict | None:
                    return next(self.it, None)

            extra: dict[str, Any] = {}
            if kind == "static-matmul":
                extra["op_types_to_quantize"] = ["MatMul"]
            elif kind == "static-linear":
                graph = onnx.load(str(fp32)).graph
                weights = {i.name for i in graph.initializer}
                extra["op_types_to_quantize"] = ["MatMul"]
                extra["nodes_to_quantize"] = [
                    n.name
                    for n in graph.node
                    if n.op_type == "MatMul" and any(i in weights for i in n.input)
                ]
            oq.quantize_static(
                str(fp32),
                str(out),
                Reader(),
                quant_format=oq.QuantFormat.QDQ,
                per_channel=True,
                activation_type=oq.QuantType.QInt8,
                weight_type=oq.QuantType.QInt8,
                **extra,
            )
        elif kind == "dynamic":
            oq.quantize_dynamic(
                str(fp32), str(out), weight_type=oq.QuantType.QInt8, per_channel=True
            )
        elif kind.startswith("nbits"):
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

            q = MatMulNBitsQuantizer(
                onnx.load(str(fp32)), block_size=int(kind.removeprefix("nbits")), is_symmetric=True
            )
            q.process()
            q.model.save_model_to_file(str(out))
        else:  # pragma: no cover - PEERS only names the kinds above
            raise ValueError(f"unknown onnxruntime kind {kind!r}")
        return _ort_encoder(model, out), _onnx_ops(out)

    return build


#: The peer configurations, in the order they run.
PEERS: tuple[Peer, ...] = (
    Peer(
        "brevitas",
        "MSE W4A8",
        "W4A8",
        "static per-tensor (MSE scale, calibrated)",
        "int4 per-channel (MSE scale)",
        f"{_LINEAR}; {_FLOAT_REST}",
        _brevitas(4, gptq=False),
    ),
    Peer(
        "brevitas",
        "MSE W8A8",
        "W8A8",
        "static per-tensor (MSE scale, calibrated)",
        "int8 per-channel (MSE scale)",
        f"{_LINEAR}; {_FLOAT_REST}",
        _brevitas(8, gptq=False),
    ),
    Peer(
        "brevitas",
        "MSE W4A8 + GPTQ (act_order)",
        "W4A8",
        "static per-tensor (MSE scale, calibrated)",
        "int4 per-channel (MSE scale), GPTQ rounding",
        f"{_LINEAR}; {_FLOAT_REST}",
        _brevitas(4, gptq=True),
    ),
    Peer(
        "optimum-quanto",
        "qint4 weights",
        "W4A16",
        "float",
        "int4 groups of 128 (absmax)",
        f"{_LINEAR}; {_FLOAT_REST}",
        _quanto(4, None),
    ),
    Peer(
        "optimum-quanto",
        "qint4 weights + qint8 activations",
        "W4A8",
        "static per-tensor (absmax, calibrated)",
        "int4 groups of 128 (absmax)",
        f"{_LINEAR}, inputs and outputs, and the outputs of the 13 LayerNorm; embeddings, "
        "attention matmuls and softmax float",
        _quanto(4, 8),
    ),
    Peer(
        "optimum-quanto",
        "qint8 weights + qint8 activations",
        "W8A8",
        "static per-tensor (absmax, calibrated)",
        "int8 per-channel (absmax)",
        f"{_LINEAR}, inputs and outputs, and the outputs of the 13 LayerNorm; embeddings, "
        "attention matmuls and softmax float",
        _quanto(8, 8),
    ),
    Peer(
        "torchao",
        "Int8DynamicActivationInt8WeightConfig",
        "W8A8",
        "dynamic per-token",
        "int8 per-channel (absmax)",
        f"{_LINEAR}; {_FLOAT_REST}",
        _torchao("w8a8"),
    ),
    Peer(
        "torchao",
        "IntxWeightOnlyConfig int4 HQQ",
        "W4A16",
        "float",
        "int4 groups of 128 (HQQ scales)",
        f"{_LINEAR}; {_FLOAT_REST}",
        _torchao("w4a16-hqq"),
    ),
    Peer(
        "torchao",
        "IntxWeightOnlyConfig int4 min-max",
        "W4A16",
        "float",
        "int4 groups of 128 (absmax)",
        f"{_LINEAR}; {_FLOAT_REST}",
        _torchao("w4a16-minmax"),
    ),
    Peer(
        "torchao",
        "Int8DynamicActivationIntxWeightConfig int4 HQQ",
        "W4A8",
        "dynamic per-token",
        "int4 groups of 128 (HQQ scales)",
        f"{_LINEAR}; {_FLOAT_REST}",
        _torchao("w4a8-hqq"),
    ),
    Peer(
        "onnxruntime",
        "FP32 export (control, no quantization)",
        "FP32",
        "float",
        "float",
        "none: the exported FP32 graph, to show that the export and the session are lossless",
        _onnxruntime("fp32"),
    ),
    Peer(
        "onnxruntime",
        "quantize_static QDQ, MatMul ops",
        "W8A8",
        "static per-tensor (MinMax, calibrated)",
        "int8 per-channel (min-max)",
        "the 48 MatMul: 36 encoder Linear and the 12 attention QK^T / AV products (their "
        "outputs too); embeddings, LayerNorm, softmax float",
        _onnxruntime("static-matmul"),
    ),
    Peer(
        "onnxruntime",
        "quantize_static QDQ, Linear MatMuls only",
        "W8A8",
        "static per-tensor (MinMax, calibrated)",
        "int8 per-channel (min-max)",
        "the 36 encoder Linear MatMuls (inputs and outputs); attention matmuls, embeddings, "
        "LayerNorm, softmax float",
        _onnxruntime("static-linear"),
    ),
    Peer(
        "onnxruntime",
        "quantize_static QDQ, default op types",
        "W8A8",
        "static per-tensor (MinMax, calibrated)",
        "int8 per-channel (min-max)",
        "QDQ on the inputs of nearly every node: the 48 MatMul, the Adds (the attention-mask "
        "add included), Mul, Div, Where, Softmax, Transpose, Reshape, the LayerNorm inputs, the 3 "
        "embedding lookups, ...; GELU (Erf) and the shape arithmetic float",
        _onnxruntime("static-default"),
    ),
    Peer(
        "onnxruntime",
        "quantize_dynamic (MatMulInteger)",
        "W8A8",
        "dynamic per-tensor (uint8)",
        "int8 per-channel (min-max)",
        "the 36 encoder Linear MatMuls; attention matmuls, embeddings, LayerNorm, softmax float",
        _onnxruntime("dynamic"),
    ),
    Peer(
        "onnxruntime",
        "MatMulNBits block 32",
        "W4A16",
        "float",
        "int4 blocks of 32 (symmetric min-max)",
        "the 36 encoder Linear MatMuls; attention matmuls, embeddings, LayerNorm, softmax float",
        _onnxruntime("nbits32"),
    ),
    Peer(
        "onnxruntime",
        "MatMulNBits block 128",
        "W4A16",
        "float",
        "int4 blocks of 128 (symmetric min-max)",
        "the 36 encoder Linear MatMuls; attention matmuls, embeddings, LayerNorm, softmax float",
        _onnxruntime("nbits128"),
    ),
)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def run_peers(
    calib_texts: Sequence[str],
    test_texts: Sequence[str],
    ref_emb: Any,
    *,
    configs: Sequence[Peer] | None = None,
    progress: Progress | None = None,
    workdir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Quantize MiniLM with every peer configuration and compare its embeddings with FP32.

    Parameters
    ----------
    calib_texts:
        Calibration texts; tokenized into batches of 32 by
        :func:`frugalml.quant.minilm.calibration_batches`, as :mod:`bench_quant` does.
    test_texts:
        Held-out texts, ``N >= 2``.
    ref_emb:
        ``(N, 384)`` FP32 embeddings of ``test_texts`` (:func:`frugalml.quant.minilm.embed` of
        :func:`frugalml.quant.minilm.load_minilm`).
    configs:
        Peers to run (default :data:`PEERS`).
    progress:
        ``progress(message, fraction)`` before each peer and at the end.
    workdir:
        Folder for the ONNX files (default: a temporary folder, removed afterwards).

    Returns
    -------
    list of dict
        One per config, in order: ``tool, config, scheme, activations, weights, layers``
        (from the :class:`Peer`), ``quantized`` (what the tool converted, counted on its
        result), ``mean_cosine``, ``nn_agreement``, ``quantize_seconds`` (wall) and
        ``quantize_cpu_seconds`` (this process's CPU time, which on one thread is what the
        wall time would be on an idle machine; both ``None`` unless ``status`` is ``"ok"``)
        and ``status``: ``"ok"``, ``"skipped: <reason>"`` (the tool is not
        importable) or ``"failed: <error>"``. No peer's error propagates. Torch and BLAS run
        on one thread (restored afterwards). Cost: one quantization and one embedding pass of
        ``test_texts`` per config; Brevitas GPTQ does one pass of the calibration set per
        layer (37).
    """
    import torch
    from threadpoolctl import threadpool_limits

    from frugalml.quant.minilm import (
        calibration_batches,
        embed,
        embedding_agreement,
        load_minilm,
    )

    configs = PEERS if configs is None else tuple(configs)
    say = progress or (lambda message, fraction: None)
    calib_texts, test_texts = list(calib_texts), list(test_texts)
    ref = np.asarray(ref_emb)
    threads = torch.get_num_threads()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, threadpool_limits(1):
        root = Path(workdir) if workdir is not None else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        torch.set_num_threads(1)
        try:
            base = load_minilm()
            calib = calibration_batches(base, calib_texts, batch_size=32)
            for i, peer in enumerate(configs):
                say(f"quant peers: {peer.tool} {peer.config}", i / max(len(configs), 1))
                row: dict[str, Any] = {
                    k: getattr(peer, k)
                    for k in ("tool", "config", "scheme", "activations", "weights", "layers")
                }
                row.update(
                    quantized="",
                    mean_cosine=None,
                    nn_agreement=None,
                    quantize_seconds=None,
                    quantize_cpu_seconds=None,
                )
                try:
                    model = copy.deepcopy(base)
                    with _quiet():
                        t0, c0 = time.perf_counter(), time.process_time()
                        encoder, quantized = peer.build(model, calib, root)
                        seconds = time.perf_counter() - t0
                        cpu_seconds = time.process_time() - c0
                        emb = embed(encoder, test_texts)
                    agree = embedding_agreement(ref, emb)
                except ImportError as exc:
                    row["status"] = f"skipped: {peer.tool} not importable ({_one_line(exc)})"
                except Exception as exc:
                    row["status"] = f"failed: {_one_line(exc)}"
                else:
                    row.update(
                        quantized=quantized,
                        mean_cosine=agree.mean_cosine,
                        nn_agreement=agree.nn_top1_agreement,
                        quantize_seconds=seconds,
                        quantize_cpu_seconds=cpu_seconds,
                        status="ok",
                    )
                rows.append(row)
        finally:
            torch.set_num_threads(threads)
    say("quant peers: done", 1.0)
    return rows


def standard_split(n_calib: int = 128, n_eval: int = 500) -> tuple[list[str], list[str]]:
    """``bench_quant``'s MiniLM split: the first ``n_calib`` and the last ``n_eval`` of
    ``stdlib_docstrings(limit=n_calib + n_eval + 128)`` (disjoint)."""
    from frugalml.quant.data import stdlib_docstrings

    texts = stdlib_docstrings(limit=n_calib + n_eval + 128)
    return texts[:n_calib], texts[len(texts) - n_eval :]


def format_rows(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a plain-text table (one line per config)."""
    head = ("tool", "config", "scheme", "activations", "weights", "cosine", "NN", "s", "CPU s")
    head = (*head, "status")
    body = []
    for r in rows:
        num = r["status"] == "ok"
        body.append(
            (
                r["tool"],
                r["config"],
                r["scheme"],
                r["activations"],
                r["weights"],
                f"{r['mean_cosine']:.4f}" if num else "-",
                f"{r['nn_agreement']:.3f}" if num else "-",
                f"{r['quantize_seconds']:.1f}" if num else "-",
                f"{r['quantize_cpu_seconds']:.1f}" if num else "-",
                r["status"],
            )
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    lines = [
        "  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True))
        for line in [head, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the peers on the standard split and print the table (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calib", type=int, default=128, help="calibration texts (128)")
    parser.add_argument("--eval", type=int, default=500, help="held-out texts (500)")
    parser.add_argument("--only", default="", help="comma-separated tools to run (default all)")
    parser.add_argument("--out", type=Path, default=None, help="write DIR/quant_peers.json")
    args = parser.parse_args(argv)
    import torch

    from frugalml.quant.minilm import embed, load_minilm

    torch.set_num_threads(1)
    calib_texts, test_texts = standard_split(args.calib, args.eval)
    ref = embed(load_minilm(), test_texts)
    only = {t.strip() for t in args.only.split(",") if t.strip()}
    configs = [p for p in PEERS if not only or p.tool in only]

    def say(message: str, fraction: float) -> None:
        print(f"[{fraction:4.0%}] {message}", flush=True)

    # one peer at a time, GPTQ (the slow one) last, the JSON rewritten after each
    order = sorted(range(len(configs)), key=lambda i: "GPTQ" in configs[i].config)
    done: dict[int, dict[str, Any]] = {}
    for k, i in enumerate(order):
        say(f"{configs[i].tool} {configs[i].config}", k / len(order))
        (done[i],) = run_peers(calib_texts, test_texts, ref, configs=[configs[i]])
        r = done[i]
        print(
            f"  -> {r['status']}, cosine {r['mean_cosine']}, NN {r['nn_agreement']}, "
            f"{r['quantize_seconds']} s (CPU {r['quantize_cpu_seconds']} s)",
            flush=True,
        )
        if args.out is not None:
            args.out.mkdir(parents=True, exist_ok=True)
            rows = [done[j] for j in sorted(done)]
            (args.out / "quant_peers.json").write_text(json.dumps(rows, indent=1))
    rows = [done[j] for j in sorted(done)]
    print(
        f"\nall-MiniLM-L6-v2, {len(calib_texts)} calibration / {len(test_texts)} held-out "
        "stdlib docstrings, one thread; cosine and NN top-1 agreement vs FP32\n"
    )
    print(format_rows(rows))
    print()
    for r in rows:
        print(f"{r['tool']} / {r['config']}: layers: {r['layers']}; quantized: {r['quantized']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
