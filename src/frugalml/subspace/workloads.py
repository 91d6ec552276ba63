"""The offline training tasks of the data-parallel aggregation study: data, model and loss.

Used to compare AdaCons (Choukroun, Azoulay, Kisilev, "Adaptive Consensus Gradients
Aggregation for Scaled Distributed Training", arXiv 2411.03742) with plain averaging, AdaSum
and PowerSGD under equal conditions (:mod:`.training`). No downloads; data are generated or
read locally:

* ``"linreg"`` — the linear-regression problem of the AdaCons sample code: ``w in R^1000``
  starting uniform in ``[-5, 5]``, inputs ``x ~ U[0, 1]^1000``, loss ``0.5 (w.x)^2``. The
  evaluation loss is the exact expectation ``0.5 w^T (I/12 + 11^T/4) w``.
* ``"digits-mlp"`` — a 64-64-10 tanh MLP on scikit-learn's bundled digits (1437 train images);
  evaluation = full training-set cross-entropy (the objective being optimised).
* ``"mnist1d-cnn"`` — a two-layer 1-D CNN on MNIST-1D (Greydanus 2020) generated locally with
  the ``mnist1d`` package (3200 train samples); evaluation = full training-set cross-entropy.
* ``"charlm"`` — a one-layer causal transformer (d=48, 4 heads, context 32) over the bytes of
  the Python standard library's top-level ``*.py`` sources (sorted file list, first 300 kB);
  evaluation = cross-entropy on 128 fixed held-out windows from the last 10 % of the text.

A :class:`Task` holds its data as NumPy arrays (picklable, sent to the worker processes) and
builds its torch model inside the workers.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._deprecation import renamed_parameters
from .._mnist1d import generate_mnist1d
from .._optional import require
from .._validate import check_choice, check_int, seed_from_rng
from ..errors import InvalidInputError

__all__ = ["DEFAULTS", "TASKS", "Task", "make_task", "stdlib_text"]

TASKS = ("linreg", "digits-mlp", "mnist1d-cnn", "charlm")

#: default (learning rate, SGD momentum) per task, found on a small grid with averaging
DEFAULTS: dict[str, tuple[float, float]] = {
    "linreg": (0.004, 0.0),
    "digits-mlp": (0.1, 0.9),
    "mnist1d-cnn": (0.05, 0.9),
    "charlm": (0.3, 0.9),
}


def stdlib_text(max_bytes: int = 300_000) -> bytes:
    """The first ``max_bytes`` bytes of the standard library's top-level ``*.py`` files.

    Files are read in sorted order of their names from ``sysconfig.get_paths()["stdlib"]`` and
    concatenated (separated by a newline), so the corpus is deterministic for a given Python.
    """
    max_bytes = check_int(max_bytes, "max_bytes", low=1000)
    root = Path(sysconfig.get_paths()["stdlib"])
    chunks, total = [], 0
    for path in sorted(root.glob("*.py")):
        data = path.read_bytes() + b"\n"
        chunks.append(data)
        total += len(data)
        if total >= max_bytes:
            break
    text = b"".join(chunks)[:max_bytes]
    if len(text) < 1000:
        raise InvalidInputError(f"found only {len(text)} bytes of Python sources under {root}")
    return text


@dataclass(frozen=True)
class Task:
    """A training task: data as NumPy arrays (picklable) plus how to build the model.

    ``kind`` is one of :data:`TASKS`; ``arrays`` holds the data (``X``, ``y`` or ``tokens``),
    ``params`` the task's sizes. Methods taking ``torch`` objects run inside the workers.
    """

    kind: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        sizes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in self.arrays.items())
        return f"task {self.kind}: " + (
            sizes or ", ".join(f"{k}={v}" for k, v in self.params.items())
        )

    # -- inside workers -------------------------------------------------------------------
    @renamed_parameters(seed="rng")
    def model(self, rng: int | np.random.Generator) -> Any:
        """A fresh model, initialised by ``torch.manual_seed`` with ``rng`` (an int seed is
        used as is, so equal ints give identical models; a Generator gives a drawn seed)."""
        torch = require("torch", what="the subspace training tasks", extra="subspace")
        nn = torch.nn
        torch.manual_seed(seed_from_rng(rng))
        if self.kind == "linreg":
            m = nn.Linear(self.params["dim"], 1, bias=False)
            with torch.no_grad():
                m.weight.uniform_(-5.0, 5.0)
            return m
        if self.kind == "digits-mlp":
            return nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10))
        if self.kind == "mnist1d-cnn":
            return nn.Sequential(
                nn.Conv1d(1, 16, 5, padding=2),
                nn.ReLU(),
                nn.Conv1d(16, 16, 5, stride=2, padding=2),
                nn.ReLU(),
                nn.Flatten(),
                nn.Linear(16 * 20, 10),
            )
        return _char_lm(self.params["context"], self.params["width"])

    def _data(self, torch: Any) -> dict[str, Any]:
        cache = self.__dict__.setdefault("_torch_cache", {})
        if not cache:
            for k, v in self.arrays.items():
                cache[k] = torch.from_numpy(v)
            if self.kind == "charlm":
                n = cache["tokens"].numel()
                cut = int(0.9 * n)
                cache["train"] = cache["tokens"][:cut]
                held = cache["tokens"][cut:]
                ctx = self.params["context"]
                starts = torch.linspace(0, held.numel() - ctx - 2, 128).long()
                cache["eval_idx"] = starts
                cache["held"] = held
        return cache

    def batch(self, gen: Any, size: int) -> tuple[Any, ...]:
        """A minibatch of ``size`` examples drawn with the torch generator ``gen``."""
        torch = require("torch", what="the subspace training tasks", extra="subspace")
        if self.kind == "linreg":
            return (torch.rand(size, self.params["dim"], generator=gen),)
        data = self._data(torch)
        if self.kind == "charlm":
            ctx = self.params["context"]
            train = data["train"]
            starts = torch.randint(0, train.numel() - ctx - 1, (size,), generator=gen)
            return _windows(torch, train, starts, ctx)
        idx = torch.randint(0, data["y"].numel(), (size,), generator=gen)
        return data["X"][idx], data["y"][idx]

    def loss(self, model: Any, batch: tuple[Any, ...]) -> Any:
        """The training loss of ``model`` on ``batch`` (a scalar tensor)."""
        torch = require("torch", what="the subspace training tasks", extra="subspace")
        if self.kind == "linreg":
            return 0.5 * (model(batch[0]) ** 2).sum(-1).mean()
        if self.kind == "charlm":
            logits = model(batch[0])
            return torch.nn.functional.cross_entropy(logits.reshape(-1, 256), batch[1].reshape(-1))
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1])

    def eval_loss(self, model: Any) -> float:
        """The evaluation loss (see the module docstring), without gradients."""
        torch = require("torch", what="the subspace training tasks", extra="subspace")
        with torch.no_grad():
            if self.kind == "linreg":
                w = model.weight.double().reshape(-1)
                return float(0.5 * (w @ w / 12.0 + w.sum() ** 2 / 4.0))
            data = self._data(torch)
            if self.kind == "charlm":
                x, y = _windows(torch, data["held"], data["eval_idx"], self.params["context"])
                return float(self.loss(model, (x, y)))
            return float(self.loss(model, (data["X"], data["y"])))


def _windows(torch: Any, tokens: Any, starts: Any, ctx: int) -> tuple[Any, Any]:
    offs = torch.arange(ctx + 1)
    win = tokens[starts[:, None] + offs[None, :]].long()
    return win[:, :-1], win[:, 1:]


def _charlm_class() -> Any:
    torch = require("torch", what="the charlm task", extra="subspace")
    nn = torch.nn

    class CharLM(nn.Module):
        """Byte-level causal transformer: embedding + 1 pre-norm encoder layer + linear head."""

        def __init__(self, context: int, width: int) -> None:
            super().__init__()
            self.tok = nn.Embedding(256, width)
            self.pos = nn.Parameter(0.02 * torch.randn(context, width))
            layer = nn.TransformerEncoderLayer(
                width, 4, 2 * width, dropout=0.0, batch_first=True, norm_first=True
            )
            self.body = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width)
            self.head = nn.Linear(width, 256)
            mask = torch.triu(torch.full((context, context), float("-inf")), diagonal=1)
            self.register_buffer("mask", mask, persistent=False)

        def forward(self, x: Any) -> Any:
            t = x.shape[1]
            h = self.tok(x) + self.pos[:t]
            h = self.body(h, mask=self.mask[:t, :t], is_causal=True)
            return self.head(self.norm(h))

    return CharLM


def _char_lm(context: int, width: int) -> Any:
    return _charlm_class()(context, width)


@renamed_parameters(seed="rng")
def make_task(name: str, *, rng: int | np.random.Generator = 0) -> Task:
    """Build task ``name`` (one of :data:`TASKS`); data sets are generated/read locally.

    ``rng`` picks the data (the digits subset, the MNIST-1D samples): an int seed is used as
    is (the same int gives the same data as the 0.1 keyword ``seed=``, which still works with
    a deprecation warning); a Generator gives a drawn seed."""
    check_choice(name, "task", TASKS)
    seed = seed_from_rng(rng)
    if name == "linreg":
        return Task("linreg", {}, {"dim": 1000})
    if name == "digits-mlp":
        datasets = require("sklearn.datasets", what="the digits-mlp task", extra="subspace")
        d = datasets.load_digits()
        gen = np.random.default_rng(seed)
        order = gen.permutation(len(d.target))[: int(0.8 * len(d.target))]
        X = (d.data[order] / 16.0).astype(np.float32)
        return Task("digits-mlp", {"X": X, "y": d.target[order].astype(np.int64)}, {})
    if name == "mnist1d-cnn":
        x, y, _, _ = generate_mnist1d(4000, seed, what="the mnist1d-cnn task", extra="subspace")
        X = np.ascontiguousarray(x.astype(np.float32)[:, None, :])
        return Task("mnist1d-cnn", {"X": X, "y": y}, {})
    tokens = np.frombuffer(stdlib_text(), dtype=np.uint8).copy()
    return Task("charlm", {"tokens": tokens}, {"context": 32, "width": 48})
