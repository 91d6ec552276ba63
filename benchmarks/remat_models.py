"""Real architectures, random weights, for the rematerialisation training benchmark.

Not a benchmark itself (no ``REPORT_AREA``): :mod:`remat_baselines` trains these models under
each memory-saving method and measures the allocator's peak. Every builder returns
``(model, make_batch, loss_fn, blocks)``:

- ``model``: an ``nn.Module`` in train mode, float32, on the CPU, its weights drawn from the
  architecture's published initialisation with ``torch.manual_seed(rng)`` (inside
  ``torch.random.fork_rng``, so the caller's global RNG is untouched);
- ``make_batch(batch_size, rng)``: a batch for one training step (inputs and labels), drawn
  from a ``torch.Generator`` seeded with ``rng``;
- ``loss_fn(model, batch)``: the scalar training loss of ``model`` on ``batch``;
- ``blocks``: the submodules that checkpoint-per-block wraps (the residual blocks of the CNNs,
  the transformer layers of the language models), in forward order.

Architectures:

- :func:`resnet18`: He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition" (CVPR
  2016), Table 1 "18-layer": a 7x7/2 convolution and 3x3/2 max pool, then BasicBlocks
  ``[2, 2, 2, 2]`` of 64, 128, 256, 512 channels (stride 2 and a 1x1 projection shortcut where
  the shape changes, option B), BatchNorm after every convolution, in-place ReLU, global
  average pooling, a fully connected classifier. He initialisation (fan-out normal) of the
  convolutions, BatchNorm scale 1 and shift 0. Written here because torchvision does not load
  on this CPU build of torch (docs/DESIGN.md, pitfalls).
- :func:`mobilenet_v2`: Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted
  Residuals and Linear Bottlenecks" (CVPR 2018), Table 2, width multiplier 1.0: a 3x3/2
  convolution of 32 channels, the inverted residual blocks of the ``(t, c, n, s)`` table
  :data:`MOBILENET_V2_SETTING` (1x1 expansion by ``t``, 3x3 depthwise convolution of stride
  ``s`` on the first of the ``n`` repeats, linear 1x1 projection to ``c``, a residual
  connection when the stride is 1 and the channels match), a 1x1 convolution to 1280, global
  average pooling and a linear classifier; BatchNorm after every convolution, in-place ReLU6
  after all but the projections. No dropout (Table 2 has none; torchvision adds p = 0.2 before
  the classifier), so the model is deterministic in train mode.
- :func:`gpt2` and :func:`bert`: Hugging Face ``transformers`` models built from their default
  configurations (``GPT2Config()`` / ``BertConfig()``: hidden size 768, 12 heads, vocabulary
  50257 / 30522) with ``n_layer`` transformer layers, random initialisation (the library's
  ``_init_weights``), the default dropout (0.1), the attention implementation ``"sdpa"``
  (``torch.nn.functional.scaled_dot_product_attention``, which with attention dropout in train
  mode on the CPU runs its math path: ``bmm``, ``_safe_softmax``, dropout, ``bmm``; ``"eager"``
  runs as well; checked with transformers 5.23 and torch 2.13 CPU). GPT-2 is called with
  ``use_cache=False``, as training does. The loss is
  computed inside the model from ``labels``: causal language modelling for GPT-2
  (``GPT2LMHeadModel``, the labels are the inputs), masked language modelling for BERT
  (``BertForMaskedLM``, 15% of the positions masked, the others labelled -100).

Sizes: :data:`WORKLOADS` names each model with the batch the benchmark uses (one training step
of about 1-2 s on one thread of this machine), a ``-quick`` variant (small images and
sequences) for the tests, and ``gpt2-long`` / ``bert-long`` (sequences of 512) where the
transformer layers' activations, not the gradients, make the peak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from frugalml.errors import InvalidInputError

__all__ = [
    "MOBILENET_V2_SETTING",
    "RESNET18_LAYERS",
    "WORKLOADS",
    "ModelSpec",
    "Workload",
    "bert",
    "build",
    "gpt2",
    "mobilenet_v2",
    "resnet18",
]

#: (model, make_batch(batch_size, rng), loss_fn(model, batch), blocks)
ModelSpec = tuple[nn.Module, Callable[[int, int], Any], Callable[[nn.Module, Any], Any], list]

#: BasicBlocks per stage of ResNet-18 (He et al. 2016, Table 1)
RESNET18_LAYERS = (2, 2, 2, 2)
#: (expansion t, output channels c, repeats n, first stride s), Sandler et al. 2018, Table 2
MOBILENET_V2_SETTING = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _check_positive(**kwargs: int) -> None:
    for key, value in kwargs.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(f"{key} must be a positive integer, got {value!r}")


# --------------------------------------------------------------------------------------------
# ResNet-18
# --------------------------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """``relu(bn(conv3x3(relu(bn(conv3x3(x, stride))))) + shortcut(x))`` (He et al. 2016)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return self.relu(out)


class ResNet(nn.Module):
    """ResNet with BasicBlocks; ``layers`` blocks per stage, ``(N, 3, H, W) -> (N, classes)``."""

    def __init__(self, layers: tuple[int, ...], num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages, cin = [], 64
        for i, n in enumerate(layers):
            cout = 64 * 2**i
            blocks = [BasicBlock(cin, cout, 1 if i == 0 else 2)]
            blocks += [BasicBlock(cout, cout, 1) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --------------------------------------------------------------------------------------------
# MobileNetV2
# --------------------------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, k: int, stride: int, groups: int, act: bool) -> list:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return layers


class InvertedResidual(nn.Module):
    """Expansion 1x1 (by ``t``), depthwise 3x3 (stride ``s``), linear projection 1x1; a
    residual connection when ``s == 1`` and ``cin == cout`` (Sandler et al. 2018, Table 1)."""

    def __init__(self, cin: int, cout: int, stride: int, t: int) -> None:
        super().__init__()
        hidden = cin * t
        layers: list[nn.Module] = []
        if t != 1:
            layers += _conv_bn(cin, hidden, 1, 1, 1, act=True)
        layers += _conv_bn(hidden, hidden, 3, stride, hidden, act=True)
        layers += _conv_bn(hidden, cout, 1, 1, 1, act=False)
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    """MobileNetV2 of width 1.0, ``(N, 3, H, W) -> (N, classes)``."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Sequential(*_conv_bn(3, 32, 3, 2, 1, act=True))]
        cin = 32
        for t, c, n, s in MOBILENET_V2_SETTING:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(nn.Sequential(*_conv_bn(cin, 1280, 1, 1, 1, act=True)))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(1280, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


# --------------------------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------------------------


def _image_batch(image_size: int, num_classes: int) -> Callable[[int, int], Any]:
    def make_batch(batch_size: int, rng: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        _check_positive(batch_size=batch_size)
        gen = torch.Generator().manual_seed(rng)
        x = torch.randn(batch_size, 3, image_size, image_size, generator=gen)
        y = torch.randint(0, num_classes, (batch_size,), generator=gen)
        return x, y

    return make_batch


def _classifier_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> Any:
    x, y = batch
    return F.cross_entropy(model(x), y)


def _seeded(build_model: Callable[[], nn.Module], rng: int) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(rng)
        model = build_model()
    return model.train()


def resnet18(*, num_classes: int = 1000, image_size: int = 224, rng: int = 0) -> ModelSpec:
    """ResNet-18 (He et al. 2016) on ``(N, 3, image_size, image_size)`` images with
    ``num_classes`` classes; cross-entropy loss; blocks: the 8 BasicBlocks."""
    _check_positive(num_classes=num_classes, image_size=image_size)
    model = _seeded(lambda: ResNet(RESNET18_LAYERS, num_classes), rng)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    return model, _image_batch(image_size, num_classes), _classifier_loss, blocks


def mobilenet_v2(*, num_classes: int = 1000, image_size: int = 224, rng: int = 0) -> ModelSpec:
    """MobileNetV2 1.0 (Sandler et al. 2018) on ``(N, 3, image_size, image_size)`` images;
    cross-entropy loss; blocks: the 17 inverted residual blocks."""
    _check_positive(num_classes=num_classes, image_size=image_size)
    model = _seeded(lambda: MobileNetV2(num_classes), rng)
    blocks = [m for m in model.modules() if isinstance(m, InvertedResidual)]
    return model, _image_batch(image_size, num_classes), _classifier_loss, blocks


def _hf_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> Any:
    return model(**batch).loss


def gpt2(
    *, n_layer: int = 4, seq_len: int = 128, attn_implementation: str = "sdpa", rng: int = 0
) -> ModelSpec:
    """``GPT2LMHeadModel(GPT2Config(n_layer=n_layer))`` (the default configuration otherwise),
    random weights; a batch is ``input_ids`` ``(N, seq_len)`` with ``labels = input_ids``
    (the model shifts them: causal LM loss) and ``use_cache=False`` (training keeps no
    key/value cache: with the config's default ``use_cache=True`` the model appends every
    layer's keys and values to a cache in the forward, which keeps copies of them alive and
    makes a checkpointed layer's recomputation differ from its forward); blocks: the
    ``n_layer`` ``GPT2Block``."""
    _check_positive(n_layer=n_layer, seq_len=seq_len)
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(n_layer=n_layer, attn_implementation=attn_implementation)
    model = _seeded(lambda: GPT2LMHeadModel(config), rng)
    vocab = config.vocab_size

    def make_batch(batch_size: int, rng: int = 0) -> dict[str, torch.Tensor]:
        _check_positive(batch_size=batch_size)
        gen = torch.Generator().manual_seed(rng)
        ids = torch.randint(0, vocab, (batch_size, seq_len), generator=gen)
        return {"input_ids": ids, "labels": ids.clone(), "use_cache": False}

    return model, make_batch, _hf_loss, list(model.transformer.h)


def bert(
    *, n_layer: int = 4, seq_len: int = 128, attn_implementation: str = "sdpa", rng: int = 0
) -> ModelSpec:
    """``BertForMaskedLM(BertConfig(num_hidden_layers=n_layer))``, random weights; a batch is
    ``input_ids`` ``(N, seq_len)`` (``[CLS] ... [SEP]``, 15% of the inner positions replaced by
    ``[MASK]``), ``attention_mask`` of ones and ``labels`` = the original ids at the masked
    positions and -100 elsewhere (masked LM loss); blocks: the ``n_layer`` ``BertLayer``."""
    _check_positive(n_layer=n_layer, seq_len=seq_len)
    if seq_len < 3:
        raise InvalidInputError(
            f"seq_len must be at least 3 ([CLS], a token, [SEP]), got {seq_len}"
        )
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(num_hidden_layers=n_layer, attn_implementation=attn_implementation)
    model = _seeded(lambda: BertForMaskedLM(config), rng)
    vocab = config.vocab_size
    cls_id, sep_id, mask_id, first_word = 101, 102, 103, 1000  # bert-base-uncased's vocabulary

    def make_batch(batch_size: int, rng: int = 0) -> dict[str, torch.Tensor]:
        _check_positive(batch_size=batch_size)
        gen = torch.Generator().manual_seed(rng)
        ids = torch.randint(first_word, vocab, (batch_size, seq_len), generator=gen)
        ids[:, 0], ids[:, -1] = cls_id, sep_id
        masked = torch.rand(batch_size, seq_len, generator=gen) < 0.15
        masked[:, 0] = masked[:, -1] = False
        masked[:, 1] |= ~masked.any(dim=1)  # at least one labelled position per sequence
        labels = torch.where(masked, ids, torch.full_like(ids, -100))
        inputs = torch.where(masked, torch.full_like(ids, mask_id), ids)
        return {"input_ids": inputs, "attention_mask": torch.ones_like(ids), "labels": labels}

    return model, make_batch, _hf_loss, list(model.bert.encoder.layer)


# --------------------------------------------------------------------------------------------
# the benchmark's sizes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """A builder with its arguments and the batch size of the benchmark."""

    name: str
    builder: Callable[..., ModelSpec]
    batch_size: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: whether the model has dropout (then runs of different methods need not agree)
    dropout: bool = False

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.kwargs.items())
        return f"{self.builder.__name__}({args}), batch {self.batch_size}"


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("resnet18", resnet18, 8, {"image_size": 224}),
        Workload("mobilenet_v2", mobilenet_v2, 8, {"image_size": 224}),
        Workload("gpt2", gpt2, 2, {"n_layer": 4, "seq_len": 128}, dropout=True),
        Workload("bert", bert, 2, {"n_layer": 4, "seq_len": 128}, dropout=True),
        # longer sequences, where the layers' activations outweigh the gradients (not in the
        # default run: ~5x the step time)
        Workload("gpt2-long", gpt2, 2, {"n_layer": 4, "seq_len": 512}, dropout=True),
        Workload("bert-long", bert, 2, {"n_layer": 4, "seq_len": 512}, dropout=True),
        Workload("resnet18-quick", resnet18, 4, {"image_size": 96, "num_classes": 10}),
        Workload("mobilenet_v2-quick", mobilenet_v2, 2, {"image_size": 64, "num_classes": 10}),
        Workload("gpt2-quick", gpt2, 1, {"n_layer": 2, "seq_len": 16}, dropout=True),
        Workload("bert-quick", bert, 1, {"n_layer": 2, "seq_len": 16}, dropout=True),
    )
}


def build(name: str, *, rng: int = 0) -> tuple[ModelSpec, Any]:
    """``(builder's ModelSpec, the workload's batch)`` of :data:`WORKLOADS` ``[name]``."""
    if name not in WORKLOADS:
        raise KeyError(f"unknown workload {name!r}; choose one of {', '.join(WORKLOADS)}")
    w = WORKLOADS[name]
    spec = w.builder(rng=rng, **w.kwargs)
    return spec, spec[1](w.batch_size, rng)
