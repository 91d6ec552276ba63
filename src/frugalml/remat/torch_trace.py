"""Trace one training step of a PyTorch model into a functional FX graph of core-aten ops.

:func:`trace_joint` turns ``joint = build_joint(model, loss_fn, ...)``, ``(params, buffers,
*inputs) -> (loss, *grads)``, into an FX graph (``make_fx`` over
``torch.func.functionalize(torch.func.grad_and_value(...))`` with the core-aten decompositions
of :func:`decomposition_table`); :func:`clean_graph` then drops the buffer write-backs and
refuses random operations (a recomputation would draw different numbers). The CPU flash
attention is kept fused (with its fused backward): torch's core-aten decomposition of it returns
the attention probabilities in place of the log-sum-exp the backward reads, which gives wrong
gradients. :func:`check_eager` runs the forward and the loss eagerly to turn a failed trace into
a message about the user's model. Building the :class:`~frugalml.remat.graph.RematGraph` from
the traced graph is :func:`~frugalml.remat.torch_graph.extract_graph`'s job.

The extraction idea (a training graph of framework ops) is Checkmate's: Jain et al.,
"Checkmate: Breaking the Memory Wall with Optimal Tensor Rematerialization" (MLSys 2020). The
graph model is that of Bartan, Li, Teague, Lott, Dilkina, "Moccasin: Efficient Tensor
Rematerialization for Neural Networks" (ICML 2023, arXiv 2304.14463), Sec. 2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._optional import require
from ..errors import FrugalError, InvalidInputError
from .torch_measure import tensor_leaves

require("torch", what="the PyTorch rematerialisation front end", extra="remat")

import torch  # noqa: E402
import torch.fx  # noqa: E402

__all__ = [
    "as_input_tuple",
    "build_joint",
    "check_eager",
    "clean_graph",
    "decomposition_table",
    "default_loss",
    "trace_joint",
]


def as_input_tuple(example_inputs: Any) -> tuple[Any, ...]:
    """``example_inputs`` (a tensor or a tuple/list of tensors) as a tuple of tensors; raises
    :class:`InvalidInputError` for anything else."""
    if isinstance(example_inputs, torch.Tensor):
        example_inputs = (example_inputs,)
    if not isinstance(example_inputs, (tuple, list)):
        raise InvalidInputError(
            f"example_inputs must be a tensor or a tuple of tensors, got "
            f"{type(example_inputs).__name__}"
        )
    for k, x in enumerate(example_inputs):
        if not isinstance(x, torch.Tensor):
            raise InvalidInputError(
                f"example input {k} is a {type(x).__name__}; only tensors are supported (bind "
                "other arguments into the model, e.g. with functools.partial or a wrapper module)"
            )
    return tuple(example_inputs)


def default_loss(out: Any) -> Any:
    """The loss used when ``loss_fn`` is ``None``: the sum of every tensor in ``out``."""
    leaves = tensor_leaves(out)
    if not leaves:
        raise InvalidInputError("the model returned no tensor, so there is no default loss")
    total = leaves[0].sum()
    for t in leaves[1:]:
        total = total + t.sum()
    return total


def build_joint(
    model: Any,
    loss_fn: Callable[..., Any] | None,
    param_names: list[str],
    trainable: list[bool],
    buffer_names: list[str],
    num_model_inputs: int,
) -> Callable[..., Any]:
    """``(params, buffers, *inputs) -> (loss, *grads of trainable params)``."""
    from torch.func import functional_call, grad_and_value

    train_names = [nm for nm, t in zip(param_names, trainable, strict=True) if t]
    frozen_names = [nm for nm, t in zip(param_names, trainable, strict=True) if not t]

    def loss_of(train: list[Any], frozen: list[Any], buffers: list[Any], *inputs: Any) -> Any:
        state = dict(zip(train_names, train, strict=True))
        state.update(zip(frozen_names, frozen, strict=True))
        state.update(zip(buffer_names, buffers, strict=True))
        out = functional_call(model, state, tuple(inputs[:num_model_inputs]))
        loss = default_loss(out) if loss_fn is None else loss_fn(out, *inputs[num_model_inputs:])
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise InvalidInputError(
                "the loss must be a tensor with one element, got "
                + (f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else repr(loss))
            )
        return loss.reshape(())

    def joint(params: list[Any], buffers: list[Any], *inputs: Any) -> tuple[Any, ...]:
        train = [p for p, t in zip(params, trainable, strict=True) if t]
        frozen = [p for p, t in zip(params, trainable, strict=True) if not t]
        grads, loss = grad_and_value(loss_of)(train, frozen, buffers, *inputs)
        return (loss, *grads)

    return joint


def check_eager(
    model: Any,
    loss_fn: Callable[..., Any] | None,
    params: list[Any],
    buffers: list[Any],
    param_names: list[str],
    buffer_names: list[str],
    inputs: tuple[Any, ...],
    num_model_inputs: int,
) -> None:
    """Run the forward and the loss eagerly (no grad, cloned buffers) to report user errors."""
    from torch.func import functional_call

    state = dict(zip(param_names, [p.detach() for p in params], strict=True))
    state.update(zip(buffer_names, [b.detach().clone() for b in buffers], strict=True))
    with torch.no_grad():
        try:
            out = functional_call(model, state, tuple(inputs[:num_model_inputs]))
        except Exception as exc:
            raise InvalidInputError(
                f"the forward of {type(model).__name__} failed on the example inputs: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        try:
            default_loss(out) if loss_fn is None else loss_fn(out, *inputs[num_model_inputs:])
        except FrugalError:
            raise
        except Exception as exc:
            raise InvalidInputError(
                f"the loss function failed on the model's output: {type(exc).__name__}: {exc}"
            ) from exc


def trace_joint(
    joint: Callable[..., Any], params: list[Any], buffers: list[Any], inputs: tuple[Any, ...]
) -> Any:
    """The FX ``GraphModule`` of ``joint(params, buffers, *inputs)`` (from :func:`build_joint`):
    functionalised (mutations removed), core-aten ops (:func:`decomposition_table`), traced
    with fake tensors. Raises whatever the trace raises."""
    from torch.func import functionalize
    from torch.fx.experimental.proxy_tensor import make_fx

    table = decomposition_table()
    args = ([p.detach() for p in params], [b.detach() for b in buffers], *inputs)
    return make_fx(
        functionalize(joint, remove="mutations"),
        decomposition_table=table,
        tracing_mode="fake",
    )(*args)


# Ops left fused. torch's core-aten decomposition of the CPU flash attention returns the
# attention probabilities where the op returns the log-sum-exp; fine for inference, but the
# (fused) backward reads that output, so the traced gradients of q, k, v come out wrong.
def _keep_fused() -> list[Any]:
    packet = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return [] if packet is None else [packet.default]


def decomposition_table() -> dict[Any, Any]:
    """torch's core-aten decompositions, without those of the ops kept fused (the CPU flash
    attention): the table every trace of the area uses."""
    from torch._decomp import core_aten_decompositions

    table = dict(core_aten_decompositions())
    for op in _keep_fused():
        table.pop(op, None)
    return table


def clean_graph(gm: Any) -> None:
    """Drop write-backs into placeholders (buffer updates) and dead code; refuse random ops."""
    graph = gm.graph
    for node in list(graph.nodes):
        if (
            node.op == "call_function"
            and node.target is torch.ops.aten.copy_.default
            and isinstance(node.args[0], torch.fx.Node)
            and node.args[0].op == "placeholder"
            and not node.users
        ):
            graph.erase_node(node)
    graph.eliminate_dead_code()
    for node in graph.nodes:
        if node.op != "call_function":
            continue
        if _is_random(node):
            raise InvalidInputError(
                f"the traced step contains the random op {node.target} ({node.name}); a "
                "recomputation would draw different numbers. Use dropout=0 (or eval mode for "
                "random layers) before extracting the graph"
            )
        schema = getattr(node.target, "_schema", None)
        if schema is not None and schema.is_mutable:
            raise InvalidInputError(
                f"the traced step still mutates a tensor in place ({node.target}, {node.name}); "
                "rematerialisation needs a functional graph"
            )
    gm.recompile()


def _is_random(node: Any) -> bool:
    """True for a seeded random op, unless its dropout probability is 0 (``p`` or
    ``dropout_p``, e.g. the fused attention kernels in training mode with dropout 0)."""
    if torch.Tag.nondeterministic_seeded not in getattr(node.target, "tags", ()):
        return False
    schema = node.target._schema
    for k, arg in enumerate(schema.arguments):
        if arg.name in ("p", "dropout_p"):
            value = node.args[k] if k < len(node.args) else node.kwargs.get(arg.name, None)
            if value is None and arg.has_default_value():
                value = arg.default_value
            return not (isinstance(value, (int, float)) and value == 0)
    return True
