"""Glue for the CLI and benchmarks: build a model target, run a schedule, compare gradients.

Paper: Bartan et al., "Moccasin" (ICML 2023, arXiv 2304.14463), Sec. 5 (schedules executed on
real networks).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._resources import check_memory
from ..errors import InvalidInputError

__all__ = ["IN_HOUSE", "build_target", "check_schedule", "reference_gradients"]

#: the in-house models by CLI name
IN_HOUSE = ("mlp", "resnet", "transformer")


def build_target(
    target: str, input_shape: str | None = None, *, dtype: Any = None
) -> tuple[Any, tuple[Any, ...], Callable[..., Any] | None]:
    """``(model, example_inputs, loss_fn)`` for an in-house name or ``module:Class``.

    ``module:Class`` is instantiated with no arguments and fed ``torch.randn(input_shape)``
    (seeded); its loss is the sum of the output. ``dtype`` defaults to float64.
    """
    import torch

    from . import models

    dtype = torch.float64 if dtype is None else dtype
    if target in IN_HOUSE:
        if input_shape is not None:
            raise InvalidInputError("--input-shape is only for module:Class targets")
        build = {"mlp": models.mlp, "resnet": models.resnet_cnn,
                 "transformer": models.transformer_encoder}[target]  # fmt: skip
        return build(dtype=dtype)
    if ":" not in target:
        raise InvalidInputError(
            f"unknown model {target!r}: use one of {', '.join(IN_HOUSE)} or module:Class"
        )
    if not input_shape:
        raise InvalidInputError("a module:Class target needs --input-shape, e.g. 8,3,32,32")
    try:
        shape = tuple(int(s) for s in input_shape.split(","))
    except ValueError as exc:
        raise InvalidInputError(f"--input-shape must be integers like 8,3,32,32: {exc}") from exc
    if not shape or min(shape) < 1:
        raise InvalidInputError(f"--input-shape entries must be >= 1, got {input_shape}")
    itemsize = torch.empty((), dtype=dtype).element_size()
    # the input, and the activations of forward and backward passes while the graph is traced
    # and timed (a generous factor: the model is unknown)
    check_memory(16.0 * itemsize * math.prod(shape),
                 f"the {'x'.join(map(str, shape))} example input and its activations",
                 fix="use a smaller --input-shape")  # fmt: skip
    mod_name, _, cls_name = target.partition(":")
    try:
        cls = getattr(importlib.import_module(mod_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise InvalidInputError(f"cannot import {target}: {exc}") from exc
    try:
        model = cls()
    except Exception as exc:
        raise InvalidInputError(f"{target}() could not be constructed: {exc}") from exc
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(f"{target}() is a {type(model).__name__}, not a torch.nn.Module")
    model = model.to(dtype)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen, dtype=dtype)
    return model, (x,), None


def reference_gradients(model: Any, inputs: tuple[Any, ...], loss_fn: Any) -> tuple[Any, list]:
    """Loss and ``model.parameters()`` gradients by plain autograd (the unscheduled model)."""
    import torch

    model.zero_grad(set_to_none=True)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    out = model(inputs[0]) if loss_fn is not None else model(*inputs)
    loss = loss_fn(out, *inputs[1:]) if loss_fn is not None else out.sum()
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    model.load_state_dict(state)  # undo running-statistics updates
    return loss.detach(), list(grads)


def check_schedule(tg: Any, schedule: np.ndarray, model: Any, inputs: tuple, loss_fn: Any) -> dict:
    """Run ``schedule`` on the extracted graph and compare with autograd.

    Returns the measured and predicted peaks and the largest absolute gradient difference.
    """
    from .execute import execute_schedule

    ref_loss, ref_grads = reference_gradients(model, inputs, loss_fn)
    res = execute_schedule(tg, schedule, model, inputs)
    got = [g for g in res.grads if g is not None]
    diff = max(
        [float((a - b).abs().max()) for a, b in zip(got, ref_grads, strict=True)]
        + [float((res.loss - ref_loss).abs())]
    )
    return {
        "measured_peak": int(res.peak_bytes),
        "predicted_peak": int(res.predicted_peak),
        "cuda_peak": res.cuda_peak_bytes,
        "steps": int(res.steps),
        "recomputations": int(res.recomputations),
        "max_grad_diff": diff,
    }
