"""Activation-aware, error-compensated rounding of weights (GPTQ / Optimal Brain Quantization).

References: E. Frantar, S. P. Singh and D. Alistarh, "Optimal Brain Compression" (NeurIPS 2022),
and E. Frantar, S. Ashkboos, T. Hoefler and D. Alistarh, "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers" (ICLR 2023, arXiv:2210.17323).

The scheme of :mod:`frugalml.quant` (Choukroun et al., arXiv:1902.06822) keeps, per output
kernel ``k``, a scale ``s_k`` and integer codes ``Q_k`` and rounds ``W_k / s_k`` to the nearest
integer. For a layer ``y = W x``, what matters is the error of the *output* on real inputs,
``||(W - s Q) X||^2 = sum_k e_k^T H e_k`` with ``H = X X^T = sum_x x x^T`` the Gram matrix of
the layer's inputs. Rounding every weight to nearest ignores the correlations in ``H``; the
Optimal Brain Quantization update does not: it quantizes the input columns ``j = 0, 1, ...``
one at a time and, after rounding column ``j``, moves the not-yet-quantized weights of the same
row to compensate for its rounding error ``e_j`` in the output,

    ``w_{j+1:} -= e_j / U_jj * U_{j, j+1:}``,  ``U`` the upper Cholesky factor of ``H^{-1}``

(so ``H^{-1} = U^T U``), which is the exact least-squares correction given the columns still
free. Scales and the integer kernels are unchanged in kind: only *which* integer each weight
gets changes, so the quantized layer, its integer arithmetic and its cost are exactly those of
round-to-nearest.

Implementation (GPTQ's "lazy batch updates"): columns are processed in blocks of ``block``
(128); inside a block the rank-one updates touch only the block's columns, and the accumulated
errors of a finished block are applied to all later columns with one matrix product. All rows
(output channels) are updated at once, so a Linear layer with ``n`` inputs costs ``n`` small
vector steps plus ``O(out n^2)`` flops in a few large matrix products; the computations run in
float64.

Details:

* **damping** ``lambda = damp * mean(diag H)`` (over the live inputs) is added to the diagonal
  before inverting (``damp=0.01`` as in GPTQ); if the Cholesky factorisation still fails the
  damping is raised tenfold (at most 8 times);
* **dead inputs** (``H_jj = 0``: the input was always zero on the calibration data) are
  decoupled from the rest (their row and column of ``H`` cleared, ``H_jj = 1``), so their
  weights are simply rounded to nearest and receive no compensation (the reference GPTQ code
  zeroes them instead; rounding keeps them usable on inputs where they are not zero);
* with ``H`` diagonal (e.g. the identity) the off-diagonal factors are exactly zero and the
  result is exactly round-to-nearest;
* **convolutions** are linear maps of their unfolded input patches (im2col, channel-major as in
  ``weight.reshape(out, -1)``): :func:`~frugalml.quant.gram.input_columns` (re-exported here,
  with :class:`~frugalml.quant.gram.GramAccumulator`) unfolds ``Conv1d`` / ``Conv2d`` inputs
  (all padding modes, stride, dilation); with ``groups > 1`` there is one ``H`` per group, for
  the output channels of that group;
* after the codes are chosen, :func:`refit_scales` optionally re-fits each kernel's scale by the
  closed form ``s = <w, q>_H / <q, q>_H`` (least squares in the output space), kept where it
  lowers the ``H``-weighted error.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._optional import require
from .._results import ResultRepr
from .._validate import check_int, check_nonnegative_float
from ..errors import InvalidInputError

require("torch", what="frugalml.quant.gptq", extra="quant")

import torch  # noqa: E402

from .baselines import SCALE_METHODS  # noqa: E402
from .gram import GramAccumulator, input_columns  # noqa: E402
from .residual import ResidualTensor  # noqa: E402
from .uniform import Grid, check_grid  # noqa: E402

__all__ = [
    "DEFAULT_BLOCK",
    "DEFAULT_DAMP",
    "GramAccumulator",
    "LayerFit",
    "error_compensated_codes",
    "error_compensated_residual",
    "fit_layer",
    "fit_layer_grouped",
    "input_columns",
    "nearest_codes",
    "output_error",
    "refit_scales",
    "row_output_error",
]

DEFAULT_DAMP = 0.01
"""Relative dampening of ``H``: ``lambda = damp * mean(diag H)`` (GPTQ's ``percdamp``)."""

DEFAULT_BLOCK = 128
"""Columns per lazy-update block (GPTQ's ``blocksize``)."""

_CHOLESKY_RETRIES = 8


# ---------------------------------------------------------------------------------- helpers
def _tensor(x: Any, name: str, ndim: int) -> torch.Tensor:
    """``x`` as a finite float64 CPU-or-device tensor with ``ndim`` dimensions."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
        if not (
            torch.is_floating_point(t)
            or t.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
        ):
            raise InvalidInputError(f"{name} must be a real array, got dtype {t.dtype}")
        t = t.to(torch.float64)
    else:
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"{name} must be a real array: {exc}") from None
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if t.dim() != ndim:
        raise InvalidInputError(f"{name} must have {ndim} dimension(s), got shape {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise InvalidInputError(f"{name} contains NaN or inf")
    return t


# --------------------------------------------------------------------- internal (tensors)
def _symmetric_damping(H: torch.Tensor, damp: float) -> tuple[torch.Tensor, float]:
    """Symmetrised ``H`` and ``lambda = damp * mean(diag H)`` over the live inputs."""
    H = 0.5 * (H + H.T)
    diag = torch.diagonal(H)
    if bool((diag < 0).any()):
        raise InvalidInputError(
            "H must be positive semi-definite (a Gram matrix): negative diagonal"
        )
    live = diag > 0
    return H, damp * float(diag[live].mean()) if bool(live.any()) else 0.0


def _inverse_factor(H: torch.Tensor, lam: float) -> torch.Tensor:
    """Upper triangular ``U`` with ``U^T U = (H + lambda I)^{-1}``, dead inputs decoupled.

    With ``P`` the reversal permutation and ``P H' P = L L^T``, ``H'^{-1} = U^T U`` for
    ``U = P L^{-1} P``: one Cholesky factorisation and one triangular inverse.
    """
    n = H.shape[0]
    diag = torch.diagonal(H)
    dead = diag == 0
    live = ~dead
    mean_diag = float(diag[live].mean()) if bool(live.any()) else 1.0
    H = H.clone()
    if bool(dead.any()):
        H[dead, :] = 0.0
        H[:, dead] = 0.0
        H[dead, dead] = 1.0
    Hr = H.flip(0, 1)
    eye = torch.eye(n, dtype=H.dtype, device=H.device)
    for attempt in range(_CHOLESKY_RETRIES + 1):
        Hd = Hr.clone()
        Hd.diagonal().add_(lam)
        L, info = torch.linalg.cholesky_ex(Hd)
        if int(info) == 0:
            U = torch.linalg.solve_triangular(L, eye, upper=False).flip(0, 1)
            if bool(torch.isfinite(U).all()):
                return U
        if attempt == _CHOLESKY_RETRIES:
            break
        lam = max(lam * 10.0, 1e-6 * mean_diag)
    raise InvalidInputError(
        "could not factor the damped Gram matrix H (not positive semi-definite or too "
        "ill-conditioned); raise damp"
    )


def _nearest(W: torch.Tensor, s: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Round-to-nearest with per-row ``s`` ``(out,)`` or per-entry ``s`` ``(out, in)``."""
    s2 = s[:, None] if s.dim() == 1 else s
    safe = torch.where(s2 > 0, s2, torch.ones_like(s2))
    q = torch.clamp(torch.round(W / safe), grid.qmin, grid.qmax)
    return q.masked_fill_((s2 <= 0).expand_as(q), 0.0)


def _compensate(
    W: torch.Tensor, U: torch.Tensor, s: torch.Tensor, grid: Grid, block: int
) -> torch.Tensor:
    """The OBQ / GPTQ column sweep with lazy block updates; float64 codes ``(out, n)``.
    ``s``: per-row scales ``(out,)``, or per-entry ``(out, n)`` (group-wise scales)."""
    n = W.shape[1]
    per_entry = s.dim() == 2
    zero = s <= 0
    safe_all = torch.where(zero, torch.ones_like(s), s)
    qmin, qmax = float(grid.qmin), float(grid.qmax)
    R = W.T.contiguous()  # input columns as contiguous rows of length `out`
    Q = torch.empty_like(R)
    for i1 in range(0, n, block):
        i2 = min(i1 + block, n)
        Rb = R[i1:i2]  # a view, updated in place
        Ub = U[i1:i2, i1:i2]
        Eb = torch.empty_like(Rb)
        for i in range(i2 - i1):
            w = Rb[i]
            col = i1 + i
            sc = s[:, col] if per_entry else s
            safe = safe_all[:, col] if per_entry else safe_all
            zero_rows = zero[:, col] if per_entry else zero
            q = torch.clamp(torch.round(w / safe), qmin, qmax).masked_fill_(zero_rows, 0.0)
            Q[col] = q
            e = (w - q * sc) / Ub[i, i]
            Eb[i] = e
            if i + 1 < i2 - i1:
                Rb[i + 1 :].addr_(Ub[i, i + 1 :], e, alpha=-1.0)
        if i2 < n:
            R[i2:].addmm_(U[i1:i2, i2:].T, Eb, alpha=-1.0)
    return Q.T


def _weight_and_scale(W: Any, scale: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """``W`` ``(out, in)`` and its per-row ``scale`` ``(out,)`` as checked float64 tensors,
    ``scale`` on ``W``'s device."""
    Wt = _tensor(W, "W", 2)
    s = _tensor(scale, "scale", 1).to(Wt.device)
    if s.shape != (Wt.shape[0],):
        raise InvalidInputError(f"scale must have shape ({Wt.shape[0]},), got {tuple(s.shape)}")
    return Wt, s


def _validated(
    W: Any, H: Any, scale: Any, grid: Any, damp: Any, block: Any, per_entry: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Grid, float, int]:
    """Checked tensors and options; ``per_entry``: ``scale`` has ``W``'s shape (group-wise
    scales expanded to every column) instead of one value per row."""
    grid = check_grid(grid)
    damp = check_nonnegative_float(damp, "damp")
    block = check_int(block, "block", low=1)
    if per_entry:
        Wt = _tensor(W, "W", 2)
        s = _tensor(scale, "scale", 2).to(Wt.device)
        if s.shape != Wt.shape:
            raise InvalidInputError(
                f"scale must have W's shape {tuple(Wt.shape)}, got {tuple(s.shape)}"
            )
    else:
        Wt, s = _weight_and_scale(W, scale)
    Ht = _tensor(H, "H", 2).to(Wt.device)
    n = Wt.shape[1]
    if Ht.shape != (n, n):
        raise InvalidInputError(f"H must have shape ({n}, {n}) for W of shape {tuple(Wt.shape)}")
    if bool((s < 0).any()):
        raise InvalidInputError("scale must be >= 0")
    return Wt, Ht, s, grid, damp, block


def _f32(t: torch.Tensor) -> torch.Tensor:
    """``t`` rounded to float32 precision (the quantized layers store float32 scales)."""
    return t.to(torch.float32).to(torch.float64)


# ---------------------------------------------------------------------------------- public
def nearest_codes(W: Any, scale: Any, grid: Grid) -> np.ndarray:
    """Round-to-nearest codes ``clip(rint(W / s_k), qmin, qmax)`` per row (0 where
    ``s_k == 0``), ``int8`` ``(out, in)``: the paper's rounding, for comparison."""
    grid = check_grid(grid)
    Wt, s = _weight_and_scale(W, scale)
    return _nearest(Wt, s, grid).to(torch.int8).cpu().numpy()


def error_compensated_codes(
    W: Any,
    H: Any,
    scale: Any,
    grid: Grid,
    *,
    damp: float = DEFAULT_DAMP,
    block: int = DEFAULT_BLOCK,
) -> np.ndarray:
    """Integer codes of ``W`` chosen by the GPTQ / OBQ error-compensating update (module doc).

    Parameters
    ----------
    W:
        weight ``(out, in)`` (NumPy or torch, finite); convolution weights reshaped to
        ``(out, -1)`` (with groups: the rows of one group and that group's ``H``).
    H:
        ``(in, in)`` Gram matrix of the inputs (``sum_x x x^T``, e.g. from
        :class:`GramAccumulator`); symmetric positive semi-definite (it is symmetrised).
    scale:
        ``(out,)`` per-row scales ``>= 0`` (rows with scale 0 get codes 0).
    grid:
        the weights' signed :class:`~frugalml.quant.uniform.Grid`.
    damp:
        relative dampening ``lambda = damp * mean(diag H)`` (``>= 0``).
    block:
        columns per lazy-update block (``>= 1``); the result does not depend on it up to float
        rounding (a code can differ where ``w / s`` lies within rounding noise of a tie).

    Returns ``int8`` codes ``(out, in)`` in ``[grid.qmin, grid.qmax]``, chosen column by column
    in input order. With a diagonal ``H`` they equal round-to-nearest. Cost: ``O(in^3)`` for
    the factorisation, ``O(out in^2)`` flops in matrix products and ``in`` vector steps of
    size ``out x block``; float64, on ``W``'s device when ``W`` is a torch tensor.
    """
    Wt, Ht, s, grid, damp, block = _validated(W, H, scale, grid, damp, block)
    if Wt.numel() == 0:
        return np.zeros(tuple(Wt.shape), dtype=np.int8)
    Hs, lam = _symmetric_damping(Ht, damp)
    Q = _compensate(Wt, _inverse_factor(Hs, lam), s, grid, block)
    return Q.to(torch.int8).cpu().numpy()


def row_output_error(W: Any, approx: Any, H: Any) -> np.ndarray:
    """Per-row ``H``-weighted squared error ``e_k^T H e_k`` with ``e = W - approx``: the
    squared output error of kernel ``k`` summed over the inputs ``H`` was built from.
    ``(out,)`` float64."""
    Wt = _tensor(W, "W", 2)
    A = _tensor(approx, "approx", 2).to(Wt.device)
    Ht = _tensor(H, "H", 2).to(Wt.device)
    if A.shape != Wt.shape or Ht.shape != (Wt.shape[1],) * 2:
        raise InvalidInputError("W, approx and H have inconsistent shapes")
    E = Wt - A
    return ((E @ Ht) * E).sum(dim=1).cpu().numpy()


def output_error(W: Any, approx: Any, H: Any) -> float:
    """Relative output-space error ``tr(E H E^T) / tr(W H W^T)`` (``E = W - approx``): the
    squared error of the layer's output on the calibration inputs relative to the output's
    energy (0 when ``W H W^T`` vanishes)."""
    num = float(row_output_error(W, approx, H).sum())
    den = float(row_output_error(W, np.zeros(np.shape(W)), H).sum())
    return num / den if den > 0 else 0.0


def _refit(
    W: torch.Tensor,
    Q: torch.Tensor,
    QH: torch.Tensor,
    s: torch.Tensor,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Refitted scales (float32 precision) and ``(w^T H q, q^T H q, err(s_new))`` per row."""
    qw = (QH * W).sum(1)
    qq = (QH * Q).sum(1)
    a = qq + lam * (Q * Q).sum(1)
    b = qw + lam * (Q * W).sum(1)
    ok = a > 0
    t = _f32(torch.where(ok, b / torch.where(ok, a, torch.ones_like(a)), s))
    ok &= torch.isfinite(t) & (t > 0)
    # undamped errors minus w^T H w: -2 s <w, q>_H + s^2 <q, q>_H
    better = ok & (-2 * t * qw + t * t * qq < -2 * s * qw + s * s * qq)
    t = torch.where(better, t, s)
    return t, qw, qq, -2 * t * qw + t * t * qq


def refit_scales(
    W: Any, codes: Any, H: Any, scale: Any, *, damp: float = DEFAULT_DAMP
) -> np.ndarray:
    """Per-row least-squares scale for fixed codes in the output space.

    ``t_k = <w_k, q_k>_H' / <q_k, q_k>_H'`` with ``H' = H + damp * mean(diag H) I`` (the damping
    of :func:`error_compensated_codes`, a mild pull towards the weight-space fit), rounded to
    float32 precision, kept where it is positive and lowers the undamped error
    ``e_k^T H e_k`` (otherwise ``scale_k`` is kept). Returns ``(out,)`` float64 scales.
    """
    damp = check_nonnegative_float(damp, "damp")
    Wt = _tensor(W, "W", 2)
    Qt = _tensor(codes, "codes", 2).to(Wt.device)
    Ht = _tensor(H, "H", 2).to(Wt.device)
    s = _tensor(scale, "scale", 1).to(Wt.device)
    if Qt.shape != Wt.shape or Ht.shape != (Wt.shape[1],) * 2 or s.shape != (Wt.shape[0],):
        raise InvalidInputError("W, codes, H and scale have inconsistent shapes")
    Hs, lam = _symmetric_damping(Ht, damp)
    return _refit(Wt, Qt, Qt @ Hs, s, lam)[0].cpu().numpy()


@dataclass(frozen=True, eq=False, repr=False)
class LayerFit(ResultRepr):
    """Result of :func:`fit_layer` for one weight matrix (one group of a convolution).

    ``codes``: ``int8`` ``(out, in)``; ``scale``: ``(out,)`` float64 scales holding float32
    values (refitted where that helped, else the given ones); ``row_err``: ``e_k^T H e_k`` of
    ``scale_k * codes_k``; ``row_err_nearest``: the same for round-to-nearest with the given
    scales; ``row_power``: ``w_k^T H w_k``.
    """

    codes: np.ndarray
    scale: np.ndarray
    row_err: np.ndarray
    row_err_nearest: np.ndarray
    row_power: np.ndarray

    @property
    def rel_err(self) -> float:
        """``tr(E H E^T) / tr(W H W^T)`` of the error-compensated weight."""
        den = float(self.row_power.sum())
        return float(self.row_err.sum()) / den if den > 0 else 0.0

    @property
    def rel_err_nearest(self) -> float:
        """The same for round-to-nearest."""
        den = float(self.row_power.sum())
        return float(self.row_err_nearest.sum()) / den if den > 0 else 0.0

    def summary(self) -> str:
        out, d = self.codes.shape
        return (
            f"error-compensated fit of a {out} x {d} weight: output rel. error "
            f"{self.rel_err:.3e} (round-to-nearest {self.rel_err_nearest:.3e})"
        )


def fit_layer(
    W: Any,
    H: Any,
    scale: Any,
    grid: Grid,
    *,
    damp: float = DEFAULT_DAMP,
    block: int = DEFAULT_BLOCK,
    refit: bool = True,
) -> LayerFit:
    """:func:`error_compensated_codes`, then (``refit=True``) :func:`refit_scales`, and the
    output-space errors of both roundings, sharing one factorisation and one product
    ``[W; Q; Q_nearest] H``. Arguments as for :func:`error_compensated_codes`; ``scale``
    should hold float32 values (it is used as given)."""
    Wt, Ht, s, grid, damp, block = _validated(W, H, scale, grid, damp, block)
    Hs, lam = _symmetric_damping(Ht, damp)
    out = Wt.shape[0]
    if Wt.numel() == 0:
        Q = torch.zeros_like(Wt)
    else:
        Q = _compensate(Wt, _inverse_factor(Hs, lam), s, grid, block)
    Qn = _nearest(Wt, s, grid)
    prod = torch.cat([Wt, Q, Qn]) @ Hs
    WH, QH, QnH = prod[:out], prod[out : 2 * out], prod[2 * out :]
    power = (WH * Wt).sum(1)
    if refit:
        t, _, _, rest = _refit(Wt, Q, QH, s, lam)
    else:
        t = s
        rest = -2 * s * (QH * Wt).sum(1) + s * s * (QH * Q).sum(1)
    near = -2 * s * (QnH * Wt).sum(1) + s * s * (QnH * Qn).sum(1)
    return LayerFit(
        codes=Q.to(torch.int8).cpu().numpy(),
        scale=t.cpu().numpy(),
        row_err=torch.clamp(power + rest, min=0.0).cpu().numpy(),
        row_err_nearest=torch.clamp(power + near, min=0.0).cpu().numpy(),
        row_power=power.cpu().numpy(),
    )


def fit_layer_grouped(
    W: Any,
    H: Any,
    scale: Any,
    grid: Grid,
    *,
    damp: float = DEFAULT_DAMP,
    block: int = DEFAULT_BLOCK,
) -> LayerFit:
    """:func:`fit_layer` (without scale refit) for per-entry scales ``scale`` ``(out, in)``:
    group-wise weight scales expanded to every column (:mod:`frugalml.quant.groups`). The
    sweep rounds column ``j`` with ``scale[:, j]``. ``LayerFit.scale`` is ``scale`` itself;
    ``row_err`` / ``row_err_nearest`` are ``e_k^T H e_k`` of ``W - scale * codes``. Cost as
    :func:`error_compensated_codes`."""
    Wt, Ht, s, grid, damp, block = _validated(W, H, scale, grid, damp, block, per_entry=True)
    Hs, lam = _symmetric_damping(Ht, damp)
    if Wt.numel() == 0:
        Q = torch.zeros_like(Wt)
    else:
        Q = _compensate(Wt, _inverse_factor(Hs, lam), s, grid, block)
    Qn = _nearest(Wt, s, grid)
    E, En = Wt - s * Q, Wt - s * Qn
    return LayerFit(
        codes=Q.to(torch.int8).cpu().numpy(),
        scale=s.cpu().numpy(),
        row_err=((E @ Hs) * E).sum(1).cpu().numpy(),
        row_err_nearest=((En @ Hs) * En).sum(1).cpu().numpy(),
        row_power=((Wt @ Hs) * Wt).sum(1).cpu().numpy(),
    )


def error_compensated_residual(
    W: Any,
    H: Any,
    codes: Any,
    scale: Any,
    grid: Grid,
    *,
    scale_method: str = "mmse",
    damp: float = DEFAULT_DAMP,
    block: int = DEFAULT_BLOCK,
) -> ResidualTensor:
    """Second low-bit term of every row, ``W ~ s1 Q1 + s2 Q2``, fitted in the output space.

    ``W`` ``(c, n)``, ``H`` ``(n, n)``, first term ``codes`` ``(c, n)`` on ``grid`` and
    ``scale`` ``(c,)`` (e.g. from :func:`fit_layer`). The residual ``R = W - s1 Q1`` gets
    per-row scales ``s2`` from ``SCALE_METHODS[scale_method]`` (not ``"histogram"``, which is
    per tensor; rounded to float32) and codes ``Q2`` on the same grid from
    :func:`error_compensated_codes` with the same ``H``; then ``(s1, s2)`` are re-fitted
    jointly by least squares in the damped ``H`` metric (a 2x2 solve per row), kept where both
    stay positive and the undamped ``H``-weighted error drops. Returns a
    :class:`~frugalml.quant.residual.ResidualTensor` (``mask`` all True; ``mse1`` / ``mse``:
    plain per-row mean squared errors of ``s1 Q1`` and of the two terms) that
    :class:`~frugalml.quant.modules.QuantizedLayer` takes as ``residual_fit``.
    """
    if scale_method not in SCALE_METHODS or scale_method == "histogram":
        raise InvalidInputError(
            f"scale_method must be a per-channel key of SCALE_METHODS, got {scale_method!r}"
        )
    Wt, Ht, s1, grid, damp, block = _validated(W, H, scale, grid, damp, block)
    Q1 = _tensor(codes, "codes", 2).to(Wt.device)
    c, n = Wt.shape
    if Q1.shape != Wt.shape:
        raise InvalidInputError(f"codes must have W's shape {tuple(Wt.shape)}")
    R = Wt - Q1 * s1[:, None]
    res = SCALE_METHODS[scale_method](R.cpu().numpy(), grid.bits, signed=True, per_channel=True)
    s2 = _f32(torch.as_tensor(np.asarray(res.scale, dtype=np.float64), device=Wt.device))
    Hs, lam = _symmetric_damping(Ht, damp)
    Q2 = _compensate(R, _inverse_factor(Hs, lam), s2, grid, block) if R.numel() else R.clone()
    # joint least squares (s1, s2) in the damped metric H' = H + lambda I
    HQ1, HQ2 = Q1 @ Hs, Q2 @ Hs
    a11 = (HQ1 * Q1).sum(1) + lam * (Q1 * Q1).sum(1)
    a22 = (HQ2 * Q2).sum(1) + lam * (Q2 * Q2).sum(1)
    a12 = (HQ1 * Q2).sum(1) + lam * (Q1 * Q2).sum(1)
    b1 = (HQ1 * Wt).sum(1) + lam * (Q1 * Wt).sum(1)
    b2 = (HQ2 * Wt).sum(1) + lam * (Q2 * Wt).sum(1)
    det = a11 * a22 - a12 * a12
    ok = det > 1e-12 * torch.clamp(a11 * a22, min=torch.finfo(torch.float64).tiny)
    safe = torch.where(ok, det, torch.ones_like(det))
    t1 = _f32(torch.where(ok, (b1 * a22 - b2 * a12) / safe, s1))
    t2 = _f32(torch.where(ok, (b2 * a11 - b1 * a12) / safe, s2))
    ok &= (t1 > 0) & (t2 > 0) & torch.isfinite(t1) & torch.isfinite(t2)

    def h_err(x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        E = Wt - Q1 * x1[:, None] - Q2 * x2[:, None]
        return ((E @ Hs) * E).sum(1)

    better = ok & (h_err(t1, t2) < h_err(s1, s2))
    scale1 = torch.where(better, t1, s1)
    scale2 = torch.where(better, t2, s2)
    first = Q1 * s1[:, None]
    both = Q1 * scale1[:, None] + Q2 * scale2[:, None]
    zeros = torch.zeros(c, dtype=torch.float64)
    return ResidualTensor(
        codes1=Q1.to(torch.int8).cpu().numpy(),
        scale1=scale1.cpu().numpy(),
        codes2=Q2.to(torch.int8).cpu().numpy(),
        scale2=scale2.cpu().numpy(),
        mask=np.ones(c, dtype=bool),
        mse1=(((Wt - first) ** 2).mean(1) if n else zeros).cpu().numpy(),
        mse=(((Wt - both) ** 2).mean(1) if n else zeros).cpu().numpy(),
        grid=grid,
        method=scale_method,
    )
