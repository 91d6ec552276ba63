"""Score-based black-box l_inf attacks on small CNNs, driven by coded or uncoded ES.

Bartan & Pilanci (arXiv 1907.05984) apply coded evolution strategies to black-box
adversarial attacks; the attack itself is NES-PGD (Ilyas, Engstrom, Athalye and Lin,
"Black-box Adversarial Attacks with Limited Queries and Information", ICML 2018,
arXiv 1804.08598): estimate the gradient of a margin loss from logit queries only, take sign
steps and project onto the l_inf ball of radius eps.

The perturbation lives in a low-dimensional space of dimension p (digits: a 4 x 4 image
upsampled to 8 x 8 by nearest neighbour, p = 16; MNIST-1D: 20 values each repeated twice,
p = 20), so that the number K of coded directions can be close to p -- the regime where coding
recovers the exact finite-difference gradient. Upsampling by repetition preserves the l_inf
norm, so the ball is projected in the low-dimensional space.

Models are small CNNs trained here (seconds, one core) on scikit-learn's bundled 8 x 8 digits
or on MNIST-1D generated locally with the ``mnist1d`` package: nothing is downloaded.

Full resolution (:func:`photo_classifier`): scikit-learn's two bundled photographs
(``china.jpg``, ``flower.jpg``, 427 x 640 x 3) resized to s x s x 3 and a small CNN trained
here in seconds to tell random crops of one from the other; the attack then perturbs every
pixel, p = d = 3 s^2 (150528 at s = 224), with no upsampling -- the regime where the
per-iteration cost of drawing and encoding K directions of length d matters. Trained
weights are cached in memory (and on disk with ``cache_dir``). Needs torch, scikit-learn and
mnist1d (extra ``dfo``).

Data placed once: with an executor, the model is placed with it once per attack
(``executor.share``) and every example's objective refers to it; each example's objective
(the example and that reference) is placed once per example by :class:`CodedES`, so per round
a task carries only the perturbation and its direction, O(p) bytes, not the model.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..._io import atomic_write_bytes
from ..._mnist1d import generate_mnist1d
from ..._optional import require
from ..._results import ResultRepr
from ..._validate import (
    RngLike,
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_rng,
)
from ...errors import InvalidInputError
from ...progress import Progress
from ...runtime import Executor, Shared, StragglerModel
from .._shared import place, release
from .es import CodedES, DropStragglersES, StructuredES, WaitAllES

__all__ = [
    "ATTACK_METHODS",
    "DATASETS",
    "AttackResult",
    "LogitsOracle",
    "MarginObjective",
    "TrainedClassifier",
    "load_dataset",
    "load_photos",
    "perturbation_dim",
    "photo_classifier",
    "run_attack",
    "train_classifier",
    "upsample",
]

DATASETS: tuple[str, ...] = ("digits", "mnist1d")
ATTACK_METHODS: tuple[str, ...] = ("coded", "wait-all", "drop", "structured", "random")


def _torch() -> Any:
    return require("torch", what="black-box attacks on CNNs", extra="dfo")


# -- data --------------------------------------------------------------------------------------
def load_dataset(name: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test) as float32 / int64 NumPy arrays, no download.

    ``digits``: scikit-learn's 1797 8x8 digits, pixels / 16 in [0, 1], shape (n, 1, 8, 8),
    seeded 75/25 split. ``mnist1d``: 4000 MNIST-1D samples generated with ``mnist1d``'s own
    generator (standardised, shape (n, 1, 40)), 80/20 split; NumPy's and Python's global
    random states are restored afterwards.
    """
    name = check_choice(name, "dataset", DATASETS)
    seed = check_int(seed, "seed", low=0)
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
    nn = _torch().nn
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

    model: the torch module (eval mode); x_test (n, *input_shape) float32, y_test (n,);
    test_accuracy on x_test; train_seconds (0 when loaded from a cache); clip: the valid
    input range (digits: (0, 1); MNIST-1D: None); full_resolution: attacks perturb every
    input entry (p = prod(input_shape)) instead of the low-dimensional upsampled space.
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

    def summary(self) -> str:
        return (
            f"{self.dataset} CNN: test accuracy {self.test_accuracy:.3f} on "
            f"{self.y_test.size} examples, trained in {self.train_seconds:.1f}s"
        )


_CACHE: dict[tuple[str, int, int], TrainedClassifier] = {}
_EPOCHS = {"digits": 30, "mnist1d": 40}


def train_classifier(
    dataset: Literal["digits", "mnist1d"] = "digits",
    *,
    seed: int = 0,
    epochs: int | None = None,
    cache_dir: str | Path | None = None,
) -> TrainedClassifier:
    """Train (or fetch from the cache) the small CNN for ``dataset``.

    Adam (lr 3e-3), batch 64, ``epochs`` (digits 30, MNIST-1D 40) on one core: a few
    seconds. Deterministic given ``seed`` (torch's global RNG state is saved and restored).
    ``cache_dir``: also store / load the weights there (written atomically).
    """
    dataset = check_choice(dataset, "dataset", DATASETS)
    seed = check_int(seed, "seed", low=0)
    epochs = _EPOCHS[dataset] if epochs is None else check_int(epochs, "epochs", low=1)
    key = (dataset, seed, epochs)
    if key in _CACHE:
        return _CACHE[key]
    torch = _torch()
    xtr, ytr, xte, yte = load_dataset(dataset, seed)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    try:
        # Seeded initialisation and one thread: the same weights whatever ran before.
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        model = _build_model(dataset)
        seconds = _fit_or_load(torch, model, dataset, seed, epochs, cache_dir, xtr, ytr)
    finally:
        torch.random.set_rng_state(state)
        torch.set_num_threads(threads)
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    clip = (0.0, 1.0) if dataset == "digits" else None
    out = TrainedClassifier(dataset, model, xte, yte, acc, seconds, clip)
    _CACHE[key] = out
    return out


def _fit_or_load(torch, model, dataset, seed, epochs, cache_dir, xtr, ytr) -> float:
    """Train ``model`` in place (Adam, batch 64) or load cached weights; returns seconds."""
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"dfo-{dataset}-seed{seed}-ep{epochs}.pt"
    t0 = time.perf_counter()
    if path is not None and path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        seconds = 0.0
    else:
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr)
        gen = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(yt.numel(), generator=gen)
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
def load_photos(size: int) -> np.ndarray:
    """scikit-learn's two bundled photographs (china, flower) as (2, 3, size, size) float32 in
    [0, 1]: the central 427 x 427 square, resized with bilinear antialiasing (torch)."""
    size = check_int(size, "size", low=4, high=427)
    torch = _torch()
    datasets = require("sklearn.datasets", what="the sample photographs", extra="dfo")
    imgs = np.stack([np.asarray(im)[:, 106:533] for im in datasets.load_sample_images().images])
    x = torch.from_numpy(imgs.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    x = torch.nn.functional.interpolate(
        x, size=(size, size), mode="bilinear", antialias=True, align_corners=False
    )
    return np.ascontiguousarray(x.clamp(0, 1).numpy())


def _photo_model() -> Any:
    nn = _torch().nn
    return nn.Sequential(
        nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(32 * 16, 2),
    )  # fmt: skip


def photo_classifier(size: int = 224, *, seed: int = 0, steps: int = 40) -> TrainedClassifier:
    """A small CNN (3 strided convolutions, 2 classes) trained to tell random crops of the
    china photo from crops of the flower photo, at input size (3, size, size).

    Training: ``steps`` Adam steps (lr 3e-3) on batches of 16 random crops (scale 0.3-1,
    random flips) resized to ``size``; one thread, seeded, a few seconds. The test set is the
    two full photographs (labels 0 = china, 1 = flower), attacked at full resolution
    (``full_resolution=True``: p = 3 size^2). Cached in memory per (size, seed, steps).
    """
    size = check_int(size, "size", low=8, high=427)
    seed = check_int(seed, "seed", low=0)
    steps = check_int(steps, "steps", low=1)
    key = (f"photos-{size}", seed, steps)
    if key in _CACHE:
        return _CACHE[key]
    torch = _torch()
    full = load_photos(427)
    state, threads = torch.random.get_rng_state(), torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        torch.manual_seed(seed)
        torch.set_num_threads(1)
        model = _photo_model()
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
            loss = torch.nn.functional.cross_entropy(model(torch.cat(crops)),
                                                     torch.from_numpy(labels))  # fmt: skip
            loss.backward()
            opt.step()
    finally:
        torch.random.set_rng_state(state)
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0
    model.eval()
    xte, yte = load_photos(size), np.array([0, 1], dtype=np.int64)
    with torch.no_grad():
        acc = float((model(torch.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    out = TrainedClassifier("photos", model, xte, yte, acc, seconds, (0.0, 1.0), True)
    _CACHE[key] = out
    return out


# -- black-box oracle --------------------------------------------------------------------------
class LogitsOracle:
    """The black box: inputs (m, *input_shape) -> logits (m, C) as NumPy, nothing else.

    ``model``: a torch module, or a :class:`~frugalml.runtime.Shared` reference to one placed
    with an executor (then the oracle pickles as a short token and each worker process reads
    the model once). Counts the queries it answers (``queries``; on a process or remote
    executor, each worker's copy counts its own). Thread-safe enough for a thread pool: the
    counter is only used for reporting.
    """

    def __init__(self, model: Any):
        self._model = model
        self.queries = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        torch = _torch()
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.queries += x.shape[0]
        model = self._model.get() if isinstance(self._model, Shared) else self._model
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy().astype(np.float64)


def upsample(delta: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """(m, p) low-dimensional perturbations -> (m, *input_shape) by repetition."""
    m = delta.shape[0]
    if len(input_shape) == 3:  # (1, 8, 8) from (4, 4)
        side = math.isqrt(delta.shape[1])
        img = delta.reshape(m, 1, side, side)
        f = input_shape[1] // side
        return np.repeat(np.repeat(img, f, axis=2), f, axis=3)
    f = input_shape[1] // delta.shape[1]
    return np.repeat(delta.reshape(m, 1, -1), f, axis=2)


def perturbation_dim(input_shape: tuple[int, ...]) -> int:
    """p: 16 for (1, 8, 8) images (4x4 blocks of 2x2 pixels), 20 for (1, 40) signals."""
    if len(input_shape) == 3:
        return (input_shape[1] // 2) * (input_shape[2] // 2)
    return input_shape[1] // 2


class MarginObjective:
    """Margin loss of one example under a low-dimensional perturbation (batched).

    f(delta) = max(z_y - max_{j != y} z_j, -kappa), z the logits of clip(x + up(delta)).
    f < 0 iff the example is misclassified. ``delta`` (p,) -> float or (m, p) -> (m,).
    ``full_resolution``: delta has every input entry, p = x.size, and up is a reshape.
    """

    def __init__(self, oracle: LogitsOracle, x: np.ndarray, label: int, *,
                 clip: tuple[float, float] | None, kappa: float = 0.5,
                 full_resolution: bool = False):  # fmt: skip
        self.oracle = oracle
        self.x = np.asarray(x, dtype=np.float64)
        self.label = int(label)
        self.clip = clip
        self.kappa = check_nonnegative_float(kappa, "kappa")
        self.full_resolution = bool(full_resolution)
        self.dim = self.x.size if self.full_resolution else perturbation_dim(self.x.shape)

    def __call__(self, delta: np.ndarray) -> float | np.ndarray:
        d = np.asarray(delta, dtype=np.float64)
        single = d.ndim == 1
        d = d.reshape(-1, self.dim)
        if self.full_resolution:
            xs = self.x[None] + d.reshape(-1, *self.x.shape)
        else:
            xs = self.x[None] + upsample(d, self.x.shape)
        if self.clip is not None:
            xs = np.clip(xs, *self.clip)
        z = self.oracle(xs)
        true = z[:, self.label].copy()
        z[:, self.label] = -np.inf
        margin = np.maximum(true - z.max(axis=1), -self.kappa)
        return float(margin[0]) if single else margin


# -- attack ------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class AttackResult(ResultRepr):
    """An attack on ``n`` correctly classified test examples.

    success: (n,) bool; queries: (n,) logit queries spent per example (all of them, including
    the loss checks; the full budget for failures); iterations: (n,); sim_times / wall_times:
    (n,) simulated-clock and wall seconds spent per example (until success or the budget);
    examples: (n,) indices into the classifier's test set; perturbations: (n, p) final
    low-dimensional perturbations (l_inf norm <= eps); bytes_sent: (n,) bytes of task calls
    sent per example (0 without an executor or on ``local-thread``); bytes_placed: bytes
    placed once with the executor (the model, plus each example's objective).
    """

    dataset: str
    method: str
    eps: float
    success: np.ndarray
    queries: np.ndarray
    iterations: np.ndarray
    sim_times: np.ndarray
    wall_times: np.ndarray
    n_workers: int
    n_directions: int
    examples: np.ndarray
    perturbations: np.ndarray
    bytes_sent: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    bytes_placed: int = 0

    @property
    def success_rate(self) -> float:
        return float(self.success.mean())

    @property
    def mean_queries_success(self) -> float:
        """Mean queries over successful examples (nan when none succeeded)."""
        return float(self.queries[self.success].mean()) if self.success.any() else math.nan

    @property
    def mean_time_success(self) -> float:
        """Mean simulated time to success over successful examples (nan when none)."""
        return float(self.sim_times[self.success].mean()) if self.success.any() else math.nan

    @property
    def mean_wall_success(self) -> float:
        return float(self.wall_times[self.success].mean()) if self.success.any() else math.nan

    def summary(self) -> str:
        return (
            f"{self.method} attack on {self.dataset}, eps={self.eps:g}: success "
            f"{int(self.success.sum())}/{self.success.size} ({self.success_rate:.0%}); on "
            f"successes mean {self.mean_queries_success:.0f} queries, simulated time "
            f"{self.mean_time_success:.3g}, wall {self.mean_wall_success:.3g}s"
        )


def _pick_examples(clf: TrainedClassifier, n: int, gen: np.random.Generator) -> np.ndarray:
    oracle = LogitsOracle(clf.model)
    correct = np.flatnonzero(oracle(clf.x_test).argmax(1) == clf.y_test)
    if correct.size < n:
        raise InvalidInputError(
            f"only {correct.size} test examples are classified correctly; ask for fewer"
        )
    return gen.permutation(correct)[:n]


def run_attack(
    classifier: TrainedClassifier,
    *,
    method: str = "coded",
    n_examples: int = 10,
    eps: float = 0.1,
    n_workers: int = 32,
    n_directions: int | None = None,
    code: str = "polar",
    max_iter: int = 50,
    step: float | None = None,
    sigma: float = 0.01,
    stragglers: StragglerModel | None = None,
    executor: Executor | None = None,
    deadline: float | None = None,
    rng: RngLike = 0,
    progress: Progress | None = None,
    directions: str | None = None,
    encoding: Literal["auto", "fast", "dense"] = "auto",
) -> AttackResult:
    """Attack ``n_examples`` correctly classified test examples with an l_inf budget ``eps``.

    ``method``: ``"coded"`` (:class:`CodedES`, orthogonal directions, K = p by default, the
    given ``code``), ``"wait-all"`` (NES with N Gaussian directions, waits for all),
    ``"drop"`` (same, first 3N/4 arrivals), ``"structured"`` (orthogonal, waits for all), or
    ``"random"`` (random +-eps sign perturbations, the same query budget). Each ES iteration
    costs 2N queries plus one loss check; sign steps of size ``step`` (default eps / 2) and
    projection onto the ball, at most ``max_iter`` iterations per example. The random
    baseline spends the same query budget, N queries per round. Stragglers and
    executors as in :class:`CodedES`; with an executor the model is placed with it once for
    the whole attack and released at the end. Cost: O(n_examples * max_iter * N) forward
    passes.

    A ``full_resolution`` classifier (:func:`photo_classifier`) is attacked in every input
    entry (p = prod(input_shape)) with K = min(p, N / 2) by default. ``directions``
    overrides each method's direction family (coded: ``"orthogonal"``; at large p
    ``"hadamard"`` draws in O(K p) instead of O(p K^2)); ``encoding`` is the coded method's
    encoding (see :class:`~.estimator.CodedDirections`).
    """
    if not isinstance(classifier, TrainedClassifier):
        raise InvalidInputError("classifier must come from train_classifier()")
    method = check_choice(method, "method", ATTACK_METHODS)
    n_examples = check_int(n_examples, "n_examples", low=1)
    eps = check_positive_float(eps, "eps")
    n = check_int(n_workers, "n_workers", low=1)
    max_iter = check_int(max_iter, "max_iter", low=1)
    step = eps / 2 if step is None else check_positive_float(step, "step")
    sigma = check_positive_float(sigma, "sigma")
    gen = check_rng(rng)
    idx = _pick_examples(classifier, n_examples, gen)
    full = classifier.full_resolution
    p = math.prod(classifier.input_shape) if full else perturbation_dim(classifier.input_shape)
    if n_directions is None:
        k = min(p, max(1, n // 2)) if full else min(p, n)
    else:
        k = check_int(n_directions, "n_directions", low=1)
    extra: dict[str, Any] = {} if directions is None else {"directions": directions}
    model: Any = classifier.model
    if executor is not None and method != "random":
        model = place(executor, classifier.model)  # once for the whole attack
    try:
        return _attack(classifier, method, idx, eps, n, k, p, max_iter, step, sigma, code,
                       stragglers, executor, deadline, gen, progress, model,
                       extra, encoding)  # fmt: skip
    finally:
        if model is not classifier.model:
            release(executor, [model])


def _attack(classifier, method, idx, eps, n, k, p, max_iter, step, sigma, code, stragglers,
            executor, deadline, gen, progress, model, extra, encoding) -> AttackResult:  # fmt: skip
    """The loop of :func:`run_attack` over examples (``model``: the module or its reference)."""
    n_examples = len(idx)
    placed = int(getattr(model, "nbytes", 0))
    success, queries, iters, sims, walls, deltas, sent = [], [], [], [], [], [], []
    for e, i in enumerate(idx):
        oracle = LogitsOracle(model)
        obj = MarginObjective(oracle, classifier.x_test[i], int(classifier.y_test[i]),
                              clip=classifier.clip,
                              full_resolution=classifier.full_resolution)  # fmt: skip
        t0 = time.perf_counter()
        if method == "random":
            ok, it, sim, delta = _random_signs(obj, eps, max_iter * (2 * n + 1), stragglers, n, gen)
            sent.append(0)
        else:
            common = dict(
                n_workers=n, sigma=sigma, step=step, step_rule="sign",
                linf_ball=(np.zeros(p), eps), executor=executor, stragglers=stragglers,
                deadline=deadline, batched=True, rng=gen, **extra,
            )  # fmt: skip
            if method == "coded":
                es = CodedES(obj, np.zeros(p), n_directions=k, code=code, encoding=encoding,
                             **common)  # fmt: skip
            elif method == "wait-all":
                es = WaitAllES(obj, np.zeros(p), **common)
            elif method == "drop":
                es = DropStragglersES(obj, np.zeros(p), **common)
            else:
                es = StructuredES(obj, np.zeros(p), **common)
            res = es.run(max_iter, stop=lambda _x, loss: loss < 0)
            ok, it, sim = res.stopped_by == "stop", res.iterations, res.total_sim_time
            delta = res.x
            sent.append(int(res.bytes_sent.sum()))
            placed += res.bytes_placed
        walls.append(time.perf_counter() - t0)
        success.append(ok)
        queries.append(oracle.queries)
        iters.append(it)
        sims.append(sim)
        deltas.append(delta)
        if progress is not None:
            progress(f"{method} attack: example {e + 1}/{n_examples}", (e + 1) / n_examples)
    return AttackResult(
        classifier.dataset, method, eps, np.array(success, dtype=bool),
        np.array(queries, dtype=np.int64), np.array(iters, dtype=np.int64), np.array(sims),
        np.array(walls), n, k if method == "coded" else n, np.asarray(idx),
        np.array(deltas).reshape(len(idx), p), np.array(sent, dtype=np.int64), placed,
    )  # fmt: skip


def _random_signs(
    obj: MarginObjective,
    eps: float,
    budget: int,
    stragglers: StragglerModel | None,
    n: int,
    gen: np.random.Generator,
) -> tuple[bool, int, float, np.ndarray]:
    """Random +-eps perturbations in rounds of n queries (one per worker, wait for all)."""
    rounds = max(1, budget // n)
    sim = 0.0
    cand = np.zeros((1, obj.dim))
    for r in range(rounds):
        cand = eps * gen.choice(np.array([-1.0, 1.0]), size=(n, obj.dim))
        sim += float(stragglers.sample(n, gen).max()) if stragglers else 0.0
        hit = np.flatnonzero(obj(cand) < 0)
        if hit.size:
            return True, r + 1, sim, cand[hit[0]]
    return False, rounds, sim, cand[0]
