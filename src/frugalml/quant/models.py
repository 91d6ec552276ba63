"""Small CNN classifiers and a deterministic training loop for the quantization experiments.

Choukroun, Kravchik, Yang and Kisilev, "Low-bit Quantization of Neural Networks for Efficient
Inference" (ICCV Workshops 2019, arXiv:1902.06822) evaluate post-training MMSE quantization on
trained convolutional networks. These are the (much smaller) networks we train here to have
something real to quantize in seconds on one CPU core:

* :class:`DigitsCNN` — two 3x3 ``Conv2d`` + ReLU, a 2x2 max-pool and two ``Linear`` layers, for
  the 8x8 digits of :func:`frugalml.quant.data.load_digits_images` (about 40 k parameters);
* :class:`MNIST1DCNN` — three strided ``Conv1d`` + ReLU and two ``Linear`` layers, for the
  length-40 signals of :func:`frugalml.quant.data.load_mnist1d` (about 20 k parameters).

Both contain only ``Conv``/``Linear`` layers with parameters (no batch-norm to fold), every
activation that feeds a quantized layer except the network input comes out of a ReLU (so it is
non-negative and fits an unsigned grid), and the layers have stable attribute names
(``conv1``, ``fc1`` ...) for reports. Everything runs on the CPU by default; the builders,
:func:`train_classifier` and :func:`accuracy` take ``device=`` (e.g. ``"cuda"``). This module
needs torch (extra ``quant``): importing it without torch raises
:class:`~frugalml.errors.BackendUnavailableError`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._deprecation import renamed_parameters
from .._optional import require
from .._results import ResultRepr
from .._validate import RngLike, check_int, check_positive_float, seed_from_rng
from ..errors import InvalidInputError
from ..progress import Progress

__all__ = ["MNIST1DCNN", "RECIPES", "DigitsCNN", "TrainResult", "accuracy", "train_classifier"]

torch = require("torch", what="frugalml.quant.models", extra="quant")
nn = torch.nn
F = torch.nn.functional

from .calibration_data import as_device, model_device  # noqa: E402

#: Training settings (keyword arguments of :func:`train_classifier`) tuned for the two models.
#: Measured on one CPU core (torch 2.13), seeds 0 and 1: DigitsCNN on ``load_digits_images``
#: 97-99 % test accuracy in 2-5 s; MNIST1DCNN on ``load_mnist1d(n=4000)`` about 91 % test in
#: about 10 s (``n=5000``: 94-95 %, ``n=10000`` with 60 epochs: 97 %). Both fit their training
#: set (100 %); MNIST-1D is data-limited, not capacity-limited.
RECIPES: dict[str, dict[str, Any]] = {
    "digits": {"epochs": 20, "lr": 3e-3, "batch_size": 64},
    "mnist1d": {"epochs": 100, "lr": 1e-2, "batch_size": 100},
}


@dataclass(frozen=True, repr=False)
class TrainResult(ResultRepr):
    """Outcome of :func:`train_classifier`: the trained model (in eval mode) and its accuracies."""

    model: Any
    train_acc: float
    test_acc: float
    seconds: float
    epochs: int
    final_loss: float

    def summary(self) -> str:
        """One line: name, accuracies and wall time."""
        return (
            f"{type(self.model).__name__}: train acc {self.train_acc:.4f}, "
            f"test acc {self.test_acc:.4f}, {self.epochs} epochs, final loss "
            f"{self.final_loss:.4f}, {self.seconds:.1f} s"
        )


class _seeded:
    """Context manager: run the body with torch's CPU generator seeded from ``rng`` (an int is
    used as is, a Generator gives a drawn seed, ``None`` leaves the generator alone), then
    restore it."""

    def __init__(self, rng: RngLike) -> None:
        self.seed = None if rng is None else seed_from_rng(rng)
        self.state: Any = None

    def __enter__(self) -> None:
        if self.seed is not None:
            self.state = torch.random.get_rng_state()
            torch.manual_seed(self.seed)

    def __exit__(self, *exc: object) -> None:
        if self.seed is not None:
            torch.random.set_rng_state(self.state)


def _head_options(hidden: Any, n_classes: Any, device: Any) -> tuple[int, int, torch.device]:
    """The checked options the CNNs share: ``hidden`` (>= 1), ``n_classes`` (>= 2) and the
    ``torch.device`` of ``device``."""
    hidden = check_int(hidden, "hidden", low=1)
    n_classes = check_int(n_classes, "n_classes", low=2)
    return hidden, n_classes, as_device(device)


class DigitsCNN(nn.Module):
    """CNN for ``(N, 1, 8, 8)`` images: conv3x3(1->c1)-ReLU-conv3x3(c1->c2)-ReLU-maxpool2
    -fc(c2*16->hidden)-ReLU-fc(hidden->n_classes). Returns logits ``(N, n_classes)``.

    ``rng`` (an int seed or a ``numpy.random.Generator``; ``seed=`` is its deprecated spelling)
    fixes the initial weights, drawn on the CPU under a saved-and-restored torch generator
    state, so the global torch RNG is left as it was; ``None`` draws from the global generator.
    The weights are then moved to ``device``. Default size: 38 282 parameters, about 0.6 M
    multiply-accumulates per image.
    """

    @renamed_parameters(seed="rng")
    def __init__(
        self,
        channels: tuple[int, int] = (16, 32),
        hidden: int = 64,
        n_classes: int = 10,
        *,
        rng: RngLike = 0,
        device: Any = "cpu",
    ) -> None:
        super().__init__()
        c1, c2 = (check_int(c, "channels", low=1) for c in channels)
        hidden, n_classes, dev = _head_options(hidden, n_classes, device)
        with _seeded(rng):
            self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
            self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
            self.fc1 = nn.Linear(c2 * 16, hidden)
            self.fc2 = nn.Linear(hidden, n_classes)
        self.to(dev)

    def forward(self, x: Any) -> Any:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


class MNIST1DCNN(nn.Module):
    """CNN for ``(N, 1, 40)`` signals: three strided Conv1d + ReLU (lengths 40 -> 19 -> 10 -> 5,
    kernels 5, 3, 3, stride 2, as the MNIST-1D paper's CNN), then fc(c*5->hidden)-ReLU
    -fc(hidden->n_classes). Returns logits ``(N, n_classes)``.

    ``rng`` and ``device`` as for :class:`DigitsCNN`. Default size: 17 354 parameters.
    """

    @renamed_parameters(seed="rng")
    def __init__(
        self,
        channels: int = 32,
        hidden: int = 64,
        n_classes: int = 10,
        *,
        rng: RngLike = 0,
        device: Any = "cpu",
    ) -> None:
        super().__init__()
        c = check_int(channels, "channels", low=1)
        hidden, n_classes, dev = _head_options(hidden, n_classes, device)
        with _seeded(rng):
            self.conv1 = nn.Conv1d(1, c, 5, stride=2, padding=1)
            self.conv2 = nn.Conv1d(c, c, 3, stride=2, padding=1)
            self.conv3 = nn.Conv1d(c, c, 3, stride=2, padding=1)
            self.fc1 = nn.Linear(c * 5, hidden)
            self.fc2 = nn.Linear(hidden, n_classes)
        self.to(dev)

    def forward(self, x: Any) -> Any:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = F.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)


def _as_xy(data: Any, name: str) -> tuple[Any, Any]:
    try:
        X, y = data
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a pair (X, y) of tensors or arrays") from exc
    X = torch.as_tensor(np.asarray(X) if not torch.is_tensor(X) else X)
    y = torch.as_tensor(np.asarray(y) if not torch.is_tensor(y) else y)
    if not X.is_floating_point():
        X = X.float()
    if X.ndim < 2 or X.shape[0] == 0:
        raise InvalidInputError(
            f"{name}: X must have shape (N, ...) with N >= 1, got {tuple(X.shape)}"
        )
    if y.ndim != 1 or y.shape[0] != X.shape[0]:
        raise InvalidInputError(
            f"{name}: y must have shape ({X.shape[0]},) to match X, got {tuple(y.shape)}"
        )
    if y.is_floating_point() and not bool(torch.all(y == torch.round(y))):
        raise InvalidInputError(f"{name}: y must hold integer class labels")
    y = y.long()
    if bool((y < 0).any()):
        raise InvalidInputError(f"{name}: class labels must be >= 0")
    if not bool(torch.isfinite(X).all()):
        raise InvalidInputError(f"{name}: X contains NaN or inf; clean the input")
    return X, y


def _run_device(model: Any, device: Any) -> Any:
    """``device`` as a torch.device, the model moved there (in place); ``None``: the model's
    own device (CPU for a model without parameters)."""
    if device is None:
        return model_device(model) or torch.device("cpu")
    dev = as_device(device)
    model.to(dev)
    return dev


def accuracy(model: Any, X: Any, y: Any, *, batch_size: int = 1024, device: Any = None) -> float:
    """Top-1 accuracy of ``model`` on ``(X, y)``, evaluated in eval mode without gradients.

    ``device``: where the batches run; ``None`` (default) the model's device, otherwise the
    model is moved there (in place, as ``model.to``). The model's training flag is restored
    afterwards. O(N) forward passes in batches of ``batch_size``.
    """
    batch_size = check_int(batch_size, "batch_size", low=1)
    X, y = _as_xy((X, y), "accuracy")
    dev = _run_device(model, device)
    was_training = model.training
    model.eval()
    correct = 0
    try:
        with torch.no_grad():
            for i in range(0, X.shape[0], batch_size):
                pred = model(X[i : i + batch_size].to(dev)).argmax(dim=1).cpu()
                correct += int((pred == y[i : i + batch_size].cpu()).sum())
    finally:
        model.train(was_training)
    return correct / X.shape[0]


@renamed_parameters(seed="rng")
def train_classifier(
    model: Any,
    train: Any,
    test: Any,
    *,
    epochs: int = 30,
    lr: float = 3e-3,
    rng: RngLike = 0,
    batch_size: int = 64,
    weight_decay: float = 0.0,
    progress: Progress | None = None,
    device: Any = None,
) -> TrainResult:
    """Train ``model`` in place with Adam and cross-entropy, deterministically.

    Parameters
    ----------
    model:
        A ``torch.nn.Module`` mapping ``X`` to logits ``(N, n_classes)``.
    train, test:
        Pairs ``(X, y)`` (tensors or arrays; a :class:`~frugalml.quant.data.TensorSplit`'s
        ``.train`` / ``.test``).
    epochs, lr, batch_size, weight_decay:
        Adam with a cosine learning-rate decay from ``lr`` to 0 over all steps; the last
        partial batch of an epoch is kept.
    rng:
        Seeds the mini-batch order (a private CPU ``torch.Generator``: global RNGs are
        untouched): an int seed is used as is, a ``numpy.random.Generator`` gives a drawn seed,
        ``None`` a fresh one (``seed=`` is the deprecated spelling). With the same initial
        weights (the models' ``rng``), the same data, device and number of torch threads, two
        runs give identical weights.
    progress:
        ``progress(message, fraction)`` called after each epoch.
    device:
        Where to train: ``None`` (default) the model's device (the CPU for the models of this
        module unless built with ``device=``), otherwise the model is moved there. The data
        are copied to it.

    Returns
    -------
    TrainResult
        The same ``model`` object, trained and left in eval mode, with train/test accuracy and
        the wall time. Cost O(epochs * N) forward+backward passes.
    """
    epochs = check_int(epochs, "epochs", low=1)
    lr = check_positive_float(lr, "lr")
    seed = seed_from_rng(rng)
    batch_size = check_int(batch_size, "batch_size", low=1)
    if weight_decay != 0:
        weight_decay = check_positive_float(weight_decay, "weight_decay")
    if not isinstance(model, torch.nn.Module):
        raise InvalidInputError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    Xtr, ytr = _as_xy(train, "train")
    Xte, yte = _as_xy(test, "test")
    dev = _run_device(model, device)
    Xtr, ytr = Xtr.to(dev), ytr.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise InvalidInputError("model has no trainable parameters")

    start = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    n = Xtr.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1.0 + math.cos(math.pi * min(t, total) / total))
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    final_loss = float("nan")
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        running, seen = 0.0, 0
        for i in range(0, n, batch_size):
            idx = perm[i : i + batch_size].to(dev)
            logits = model(Xtr[idx])
            if epoch == 0 and i == 0 and int(ytr.max()) >= logits.shape[1]:
                raise InvalidInputError(
                    f"train labels go up to {int(ytr.max())} but the model outputs "
                    f"{logits.shape[1]} classes"
                )
            loss = loss_fn(logits, ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach()) * idx.numel()
            seen += idx.numel()
        final_loss = running / seen
        if not math.isfinite(final_loss):
            raise InvalidInputError(
                f"training diverged (loss {final_loss}) in epoch {epoch + 1}; lower lr"
            )
        if progress is not None:
            progress(f"epoch {epoch + 1}/{epochs} loss {final_loss:.4f}", (epoch + 1) / epochs)
    model.eval()
    train_acc = accuracy(model, Xtr, ytr)
    test_acc = accuracy(model, Xte, yte)
    return TrainResult(
        model=model,
        train_acc=train_acc,
        test_acc=test_acc,
        seconds=time.perf_counter() - start,
        epochs=epochs,
        final_loss=final_loss,
    )
