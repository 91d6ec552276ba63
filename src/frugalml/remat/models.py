"""Small in-house PyTorch models for the rematerialisation front end and its tests.

Each builder returns ``(model, example_inputs, loss_fn)`` ready for
:func:`~frugalml.remat.torch_graph.extract_graph`: ``loss_fn(model(x), y)`` is the training
loss. Parameters and inputs are drawn from a ``torch.Generator`` seeded with ``rng`` (an
``int`` used as is, or a NumPy Generator that draws one: :func:`~frugalml._validate.seed_from_rng`;
drawn in float64, then cast), so a model is the same for a seed whatever the dtype and the
global RNG state. The old keyword ``seed=`` still works, with a deprecation warning. Models
are deterministic in train mode (no dropout), as rematerialisation requires.

Paper: Bartan et al., "Moccasin: Efficient Tensor Rematerialization for Neural Networks" (ICML
2023, arXiv 2304.14463); Checkmate (Jain et al., MLSys 2020) benchmarks similar training graphs
(MLPs, ResNets, Transformers).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._deprecation import renamed_parameters
from .._optional import require
from .._resources import check_memory
from .._validate import seed_from_rng
from ..errors import InvalidInputError

require("torch", what="the PyTorch rematerialisation models", extra="remat")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

__all__ = ["mlp", "resnet_cnn", "transformer_encoder"]

ModelSpec = tuple[Any, tuple[Any, ...], Callable[..., Any]]


def _check_positive(**kwargs: int) -> None:
    for key, value in kwargs.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{key} must be a positive integer, got {value!r}")


def _check_dtype(dtype: Any) -> None:
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise InvalidInputError(f"dtype must be a floating torch dtype, got {dtype!r}")


def _init_(model: Any, gen: Any) -> None:
    """Re-draw every parameter from ``gen``: weights ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
    norm scales 1, norm shifts 0, other vectors (biases) ``U(-0.1, 0.1)``."""
    norms = (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)
    with torch.no_grad():
        for module in model.modules():
            for pname, p in module.named_parameters(recurse=False):
                if isinstance(module, norms):
                    p.fill_(1.0 if pname == "weight" else 0.0)
                    continue
                bound = 1.0 / math.sqrt(p[0].numel()) if p.dim() >= 2 else 0.1
                u = torch.rand(p.shape, generator=gen, dtype=torch.float64)
                p.copy_((2 * u - 1) * bound)


def _check_size(params: int, activations: int, what: str, fix: str) -> None:
    """Refuse a model whose parameters (float64 while initialised, plus the target dtype) and
    training activations (forward and backward) would not fit in memory."""
    check_memory(16.0 * params + 16.0 * activations, what, fix=fix)


def _randn(gen: Any, *shape: int, dtype: Any, device: Any) -> Any:
    return torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)


@renamed_parameters(seed="rng")
def mlp(
    depth: int = 6,
    width: int = 256,
    in_features: int = 64,
    out_features: int = 10,
    *,
    batch: int = 32,
    rng: int | np.random.Generator = 0,
    dtype: Any = None,
    device: Any = "cpu",
) -> ModelSpec:
    """A ReLU MLP of ``depth`` linear layers, ``in_features -> width -> ... -> out_features``.

    Inputs ``x`` ``(batch, in_features)`` and class labels ``y`` ``(batch,)``; the loss is the
    cross entropy. ``dtype`` defaults to float32.
    """
    dtype = torch.float32 if dtype is None else dtype
    _check_positive(depth=depth, width=width, in_features=in_features,
                    out_features=out_features, batch=batch)  # fmt: skip
    _check_dtype(dtype)
    dims = [in_features] + [width] * (depth - 1) + [out_features]
    _check_size(sum(a * b + b for a, b in itertools.pairwise(dims)),
                batch * sum(dims) * 2, f"the {depth}-layer MLP of width {width}",
                fix="use a smaller width, depth or batch")  # fmt: skip
    gen = torch.Generator().manual_seed(seed_from_rng(rng))
    layers: list[Any] = []
    for k in range(depth):
        layers.append(nn.Linear(dims[k], dims[k + 1]))
        if k < depth - 1:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    _init_(model, gen)
    model = model.to(dtype=dtype, device=device)
    x = _randn(gen, batch, in_features, dtype=dtype, device=device)
    y = torch.randint(0, out_features, (batch,), generator=gen).to(device)
    return model, (x, y), F.cross_entropy


class _BasicBlock(nn.Module):
    """``relu(norm(conv(relu(norm(conv(x))))) + shortcut(x))``, ResNet's basic block."""

    def __init__(self, cin: int, cout: int, stride: int, norm: Callable[[int], Any]) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.norm1 = norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.norm2 = norm(cout)
        self.shortcut: Any = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), norm(cout)
            )

    def forward(self, x: Any) -> Any:
        h = F.relu(self.norm1(self.conv1(x)))
        h = self.norm2(self.conv2(h))
        return F.relu(h + self.shortcut(x))


class _ResNet(nn.Module):
    def __init__(
        self, in_channels: int, channels: int, blocks: int, classes: int, norm: str
    ) -> None:
        super().__init__()

        def make_norm(c: int) -> Any:
            return nn.BatchNorm2d(c) if norm == "batch" else nn.GroupNorm(min(4, c), c)

        self.stem = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.stem_norm = make_norm(channels)
        layers = []
        c = channels
        for k in range(blocks):
            stride = 2 if k > 0 and k % 2 == 0 else 1  # downsample every other block
            cout = c * stride
            layers.append(_BasicBlock(c, cout, stride, make_norm))
            c = cout
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(c, classes)

    def forward(self, x: Any) -> Any:
        h = F.relu(self.stem_norm(self.stem(x)))
        h = self.blocks(h)
        h = h.mean(dim=(2, 3))
        return self.head(h)


@renamed_parameters(seed="rng")
def resnet_cnn(
    channels: int = 8,
    blocks: int = 3,
    *,
    in_channels: int = 3,
    image_size: int = 16,
    classes: int = 10,
    batch: int = 4,
    norm: str = "batch",
    rng: int | np.random.Generator = 0,
    dtype: Any = None,
    device: Any = "cpu",
) -> ModelSpec:
    """A small ResNet: a 3x3 stem, ``blocks`` basic residual blocks (conv-norm-relu twice, a
    projection shortcut when the shape changes; blocks 2, 4, ... halve the resolution and
    double the channels), global average pooling and a linear classifier.

    ``norm="batch"`` (BatchNorm in train mode: batch statistics; the traced graph never
    updates the running statistics) or ``"group"`` (GroupNorm). Inputs ``x`` ``(batch,
    in_channels, image_size, image_size)``, labels ``y`` ``(batch,)``; cross-entropy loss.
    """
    dtype = torch.float32 if dtype is None else dtype
    _check_positive(channels=channels, blocks=blocks, in_channels=in_channels,
                    image_size=image_size, classes=classes, batch=batch)  # fmt: skip
    _check_dtype(dtype)
    if norm not in ("batch", "group"):
        raise InvalidInputError(f"norm must be 'batch' or 'group', got {norm!r}")
    widest = channels * 2 ** (blocks // 2)
    _check_size(blocks * 18 * widest * widest + in_channels * 9 * channels,
                batch * widest * image_size * image_size * (4 * blocks + 2),
                f"the ResNet with {blocks} blocks of up to {widest} channels on "
                f"{image_size}x{image_size} images", fix="use fewer channels, blocks or a smaller "
                "image_size or batch")  # fmt: skip
    gen = torch.Generator().manual_seed(seed_from_rng(rng))
    model = _ResNet(in_channels, channels, blocks, classes, norm)
    _init_(model, gen)
    model = model.to(dtype=dtype, device=device).train()
    x = _randn(gen, batch, in_channels, image_size, image_size, dtype=dtype, device=device)
    y = torch.randint(0, classes, (batch,), generator=gen).to(device)
    return model, (x, y), F.cross_entropy


class _Encoder(nn.Module):
    def __init__(self, layers: int, d_model: int, nhead: int, dim_feedforward: int) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=dim_feedforward, dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, d_model)

    def forward(self, x: Any) -> Any:
        return self.head(self.encoder(x))


@renamed_parameters(seed="rng")
def transformer_encoder(
    layers: int = 2,
    d_model: int = 64,
    nhead: int = 4,
    seq: int = 32,
    *,
    batch: int = 4,
    dim_feedforward: int | None = None,
    rng: int | np.random.Generator = 0,
    dtype: Any = None,
    device: Any = "cpu",
) -> ModelSpec:
    """``layers`` post-norm ``nn.TransformerEncoderLayer`` (dropout 0, batch first, nested
    tensors off) and a linear head; mean-squared-error regression to a random target.

    Inputs ``x`` and ``y``, both ``(batch, seq, d_model)``; ``dim_feedforward`` defaults to
    ``2 * d_model``.
    """
    dtype = torch.float32 if dtype is None else dtype
    dim_feedforward = 2 * d_model if dim_feedforward is None else dim_feedforward
    _check_positive(layers=layers, d_model=d_model, nhead=nhead, seq=seq, batch=batch,
                    dim_feedforward=dim_feedforward)  # fmt: skip
    _check_dtype(dtype)
    if d_model % nhead:
        raise InvalidInputError(f"d_model ({d_model}) must be divisible by nhead ({nhead})")
    _check_size(layers * (4 * d_model * d_model + 2 * d_model * dim_feedforward),
                layers * batch * seq * (8 * d_model + 2 * dim_feedforward + 2 * nhead * seq),
                f"the {layers}-layer transformer (d_model {d_model}, seq {seq})",
                fix="use a smaller d_model, seq, layers or batch")  # fmt: skip
    gen = torch.Generator().manual_seed(seed_from_rng(rng))
    model = _Encoder(layers, d_model, nhead, dim_feedforward)
    _init_(model, gen)
    model = model.to(dtype=dtype, device=device).train()
    x = _randn(gen, batch, seq, d_model, dtype=dtype, device=device)
    y = _randn(gen, batch, seq, d_model, dtype=dtype, device=device)
    return model, (x, y), F.mse_loss
