"""Straggler-resilient evolution strategies with coded search directions, and baselines.

Bartan & Pilanci, "Distributed Black-Box Optimization via Error Correcting Codes"
(arXiv 1907.05984). Every iteration draws K directions, encodes them into N coded directions
(:class:`~.estimator.CodedDirections`), sends worker j the central difference along w_j, and
stops waiting as soon as the arrived outputs are decodable (or at a deadline, then takes the
anytime estimate); the decoded gradient estimate drives a gradient step or a sign step
(l_inf attacks, Ilyas et al. 2018, arXiv 1804.08598), optionally with Adam moments and a
projection (a callable and/or an l_inf ball).

Baselines with the same interface (``run``/``step``, :class:`ESResult`):

* :class:`WaitAllES` -- plain ES / NES with Gaussian directions, one per worker, waits for all;
* :class:`DropStragglersES` -- the same, but uses the first ``n_wait`` arrivals (or the
  deadline) and drops the stragglers;
* :class:`StructuredES` -- orthogonal directions (Choromanski et al. 2018, arXiv 1804.02395),
  one per worker, waits for all (``n_wait`` drops stragglers as well).

Two ways to run the workers:

* ``executor``: any :mod:`frugalml.runtime` executor, e.g. a ``FaultInjector`` with a
  straggler model on the wall or simulated clock. The master checks decodability on every
  arrival (``on_result``) and cancels the rest, as :func:`frugalml.coded.coded_matmul` does.
* ``executor=None``: every finite difference is evaluated in this process (one batched call
  with ``batched=True``) and completion times are drawn from ``stragglers`` (a
  :class:`~frugalml.runtime.StragglerModel`): the simulated clock. The stopping time is the
  first prefix of the arrival order that is decodable (one vectorised SC pass over every
  prefix for the polar code, binary search with O(log N) checks otherwise).

The optimiser is in :mod:`.coded_es`, the baselines in :mod:`.baselines` and the results in
:mod:`.results`; this module re-exports them (its public path since 0.1).

Per iteration the cost is 2N function evaluations (N + 1 with forward differences), plus
one evaluation of f at the new iterate for the loss history (``monitor_evaluations``).

Divergence: a gradient step larger than 2 / L (L the gradient's Lipschitz constant near the
iterates) makes plain ES diverge -- e.g. the default ``step=0.1`` on the Rosenbrock function,
whose L is in the thousands at its usual start. :meth:`CodedES.run` stops as soon as an
iterate or its loss is non-finite, or the loss has grown past ``f(x0) + max_growth *
max(|f(x0)|, 1)``; the result then has ``diverged=True`` and ``stopped_by="diverged"``, and a
:class:`DivergenceWarning` is issued (``on_divergence="raise"`` raises :class:`DivergedError`
instead). Smaller steps, ``adam=True`` (a step of about ``step`` per coordinate whatever the
gradient's scale) or ``step_rule="sign"`` avoid it.

Data placed once: with an executor, the objective (with whatever it holds: data, a model) is
placed with it once (``executor.share``) on the first round of a :meth:`CodedES.run` and
released when the run ends (or on :meth:`CodedES.close` after manual :meth:`CodedES.step`
calls); per round a task carries only the objective's reference, the iterate x (d,), its
coded direction w_j (d,) and a few scalars, so the bytes per round are O(N d) whatever the
objective's size. ``StepInfo`` and ``ESResult`` report the bytes moved.
"""

from __future__ import annotations

from ...progress import Progress  # noqa: F401 - the type of run(progress=), as in 0.1
from .baselines import DropStragglersES, StructuredES, WaitAllES
from .coded_es import CodedES, DivergedError, DivergenceWarning, Wait
from .results import ESResult, StepInfo

__all__ = [
    "CodedES",
    "DivergedError",
    "DivergenceWarning",
    "DropStragglersES",
    "ESResult",
    "StepInfo",
    "StructuredES",
    "Wait",
    "WaitAllES",
]
