"""Step 1 of :func:`~frugalml.quant.convert.quantize_model`: copy the model, find its layers.

Post-training quantization (Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of
Neural Networks for Efficient Inference", ICCV Workshops 2019, arXiv:1902.06822) never modifies
the caller's model: :func:`prepare_model` deep-copies it, switches the copy to ``eval()``
(dropout and batch-norm updates would corrupt calibration and inference), turns off PyTorch's
fused ``TransformerEncoderLayer`` fast path (it reads ``linear1.weight`` directly and would
bypass the quantized layers; the regular path is numerically equivalent), and sorts the copy's
modules into the layers to quantize (exact ``nn.Linear`` / ``nn.Conv1d`` / ``nn.Conv2d`` with a
floating-point weight), those the caller skipped, and modules of other types that own
parameters (left in float).

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._optional import require
from .._results import ResultRepr
from ..errors import InvalidInputError

require("torch", what="frugalml.quant.quantize_model", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .modules import SUPPORTED_LAYERS  # noqa: E402

__all__ = ["PreparedModel", "describe_modules", "disable_fused_transformer", "prepare_model"]


@dataclass(eq=False, repr=False)
class PreparedModel(ResultRepr):
    """The model copy that :func:`prepare_model` made, and its modules sorted.

    ``model``: the copy (in eval mode); ``modules``: its ``named_modules()`` as a dict;
    ``candidates``: names of the supported layers to quantize, in model order;
    ``user_skipped``: supported layers covered by ``skip``; ``unsupported``: modules of other
    types that own parameters (left in float); ``was_training``: whether any module of the
    original model was in training mode (the copy was switched to ``eval()``).
    """

    model: nn.Module
    modules: dict[str, nn.Module]
    candidates: list[str]
    user_skipped: list[str]
    unsupported: list[str]
    was_training: bool

    def summary(self) -> str:
        return (
            f"prepared {type(self.model).__name__}: {len(self.candidates)} layers to quantize, "
            f"{len(self.user_skipped)} skipped, {len(self.unsupported)} unsupported with "
            "parameters" + (" (switched to eval mode)" if self.was_training else "")
        )


def has_own_parameters(module: nn.Module) -> bool:
    """Whether ``module`` itself (not its children) owns parameters."""
    return any(True for _ in module.parameters(recurse=False))


def disable_fused_transformer(model: nn.Module) -> None:
    """Switch off the fused ``TransformerEncoderLayer`` fast path in ``model``, in place
    (``activation_relu_or_gelu = 0`` on each such layer, ``use_nested_tensor = False`` on each
    ``TransformerEncoder``); the layers then run their regular, equivalent path."""
    for m in model.modules():
        if isinstance(m, nn.TransformerEncoderLayer):
            m.activation_relu_or_gelu = 0
        elif isinstance(m, nn.TransformerEncoder):
            m.use_nested_tensor = False


def describe_modules(names: Sequence[str], modules: Mapping[str, nn.Module]) -> str:
    """``"name (Type), ..."`` for warnings; the root module is shown as ``<root>``."""
    return ", ".join(f"{n or '<root>'} ({type(modules[n]).__name__})" for n in names)


def prepare_model(model: nn.Module, skip: Sequence[str] = ()) -> PreparedModel:
    """Copy ``model`` and sort its modules (module doc); ``model`` is not modified.

    ``skip``: module names to leave in float (a name also covers the modules under it); names
    not in the model raise :class:`~frugalml.errors.InvalidInputError`. Warnings are left to
    the caller (see :attr:`PreparedModel.was_training` and ``unsupported``). Cost: one deep
    copy of the model, ``O(modules * len(skip))``.
    """
    qmodel = copy.deepcopy(model)
    modules = dict(qmodel.named_modules())
    unknown = [s for s in skip if s not in modules]
    if unknown:
        raise InvalidInputError(
            f"skip names not found in the model: {unknown}; use names from model.named_modules()"
        )
    was_training = any(m.training for m in qmodel.modules())
    if was_training:
        qmodel.eval()
    disable_fused_transformer(qmodel)

    def skipped(name: str) -> bool:
        return any(name == s or name.startswith(s + ".") for s in skip)

    candidates: list[str] = []
    user_skipped: list[str] = []
    unsupported: list[str] = []
    for name, m in modules.items():
        supported = type(m) in SUPPORTED_LAYERS and torch.is_floating_point(m.weight)
        if skipped(name):
            if supported:
                user_skipped.append(name)
        elif supported:
            candidates.append(name)
        elif has_own_parameters(m):
            unsupported.append(name)
    return PreparedModel(
        model=qmodel,
        modules=modules,
        candidates=candidates,
        user_skipped=user_skipped,
        unsupported=unsupported,
        was_training=was_training,
    )
