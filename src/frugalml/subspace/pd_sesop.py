"""Primal-dual sequential subspace optimisation (PD-SESOP) for ``min_x max_y f(x, y)``.

Choukroun, Zibulevsky & Kisilev, "Primal-Dual Sequential Subspace Optimization for
Saddle-point Problems" (arXiv 2008.09149); the minimisation ancestor is SESOP (Narkiss &
Zibulevsky 2005, :mod:`.sesop`).

Every iteration builds a primal subspace ``P`` (columns in x-space) and a dual subspace ``Q``
(columns in y-space) from first-order information:

* ``"gradient"``: the partial gradients ``grad_x f`` and ``grad_y f`` at the iterate;
* ``"steps"``: the last ``memory`` primal steps ``x_k - x_{k-1}`` and dual steps;
* ``"nemirovski"``: ``x_k - x_0`` and ``sum_i w_i grad_x f(z_i)`` (and their dual analogues)
  with Nemirovski's weights ``w_0 = 1``, ``w_k = 1/2 + sqrt(1/4 + w_{k-1}^2)``;
* ``"hamiltonian"`` (optional, ours): ``(Hxx gx + Hxy gy, Hyx gx + Hyy gy)``, the gradient of
  ``1/2 ||grad f||^2`` (Hamiltonian gradient descent's direction; one more product per
  iteration).

The columns are normalised and orthonormalised (pivoted QR; numerically dependent ones are
dropped), and the proximally regularised auxiliary saddle problem

    min_alpha max_beta  f(x + P alpha, y + Q beta) + ||P alpha||^2 / (2 eta)
                                                   - ||Q beta||^2 / (2 eta)

is solved for the step (``eta = prox``; ``P^T P = I``, so the regulariser is
``|alpha|^2/(2 eta) - |beta|^2/(2 eta)``). With the whole space as subspace this is exactly the
proximal point method; the regulariser makes the small problem strongly-convex-strongly-concave.
``prox=math.inf`` drops the regulariser (the plain subspace saddle, a Galerkin step).

Choice of ``eta`` (measured, docs/saddle.md): since the prox is centred at the current
iterate, the outer iteration can be no faster than the proximal point method with step
``eta``, which contracts a singular direction ``s`` of a bilinear game only by
``1/sqrt(1 + eta^2 s^2)``; ``eta`` must therefore be large against ``1/s_min``, not against
``1/||A||``. On ill-conditioned bilinear games the unregularised step (``eta = inf``) with the
gradient + steps subspace converges fastest (about 4 kappa evaluations to 1e-8 at kappa = 100,
M = 1..3); moderate ``eta`` (0.1 ... 1e4) and the Nemirovski directions slow it down or stall
it there. Constrained/augmented-Lagrangian problems need a finite ``eta`` (30 was best).
Inner solvers:

* ``"exact_quadratic"`` (affine gradient maps: bilinear and quadratic games, augmented
  Lagrangians of equality-constrained quadratic programs). The small stationarity system
  ``[[P'HxxP + I/eta, P'HxyQ], [Q'HyxP, Q'HyyQ - I/eta]] [alpha; beta] = -[P'gx; Q'gy]`` is
  solved exactly. As in SESOP, products of the Hessian blocks with steps and Nemirovski
  directions follow by linearity from stored products, and so does the next gradient; only
  the two new gradient directions need Hessian-vector products: **2 evaluations per iteration
  (1 for bilinear games**, where one product ``(A q, A^T p)`` serves both), plus a fresh
  gradient every ``recompute_every`` iterations against rounding drift.
* ``"min_residual"`` (affine gradient maps; our variant, not in the paper): the same subspaces
  and stored products, but the step minimises the gradient norm
  ``||(grad_x, grad_y)(x + P alpha, y + Q beta)||^2 + |(alpha, beta)|^2 / eta^2`` (a small
  least-squares problem) instead of solving the inner saddle. This is SESOP applied to the
  Hamiltonian ``1/2 ||grad f||^2`` (a MINRES/CGNR-like Krylov method); it is monotone in the
  gradient norm, whereas the inner-saddle step is not Fejér-monotone when the subspace is
  small. On an ill-conditioned bilinear game (kappa = 100) the measured difference is large:
  see docs/saddle.md.
* ``"newton"`` (general smooth ``f``): Newton's method on the stationarity system of the
  small problem; each Newton step costs one gradient and ``dim P + dim Q`` Hessian-vector
  products (finite differences of gradients, 1 evaluation each, or torch double-backward, 2
  each), and is accepted only if it reduces the norm of the small problem's gradient (else
  halved, at most 4 times).
* ``"extragradient"``: ``inner_steps`` extragradient steps on ``(alpha, beta)`` with an
  adaptive step size (2 evaluations per step).

``pd_sesop`` accepts a :class:`~frugalml.subspace.saddle_problem.SaddleProblem` with NumPy
arrays, or a torch function ``F(x, y) -> scalar tensor`` with 1-D torch tensors ``x0, y0``
(gradients and Hessian-vector products by autograd; the small problems are solved in NumPy
float64 and the result is returned as tensors of the input's dtype and device).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._optional import require
from .._validate import check_choice, check_int, check_positive_float
from ..errors import InvalidInputError
from ..progress import Progress
from .directions import DIRECTIONS, nemirovski_weight, orthonormal_basis
from .recorder import Callback, Recorder, SaddleResult
from .saddle_problem import NonFiniteError, SaddleProblem

__all__ = [
    "DIRECTIONS",
    "INNER_SOLVERS",
    "SADDLE_DIRECTIONS",
    "nemirovski_weight",
    "orthonormal_basis",
    "pd_sesop",
]

SADDLE_DIRECTIONS = (*DIRECTIONS, "hamiltonian")
INNER_SOLVERS = ("auto", "exact_quadratic", "min_residual", "newton", "extragradient")


def _torch_problem(F: Callable, x0: Any, y0: Any, hvp: str) -> tuple[SaddleProblem, Callable]:
    torch = require("torch", what="pd_sesop on torch tensors", extra="torch")
    if not (isinstance(x0, torch.Tensor) and isinstance(y0, torch.Tensor)):
        raise InvalidInputError("with a torch objective, x0 and y0 must both be torch tensors")
    if x0.ndim != 1 or y0.ndim != 1:
        raise InvalidInputError(
            f"x0 and y0 must be 1-D tensors (flatten parameters, e.g. with "
            f"torch.nn.utils.parameters_to_vector); got shapes {tuple(x0.shape)}, "
            f"{tuple(y0.shape)}"
        )
    if not (x0.is_floating_point() and y0.is_floating_point()):
        raise InvalidInputError("x0 and y0 must be floating-point tensors")
    dtype, device = x0.dtype, x0.device

    def t(a: np.ndarray):
        return torch.as_tensor(a, dtype=dtype, device=device)

    def evaluate(x, y, create_graph=False):
        xt = t(x).requires_grad_(True)
        yt = t(y).requires_grad_(True)
        val = F(xt, yt)
        if not isinstance(val, torch.Tensor) or val.numel() != 1:
            raise InvalidInputError("F(x, y) must return a scalar torch tensor")
        if not bool(torch.isfinite(val.detach())):
            raise FloatingPointError("non-finite objective value")
        gx, gy = torch.autograd.grad(val, (xt, yt), create_graph=create_graph, allow_unused=True)
        gx = torch.zeros_like(xt) if gx is None else gx
        gy = torch.zeros_like(yt) if gy is None else gy
        return xt, yt, gx, gy

    def grads(x, y):
        with torch.enable_grad():
            _, _, gx, gy = evaluate(x, y)
        return gx.detach().cpu().double().numpy(), gy.detach().cpu().double().numpy()

    def hvp_fn(x, y, p, q):
        with torch.enable_grad():
            xt, yt, gx, gy = evaluate(x, y, create_graph=True)
            dot = (gx * t(p)).sum() + (gy * t(q)).sum()
            if not dot.requires_grad:  # f linear in both: zero Hessian
                return np.zeros(x.shape), np.zeros(y.shape)
            hx, hy = torch.autograd.grad(dot, (xt, yt), allow_unused=True)
        hx = np.zeros(x.shape) if hx is None else hx.detach().cpu().double().numpy()
        hy = np.zeros(y.shape) if hy is None else hy.detach().cpu().double().numpy()
        return hx, hy

    def value(x, y):
        with torch.no_grad():
            return float(F(t(x), t(y)))

    problem = SaddleProblem(
        None, None, int(x0.numel()), int(y0.numel()), grads=grads, value=value,
        hvp=hvp_fn if hvp == "autograd" else None, hvp_cost=2, name="torch",
    )  # fmt: skip

    def back(a):
        return None if a is None else t(a).detach()

    return problem, back


def pd_sesop(
    F: SaddleProblem | Callable,
    x0: Any,
    y0: Any,
    *,
    memory: int = 3,
    prox: float = 1.0,
    inner: str = "auto",
    directions: Sequence[str] = DIRECTIONS,
    tol: float = 1e-8,
    max_iter: int = 10_000,
    max_evals: int | None = None,
    target: str | None = None,
    newton_steps: int = 3,
    inner_tol: float = 1e-6,
    inner_steps: int = 5,
    recompute_every: int = 25,
    hvp: str = "autograd",
    callback: Callback | None = None,
    progress: Progress | None = None,
    history_every: int = 1,
) -> SaddleResult:
    """Solve ``min_x max_y f(x, y)`` by primal-dual sequential subspace optimisation.

    Parameters
    ----------
    F:
        A :class:`SaddleProblem` (NumPy ``x0`` of shape ``(n,)``, ``y0`` of shape ``(m,)``) or a
        torch function ``F(x, y) -> scalar`` of 1-D tensors.
    memory:
        Number ``M >= 1`` of previous primal (and dual) steps kept in the subspaces.
    prox:
        Proximal parameter ``eta > 0`` or ``math.inf`` (no regularisation); large ``eta`` =
        weak regularisation (see "Choice of eta" above).
    inner:
        ``"exact_quadratic"`` (the paper's proximal inner saddle, affine gradient maps),
        ``"min_residual"`` (affine maps: the subspace point of least gradient norm),
        ``"newton"``, ``"extragradient"`` or ``"auto"`` (``"exact_quadratic"`` for affine
        problems, else ``"newton"``). ``"min_residual"`` should be given the
        ``"hamiltonian"`` direction on non-bilinear problems (without it the least-residual
        step can stagnate, like restarted GMRES).
    directions:
        Which of ``"gradient"`` (required), ``"steps"``, ``"nemirovski"``, ``"hamiltonian"``
        span the subspaces.
    tol, target:
        Stop when the target metric (default: distance to the known saddle, else the gradient
        norm ``residual``) is ``<= tol``; also stops at ``max_iter`` / ``max_evals`` or when
        the target grew 1e8-fold (``diverged``).
    newton_steps, inner_tol:
        Newton inner solver: at most ``newton_steps`` steps, stopping when the small problem's
        gradient fell by ``inner_tol``.
    inner_steps:
        Extragradient inner solver: number of steps.
    recompute_every:
        Exact-quadratic solver: recompute the gradient from scratch every this many
        iterations (0: never; the gradient is otherwise updated by linearity).
    hvp:
        Torch objectives: ``"autograd"`` (double-backward, counted 2) or ``"fd"`` (finite
        differences of gradients, counted 1).

    Returns a :class:`SaddleResult`; ``history["evals"]`` counts gradient evaluations as
    described in :mod:`.saddle_problem`. Memory: ``O((n + m)(M + 3))``; time per iteration: the
    gradient/HVP evaluations plus ``O((n + m)(M + 3)^2)`` for the orthonormalisation.

    Raises
    ------
    InvalidInputError
        ``prox <= 0``, ``memory < 1``, unknown inner solver or direction, shape mismatches,
        ``"exact_quadratic"`` on a non-affine problem.
    NonFiniteError
        A gradient or Hessian-vector product was NaN/inf; ``.x``, ``.y`` hold the last
        iterate with finite gradients.
    """
    memory = check_int(memory, "memory", low=1)
    if isinstance(prox, (int, float)) and prox == math.inf:
        eta = math.inf  # no regularisation: the plain subspace (Galerkin) saddle step
    else:
        eta = check_positive_float(prox, "prox (eta)")
    inner = check_choice(inner, "inner", INNER_SOLVERS)
    hvp = check_choice(hvp, "hvp", ("autograd", "fd"))
    dirs = tuple(directions) if not isinstance(directions, str) else (directions,)
    for d in dirs:
        check_choice(d, "direction", SADDLE_DIRECTIONS)
    if "gradient" not in dirs:
        raise InvalidInputError(
            "directions must include 'gradient' (without it the subspaces get no new "
            f"information); got {dirs}"
        )
    newton_steps = check_int(newton_steps, "newton_steps", low=1)
    inner_tol = check_positive_float(inner_tol, "inner_tol")
    inner_steps = check_int(inner_steps, "inner_steps", low=1)
    recompute_every = check_int(recompute_every, "recompute_every", low=0)

    back: Callable | None = None
    if isinstance(F, SaddleProblem):
        problem = F
        x, y = problem.check_point(x0, y0)
    elif callable(F):
        problem, back = _torch_problem(F, x0, y0, hvp)
        x = x0.detach().cpu().double().numpy().copy()
        y = y0.detach().cpu().double().numpy().copy()
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise InvalidInputError("x0 and y0 must be finite")
    else:
        raise InvalidInputError(
            "F must be a SaddleProblem or a torch function F(x, y) -> scalar tensor; "
            f"got {type(F).__name__}"
        )
    if inner == "auto":
        inner = "exact_quadratic" if problem.affine else "newton"
    if inner in ("exact_quadratic", "min_residual") and not problem.affine:
        raise InvalidInputError(
            f"inner={inner!r} needs an affine gradient map (a quadratic or bilinear "
            "problem built with affine=True); use inner='newton' or 'extragradient'"
        )
    rec = Recorder(
        problem, f"pd_sesop[{inner}]", tol=tol, max_iter=max_iter, max_evals=max_evals,
        target=target, callback=callback, progress=progress, history_every=history_every,
    )  # fmt: skip
    state = _State(problem, x, y, memory, eta, dirs)
    try:
        if inner == "exact_quadratic":
            _run_exact(state, rec, recompute_every, min_residual=False)
        elif inner == "min_residual":
            _run_exact(state, rec, recompute_every, min_residual=True)
        else:
            _run_general(state, rec, inner, newton_steps, inner_tol, inner_steps)
    except FloatingPointError as exc:
        err = rec.fail(exc)
        if back is not None:
            err.x, err.y = back(err.x), back(err.y)
        raise err from None
    except NonFiniteError:
        raise
    x, y = state.x, state.y
    info = {"memory": memory, "prox": eta, "inner": inner, "directions": list(dirs),
            "subspace_dims": state.dims}  # fmt: skip
    if back is not None:
        return rec.result(back(x), back(y), **info)
    return rec.result(x, y, **info)


class _State:
    """Iterate, gradient and the direction bookkeeping shared by the inner solvers."""

    def __init__(self, problem, x, y, memory, eta, dirs):
        self.problem = problem
        self.x, self.y = x, y
        self.x0, self.y0 = x.copy(), y.copy()
        self.memory, self.eta, self.dirs = memory, eta, dirs
        self.use_steps = "steps" in dirs
        self.use_nem = "nemirovski" in dirs
        self.use_ham = "hamiltonian" in dirs
        self.w = 0.0
        self.rtol = 1e-10
        self.dims: list[tuple[int, int]] = []


def _norm2(a: np.ndarray, b: np.ndarray) -> float:
    return math.hypot(float(np.linalg.norm(a)), float(np.linalg.norm(b)))


def _solve_small(K: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    try:
        sol = np.linalg.solve(K, rhs)
        if np.isfinite(sol).all():
            return sol
    except np.linalg.LinAlgError:
        pass
    return np.linalg.lstsq(K, rhs, rcond=1e-12)[0]


def _run_exact(st: _State, rec: Recorder, recompute_every: int, min_residual: bool) -> None:
    """PD-SESOP with the exact inner solve for affine gradient maps (see module docstring).

    Each stored primal direction ``p`` carries ``(p, Hxx p, Hyx p)``; each dual direction
    ``q`` carries ``(q, Hxy q, Hyy q)``.
    """
    pb = st.problem
    n, m = pb.n, pb.m
    x, y = st.x, st.y
    gx, gy = pb.gradients(x, y)
    stale = 0
    steps_p: deque = deque(maxlen=st.memory)
    steps_q: deque = deque(maxlen=st.memory)
    zero_n, zero_m = np.zeros(n), np.zeros(m)
    d1p = [zero_n.copy(), zero_n.copy(), zero_m.copy()]  # x - x0 and its products
    d1q = [zero_m.copy(), zero_n.copy(), zero_m.copy()]
    d2p = [zero_n.copy(), zero_n.copy(), zero_m.copy()]  # sum w_i gx_i and its products
    d2q = [zero_m.copy(), zero_n.copy(), zero_m.copy()]
    stop = rec.record(x, y, _norm2(gx, gy))
    while not stop:
        # products of the two new gradient directions
        if pb.bilinear:
            hxq, hyp = pb.hvp(x, y, gx, gy, g=(gx, gy))
            gp = (gx, zero_n, hyp)
            gq = (gy, hxq, zero_m)
        else:
            a, b = pb.hvp(x, y, gx, zero_m, g=(gx, gy))
            c, d = pb.hvp(x, y, zero_n, gy, g=(gx, gy))
            gp = (gx, a, b)
            gq = (gy, c, d)
        cols_p, cols_q = [gp], [gq]
        if st.use_ham:
            # Hamiltonian direction: grad of 1/2 ||(gx, gy)||^2 = (Hxx gx + Hxy gy, Hyx gx + Hyy gy)
            rx, ry = gp[1] + gq[1], gp[2] + gq[2]
            if pb.bilinear:
                a, b = pb.hvp(x, y, rx, ry, g=(gx, gy))
                cols_p.append((rx, zero_n, b))
                cols_q.append((ry, a, zero_m))
            else:
                a, b = pb.hvp(x, y, rx, zero_m, g=(gx, gy))
                c, d = pb.hvp(x, y, zero_n, ry, g=(gx, gy))
                cols_p.append((rx, a, b))
                cols_q.append((ry, c, d))
        if st.use_steps:
            cols_p += list(steps_p)
            cols_q += list(steps_q)
        if st.use_nem:
            st.w = nemirovski_weight(st.w) if st.w > 0 else 1.0
            for acc, new in ((d2p, gp), (d2q, gq)):
                for i in range(3):
                    acc[i] += st.w * new[i]
            cols_p += [tuple(d1p), tuple(d2p)]
            cols_q += [tuple(d1q), tuple(d2q)]
        P_raw = np.column_stack([c[0] for c in cols_p])
        Q_raw = np.column_stack([c[0] for c in cols_q])
        _, Tp = orthonormal_basis(P_raw, rtol=st.rtol)
        _, Tq = orthonormal_basis(Q_raw, rtol=st.rtol)
        # the basis and its Hessian products from the same combination of the stored columns,
        # so that rounding in the stored products cannot make them inconsistent
        P, Q = P_raw @ Tp, Q_raw @ Tq
        HxxP = np.column_stack([c[1] for c in cols_p]) @ Tp
        HyxP = np.column_stack([c[2] for c in cols_p]) @ Tp
        HxyQ = np.column_stack([c[1] for c in cols_q]) @ Tq
        HyyQ = np.column_stack([c[2] for c in cols_q]) @ Tq
        kp, kq = P.shape[1], Q.shape[1]
        st.dims.append((kp, kq))
        if min_residual:
            # min ||(gx, gy)(z + S a)||^2 + |a|^2 / eta^2 over the split subspace S = P x Q
            Js = np.block([[HxxP, HxyQ], [HyxP, HyyQ]])
            lhs = np.vstack([Js, np.eye(kp + kq) / st.eta])
            rhs = -np.concatenate([gx, gy, np.zeros(kp + kq)])
            sol = np.linalg.lstsq(lhs, rhs, rcond=None)[0]
        else:
            K = np.empty((kp + kq, kp + kq))
            K[:kp, :kp] = P.T @ HxxP + np.eye(kp) / st.eta
            K[:kp, kp:] = P.T @ HxyQ
            K[kp:, :kp] = Q.T @ HyxP
            K[kp:, kp:] = Q.T @ HyyQ - np.eye(kq) / st.eta
            rhs = -np.concatenate([P.T @ gx, Q.T @ gy])
            sol = _solve_small(K, rhs)
        al, be = sol[:kp], sol[kp:]
        sx, hxx_sx, hyx_sx = P @ al, HxxP @ al, HyxP @ al
        sy, hxy_sy, hyy_sy = Q @ be, HxyQ @ be, HyyQ @ be
        x = x + sx
        y = y + sy
        rec.iterations += 1
        stale += 1
        if recompute_every and stale >= recompute_every:
            gx, gy = pb.gradients(x, y)
            stale = 0
        else:
            gx = gx + hxx_sx + hxy_sy
            gy = gy + hyx_sx + hyy_sy
        res = _norm2(gx, gy)
        if stale and rec.target == "residual" and res <= rec.tol:
            gx, gy = pb.gradients(x, y)  # never stop on an accumulated gradient
            stale = 0
            res = _norm2(gx, gy)
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise FloatingPointError("non-finite iterate")
        st.x, st.y = x, y
        steps_p.append((sx, hxx_sx, hyx_sx))
        steps_q.append((sy, hxy_sy, hyy_sy))
        for acc, new in ((d1p, (sx, hxx_sx, hyx_sx)), (d1q, (sy, hxy_sy, hyy_sy))):
            for i in range(3):
                acc[i] += new[i]
        stop = rec.record(x, y, res)


def _run_general(
    st: _State, rec: Recorder, inner: str, newton_steps: int, inner_tol: float, inner_steps: int
) -> None:
    """PD-SESOP with a Newton or extragradient inner solver (any smooth f)."""
    pb = st.problem
    x, y = st.x, st.y
    gx, gy = pb.gradients(x, y)
    steps_p: deque = deque(maxlen=st.memory)
    steps_q: deque = deque(maxlen=st.memory)
    d2p, d2q = np.zeros(pb.n), np.zeros(pb.m)
    eg_lr = None if pb.lipschitz is None else 0.5 / (pb.lipschitz + 1.0 / st.eta)
    stop = rec.record(x, y, _norm2(gx, gy))
    while not stop:
        cols_p, cols_q = [gx], [gy]
        if st.use_ham:
            rx, ry = pb.hvp(x, y, gx, gy, g=(gx, gy))
            cols_p.append(rx)
            cols_q.append(ry)
        if st.use_steps:
            cols_p += list(steps_p)
            cols_q += list(steps_q)
        if st.use_nem:
            st.w = nemirovski_weight(st.w) if st.w > 0 else 1.0
            d2p += st.w * gx
            d2q += st.w * gy
            cols_p += [x - st.x0, d2p.copy()]
            cols_q += [y - st.y0, d2q.copy()]
        P, _ = orthonormal_basis(np.column_stack(cols_p))
        Q, _ = orthonormal_basis(np.column_stack(cols_q))
        st.dims.append((P.shape[1], Q.shape[1]))
        if inner == "newton":
            al, be, gx, gy = _inner_newton(pb, x, y, gx, gy, P, Q, st.eta, newton_steps, inner_tol)
        else:
            al, be, gx, gy, eg_lr = _inner_eg(pb, x, y, gx, gy, P, Q, st.eta, inner_steps, eg_lr)
        sx, sy = P @ al, Q @ be
        x, y = x + sx, y + sy
        st.x, st.y = x, y
        rec.iterations += 1
        steps_p.append(sx)
        steps_q.append(sy)
        stop = rec.record(x, y, _norm2(gx, gy))


def _inner_newton(pb, x, y, gx, gy, P, Q, eta, newton_steps, inner_tol):
    kp, kq = P.shape[1], Q.shape[1]
    al, be = np.zeros(kp), np.zeros(kq)

    def small_grad(gx_, gy_, a, b):
        return np.concatenate([P.T @ gx_ + a / eta, Q.T @ gy_ - b / eta])

    r = small_grad(gx, gy, al, be)
    r0 = np.linalg.norm(r)
    zero_n, zero_m = np.zeros(pb.n), np.zeros(pb.m)
    for _ in range(newton_steps):
        if np.linalg.norm(r) <= inner_tol * r0 or r0 == 0.0:
            break
        xc, yc = x + P @ al, y + Q @ be
        K = np.empty((kp + kq, kp + kq))
        for j in range(kp):
            hx, hy = pb.hvp(xc, yc, P[:, j], zero_m, g=(gx, gy))
            K[:kp, j] = P.T @ hx
            K[kp:, j] = Q.T @ hy
        for j in range(kq):
            hx, hy = pb.hvp(xc, yc, zero_n, Q[:, j], g=(gx, gy))
            K[:kp, kp + j] = P.T @ hx
            K[kp:, kp + j] = Q.T @ hy
        K[:kp, :kp] += np.eye(kp) / eta
        K[kp:, kp:] -= np.eye(kq) / eta
        delta = _solve_small(K, -r)
        t = 1.0
        for _halving in range(5):
            a_new, b_new = al + t * delta[:kp], be + t * delta[kp:]
            gx_new, gy_new = pb.gradients(x + P @ a_new, y + Q @ b_new)
            r_new = small_grad(gx_new, gy_new, a_new, b_new)
            if np.linalg.norm(r_new) < np.linalg.norm(r):
                break
            t *= 0.5
        else:
            break  # no decrease: keep the current inner point (gradients already known)
        al, be, gx, gy, r = a_new, b_new, gx_new, gy_new, r_new
    return al, be, gx, gy


def _inner_eg(pb, x, y, gx, gy, P, Q, eta, inner_steps, lr):
    kp, kq = P.shape[1], Q.shape[1]
    al, be = np.zeros(kp), np.zeros(kq)

    def op(gx_, gy_, a, b):  # descent-ascent field of the small problem
        return P.T @ gx_ + a / eta, -(Q.T @ gy_ - b / eta)

    fa, fb = op(gx, gy, al, be)
    if lr is None:
        lr = 0.5 * eta if math.isfinite(eta) else 1.0  # adapted below
    for _ in range(inner_steps):
        for _retry in range(30):
            ha, hb = al - lr * fa, be - lr * fb
            hgx, hgy = pb.gradients(x + P @ ha, y + Q @ hb)
            ga, gb = op(hgx, hgy, ha, hb)
            dist = _norm2(ha - al, hb - be)
            lip = _norm2(ga - fa, gb - fb) / dist if dist > 0 else 0.0
            if lr * lip <= 0.9:
                break
            lr = 0.5 / lip
        al, be = al - lr * ga, be - lr * gb
        gx, gy = pb.gradients(x + P @ al, y + Q @ be)
        fa, fb = op(gx, gy, al, be)
    return al, be, gx, gy, lr
