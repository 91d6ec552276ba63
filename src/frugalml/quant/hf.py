"""Hugging Face text encoders as quantization workloads: load offline, calibrate on texts, compare.

Post-training quantization in the sense of Choukroun, Kravchik, Yang and Kisilev, "Low-bit
Quantization of Neural Networks for Efficient Inference" (ICCV Workshops 2019,
arXiv:1902.06822) needs a model and unlabeled calibration inputs. For a text encoder the inputs
are token tensors made by the model's own tokenizer; this module turns a local model directory
and a file of texts into exactly that:

* :func:`load_hf` loads a local directory, never the network (``HF_HUB_OFFLINE=1`` and
  ``TRANSFORMERS_OFFLINE=1`` are set process-wide first, as in :mod:`frugalml.quant.minilm`):
  a sentence-transformers directory (it has ``modules.json``; loaded as a
  ``SentenceTransformer``, the embedding is its ``sentence_embedding``), a plain transformers
  encoder (``config.json`` + tokenizer files; ``AutoModel``, the embedding is the mean of
  ``last_hidden_state`` over the attention mask, L2-normalised), or the keyword ``"minilm"``
  (the bundled all-MiniLM-L6-v2). Sequence-to-sequence and decoder-only (causal) models,
  directories without a config or tokenizer, and models that need remote code are refused
  with :class:`~frugalml.errors.InvalidInputError`.
* :class:`TextEncoder` wraps either as one ``nn.Module``,
  ``forward(input_ids, attention_mask, token_type_ids=None) -> (B, d)``: plain tensors in and
  out, so :func:`~frugalml.quant.convert.quantize_model` can quantize it and ``torch.onnx``
  can export it.
* :func:`read_texts` reads one text per line; :meth:`HFEncoder.batches` tokenizes texts
  (padding, truncation to the model's context) into the positional tuples ``quantize_model``
  runs as ``encoder(*batch)``, with one
  :class:`~frugalml.quant.report.QuantizationWarning` counting the texts it truncated.
* :func:`evaluate` compares a quantized copy with the float encoder on held-out texts: mean
  cosine and nearest-neighbour agreement (:func:`~frugalml.quant.minilm.embedding_agreement`).

Torch, transformers and (for sentence-transformers directories) sentence-transformers are
required (extra ``quant``); torch is imported when this module is imported.
"""

from __future__ import annotations

import inspect
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from .._validate import check_int
from ..errors import InvalidInputError
from ..progress import Progress

require("torch", what="Hugging Face text encoders", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .minilm import EmbeddingAgreement, embedding_agreement, minilm_path  # noqa: E402
from .report import QuantizationWarning  # noqa: E402

__all__ = [
    "INPUT_NAMES",
    "HFEncoder",
    "TextEncoder",
    "evaluate",
    "load_hf",
    "read_texts",
]

_EXTRA = "quant"

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
"""The token tensors a :class:`TextEncoder` takes, in its positional order."""

#: tokenizers without a configured limit report a huge sentinel (int(1e30)) as model_max_length
_NO_LIMIT = 1_000_000

#: used when neither the model, its tokenizer nor its config states a context length
DEFAULT_MAX_LENGTH = 512

_SUPPORTED = (
    "a local directory holding a sentence-transformers model (modules.json) or a Hugging Face "
    "encoder (config.json, weights and tokenizer files, loadable with transformers.AutoModel, "
    "e.g. BERT), or 'minilm' for the bundled all-MiniLM-L6-v2"
)


def _is_sentence_transformer(model: Any) -> bool:
    st = sys.modules.get("sentence_transformers")
    return st is not None and isinstance(model, st.SentenceTransformer)


class TextEncoder(nn.Module):
    """A text encoder as one module with tensor inputs: ``(input_ids, attention_mask[,
    token_type_ids])`` -> sentence embeddings ``(B, d)``.

    ``model`` is a ``sentence_transformers.SentenceTransformer`` (the embedding is its
    ``"sentence_embedding"`` output, pooling and normalisation as the model defines them) or a
    transformers ``PreTrainedModel`` whose output has ``last_hidden_state`` ``(B, L, h)`` (the
    embedding is the mean of the unmasked token states, L2-normalised:
    ``e = normalize(sum_t m_t h_t / max(sum_t m_t, 1e-9))``). The token tensors are int64
    ``(B, L)``; ``token_type_ids`` is passed on only when given. Cost: one forward pass of the
    model, ``O(B L^2)`` attention.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if _is_sentence_transformer(model):
            self.kind = "sentence-transformers"
        elif isinstance(model, nn.Module) and hasattr(model, "config"):
            self.kind = "transformers"
        else:
            raise InvalidInputError(
                f"TextEncoder needs a SentenceTransformer or a transformers model, got "
                f"{type(model).__name__}"
            )
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        tokens = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            tokens["token_type_ids"] = token_type_ids
        if self.kind == "sentence-transformers":
            return self.model(tokens)["sentence_embedding"]
        out = self.model(**tokens)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2.0, dim=1)


@dataclass(frozen=True)
class HFEncoder:
    """A loaded text encoder (:func:`load_hf`) and what is needed to feed it.

    ``encoder``: the :class:`TextEncoder` (float, eval mode); ``tokenizer``: the model's
    tokenizer; ``max_length``: the context in tokens that texts are truncated to;
    ``input_names``: the token tensors the encoder takes, in order (``input_ids``,
    ``attention_mask`` and, if the model uses it, ``token_type_ids``); ``source``: what was
    loaded (a path or ``"minilm"``); ``kind``: ``"sentence-transformers"`` or
    ``"transformers"``.
    """

    encoder: TextEncoder
    tokenizer: Any
    max_length: int
    input_names: tuple[str, ...]
    source: str
    kind: str

    def batches(
        self, texts: Sequence[str], batch_size: int = 32, *, what: str = "texts"
    ) -> list[tuple[torch.Tensor, ...]]:
        """Token tensors of ``texts`` as positional tuples, one per batch of ``batch_size``
        texts (grouped longest first, which limits padding; each batch padded to its longest
        text; truncated to ``max_length``): the
        ``calib_data`` form :func:`~frugalml.quant.convert.quantize_model` runs as
        ``encoder(*batch)``. Warns once (:class:`~frugalml.quant.report.QuantizationWarning`)
        with how many texts were longer than the context and were truncated; ``what`` names
        the texts in that warning. ``O(total characters)`` tokenization."""
        batches, _ = self._tokenize(texts, batch_size, what)
        return batches

    def _tokenize(
        self, texts: Sequence[str], batch_size: int, what: str
    ) -> tuple[list[tuple[torch.Tensor, ...]], list[np.ndarray]]:
        """(batches, indices of the texts in each batch): longest texts first, which keeps
        padding low (stable sort, deterministic)."""
        texts = _check_texts(texts, what)
        batch_size = check_int(batch_size, "batch_size", low=1)
        lengths = self._token_counts(texts)
        over = lengths > self.max_length
        if over.any():
            warnings.warn(
                f"{int(over.sum())} of {len(texts)} {what} are longer than the model's context "
                f"of {self.max_length} tokens (the longest has {int(lengths.max())}); they were "
                f"truncated to {self.max_length} tokens",
                QuantizationWarning,
                stacklevel=3,
            )
        order = np.argsort(-lengths, kind="stable")
        groups = [order[i : i + batch_size] for i in range(0, len(texts), batch_size)]
        out = []
        for idx in groups:
            enc = self.tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            out.append(tuple(enc[name].to(torch.int64) for name in self.input_names))
        return out, groups

    def _token_counts(self, texts: list[str]) -> np.ndarray:
        """Tokens of each text with special tokens, before truncation (transformers' own
        "longer than the maximum" log line is silenced: the warning above says it once)."""
        tlog = require("transformers.utils.logging", what="Hugging Face tokenizers", extra=_EXTRA)
        level = tlog.get_verbosity()
        tlog.set_verbosity_error()
        try:
            ids = self.tokenizer(texts, truncation=False, padding=False)["input_ids"]
        finally:
            tlog.set_verbosity(level)
        return np.array([len(t) for t in ids], dtype=np.int64)

    def embed(
        self,
        texts: Sequence[str],
        encoder: nn.Module | None = None,
        batch_size: int = 64,
        *,
        progress: Progress | None = None,
    ) -> np.ndarray:
        """Embeddings ``(N, d)`` float32 of ``texts`` (in their order) by ``encoder`` (default:
        the float :attr:`encoder`; a quantized copy takes the same inputs), without gradients
        in eval mode (the training flag is restored). ``progress(message, fraction)`` after
        each batch. One forward pass per batch."""
        batches, groups = self._tokenize(texts, batch_size, "texts")
        n = sum(len(idx) for idx in groups)
        return _run(self.encoder if encoder is None else encoder, batches, groups, n, progress)


def _run(
    encoder: nn.Module,
    batches: list[tuple[torch.Tensor, ...]],
    groups: list[np.ndarray],
    n: int,
    progress: Progress | None,
    label: str = "embedding",
) -> np.ndarray:
    out: np.ndarray | None = None
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            for b, (args, idx) in enumerate(zip(batches, groups, strict=True)):
                emb = encoder(*args)
                if not isinstance(emb, torch.Tensor) or emb.dim() != 2:
                    raise InvalidInputError(
                        "the encoder must return a (batch, d) tensor of embeddings (a "
                        "TextEncoder or a quantized copy of one)"
                    )
                arr = emb.detach().float().cpu().numpy()
                if out is None:
                    out = np.empty((n, arr.shape[1]), dtype=np.float32)
                out[idx] = arr
                if progress is not None:
                    progress(f"{label} batch {b + 1}/{len(batches)}", (b + 1) / len(batches))
    finally:
        encoder.train(was_training)
    if out is None:  # pragma: no cover - texts are checked non-empty
        raise InvalidInputError("no texts to embed")
    return out


def _check_texts(texts: Any, what: str) -> list[str]:
    if isinstance(texts, str):
        raise InvalidInputError(f"{what} must be a sequence of strings, not a single string")
    try:
        out = list(texts)
    except TypeError:
        raise InvalidInputError(f"{what} must be a sequence of strings") from None
    if not out:
        raise InvalidInputError(f"{what} is empty; give at least one text")
    bad = next((i for i, t in enumerate(out) if not isinstance(t, str)), None)
    if bad is not None:
        raise InvalidInputError(f"{what}[{bad}] is a {type(out[bad]).__name__}, not a str")
    if any(not t.strip() for t in out):
        raise InvalidInputError(f"{what} holds empty texts; drop them")
    return out


def read_texts(path: str | Path, *, what: str = "texts file") -> list[str]:
    """The texts of a UTF-8 file, one per line (line ends and surrounding blanks stripped;
    blank lines skipped). Raises :class:`~frugalml.errors.InvalidInputError` when the file is
    missing, a directory, not UTF-8 text, or holds no text; ``what`` names it in the message.
    ``O(file size)``."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InvalidInputError(f"{what} {path} does not exist")
    if path.is_dir():
        raise InvalidInputError(f"{what} {path} is a directory; give a text file, one text a line")
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}); give a UTF-8 text file, "
            "one text a line"
        ) from None
    except OSError as exc:
        raise InvalidInputError(f"{what} {path} could not be read: {exc.strerror}") from None
    if "\x00" in text:
        raise InvalidInputError(f"{what} {path} is binary, not text; give one text a line")
    texts = [line.strip() for line in text.splitlines()]
    texts = [t for t in texts if t]
    if not texts:
        raise InvalidInputError(
            f"{what} {path} is empty (no non-blank lines); give one text a line"
        )
    return texts


def _max_length(*candidates: Any) -> int:
    """The smallest context length that is set (ignoring transformers' 'no limit' sentinel)."""
    set_ = [int(c) for c in candidates if isinstance(c, int) and 0 < c < _NO_LIMIT]
    return min(set_) if set_ else DEFAULT_MAX_LENGTH


def _check_config(config: Any, where: str) -> None:
    """Refuse configs that are not encoders mean pooling can embed with."""
    arch = ", ".join(getattr(config, "architectures", None) or []) or config.model_type
    if getattr(config, "is_encoder_decoder", False):
        raise InvalidInputError(
            f"{where} is a sequence-to-sequence model ({arch}); only encoders are supported: "
            f"{_SUPPORTED}"
        )
    causal = any(
        a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration"))
        for a in getattr(config, "architectures", None) or []
    )
    if causal or getattr(config, "is_decoder", False):
        raise InvalidInputError(
            f"{where} is a decoder-only language model ({arch}); only encoders are supported: "
            f"{_SUPPORTED}"
        )


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _source_path(source: Any) -> tuple[Path, str]:
    if isinstance(source, str) and source.strip().lower() == "minilm":
        return minilm_path(), "minilm"
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInputError(f"model source must be a path or 'minilm', got {source!r}")
    path = Path(source).expanduser()
    if not path.exists():
        raise InvalidInputError(
            f"Hugging Face model {str(source)!r}: no such directory (nothing is downloaded); "
            f"give {_SUPPORTED}. To use a hub model, download it first, e.g. "
            "`hf download NAME --local-dir DIR`"
        )
    if not path.is_dir():
        raise InvalidInputError(
            f"Hugging Face model {path} is a file; give the model's directory ({_SUPPORTED})"
        )
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise InvalidInputError(
            f"{path} has neither modules.json nor config.json, so it is not a Hugging Face "
            f"model directory; give {_SUPPORTED}"
        )
    return path, str(source)


def _load_sentence_transformer(path: Path) -> tuple[Any, Any, Any, int | None]:
    """(model, tokenizer, config, max_seq_length)."""
    st = require("sentence_transformers", what="sentence-transformers models", extra=_EXTRA)
    try:
        model = st.SentenceTransformer(
            str(path), device="cpu", local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:  # a broken or foreign modules.json, missing weights, remote code
        raise InvalidInputError(
            f"could not load {path} as a sentence-transformers model ({_reason(exc)}); give "
            f"{_SUPPORTED}"
        ) from None
    first = model[0] if len(model) else None
    inner = getattr(first, "auto_model", None) or getattr(first, "model", None)
    config = getattr(inner, "config", None)
    tokenizer = getattr(model, "tokenizer", None)
    if config is None or tokenizer is None or not callable(tokenizer):
        raise InvalidInputError(
            f"{path} is a sentence-transformers model without a Hugging Face transformer and "
            f"tokenizer as its first module ({type(first).__name__}); give {_SUPPORTED}"
        )
    return model, tokenizer, config, getattr(model, "max_seq_length", None)


#: files one of which a saved tokenizer has (transformers 5 makes an empty tokenizer without)
_TOKENIZER_FILES = (
    "tokenizer.json",
    "vocab.txt",
    "vocab.json",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def _check_tokenizer(tokenizer: Any, config: Any, where: Path) -> None:
    """Refuse a tokenizer without a padding token, or whose ids exceed the model's vocabulary."""
    if getattr(tokenizer, "pad_token", None) is None:
        raise InvalidInputError(
            f"the tokenizer of {where} has no padding token, so texts cannot be batched; "
            "give an encoder whose tokenizer pads (BERT-like models do)"
        )
    vocab = getattr(config, "vocab_size", None)
    if isinstance(vocab, int) and len(tokenizer) > vocab:
        raise InvalidInputError(
            f"the tokenizer of {where} has {len(tokenizer)} tokens but the model's vocabulary "
            f"only {vocab}; save the model's own tokenizer with it"
        )


def _load_transformers(path: Path) -> tuple[Any, Any, Any]:
    """(model, tokenizer, config) of a plain transformers directory."""
    tf = require("transformers", what="Hugging Face models", extra=_EXTRA)
    try:
        config = tf.AutoConfig.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:
        raise InvalidInputError(
            f"{path}/config.json is not a configuration transformers can read ({_reason(exc)}); "
            f"give {_SUPPORTED}"
        ) from None
    _check_config(config, str(path))
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise InvalidInputError(
            f"{path} has no tokenizer files ({', '.join(_TOKENIZER_FILES)}); save the model's "
            "tokenizer next to it (tokenizer.save_pretrained(DIR))"
        )
    try:
        tokenizer = tf.AutoTokenizer.from_pretrained(
            str(path), local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:
        raise InvalidInputError(
            f"{path} has no tokenizer transformers can load ({_reason(exc)}); save one next to "
            "the model (tokenizer.save_pretrained(DIR))"
        ) from None
    if isinstance(tokenizer, bool) or not callable(tokenizer):
        raise InvalidInputError(f"{path} has no text tokenizer; give {_SUPPORTED}")
    try:
        model = tf.AutoModel.from_pretrained(
            str(path), config=config, local_files_only=True, trust_remote_code=False
        )
    except Exception as exc:
        raise InvalidInputError(
            f"transformers.AutoModel could not load {path} ({_reason(exc)}); give {_SUPPORTED}"
        ) from None
    return model, tokenizer, config


def load_hf(source: str | os.PathLike[str], *, progress: Progress | None = None) -> HFEncoder:
    """Load a Hugging Face text encoder from a local directory, or ``"minilm"``, offline.

    Parameters
    ----------
    source:
        ``"minilm"`` (the bundled all-MiniLM-L6-v2), a sentence-transformers directory (with
        ``modules.json``) or a transformers directory (``config.json``, weights, tokenizer).
        Nothing is downloaded: ``HF_HUB_OFFLINE=1`` and ``TRANSFORMERS_OFFLINE=1`` are set in
        ``os.environ`` (process-wide) first, and remote code is never run.
    progress:
        ``progress(message, fraction)`` at the start and the end of the load.

    Returns
    -------
    HFEncoder
        the float :class:`TextEncoder` in eval mode on the CPU, its tokenizer, the context
        length texts are truncated to (the smallest of the sentence-transformers
        ``max_seq_length``, the tokenizer's ``model_max_length`` and the config's
        ``max_position_embeddings`` that is set; :data:`DEFAULT_MAX_LENGTH` if none is) and
        the input names.

    Raises
    ------
    InvalidInputError
        the path is missing or not a model directory, the model is sequence-to-sequence or
        decoder-only, needs remote code, or its weights, config or tokenizer cannot be loaded.
    """
    path, label = _source_path(source)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    if progress is not None:
        progress(f"loading {path.name or label}", 0.0)
    tlog = require("transformers.utils.logging", what="Hugging Face models", extra=_EXTRA)
    bars = bool(tlog.is_progress_bar_enabled())
    if bars:
        tlog.disable_progress_bar()  # the caller draws the progress
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            if (path / "modules.json").is_file():
                model, tokenizer, config, st_max = _load_sentence_transformer(path)
                _check_config(config, str(path))
                kind = "sentence-transformers"
                accepts = _forward_params(getattr(model[0], "auto_model", None))
            else:
                model, tokenizer, config = _load_transformers(path)
                st_max = None
                kind = "transformers"
                accepts = _forward_params(model)
    finally:
        if bars:
            tlog.enable_progress_bar()
    _check_tokenizer(tokenizer, config, path)
    model.eval()
    given = set(getattr(tokenizer, "model_input_names", ()) or ())
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in given and (accepts is None or "token_type_ids" in accepts):
        names.append("token_type_ids")
    max_length = _max_length(
        st_max,
        getattr(tokenizer, "model_max_length", None),
        getattr(config, "max_position_embeddings", None),
    )
    encoder = TextEncoder(model).eval()
    if progress is not None:
        progress(f"loaded {path.name or label}", 1.0)
    return HFEncoder(encoder, tokenizer, max_length, tuple(names), label, kind)


def _forward_params(model: Any) -> set[str] | None:
    """Parameter names of ``model.forward`` (``None``: it takes ``**kwargs``, or unknown)."""
    if model is None:
        return None
    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def evaluate(
    encoder: HFEncoder,
    qencoder: nn.Module,
    texts: Sequence[str],
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> EmbeddingAgreement:
    """How closely ``qencoder`` (e.g. ``quantize_model(encoder.encoder, ...).model``) matches
    the float encoder on ``texts`` (at least 2; held out from calibration).

    Both embed the same token tensors (tokenized once; one truncation warning). Returns
    :class:`~frugalml.quant.minilm.EmbeddingAgreement`, the tuple ``(mean_cosine,
    nn_top1_agreement)`` of :func:`~frugalml.quant.minilm.embedding_agreement`: mean cosine
    between the two embeddings of each text, and the fraction of texts whose nearest
    neighbour among ``texts`` is unchanged. ``progress`` fills [0, 0.5] with the float pass
    and [0.5, 1] with the quantized one. Cost: two forward passes over ``texts`` plus
    ``O(N^2 d)`` for the neighbours.
    """
    if not isinstance(encoder, HFEncoder):
        raise InvalidInputError(
            f"encoder must be the HFEncoder returned by load_hf, got {type(encoder).__name__}"
        )
    texts = _check_texts(texts, "texts")
    if len(texts) < 2:
        raise InvalidInputError(
            f"evaluation needs at least 2 texts (nearest neighbours), got {len(texts)}"
        )
    batches, groups = encoder._tokenize(texts, batch_size, "evaluation texts")

    def stage(lo: float) -> Progress | None:
        if progress is None:
            return None
        return lambda message, fraction: progress(message, lo + 0.5 * fraction)

    ref = _run(encoder.encoder, batches, groups, len(texts), stage(0.0), "FP32")
    test = _run(qencoder, batches, groups, len(texts), stage(0.5), "quantized")
    return embedding_agreement(ref, test)
