"""Score-based black-box l_inf attacks on small CNNs, driven by coded or uncoded ES.

Bartan & Pilanci (arXiv 1907.05984) apply coded evolution strategies to black-box
adversarial attacks; the attack itself is NES-PGD (Ilyas, Engstrom, Athalye and Lin,
"Black-box Adversarial Attacks with Limited Queries and Information", ICML 2018,
arXiv 1804.08598): estimate the gradient of a margin loss from logit queries only, take sign
steps and project onto the l_inf ball of radius eps.

This module is the attack loop (:func:`run_attack`). The victims and their data are in
:mod:`.classifiers`, the oracle and the margin objective (with the low-dimensional
perturbation space: p = 16 for digits, 20 for MNIST-1D, every pixel at full resolution) in
:mod:`.blackbox`, and :class:`~.results.AttackResult` in :mod:`.results`; all are
re-exported here (the public path since 0.1). Full resolution (:func:`photo_classifier`,
p = d = 3 s^2) is the regime where the per-iteration cost of drawing and encoding K
directions of length d matters. Needs torch, scikit-learn and mnist1d (extra ``dfo``).

Data placed once: with an executor, the model is placed with it once per attack
(``executor.share``) and every example's objective refers to it; each example's objective
(the example and that reference) is placed once per example by :class:`CodedES`, so per round
a task carries only the perturbation and its direction, O(p) bytes, not the model.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from typing import Any, Literal

import numpy as np

from ..._validate import (
    RngLike,
    check_choice,
    check_int,
    check_positive_float,
    check_rng,
)
from ...errors import InvalidInputError
from ...progress import Progress
from ...runtime import Executor, StragglerModel
from .._shared import place, release
from ._torch import check_device
from .baselines import DropStragglersES, StructuredES, WaitAllES
from .blackbox import LogitsOracle, MarginObjective, perturbation_dim, upsample
from .classifiers import (
    DATASETS,
    TrainedClassifier,
    load_dataset,
    load_photos,
    photo_classifier,
    train_classifier,
)
from .coded_es import CodedES
from .results import AttackResult

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

ATTACK_METHODS: tuple[str, ...] = ("coded", "wait-all", "drop", "structured", "random")


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
    device: Any = None,
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

    ``device``: where the model answers the queries (``"cpu"``, ``"cuda"``, a
    ``torch.device``); None (default) is the classifier's own device. Another device gets a
    copy of the model there (the classifier is not changed).
    """
    if not isinstance(classifier, TrainedClassifier):
        raise InvalidInputError("classifier must come from train_classifier()")
    if device is not None:
        classifier = _on_device(classifier, check_device(device))
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
            ok, it, sim = res.stopped_by == "stop", res.iterations, res.total_sim_seconds
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


def _on_device(classifier: TrainedClassifier, dev: Any) -> TrainedClassifier:
    """``classifier`` itself when its model is on ``dev``, else a copy with the model there."""
    here = classifier.device
    if here.type == dev.type and (dev.index is None or dev.index == here.index):
        return classifier
    model = copy.deepcopy(classifier.model).to(dev)
    return dataclasses.replace(classifier, model=model)
