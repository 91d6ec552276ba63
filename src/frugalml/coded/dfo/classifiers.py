"""The small CNNs that the black-box attacks of :mod:`.attack` are run against, and their data.

Bartan & Pilanci (arXiv 1907.05984) apply coded evolution strategies to score-based black-box
attacks (NES-PGD, Ilyas, Engstrom, Athalye and Lin, ICML 2018, arXiv 1804.08598); this
module trains the victims.

Models are small CNNs trained here (seconds, one core) on scikit-learn's bundled 8 x 8 digits
or on MNIST-1D generated locally with the ``mnist1d`` package: nothing is downloaded.

Full resolution (:func:`photo_classifier`): scikit-learn's two bundled photographs
(``china.jpg``, ``flower.jpg``, 427 x 640 x 3) resized to s x s x 3 and a small CNN trained
here in seconds to tell random crops of one from the other; the attack then perturbs every
pixel, p = d = 3 s^2 (150528 at s = 224), with no upsampling. Trained weights are cached in
memory (and on disk with ``cache_dir``). Needs torch, scikit-learn and mnist1d (extra
``dfo``).

Randomness: ``rng=`` is an int seed or a Generator (``seed=`` is its 0.1 spelling); an int
is used as torch's and NumPy's seed as it is, so a seed gives the models of 0.1. ``device=``
(default ``"cpu"``) is where the model is trained and lives; the initial weights are drawn on
the CPU either way. Cost: digits 30 epochs and MNIST-1D 40 epochs of 1347 / 3200 examples
(Adam, batch 64), a few seconds on one core; photos ``steps`` Adam steps on 16 crops.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..._deprecation import renamed_parameters
from ..._io import atomic_write_bytes
from ..._mnist1d import generate_mnist1d
from ..._optional import require
from ..._results import ResultRepr
from ..._validate import RngLike, check_choice, check_int, seed_from_rng
from ._torch import check_device, torch_module

__all__ = [
    "DATASETS",
    "TrainedClassifier",
    "load_dataset",
    "load_photos",
    "photo_classifier",
    "train_classifier",
]

DATASETS: tuple[str, ...] = ("digits", "mnist1d")


# -- data --------------------------------------------------------------------------------------
@renamed_parameters(seed="rng")
def load_dataset(
    name: str, *, rng: RngLike = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test) as float32 / int64 NumPy arrays, no download.

    ``digits``: scikit-learn's 1797 8x8 digits, pixels / 16 in [0, 1], shape (n, 1, 8, 8),
    seeded 75/25 split. ``mnist1d``: 4000 MNIST-1D samples generated with ``mnist1d``'s own
    generator (standardised, shape (n, 1, 40)), 80/20 split; NumPy's and Python's global
    random states are restored afterwards. ``rng``: int seed (0.1's ``seed``) or Generator.
    """
    name = check_choice(name, "dataset", DATASETS)
    seed = seed_from_rng(rng)
    if name == "digits":
        datasets = require("sklearn.datasets", what="the digits data set", extra="dfo")
        bunch = datasets.load_digits()
        x = (np.asarray(bunch.images, dtype=np.float32) / 16.0)[:, None]
        y = np.asarray(bunch.target, dtype=np.int64)
        perm = np.random.default_rng(seed).permutation(y.size)
        cut = int(0.75 * y.size)
        tr, te = perm[:cut], perm[cut:]
        return x[tr], y[tr], x[te], y[te]
    xtr, ytr, xte, yte = generate_mnist1d(4000, seed, what="the MNIST-1D data set", extra="dfo")

    def _x(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.astype(np.float32)[:, None, :])

    return _x(xtr), ytr, _x(xte), yte


def _build_model(name: str) -> Any:
    nn = torch_module().nn
    if name == "digits":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10),
        )  # fmt: skip
    return nn.Sequential(
        nn.Conv1d(1, 32, 5, padding=2), nn.ReLU(),
        nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv1d(32, 32, 5, stride=2, padding=2), nn.ReLU(), nn.Flatten(),
        nn.Linear(32 * 10, 10),
    )  # fmt: skip


@dataclass(frozen=True, repr=False)
class TrainedClassifier(ResultRepr):
    """A CNN trained on ``dataset`` and its held-out data.

    model: the torch module (eval mode, on :attr:`device`); x_test (n, *input_shape) float32,
    y_test (n,); test_accuracy on x_test; train_seconds (0 when loaded from a cache); clip:
    the valid input range (digits: (0, 1); MNIST-1D: None); full_resolution: attacks perturb
    every input entry (p = prod(input_shape)) instead of the low-dimensional upsampled space.
    """

    dataset: str
    model: Any = field(repr=False)
    x_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    test_accuracy: float
    train_seconds: float
    clip: tuple[float, float] | None
    full_resolution: bool = False

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_test.shape[1:])

    @property
    def device(self) -> Any:
        """The ``torch.device`` the model's parameters are on."""
        return next(self.model.parameters()).device

    def summary(self) -> str:
        return (
            f"{self.dataset} CNN: test accuracy {self.test_accuracy:.3f} on "
            f"{self.y_test.size} examples, trained in {self.train_seconds:.1f}s"
        )


_CACHE: dict[tuple[str, int, int, str], TrainedClassifier] = {}
_EPOCHS = {"digits": 30, "mnist1d": 40}


def _accuracy(torch: Any, model: Any, x: np.ndarray, y: np.ndarray, device: Any) -> float:
    with torch.no_grad():
        pred = model(torch.from_numpy(x).to(device)).argmax(1).cpu().numpy()
    return float((pred == y).mean())


@renamed_parameters(seed="rng")
def train_classifier(
    dataset: Literal["digits", "mnist1d"] = "digits",
    *,
    rng: RngLike = 0,
    epochs: int | None = None,
    cache_dir: str | Path | None = None,
    device: Any = "cpu",
) -> TrainedClassifier:
    """Train (or fetch from the cache) the small CNN for ``dataset``.

    Adam (lr 3e-3), batch 64, ``epochs`` (digits 30, MNIST-1D 40) on one core: a few
    seconds. Deterministic given an int ``rng`` (torch's global RNG state is saved and
    restored); a Generator gives a drawn seed. ``cache_dir``: also store / load the weights
    there (written atomically). ``device``: ``"cpu"`` (default), ``"cuda"`` or a
    ``torch.device``: where the model is trained and kept.
    """
    dataset = check_choice(dataset, "dataset", DATASETS)
    seed = seed_from_rng(rng)
    epochs = _EPOCHS[dataset] if epochs is None else check_int(epochs, "epochs", low=1)
    torch = torch_module()
    dev = check_device(device)
    key = (dataset, seed, epochs, str(dev))
    if key in _CACHE:
        return _CACHE[key]
    xtr, ytr, xte, yte = load_dataset(dataset, rng=seed)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    try:
        # Seeded initialisation and one thread: the same weights whatever ran before.
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        model = _build_model(dataset).to(dev)
        seconds = _fit_or_load(torch, model, dataset, seed, epochs, cache_dir, xtr, ytr, dev)
    finally:
        torch.random.set_rng_state(state)
        torch.set_num_threads(threads)
    model.eval()
    acc = _accuracy(torch, model, xte, yte, dev)
    clip = (0.0, 1.0) if dataset == "digits" else None
    out = TrainedClassifier(dataset, model, xte, yte, acc, seconds, clip)
    _CACHE[key] = out
    return out


def _fit_or_load(torch, model, dataset, seed, epochs, cache_dir, xtr, ytr, dev) -> float:
    """Train ``model`` in place (Adam, batch 64) or load cached weights; returns seconds."""
    path = None
    if cache_dir is not None:
        where = "" if dev.type == "cpu" else f"-{dev.type}"  # CPU files keep their 0.1 name
        path = Path(cache_dir) / f"dfo-{dataset}-seed{seed}-ep{epochs}{where}.pt"
    t0 = time.perf_counter()
    if path is not None and path.is_file():
        model.load_state_dict(torch.load(path, map_location=dev, weights_only=True))
        seconds = 0.0
    else:
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xt, yt = torch.from_numpy(xtr).to(dev), torch.from_numpy(ytr).to(dev)
        gen = torch.Generator().manual_seed(seed)  # batches drawn on the CPU on every device
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(yt.numel(), generator=gen).to(dev)
            for start in range(0, yt.numel(), 64):
                idx = perm[start : start + 64]
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
        seconds = time.perf_counter() - t0
        if path is not None:
            buf = io.BytesIO()
            torch.save(model.state_dict(), buf)
            atomic_write_bytes(path, buf.getvalue())
    return seconds


# -- full-resolution photographs ---------------------------------------------------------------
def load_photos(size: int, *, device: Any = "cpu") -> np.ndarray:
    """scikit-learn's two bundled photographs (china, flower) as (2, 3, size, size) float32 in
    [0, 1]: the central 427 x 427 square, resized with bilinear antialiasing (torch, on
    ``device``; the result is a NumPy array either way)."""
    size = check_int(size, "size", low=4, high=427)
    torch = torch_module()
    dev = check_device(device)
    datasets = require("sklearn.datasets", what="the sample photographs", extra="dfo")
    imgs = np.stack([np.asarray(im)[:, 106:533] for im in datasets.load_sample_images().images])
    x = torch.from_numpy(imgs.astype(np.float32) / 255.0).to(dev).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(
        x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return np.ascontiguousarray(x.clamp(0, 1).cpu().numpy())


def _photo_model() -> Any:
    nn = torch_module().nn
    return nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(32 * 16, 2),
    )  # fmt: skip


@renamed_parameters(seed="rng")
def photo_classifier(
    size: int = 224, *, rng: RngLike = 0, steps: int = 40, device: Any = "cpu"
) -> TrainedClassifier:
    """A small CNN (3 strided convolutions, 2 classes) trained to tell random crops of the
    china photo from crops of the flower photo, at input size (3, size, size).

    Training: ``steps`` Adam steps (lr 3e-3) on batches of 16 random crops (scale 0.3-1,
    random flips) resized to ``size``; one thread, seeded by ``rng`` (int seed or Generator),
    a few seconds. The test set is the two full photographs (labels 0 = china, 1 = flower),
    attacked at full resolution (``full_resolution=True``: p = 3 size^2). ``device``: where
    the model is trained and kept (the crops are cut and resized on the CPU). Cached in
    memory per (size, seed, steps, device).
    """
    size = check_int(size, "size", low=8, high=427)
    seed = seed_from_rng(rng)
    steps = check_int(steps, "steps", low=1)
    torch = torch_module()
    dev = check_device(device)
    key = (f"photos-{size}", seed, steps, str(dev))
    if key in _CACHE:
        return _CACHE[key]
    full = load_photos(427)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        model = _photo_model().to(dev)
        gen = np.random.default_rng(seed)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        interp = torch.nn.functional.interpolate
        model.train()
        for _ in range(steps):
            labels = np.repeat(np.array([0, 1]), 8)
            crops = []
            for lab in labels:
                side = int(gen.uniform(0.3, 1.0) * 427)
                r, c = gen.integers(0, 427 - side + 1, size=2)
                crop = torch.from_numpy(full[lab, :, r : r + side, c : c + side])[None]
                crop = interp(crop, size=(size, size), mode="bilinear", antialias=True)
                crops.append(crop.flip(3) if gen.random() < 0.5 else crop)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(torch.cat(crops).to(dev)),
                                                     torch.from_numpy(labels).to(dev))  # fmt: skip
            loss.backward()
            opt.step()
    finally:
        torch.random.set_rng_state(state)
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0
    model.eval()
    xte, yte = load_photos(size), np.array([0, 1], dtype=np.int64)
    acc = _accuracy(torch, model, xte, yte, dev)
    out = TrainedClassifier("photos", model, xte, yte, acc, seconds, (0.0, 1.0), True)
    _CACHE[key] = out
    return out
