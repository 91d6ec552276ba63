"""Load an exported quantized model and run it with ONNX Runtime.

:func:`load` opens a file written by :func:`~frugalml.quant.onnx_export.export_onnx` (the
integer deployment form of the post-training quantization of Choukroun, Kravchik, Yang and
Kisilev, "Low-bit Quantization of Neural Networks for Efficient Inference", ICCV Workshops
2019, arXiv:1902.06822) and returns a :class:`QuantizedOnnxModel` that runs it. The file is
ONNX (protocol buffers): reading it never unpickles anything. A file that is not ONNX, is
truncated or corrupted, or is an ONNX model not written by frugalml is refused with an
:class:`~frugalml.errors.InvalidInputError` that says which.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import InvalidInputError

__all__ = ["FORMAT", "FORMAT_VERSION", "QuantizedOnnxModel", "load", "read_artifact"]

FORMAT = "frugalml-quant-onnx"
"""``metadata_props["frugalml.format"]`` of an exported file."""

FORMAT_VERSION = "1"
"""``metadata_props["frugalml.format_version"]`` written by this version."""

SUPPORTED_VERSIONS = (FORMAT_VERSION,)
_MAX_BYTES = 2**31 - 1  # protobuf's limit for one file without external data


def read_artifact(path: str | os.PathLike[str]) -> Any:
    """The checked ``onnx.ModelProto`` of an exported file (see :func:`load`)."""
    onnx = require("onnx", what="frugalml.quant.load", extra="quant")
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{p} does not exist or is not a file")
    size = p.stat().st_size
    if size == 0:
        raise InvalidInputError(f"{p} is empty; it is not an exported model")
    if size > _MAX_BYTES:
        raise InvalidInputError(f"{p} is {size} bytes, more than one ONNX file can hold")
    try:
        proto = onnx.load_model(str(p), load_external_data=False)
    except Exception as exc:
        raise InvalidInputError(
            f"{p} is not a readable ONNX file ({type(exc).__name__}); it may be truncated or "
            "corrupted, or another format: export it again with frugalml.quant.export_onnx "
            "(CLI: frugalml quant model ... --out model.onnx)"
        ) from None
    meta = {e.key: e.value for e in proto.metadata_props}
    if meta.get("frugalml.format") != FORMAT:
        raise InvalidInputError(
            f"{p} is an ONNX model that frugalml did not write (no frugalml.format metadata); "
            "load() reads files from frugalml.quant.export_onnx. Run other ONNX models with "
            "onnxruntime directly"
        )
    version = meta.get("frugalml.format_version")
    if version not in SUPPORTED_VERSIONS:
        raise InvalidInputError(
            f"{p} has format version {version!r}; this frugalml reads "
            f"{', '.join(SUPPORTED_VERSIONS)}: upgrade frugalml or export the model again"
        )
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise InvalidInputError(
            f"{p} is not a valid ONNX model ({' '.join(str(exc).split())[:200]}); it may be "
            "corrupted: export it again"
        ) from None
    return proto


class QuantizedOnnxModel:
    """An exported quantized model in an ONNX Runtime session (CPU).

    ``model.run({"input_ids": ids, ...})`` returns the list of outputs (NumPy arrays);
    ``model(*arrays)`` / ``model(**arrays)`` returns the first output. ``layers``: the
    per-layer settings recorded at export; ``input_names`` / ``output_names``; ``path``.
    """

    def __init__(self, path: Path, proto: Any, threads: int | None) -> None:
        ort = require("onnxruntime", what="running an exported quantized model", extra="quant")
        self.path = path
        meta = {e.key: e.value for e in proto.metadata_props}
        self.layers: list[dict[str, Any]] = json.loads(meta.get("frugalml.layers", "[]"))
        so = ort.SessionOptions()
        so.log_severity_level = 3
        # ONNX Runtime would fuse a weight-only DequantizeLinear -> MatMul into MatMulNBits
        # with int8 activations (accuracy level 4), changing the numbers the file defines
        so.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
        if threads is not None:
            so.intra_op_num_threads = threads
            so.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                proto.SerializeToString(), so, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise InvalidInputError(
                f"ONNX Runtime cannot run {path} ({' '.join(str(exc).split())[:300]})"
            ) from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._types = {i.name: i.type for i in self.session.get_inputs()}

    def run(self, feeds: dict[str, Any]) -> list[np.ndarray]:
        """Every output for ``feeds`` (input name -> array or tensor)."""
        missing = [n for n in self.input_names if n not in feeds]
        extra = [n for n in feeds if n not in self.input_names]
        if missing or extra:
            raise InvalidInputError(
                f"the model takes inputs {self.input_names}; missing {missing}, unknown {extra}"
            )
        arrays = {}
        for name, value in feeds.items():
            arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            want = self._types[name]
            if want == "tensor(float)" and arr.dtype != np.float32:
                arr = arr.astype(np.float32)
            elif want == "tensor(int64)" and arr.dtype != np.int64:
                arr = arr.astype(np.int64)
            arrays[name] = arr
        return self.session.run(None, arrays)

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        if args and kwargs:
            raise InvalidInputError("pass the inputs positionally or by name, not both")
        if len(args) > len(self.input_names):
            raise InvalidInputError(
                f"the model takes {len(self.input_names)} inputs {self.input_names}, got "
                f"{len(args)}"
            )
        feeds = dict(zip(self.input_names, args, strict=False)) if args else kwargs
        return self.run(feeds)[0]

    def __repr__(self) -> str:
        return (
            f"QuantizedOnnxModel({str(self.path)!r}, {len(self.layers)} integer layers, "
            f"inputs={self.input_names})"
        )


def load(path: str | os.PathLike[str], *, threads: int | None = None) -> QuantizedOnnxModel:
    """Open an exported quantized model (:func:`~frugalml.quant.onnx_export.export_onnx`) in
    ONNX Runtime. ``threads``: ONNX Runtime's intra-op threads (``None``: its default).

    Raises :class:`~frugalml.errors.InvalidInputError` for a missing, empty, truncated,
    corrupted or foreign file (nothing is unpickled), and
    :class:`~frugalml.errors.BackendUnavailableError` without ``onnx`` / ``onnxruntime``."""
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InvalidInputError(f"threads must be a positive integer or None, got {threads!r}")
    p = Path(path)
    return QuantizedOnnxModel(p, read_artifact(p), threads)
