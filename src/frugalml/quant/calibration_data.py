"""Calibration inputs of :func:`~frugalml.quant.convert.quantize_model`: batches and devices.

Post-training quantization (Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of
Neural Networks for Efficient Inference", ICCV Workshops 2019, arXiv:1902.06822) needs only
unlabeled calibration inputs. They come in several shapes (one tensor, a tokenizer's dict of
tensors, an iterable of batches); :func:`iter_calibration_batches` turns each into the
``(args, kwargs)`` of one ``model(*args, **kwargs)`` call, :func:`to_device` moves the tensors
inside them to the model's device, and :func:`describe_value` / :func:`tensors_in` serve the
error messages and input checks.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from .._device import check_device
from .._optional import require
from ..errors import FrugalError, InvalidInputError

require("torch", what="frugalml.quant.quantize_model", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

__all__ = [
    "CALIB_BATCH_SIZE",
    "as_device",
    "batch_count",
    "describe_value",
    "iter_calibration_batches",
    "model_device",
    "run_calibration",
    "split_batches",
    "tensors_in",
    "to_device",
]

CALIB_BATCH_SIZE = 64
"""Batch size used when ``calib_data`` is a single tensor (or a single dict of tensors)."""


def split_batches(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``t`` split along dim 0 into batches of :data:`CALIB_BATCH_SIZE` (views, no copy)."""
    if t.dim() == 0:
        raise InvalidInputError("calib_data must have a batch dimension, got a 0-d tensor")
    return t.split(CALIB_BATCH_SIZE)


def iter_calibration_batches(calib_data: Any) -> Iterator[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Yield ``(args, kwargs)`` for each calibration call ``model(*args, **kwargs)``.

    ``calib_data``: a tensor (batches of :data:`CALIB_BATCH_SIZE` along dim 0, ``model(x)``), a
    dict of tensors sharing the batch dimension (split the same way, ``model(**d)``), or an
    iterable whose items are tensors (``model(x)``), tuples/lists (``model(*args)``) or dicts
    (``model(**kwargs)``). Raises :class:`~frugalml.errors.InvalidInputError` for anything
    else. Lazy: ``O(1)`` per batch (views, no copies).
    """
    if isinstance(calib_data, torch.Tensor):
        for t in split_batches(calib_data):
            yield (t,), {}
        return
    if isinstance(calib_data, Mapping):  # one dict of tensors sharing the batch dimension
        items = dict(calib_data)
        sizes = {v.shape[0] for v in items.values() if isinstance(v, torch.Tensor) and v.dim()}
        if len(sizes) > 1:
            raise InvalidInputError(
                f"a dict calib_data must hold tensors with one batch size, got sizes {sizes}"
            )
        n = sizes.pop() if sizes else 1
        for i in range(0, n, CALIB_BATCH_SIZE):
            yield (
                (),
                {
                    k: v[i : i + CALIB_BATCH_SIZE] if isinstance(v, torch.Tensor) and v.dim() else v
                    for k, v in items.items()
                },
            )
        return
    if isinstance(calib_data, (str, bytes)) or not hasattr(calib_data, "__iter__"):
        raise InvalidInputError(
            "calib_data must be a tensor, a dict of tensors, or an iterable of tensors, tuples "
            f"or dicts; got {type(calib_data).__name__}"
        )
    for item in calib_data:
        if isinstance(item, torch.Tensor):
            yield (item,), {}
        elif isinstance(item, Mapping):
            yield (), dict(item)
        elif isinstance(item, (tuple, list)):
            yield tuple(item), {}
        else:
            raise InvalidInputError(
                "each calibration batch must be a tensor (model(x)), a tuple/list "
                f"(model(*args)) or a dict (model(**kwargs)); got {type(item).__name__}"
            )


def describe_value(value: Any) -> str:
    """``tensor(4, 2) float32`` for a tensor, the type name otherwise (error messages)."""
    if isinstance(value, torch.Tensor):
        dims = ", ".join(str(d) for d in value.shape)
        return f"tensor({dims}) {str(value.dtype).removeprefix('torch.')}"
    return type(value).__name__


def tensors_in(value: Any) -> list[torch.Tensor]:
    """The tensors in ``value``, looking inside tuples, lists and dicts, in order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in tensors_in(v)]
    return []


def as_device(device: Any, name: str = "device") -> torch.device:
    """``device`` (``"cpu"``, ``"cuda:0"``, a ``torch.device``) as a ``torch.device``; see
    :func:`frugalml._device.check_device` (anything else, or CUDA without a GPU, raises
    :class:`~frugalml.errors.InvalidInputError` naming ``name``)."""
    return check_device(device, name)


def model_device(model: nn.Module) -> torch.device | None:
    """The device of the first parameter or buffer of ``model`` (``None`` if it has none)."""
    for t in (*model.parameters(), *model.buffers()):
        return t.device
    return None


def to_device(v: Any, device: torch.device | None) -> Any:
    """``v`` with its tensors (also inside tuples, lists and dicts) moved to ``device``."""
    if device is None:
        return v
    if isinstance(v, torch.Tensor):
        return v if v.device == device else v.to(device)
    if isinstance(v, Mapping) and type(v) is dict:
        return {k: to_device(x, device) for k, x in v.items()}
    if isinstance(v, (tuple, list)) and type(v) in (tuple, list):
        return type(v)(to_device(x, device) for x in v)
    return v


def batch_count(calib_data: Any) -> int | None:
    """Number of calibration calls when it is known in advance (a sequence, a tensor), else
    ``None`` (an iterator, a dict of tensors); for progress fractions only."""
    total = len(calib_data) if isinstance(calib_data, Sequence) else None
    if isinstance(calib_data, torch.Tensor):
        total = math.ceil(calib_data.shape[0] / CALIB_BATCH_SIZE) if calib_data.dim() else None
    return total


def run_calibration(
    model: nn.Module,
    calib_data: Any,
    *,
    before: Callable[[int], None] | None = None,
    after: Callable[[int, int | None], None] | None = None,
) -> tuple[int, int]:
    """Run every batch of ``calib_data`` through ``model`` under ``torch.no_grad()``: the
    tensors are moved to the model's device, NaN/inf inputs are refused, and a call the model
    fails on becomes an :class:`~frugalml.errors.InvalidInputError` quoting the call and the
    accepted formats. ``before(i)`` runs before batch ``i`` (hooks read the batch index),
    ``after(i, total)`` after it (``total``: the number of batches, or ``None`` if unknown).
    Returns ``(batches, first_samples)``: the calls made and the leading dimension of the
    first tensor of the first batch. Raises for an empty ``calib_data``. One forward pass."""
    total = batch_count(calib_data)
    device = model_device(model)
    first_samples = 1
    done = 0
    with torch.no_grad():
        for i, (args, kwargs) in enumerate(iter_calibration_batches(calib_data)):
            if before is not None:
                before(i)
            args = tuple(to_device(a, device) for a in args)
            kwargs = {k: to_device(v, device) for k, v in kwargs.items()}
            tensors = tensors_in([args, kwargs])
            for t in tensors:
                if torch.is_floating_point(t) and not bool(torch.isfinite(t).all()):
                    raise InvalidInputError(
                        f"calib_data batch {i} contains NaN or inf; clean the input"
                    )
            if i == 0 and tensors and tensors[0].dim():
                first_samples = max(int(tensors[0].shape[0]), 1)
            try:
                model(*args, **kwargs)
            except FrugalError:
                raise
            except Exception as exc:
                shapes = ", ".join(
                    [describe_value(a) for a in args]
                    + [f"{k}={describe_value(v)}" for k, v in kwargs.items()]
                )
                raise InvalidInputError(
                    f"the model failed on calibration batch {i} ({type(exc).__name__}: "
                    f"{' '.join(str(exc).split())[:300]}); it was called as model({shapes}). "
                    "calib_data must be what the model accepts: a tensor (model(x)), a dict "
                    "of tensors (model(**d), e.g. a tokenizer's input_ids and attention_mask) "
                    "or an iterable of tensors, tuples or dicts"
                ) from exc
            done = i + 1
            if after is not None:
                after(i, total)
    if done == 0:
        raise InvalidInputError("calib_data is empty; give at least one calibration batch")
    return done, first_samples
