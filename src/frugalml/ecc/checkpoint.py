"""Decoder files of the syndrome-based decoders: save, load (safely), and the trained decoders
shipped with frugalml.

The decoders are those of Bennatan, Choukroun and Kisilev, "Deep Learning for Decoding of Linear
Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv:1802.04741) and the transformer of
Choukroun & Wolf (NeurIPS 2022, arXiv:2203.14966). A file holds the architecture, the weights,
the code's identity (name, n, k, SHA-256 of H) and its matrices; a training checkpoint
(:func:`~frugalml.ecc.training.train_decoder`) also holds the optimiser, the step, the noise
generator and the losses. Files are written atomically and read with
``torch.load(weights_only=True)``, so a malicious file cannot run code.

Torch is required (extra ``ecc``); this module imports it when it is imported.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_write_bytes
from .._optional import require
from .._validate import check_choice
from ..errors import InvalidInputError
from .codes import get_code
from .linear_code import BinaryLinearCode, code_identity

require("torch", what="the neural syndrome decoder of frugalml.ecc", extra="ecc")

import torch  # noqa: E402

from .backbones import BACKBONES  # noqa: E402
from .syndrome import SyndromeDecoder, check_device  # noqa: E402

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_FORMAT",
    "check_same_code",
    "check_same_config",
    "code_data",
    "list_pretrained",
    "load_decoder",
    "pretrained",
    "read_decoder_file",
    "save_decoder",
    "serialise",
]

MODEL_FORMAT = "frugalml.ecc.neural.model/1"
CHECKPOINT_FORMAT = "frugalml.ecc.neural.checkpoint/1"


def serialise(obj: dict[str, Any]) -> bytes:
    """``torch.save`` bytes of ``obj``."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def read_decoder_file(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """The dict of a decoder file or checkpoint, loaded with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"no decoder file at {path}")
    try:
        with warnings.catch_warnings():  # (torch warns about the protocol of raw pickles)
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise InvalidInputError(f"{path} is not a frugalml decoder file: {exc}") from exc
    if not isinstance(obj, dict) or obj.get("format") not in (MODEL_FORMAT, CHECKPOINT_FORMAT):
        raise InvalidInputError(f"{path} is not a frugalml.ecc.neural model or checkpoint")
    return obj


def code_data(code: Any) -> dict[str, Any]:
    """The code's matrices (and automorphism flag) as stored in a file."""
    data = {"H": torch.from_numpy(np.asarray(code.H, dtype=np.uint8).copy())}
    G = getattr(code, "G", None)
    if G is not None:
        data["G"] = torch.from_numpy(np.asarray(G, dtype=np.uint8).copy())
    data["automorphisms"] = getattr(code, "automorphisms", None)
    return data


def check_same_code(saved: dict[str, Any], code: Any, path: Path) -> None:
    """Raise unless the file's code identity ``saved`` is ``code``'s."""
    mine = code_identity(code)
    if saved != mine:
        diff = [key for key in mine if saved.get(key) != mine[key]]
        raise InvalidInputError(
            f"{path} belongs to code {saved.get('name')!r} (n={saved.get('n')}, "
            f"k={saved.get('k')}), not to {mine['name']!r} (n={mine['n']}, k={mine['k']}); "
            f"differs in {', '.join(diff)}"
        )


def check_same_config(saved: dict[str, Any], decoder: SyndromeDecoder, path: Path) -> None:
    """Raise unless the file's architecture ``saved`` is ``decoder``'s (preset aside)."""
    mine = decoder.config
    keys = [k for k in sorted(set(saved) | set(mine)) if k != "preset"]
    diff = [k for k in keys if saved.get(k) != mine.get(k)]
    if diff:
        listed = ", ".join(f"{k}: file {saved.get(k)!r} vs decoder {mine.get(k)!r}" for k in diff)
        raise InvalidInputError(f"{path} holds a different architecture ({listed})")


def save_decoder(decoder: SyndromeDecoder, path: str | Path) -> Path:
    """Write ``decoder`` (architecture, weights, code identity and matrices) atomically."""
    if not isinstance(decoder, SyndromeDecoder):
        raise InvalidInputError(f"decoder must be a SyndromeDecoder, got {type(decoder).__name__}")
    payload = {
        "format": MODEL_FORMAT,
        "code": code_identity(decoder.code),
        "code_data": code_data(decoder.code),
        "config": dict(decoder.config),
        "model": {k: v.detach().cpu() for k, v in decoder.state_dict().items()},
    }
    return atomic_write_bytes(path, serialise(payload))


def _rebuild_code(ident: dict[str, Any], data: dict[str, Any]) -> Any:
    try:
        code = get_code(ident["name"])
        if code_identity(code) == ident:
            return code
    except Exception:  # unknown or unavailable name (e.g. an alist file elsewhere)
        pass
    if "G" not in data:
        raise InvalidInputError(
            f"cannot rebuild code {ident['name']!r} from the file; pass code= explicitly"
        )
    kwargs: dict[str, Any] = {
        "name": ident["name"],
        "n": ident["n"],
        "k": ident["k"],
        "H": data["H"].numpy().astype(np.uint8),
        "G": data["G"].numpy().astype(np.uint8),
    }
    names = {f.name for f in dataclasses.fields(BinaryLinearCode)}
    if "automorphisms" in names:
        kwargs["automorphisms"] = data.get("automorphisms")
    return BinaryLinearCode(**{k: v for k, v in kwargs.items() if k in names})


def load_decoder(
    path: str | Path, code: BinaryLinearCode | None = None, *, device: str | torch.device = "cpu"
) -> SyndromeDecoder:
    """Load a decoder written by :func:`save_decoder` (or a :func:`train_decoder` checkpoint).

    With ``code`` given it must be the code the file was written for (name, n, k and the hash
    of H), else :class:`~frugalml.errors.InvalidInputError`; without it the code is rebuilt
    (``get_code(name)`` when that reproduces H, else from the stored matrices).
    """
    path = Path(path)
    dev = check_device(device)
    obj = read_decoder_file(path)
    if code is not None:
        check_same_code(obj["code"], code, path)
    else:
        code = _rebuild_code(obj["code"], obj.get("code_data", {}))
    cfg = dict(obj["config"])
    backbone = cfg.pop("backbone")
    decoder = SyndromeDecoder(code, backbone, **cfg)
    decoder.load_state_dict(obj["model"])
    decoder.eval()
    return decoder.to(dev)


def _pretrained_dir() -> Path:
    return Path(str(importlib.resources.files("frugalml.ecc") / "checkpoints"))


def list_pretrained() -> list[tuple[str, str]]:
    """``(code name, backbone)`` of every trained decoder shipped with frugalml, sorted.

    They are the fast-preset decoders of the benchmark (``benchmarks/train_ecc.py``: Eb/N0
    4-7 dB, batch 512, seed 0; GRU 20,000 steps, MLP 10,000, transformer 600).
    """
    out = []
    for path in _pretrained_dir().glob("*.pt"):
        code_name, _, backbone = path.stem.rpartition("-")
        if code_name and backbone in BACKBONES:
            out.append((code_name, backbone))
    return sorted(out)


def pretrained(
    code_name: str, backbone: str = "gru", *, device: str | torch.device = "cpu"
) -> SyndromeDecoder:
    """The trained decoder shipped with frugalml for ``code_name`` (e.g. ``"bch-63-45"``)
    and ``backbone``, loaded safely (``weights_only``) on ``device``, in eval mode.

    :func:`list_pretrained` lists what is available; anything else raises
    :class:`~frugalml.errors.InvalidInputError` naming them. The recommended decoder of
    BCH(63, 45) is the cascade ``CascadeDecoder(pretrained("bch-63-45"),
    OrderedStatistics(code, order=2))`` (:mod:`frugalml.ecc.cascade`).
    """
    if not isinstance(code_name, str):
        raise InvalidInputError(f"code_name must be a string, got {type(code_name).__name__}")
    backbone = check_choice(backbone, "backbone", BACKBONES)
    available = list_pretrained()
    if (code_name.strip(), backbone) not in available:
        listed = ", ".join(f"{c} ({b})" for c, b in available) or "none"
        raise InvalidInputError(
            f"no pretrained {backbone} decoder for {code_name!r}; available: {listed}"
        )
    path = _pretrained_dir() / f"{code_name.strip()}-{backbone}.pt"
    return load_decoder(path, get_code(code_name.strip()), device=device)
