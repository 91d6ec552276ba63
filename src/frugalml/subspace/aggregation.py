"""AdaCons: objective-aware subspace aggregation of data-parallel gradients (a DDP comm hook).

Paper: Choukroun, Azoulay, Kisilev, "Adaptive Consensus Gradients Aggregation for Scaled
Distributed Training" (arXiv 2411.03742). The formula (coefficients ``alpha`` of the unit
gradients, subspace momentum, guards) and its single-process NumPy reference are in
:mod:`.adacons`, whose names are re-exported here.

Two levels of API:

* :func:`~.adacons.adacons_coefficients` / :func:`~.adacons.adacons_aggregate` — the formula
  on a stacked ``(N, P)`` array of gradients (NumPy; the single-process reference);
* :class:`AdaConsAggregator` — the same computation distributed over a
  ``torch.nn.parallel.DistributedDataParallel`` model: a communication hook
  (:func:`adacons_hook`, registered with ``ddp_model.register_comm_hook(aggregator,
  adacons_hook)`` or :meth:`AdaConsAggregator.register`) that all-reduces each bucket once and
  accumulates the local dot products, plus :meth:`AdaConsAggregator.step`, called after
  ``backward()`` and before ``optimizer.step()``, which all-gathers ``3 N`` scalars (coefficient,
  norm, finite flag), applies the momentum/normalisation and performs the final weighted
  all-reduce. ``reference="previous"`` uses the previous step's aggregate as the consensus
  direction, so the hook communicates nothing and a step costs one all-reduce plus the
  all-gather of ``3 N`` scalars.

Communication schedules (``schedule=``), the same formula computed two ways:

* ``"allreduce"`` — the paper's: all-reduce of each bucket in the hook (mean reference),
  all-gather of ``3`` scalars per rank, weighted all-reduce of ``P`` floats: three collectives,
  ``~4 P`` floats received per worker (ring model).
* ``"allgather"`` — one all-gather of each bucket's per-worker gradients in the hook; every rank
  then holds the whole ``(N, P)`` stack and computes the mean reference, the coefficients
  (global over all buckets), the momentum, the normalisation and the rescale locally, in
  float64, identically on every rank. One collective per bucket, but ``(N - 1) P`` floats
  received per worker (``N/2`` times averaging's) and ``N P`` floats of memory. Only with
  ``reference="mean"``.
* ``"auto"`` (default) — ``"allgather"`` when ``reference="mean"`` and the gathered stack
  ``N * P * bytes_per_element <= auto_max_bytes`` (default 4 MiB), otherwise ``"allreduce"``.
  Rationale: on latency-bound links (CPU/gloo, small models) a collective costs milliseconds
  whatever its size, so one larger collective beats three small ones; for large models the
  ``N``-fold volume dominates and the all-reduce form wins.

Works on the gloo backend (CPU) and on NCCL (tensors stay on the gradients' device).
"""

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from .._results import ResultRepr
from .._validate import check_choice, check_nonnegative_float, check_probability
from ..errors import InvalidInputError
from .adacons import (
    MAPPINGS,
    RESCALES,
    AdaConsCoefficients,
    adacons_aggregate,
    adacons_coefficients,
    update_coefficients,
)

__all__ = [
    "SCHEDULES",
    "AdaConsAggregator",
    "AdaConsCoefficients",
    "AdaConsStep",
    "adacons_aggregate",
    "adacons_coefficients",
    "adacons_hook",
    "check_same_parameters",
    "update_coefficients",
]

SCHEDULES = ("auto", "allreduce", "allgather")
#: ``schedule="auto"`` all-gathers when the gathered stack is at most this many bytes
AUTO_MAX_BYTES = 4 * 2**20
REFERENCES = ("mean", "previous")


# --------------------------------------------------------------------------------------------
# distributed (DDP communication hook)
# --------------------------------------------------------------------------------------------


def _world(group: Any) -> tuple[int, int]:
    if not (dist.is_available() and dist.is_initialized()):
        return 1, 0
    return dist.get_world_size(group), dist.get_rank(group)


def check_same_parameters(module: torch.nn.Module, group: Any = None) -> None:
    """Raise :class:`InvalidInputError` unless every rank's ``module`` has the same parameters.

    Compares names, shapes and dtypes of ``module.named_parameters()`` across the process
    group (one ``all_gather_object``); a no-op without an initialised process group. Call it
    before wrapping a model in DDP, whose own check fails with a less specific message.
    """
    world, _ = _world(group)
    if world == 1:
        return
    mine = [(n, tuple(p.shape), str(p.dtype)) for n, p in module.named_parameters()]
    every: list[Any] = [None] * world
    dist.all_gather_object(every, mine, group=group)
    ref = every[0]
    for r, sig in enumerate(every):
        if sig == ref:
            continue
        if len(sig) != len(ref):
            detail = f"rank 0 has {len(ref)} parameter tensors, rank {r} has {len(sig)}"
        else:
            a, b = next((a, b) for a, b in zip(ref, sig, strict=True) if a != b)
            detail = f"rank 0 has {a[0]} {a[1]} {a[2]}, rank {r} has {b[0]} {b[1]} {b[2]}"
        raise InvalidInputError(
            f"parameter shapes differ across workers ({detail}); every worker must build the "
            "same model (same architecture and sizes) before data-parallel training"
        )


@dataclass(frozen=True, repr=False)
class AdaConsStep(ResultRepr):
    """What :meth:`AdaConsAggregator.step` did.

    applied: False when the step was skipped (non-finite gradients on some worker); the
        gradients were then set to ``None`` so that ``optimizer.step()`` changes nothing.
    reason: why it was skipped ("" otherwise).
    alpha, raw, norms: ``(N,)`` coefficients, raw coefficients and gradient norms by rank.
    fallback: the ``sum(alpha) ~ 0`` guard fired and ``alpha = 1/N`` was used.
    floats_sent: payload floats of this step's collectives per worker (all-reduce of P
        counts P, all-gather of m floats per rank counts m).
    """

    applied: bool
    alpha: np.ndarray
    raw: np.ndarray
    norms: np.ndarray
    fallback: bool = False
    reason: str = ""
    floats_sent: int = 0

    def summary(self) -> str:
        if not self.applied:
            return f"AdaCons step skipped: {self.reason}"
        return (
            f"AdaCons step N={self.alpha.size}: alpha in [{self.alpha.min():.4g}, "
            f"{self.alpha.max():.4g}]" + (" (guard fallback 1/N)" if self.fallback else "")
        )


@dataclass
class _Pending:
    dots: dict[int, torch.Tensor] = field(default_factory=dict)
    stacks: dict[int, tuple[list[torch.Tensor], list[torch.Tensor]]] = field(default_factory=dict)
    calls: int = 0
    reduced: bool = False


class AdaConsAggregator:
    """AdaCons aggregation for a ``DistributedDataParallel`` model.

    Usage (every rank)::

        ddp = DistributedDataParallel(model)
        agg = AdaConsAggregator(ddp, beta=0.9)
        agg.register()              # = ddp.register_comm_hook(agg, adacons_hook)
        for batch in data:
            opt.zero_grad(set_to_none=True)
            loss_fn(ddp, batch).backward()
            info = agg.step()       # gradients now hold the AdaCons aggregate (same on all ranks)
            opt.step()              # a skipped step left grads None: nothing changes

    Parameters
    ----------
    model:
        The DDP-wrapped model (a plain module is accepted only when the world size is 1).
    beta:
        Subspace momentum on the sorted coefficients, in ``[0, 1)``.
    rescale:
        ``"mean_norm"`` (default; scale by the mean gradient norm so that averaging's learning
        rates transfer) or ``"none"`` (the paper's unit-scale combination).
    reference:
        ``"mean"``: coefficients against the current mean gradient (one extra all-reduce in the
        hook). ``"previous"``: against the previous step's aggregate (no communication in the
        hook; the first step uses the mean).
    guard, eps, mapping:
        See :func:`update_coefficients` and :func:`adacons_coefficients`.
    schedule:
        ``"allreduce"`` (the paper's three collectives), ``"allgather"`` (one all-gather of the
        per-worker gradients, formula computed locally on every rank; ``reference="mean"``
        only) or ``"auto"`` (all-gather iff ``reference="mean"`` and ``N * P * bytes <=
        auto_max_bytes``); see the module docstring. The resolved choice is ``schedule_``.
    auto_max_bytes:
        Threshold of ``schedule="auto"`` in bytes of the gathered stack (default 4 MiB).
    process_group:
        Defaults to the global group.

    World size 1 (or no process group): warns once and leaves the local gradient unchanged.
    Learned state: ``state_`` (sorted-coefficient momentum), ``steps_``, ``skipped_steps_``,
    ``fallback_steps_``, ``last_``.

    Cost per step, ``"allreduce"``: hook ``O(P)`` local work + all-reduce of ``P`` floats
    (``reference="mean"``), all-gather of ``3`` scalars per rank, one flattened all-reduce of
    ``P`` floats. ``"allgather"``: one all-gather of ``P`` floats per rank (``(N-1) P``
    received), ``O(N P)`` local work and ``N P`` floats of memory on every rank.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        beta: float = 0.0,
        rescale: str = "mean_norm",
        reference: str = "mean",
        guard: float = 1e-3,
        eps: float = 1e-12,
        mapping: str = "rank",
        schedule: str = "auto",
        auto_max_bytes: float = AUTO_MAX_BYTES,
        process_group: Any = None,
    ) -> None:
        if not isinstance(model, torch.nn.Module):
            raise InvalidInputError(
                f"model must be a torch.nn.Module (a DistributedDataParallel model), "
                f"got {type(model).__name__}"
            )
        self.model = model
        self.beta = check_probability(beta, "beta", allow_one=False)
        self.rescale = check_choice(rescale, "rescale", RESCALES)
        self.reference = check_choice(reference, "reference", REFERENCES)
        self.guard = check_nonnegative_float(guard, "guard")
        self.eps = check_nonnegative_float(eps, "eps")
        self.mapping = check_choice(mapping, "mapping", MAPPINGS)
        self.schedule = check_choice(schedule, "schedule", SCHEDULES)
        self.auto_max_bytes = check_nonnegative_float(auto_max_bytes, "auto_max_bytes")
        if self.schedule == "allgather" and self.reference != "mean":
            raise InvalidInputError(
                'schedule="allgather" computes the paper\'s mean-reference formula; use '
                'reference="mean" with it, or schedule="allreduce" for reference="previous"'
            )
        self.process_group = process_group
        self.world_size, self.rank = _world(process_group)
        self.state_: np.ndarray | None = None
        self.steps_ = 0
        self.skipped_steps_ = 0
        self.fallback_steps_ = 0
        self.last_: AdaConsStep | None = None
        self._pending = _Pending()
        self._previous: torch.Tensor | None = None
        self._registered = False
        params = [p for p in model.parameters() if p.requires_grad]
        gathered_bytes = self.world_size * sum(p.numel() * p.element_size() for p in params)
        if self.schedule == "auto":
            small = gathered_bytes <= self.auto_max_bytes
            self.schedule_ = "allgather" if self.reference == "mean" and small else "allreduce"
        else:
            self.schedule_ = self.schedule
        if self.world_size == 1:
            warnings.warn(
                "AdaConsAggregator: world size is 1 (or torch.distributed is not initialised); "
                "there is nothing to aggregate, so step() leaves the local gradient unchanged",
                RuntimeWarning,
                stacklevel=2,
            )
        elif not isinstance(model, torch.nn.parallel.DistributedDataParallel):
            raise InvalidInputError(
                "with world size > 1 the model must be wrapped in "
                "torch.nn.parallel.DistributedDataParallel before creating AdaConsAggregator"
            )

    def register(self) -> "AdaConsAggregator":
        """Register :func:`adacons_hook` on the DDP model (no-op at world size 1)."""
        if self.world_size > 1 and not self._registered:
            self.model.register_comm_hook(self, adacons_hook)
            self._registered = True
        return self

    # -- called from the hook ------------------------------------------------------------
    def _hook(self, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
        buf = bucket.buffer()
        pending = self._pending
        pending.calls += 1
        idx = bucket.index()
        if self.schedule_ == "allgather":
            params = list(bucket.parameters())
            parts = [torch.empty_like(buf) for _ in range(self.world_size)]
            work = dist.all_gather(parts, buf, group=self.process_group, async_op=True)

            def _keep(_: torch.futures.Future) -> torch.Tensor:
                pending.stacks[idx] = (parts, params)
                return buf  # the local gradient; step() writes the aggregate

            return work.get_future().then(_keep)
        if self.reference == "previous" and self._previous is not None:
            fut: torch.futures.Future[torch.Tensor] = torch.futures.Future()
            fut.set_result(buf)
            return fut
        local = buf.clone()
        pending.reduced = True
        work = dist.all_reduce(buf, group=self.process_group, async_op=True)

        def _dot(f: torch.futures.Future) -> torch.Tensor:
            total = f.value()[0]
            pending.dots[idx] = torch.dot(total.reshape(-1).double(), local.reshape(-1).double())
            return local

        return work.get_future().then(_dot)

    # -- after backward --------------------------------------------------------------------
    def _grads(self) -> list[torch.Tensor]:
        grads = [p.grad for p in self.model.parameters() if p.requires_grad]
        if any(g is None for g in grads):
            raise InvalidInputError(
                "some parameters have no gradient; call backward() on the DDP model before "
                "step(), and do not use AdaConsAggregator with unused parameters"
            )
        return grads  # type: ignore[return-value]

    def step(self) -> AdaConsStep:
        """Turn the local gradients into the AdaCons aggregate (collective: call on all ranks).

        Call after ``loss.backward()`` on the DDP model and before ``optimizer.step()``.
        Returns an :class:`AdaConsStep`; if any rank's gradient is non-finite the step is
        skipped on every rank (gradients set to ``None``) and reported in the result.
        """
        n = self.world_size
        if n == 1:
            grads = [p.grad for p in self.model.parameters() if p.grad is not None]
            sq = sum(float(torch.sum(g.double() ** 2)) for g in grads)
            self.steps_ += 1
            self.last_ = AdaConsStep(True, np.ones(1), np.ones(1), np.array([math.sqrt(sq)]))
            return self.last_
        pending, self._pending = self._pending, _Pending()
        if pending.calls == 0:
            raise InvalidInputError(
                "AdaConsAggregator.step() found no gradients from this iteration: register the "
                "hook (agg.register()) and call backward() on the DDP model (outside no_sync) "
                "before step()"
            )
        grads = self._grads()
        if self.schedule_ == "allgather":
            return self._step_allgather(pending)
        flat = torch.cat([g.reshape(-1) for g in grads])
        p_total = flat.numel()
        flat64 = flat.double()
        sq = torch.dot(flat64, flat64)
        finite = bool(torch.isfinite(sq)) and bool(torch.isfinite(flat).all())
        norm = float(torch.sqrt(sq)) if finite else 0.0
        if pending.reduced:
            if len(pending.dots) != pending.calls:
                raise InvalidInputError(
                    "the communication hook ran more often than expected between two step() "
                    "calls; call step() after every synchronised backward()"
                )
            dot = float(sum(pending.dots.values())) / n
        else:
            assert self._previous is not None
            dot = float(torch.dot(flat64, self._previous)) if finite else 0.0
        # a non-finite gradient elsewhere makes the reduced sum (and so dot) non-finite here:
        # only this rank's own gradient decides its flag; raw_i is then reported as NaN
        raw_i = dot / (norm + self.eps) if finite else 0.0
        self.steps_ += 1
        if not pending.reduced and self.beta == 0.0:
            return self._fused(grads, flat, raw_i, norm, finite)
        mine = torch.tensor([raw_i, norm, float(finite)], dtype=torch.float64, device=flat.device)
        gathered = [torch.empty_like(mine) for _ in range(n)]
        dist.all_gather(gathered, mine, group=self.process_group)
        table = torch.stack(gathered).cpu().numpy()
        raw, norms, ok = table[:, 0], table[:, 1], table[:, 2] > 0.5
        sent = (p_total if pending.reduced else 0) + 3
        if not (ok.all() and np.all(np.isfinite(raw))):
            return self._skip(raw, norms, ok, sent)
        alpha, self.state_, fallback = update_coefficients(
            raw,
            self.state_,
            beta=self.beta,
            guard=self.guard,
            mapping=self.mapping,
            sign_free=not pending.reduced,
        )
        self.fallback_steps_ += int(fallback)
        c = float(norms.mean()) if self.rescale == "mean_norm" else 1.0
        flat.mul_(c * float(alpha[self.rank]) / (norms[self.rank] + self.eps))
        dist.all_reduce(flat, group=self.process_group)
        self._finish(grads, flat)
        sent += p_total
        self.last_ = AdaConsStep(True, alpha, raw, norms, fallback=fallback, floats_sent=sent)
        return self.last_

    def _step_allgather(self, pending: _Pending) -> AdaConsStep:
        """The formula on the all-gathered ``(N, P_b)`` bucket stacks, computed locally.

        Global over all buckets: ``||g_i||^2 = sum_b ||G_b[i]||^2`` and ``<g_i, r> =
        sum_b <G_b[i], mean_j G_b[j]>``; then the same momentum/normalisation as the
        all-reduce path, and ``d_b = weights @ G_b`` written into the parameters' gradients.
        Every rank runs the same float64 operations on the same data, so all ranks get the
        same aggregate. No collective here. O(N P).
        """
        n = self.world_size
        if len(pending.stacks) != pending.calls:
            raise InvalidInputError(
                "the communication hook ran more often than expected between two step() "
                "calls; call step() after every synchronised backward()"
            )
        entries = [pending.stacks[i] for i in sorted(pending.stacks)]
        covered = {id(p) for _, params in entries for p in params}
        if any(id(p) not in covered for p in self.model.parameters() if p.requires_grad):
            raise InvalidInputError(
                "some parameters were not in any gradient bucket this iteration; call step() "
                "once after every synchronised backward() of the DDP model"
            )
        stacks = [torch.stack(parts).double() for parts, _ in entries]  # (N, P_b) each
        dev = stacks[0].device
        ok = torch.ones(n, dtype=torch.bool, device=dev)
        for G in stacks:
            ok &= torch.isfinite(G).all(dim=1)
        sent = sum(G.shape[1] for G in stacks)
        ok_np = ok.cpu().numpy()
        if not ok_np.all():
            return self._skip(np.where(ok_np, 0.0, np.nan), np.full(n, np.nan), ok_np, sent)
        sq = torch.zeros(n, dtype=torch.float64, device=dev)
        dots = torch.zeros(n, dtype=torch.float64, device=dev)
        for G in stacks:
            sq += (G * G).sum(dim=1)
            dots += G @ G.mean(dim=0)
        norms = torch.sqrt(sq).cpu().numpy()
        raw = dots.cpu().numpy() / (norms + self.eps)
        if not np.all(np.isfinite(raw)):
            return self._skip(raw, norms, ok_np, sent)
        alpha, self.state_, fallback = update_coefficients(
            raw, self.state_, beta=self.beta, guard=self.guard, mapping=self.mapping
        )
        self.fallback_steps_ += int(fallback)
        c = float(norms.mean()) if self.rescale == "mean_norm" else 1.0
        weights = torch.from_numpy(c * alpha / (norms + self.eps)).to(dev)
        for G, (_, params) in zip(stacks, entries, strict=True):
            d = weights @ G
            offset = 0
            for p in params:
                k = p.numel()
                p.grad.copy_(d[offset : offset + k].view_as(p.grad))
                offset += k
        self.last_ = AdaConsStep(True, alpha, raw, norms, fallback=fallback, floats_sent=sent)
        return self.last_

    def _fused(
        self, grads: list[torch.Tensor], flat: torch.Tensor, raw_i: float, norm: float, ok: bool
    ) -> AdaConsStep:
        """``reference="previous"`` without momentum: one all-reduce of ``P + 3 N`` floats.

        Each rank contributes ``raw_i g_i / ||g_i||`` and its scalars in one-hot slots; the
        sum gives the numerator and every rank's coefficient, norm and finite flag.
        """
        n, p_total, r = self.world_size, flat.numel(), self.rank
        buf = torch.zeros(p_total + 3 * n, dtype=flat.dtype, device=flat.device)
        if ok:
            torch.mul(flat, raw_i / (norm + self.eps), out=buf[:p_total])
        buf[p_total + r] = raw_i
        buf[p_total + n + r] = norm
        buf[p_total + 2 * n + r] = float(ok)
        dist.all_reduce(buf, group=self.process_group)
        table = buf[p_total:].double().cpu().numpy().reshape(3, n)
        raw, norms, flags = table[0], table[1], table[2] > 0.5
        sent = p_total + 3 * n
        if not (flags.all() and np.all(np.isfinite(raw))):
            return self._skip(raw, norms, flags, sent)
        alpha, self.state_, fallback = update_coefficients(
            raw, None, beta=0.0, guard=self.guard, mapping=self.mapping, sign_free=True
        )
        c = float(norms.mean()) if self.rescale == "mean_norm" else 1.0
        if fallback:  # rare: a second all-reduce of the unit gradients
            self.fallback_steps_ += 1
            flat.mul_(c / n / (norm + self.eps))
            dist.all_reduce(flat, group=self.process_group)
            sent += p_total
        else:
            flat = buf[:p_total].mul_(c / float(raw.sum()))
        self._finish(grads, flat)
        self.last_ = AdaConsStep(True, alpha, raw, norms, fallback=fallback, floats_sent=sent)
        return self.last_

    def _skip(self, raw: np.ndarray, norms: np.ndarray, ok: np.ndarray, sent: int) -> AdaConsStep:
        bad = [int(r) for r in np.flatnonzero(~ok)]
        if bad:
            reason = f"non-finite gradient on rank(s) {bad}; step skipped on every rank"
        else:
            reason = "non-finite AdaCons coefficient (overflow); step skipped on every rank"
        for p in self.model.parameters():
            p.grad = None
        self.skipped_steps_ += 1
        self.last_ = AdaConsStep(
            False, np.full(self.world_size, np.nan), raw, norms, reason=reason, floats_sent=sent
        )
        return self.last_

    def _finish(self, grads: list[torch.Tensor], flat: torch.Tensor) -> None:
        offset = 0
        for g in grads:
            k = g.numel()
            g.copy_(flat[offset : offset + k].view_as(g))
            offset += k
        if self.reference == "previous":
            self._previous = flat.double()


def adacons_hook(
    state: AdaConsAggregator, bucket: dist.GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """DDP communication hook of AdaCons: ``ddp.register_comm_hook(aggregator, adacons_hook)``.

    Leaves the *local* bucket gradient in place (the aggregate is formed in
    :meth:`AdaConsAggregator.step`) and, with ``reference="mean"``, all-reduces the bucket to
    accumulate ``<g_i, sum_j g_j>`` for this rank.
    """
    return state._hook(bucket)
