"""SmoothQuant-style migration of activation outliers into the weights, with MMSE-chosen strength.

Reference: G. Xiao, J. Lin, M. Seznec, H. Wu, J. Demouth and S. Han, "SmoothQuant: Accurate and
Efficient Post-Training Quantization for Large Language Models", ICML 2023 (arXiv:2211.10438).
A Linear layer ``Y = X W^T`` (``X`` ``(rows, in)``, ``W`` ``(out, in)``) is unchanged by a
per-input-channel rescaling,

    X W^T = (X diag(s)^-1) (W diag(s))^T,

so dividing the few input channels that carry large outliers by ``s_j > 1`` (and multiplying the
matching weight columns by ``s_j``) moves quantization difficulty from the activations, which
get one scale per tensor (or per token), to the weights, which get one scale per output channel
(or per group). The paper's scales are

    s_j = max|X_j|^alpha / max|W_{:,j}|^(1 - alpha)

with one migration strength ``alpha`` picked by hand (0.5 for most models).

**Our twist: alpha per layer by the MMSE criterion.** Following Choukroun, Kravchik, Yang and
Kisilev, "Low-bit Quantization of Neural Networks for Efficient Inference" (ICCV Workshops 2019,
arXiv:1902.06822), who choose every quantization parameter to minimise a mean squared error,
:func:`choose_alpha` takes, per layer, the ``alpha`` of a grid (:data:`DEFAULT_ALPHAS`, plus
*no smoothing*, which is always a candidate) that minimises the error of the layer's output on
calibration rows,

    mse(alpha) = ||X W^T - Q_a(X / s) Q_w(W diag(s))^T||_F^2 / (rows * out),

where ``Q_w`` is the weight quantizer of :func:`~frugalml.quant.convert.quantize_model` (signed
symmetric grid, per output channel or per group of ``group_size`` input columns, scales from
``SCALE_METHODS[method]`` — MMSE by default — and round-to-nearest) and ``Q_a`` its activation
quantizer: ``"static"``, one per-tensor scale of ``X / s`` from the same method (an unsigned grid
when ``X`` is never negative, else a signed one, as the quantized layers do; for ``"mmse"`` the
search runs on a histogram of ``X / s``,
:func:`~frugalml.quant.calibrate.mmse_from_histogram`, as the layers' calibration does, which is
about ten times faster than :func:`~frugalml.quant.mmse.mmse_scale` on the raw values);
``"dynamic"``, one scale ``max_j |x_tj| / qmax`` per row
(:func:`~frugalml.quant.dynamic.fake_quantize_tokens`).
Since *no smoothing* is a candidate, the chosen error is never above the unsmoothed one on the
calibration rows.

:func:`smooth_layers` runs the calibration data once through a
:class:`~frugalml.quant.prepare.PreparedModel`, keeps for each ``nn.Linear`` candidate the
per-channel ``max|x|`` over all rows and a uniform random sample of at most ``max_rows`` input
rows (bottom-k sampling with seeded keys), chooses ``alpha`` per layer, and applies the choice in
place: ``weight[:, j] *= s_j`` and a forward pre-hook computing ``x * in_scale`` with
``in_scale = float32(1 / s)`` (what a quantized layer's ``in_scale`` buffer computes before it
quantizes its input). Convolutions are not smoothed.

Torch is required (extra ``quant``); this module imports it when it is imported.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._optional import require
from .._resources import check_memory
from .._results import ResultRepr
from .._validate import RngLike, check_array, check_choice, check_int, seed_from_rng
from ..errors import InvalidInputError
from ..progress import Progress

require("torch", what="frugalml.quant.smooth", extra="quant")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .baselines import SCALE_METHODS  # noqa: E402
from .calibrate import ActivationHistogram, mmse_from_histogram  # noqa: E402
from .calibration_data import run_calibration  # noqa: E402
from .dynamic import ACT_MODES, fake_quantize_tokens  # noqa: E402
from .groups import check_group_size, group_rows, group_scale_result  # noqa: E402
from .prepare import PreparedModel  # noqa: E402
from .uniform import check_bits  # noqa: E402

__all__ = [
    "DEFAULT_ALPHAS",
    "MAX_SCALE",
    "MIN_SCALE",
    "SmoothChoice",
    "choose_alpha",
    "remove_smoothing_hooks",
    "smooth_layers",
    "smoothed_output_mse",
    "smoothing_scales",
]

DEFAULT_ALPHAS: tuple[float, ...] = (0.0, 0.15, 0.3, 0.5, 0.65, 0.8, 0.9, 1.0)
"""Migration strengths :func:`choose_alpha` tries by default (no smoothing is always tried too).

The whole range ``[0, 1]``, denser near 1: on all-MiniLM-L6-v2 the best strength depends on the
bit widths. With 8-bit weights and static per-tensor activations it is mostly 0.9 to 1 (at
``alpha = 1`` every input channel is scaled to ``max|x_j| = 1``, i.e. per-input-channel
activation scales folded into the 8-bit weights, which cuts the output error of the FFN output
projection, whose GELU input has large outliers, by two orders of magnitude); with 4-bit weights
and per-token activations it is low (0 to 0.3) or no smoothing, since the weights are then the
harder operand."""

MIN_SCALE = 1e-5
"""Smallest smoothing factor ``s_j`` (the factors are clipped to ``[MIN_SCALE, MAX_SCALE]``)."""

MAX_SCALE = 1e5
"""Largest smoothing factor ``s_j``."""


@dataclass(frozen=True, eq=False, repr=False)
class SmoothChoice(ResultRepr):
    """The smoothing chosen for one Linear layer.

    ``alpha``: the migration strength, ``None`` for no smoothing; ``scales``: the factors
    ``s`` ``(in,)`` float64 (all ones for ``None``); ``mse``: the output error of the choice on
    the calibration rows (module doc), ``mse_unsmoothed``: the same without smoothing;
    ``table``: the error of every candidate evaluated (``None`` = no smoothing); ``rows``:
    the calibration rows the errors were measured on; ``handle``: the forward pre-hook that
    :func:`smooth_layers` registered (``None`` when the layer was not changed).
    """

    alpha: float | None
    scales: np.ndarray
    mse: float
    mse_unsmoothed: float
    table: dict[float | None, float]
    rows: int = 0
    handle: Any = None

    @property
    def in_scale(self) -> np.ndarray:
        """``1 / scales`` as float32 ``(in,)``: what the layer multiplies its input by."""
        return (1.0 / self.scales).astype(np.float32)

    @property
    def reduction(self) -> float:
        """``mse_unsmoothed / mse`` (``inf`` when the choice is exact, 1 without smoothing)."""
        if self.mse == 0:
            return 1.0 if self.mse_unsmoothed == 0 else math.inf
        return self.mse_unsmoothed / self.mse

    def summary(self) -> str:
        what = "no smoothing" if self.alpha is None else f"alpha {self.alpha:g}"
        return (
            f"{what}: output MSE {self.mse:.4g} (unsmoothed {self.mse_unsmoothed:.4g}, "
            f"x{self.reduction:.3g} lower), {len(self.table)} candidates on {self.rows} rows"
        )


def _check_alpha(alpha: Any, name: str = "alpha") -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise InvalidInputError(f"{name} must be a number in [0, 1], got {alpha!r}")
    a = float(alpha)
    if not (0.0 <= a <= 1.0):  # also rejects NaN
        raise InvalidInputError(
            f"{name} must lie in [0, 1] (0: all difficulty on the activations, 1: all on the "
            f"weights; SmoothQuant uses 0.5), got {alpha!r}"
        )
    return a


def _check_method(method: Any) -> str:
    return check_choice(method, "method", tuple(SCALE_METHODS))


def _check_act_mode(act_mode: Any) -> str:
    return check_choice(act_mode, "act_mode", ACT_MODES)


def _check_alphas(alphas: Any) -> tuple[float, ...]:
    if isinstance(alphas, numbers.Real) and not isinstance(alphas, bool):
        return (_check_alpha(alphas),)
    if isinstance(alphas, (str, bytes)) or not isinstance(alphas, Sequence):
        raise InvalidInputError(
            f"alphas must be a number in [0, 1] or a sequence of them, got {alphas!r}"
        )
    out = tuple(dict.fromkeys(_check_alpha(a, "each alpha in alphas") for a in alphas))
    if not out:
        raise InvalidInputError("alphas is empty; give at least one alpha in [0, 1]")
    return out


def _check_w(W: Any) -> np.ndarray:
    return check_array(W, "W", ndim=2, dtype=np.float64)


def smoothing_scales(x_absmax: Any, W: Any, alpha: float) -> np.ndarray:
    """SmoothQuant factors ``s_j = max|X_j|^alpha / max|W_{:,j}|^(1 - alpha)`` (Xiao et al. 2023).

    Parameters
    ----------
    x_absmax:
        ``(in,)``: per-input-channel maximum of ``|X|`` over the calibration rows (``>= 0``).
    W:
        ``(out, in)``: the Linear layer's weight.
    alpha:
        Migration strength in ``[0, 1]``.

    Returns float64 ``(in,)``, ``s_j = 1`` where ``max|X_j|`` or ``max|W_{:,j}|`` is 0,
    clipped to ``[MIN_SCALE, MAX_SCALE]``. ``O(out * in)``.
    """
    W2 = _check_w(W)
    xa = check_array(x_absmax, "x_absmax", ndim=1, shape=(W2.shape[1],), dtype=np.float64)
    if np.any(xa < 0):
        raise InvalidInputError(
            "x_absmax must hold absolute maxima (>= 0), got a negative value; pass "
            "np.abs(X).max(axis=0)"
        )
    a = _check_alpha(alpha)
    wmax = np.abs(W2).max(axis=0)
    ok = (xa > 0) & (wmax > 0)
    s = np.ones(xa.shape)
    s[ok] = xa[ok] ** a / wmax[ok] ** (1.0 - a)
    return np.clip(s, MIN_SCALE, MAX_SCALE)


def _fake_quantize_weight(
    W2: np.ndarray, bits: int, group_size: int | None, method: str
) -> np.ndarray:
    wmethod = "minmax" if method == "histogram" else method  # per tensor only: as convert.py
    if group_size is None:
        res = SCALE_METHODS[wmethod](W2, bits, signed=True, per_channel=True)
        return res.fake_quantize(W2)
    res = group_scale_result(W2, bits, group_size, method)
    return res.fake_quantize(group_rows(W2, group_size)).reshape(W2.shape)


def _fake_quantize_act(X2: np.ndarray, bits: int, act_mode: str, method: str) -> np.ndarray:
    if act_mode == "dynamic":
        return fake_quantize_tokens(torch.from_numpy(X2), bits).numpy()
    if method == "mmse":  # what the quantized layers calibrate: MMSE on the histogram
        res = mmse_from_histogram(ActivationHistogram().update(X2), bits)
    else:
        res = SCALE_METHODS[method](X2, bits, signed=bool(X2.min() < 0), per_channel=False)
    return res.fake_quantize(X2)


def _output_mse(
    X: np.ndarray,
    W: np.ndarray,
    Y: np.ndarray,
    s: np.ndarray | None,
    w_bits: int,
    a_bits: int,
    act_mode: str,
    group_size: int | None,
    method: str,
) -> float:
    Xs = X if s is None else X / s
    Ws = W if s is None else W * s
    Yq = (
        _fake_quantize_act(Xs, a_bits, act_mode, method)
        @ _fake_quantize_weight(Ws, w_bits, group_size, method).T
    )
    d = Y - Yq
    return float(np.einsum("ij,ij->", d, d) / d.size)


def _check_common(
    w_bits: Any, a_bits: Any, act_mode: Any, group_size: Any, method: Any, in_features: int | None
) -> tuple[int, int, str, int | None, str]:
    return (
        check_bits(w_bits),
        check_bits(a_bits),
        _check_act_mode(act_mode),
        check_group_size(group_size, in_features),
        _check_method(method),
    )


def _check_xw(X: Any, W: Any) -> tuple[np.ndarray, np.ndarray]:
    W2 = _check_w(W)
    X2 = check_array(X, "X", ndim=2, dtype=np.float64)
    if X2.shape[1] != W2.shape[1]:
        raise InvalidInputError(
            f"X has {X2.shape[1]} columns but W {W2.shape} has {W2.shape[1]} inputs; X must be "
            "the layer's input rows (rows, in) and W its weight (out, in)"
        )
    return X2, W2


def smoothed_output_mse(
    X: Any,
    W: Any,
    scales: Any,
    *,
    w_bits: int,
    a_bits: int,
    act_mode: str = "static",
    group_size: int | None = None,
    method: str = "mmse",
) -> float:
    """Output error ``||X W^T - Q_a(X / s) Q_w(W diag(s))^T||_F^2 / (rows * out)`` (module doc).

    ``X`` ``(rows, in)``, ``W`` ``(out, in)``, ``scales`` ``(in,)`` (``> 0``; ones: no
    smoothing); the quantizers are those of :func:`choose_alpha`. Cost: the weight scale search
    (``O(out * in)`` per pass, about 150 passes for MMSE), the static activation one (the same
    over ``rows * in``) and the product ``O(rows * in * out)``; float64 throughout.
    """
    X2, W2 = _check_xw(X, W)
    s = check_array(scales, "scales", ndim=1, shape=(W2.shape[1],), dtype=np.float64)
    if np.any(s <= 0):
        raise InvalidInputError("scales must be > 0 everywhere (they divide the input)")
    wb, ab, mode, g, meth = _check_common(w_bits, a_bits, act_mode, group_size, method, W2.shape[1])
    return _output_mse(X2, W2, X2 @ W2.T, s, wb, ab, mode, g, meth)


def choose_alpha(
    X: Any,
    W: Any,
    *,
    w_bits: int,
    a_bits: int,
    act_mode: str = "static",
    group_size: int | None = None,
    method: str = "mmse",
    alphas: float | Sequence[float] = DEFAULT_ALPHAS,
    x_absmax: Any = None,
) -> SmoothChoice:
    """The migration strength of one Linear layer with the least output error (module doc).

    Parameters
    ----------
    X:
        ``(rows, in)`` calibration rows of the layer's input.
    W:
        ``(out, in)`` weight.
    w_bits, a_bits:
        Bit widths (2..8) of the weight and activation quantizers.
    act_mode:
        ``"static"`` (per-tensor activation scale from ``method``) or ``"dynamic"`` (per-token
        scale ``max|x_t| / qmax``).
    group_size:
        ``None`` (one weight scale per output channel) or the group width, which must divide
        ``in``.
    method:
        Scale method of :data:`~frugalml.quant.baselines.SCALE_METHODS` (``"mmse"``: the
        paper's; ``"histogram"`` uses per-channel min-max for weights, as
        :func:`~frugalml.quant.convert.quantize_model` does).
    alphas:
        Candidate strengths in ``[0, 1]``; *no smoothing* is always evaluated too and wins ties.
        A single number means a fixed strength: it is applied whatever its error (the paper's
        recipe), and the unsmoothed error is still reported.
    x_absmax:
        ``(in,)`` per-channel ``max|X|`` for the factors (default: from ``X``; pass the maximum
        over all calibration rows when ``X`` is a sample of them).

    Returns a :class:`SmoothChoice`. Cost: ``len(alphas) + 1`` evaluations of
    :func:`smoothed_output_mse`.
    """
    X2, W2 = _check_xw(X, W)
    wb, ab, mode, g, meth = _check_common(w_bits, a_bits, act_mode, group_size, method, W2.shape[1])
    fixed = isinstance(alphas, numbers.Real) and not isinstance(alphas, bool)
    cands = _check_alphas(alphas)
    if x_absmax is None:
        xa = np.abs(X2).max(axis=0)
    else:
        xa = check_array(x_absmax, "x_absmax", ndim=1, shape=(W2.shape[1],), dtype=np.float64)
    Y = X2 @ W2.T
    base = _output_mse(X2, W2, Y, None, wb, ab, mode, g, meth)
    table: dict[float | None, float] = {None: base}
    best: tuple[float | None, np.ndarray, float] = (None, np.ones(W2.shape[1]), base)
    for a in cands:
        s = smoothing_scales(xa, W2, a)
        err = _output_mse(X2, W2, Y, s, wb, ab, mode, g, meth)
        table[a] = err
        if fixed or err < best[2]:
            best = (a, s, err)
    return SmoothChoice(
        alpha=best[0],
        scales=best[1],
        mse=best[2],
        mse_unsmoothed=base,
        table=table,
        rows=X2.shape[0],
    )


class _RowSample:
    """Per-channel ``max|x|`` over every row, and a uniform sample of at most ``cap`` rows
    (bottom-k: each row gets a uniform key, the ``cap`` smallest keys are kept)."""

    def __init__(self, d: int, cap: int, seed: Sequence[int]) -> None:
        self.cap = cap
        self.rng = np.random.default_rng(list(seed))
        self.absmax = np.zeros(d)
        self.keys = np.empty(0)
        self.rows = np.empty((0, d), dtype=np.float32)
        self.seen = 0

    def update(self, x2: torch.Tensor) -> None:
        n = x2.shape[0]
        if n == 0:
            return
        self.seen += n
        self.absmax = np.maximum(self.absmax, x2.abs().amax(dim=0).to(torch.float64).cpu().numpy())
        keys = self.rng.random(n)
        total = self.keys.size + n
        if total <= self.cap:
            take = np.arange(n)
            old = np.arange(self.keys.size)
        else:
            allk = np.concatenate([self.keys, keys])
            keep = np.sort(np.argpartition(allk, self.cap - 1)[: self.cap])
            old = keep[keep < self.keys.size]
            take = keep[keep >= self.keys.size] - self.keys.size
        new_rows = x2[torch.from_numpy(take).to(x2.device)].to(torch.float32).cpu().numpy()
        self.rows = np.concatenate([self.rows[old], new_rows])
        self.keys = np.concatenate([self.keys[old], keys[take]])


def _smoothable(prepared: PreparedModel) -> list[str]:
    """Linear candidates whose weight no other module shares (scaling a tied weight's columns
    would change the other module too)."""
    owners: dict[int, int] = {}
    for m in prepared.model.modules():
        for p in m.parameters(recurse=False):
            owners[id(p)] = owners.get(id(p), 0) + 1
    return [
        name
        for name in prepared.candidates
        if type(prepared.modules[name]) is nn.Linear
        and owners.get(id(prepared.modules[name].weight), 0) == 1
    ]


def _make_scaling_hook(inv: torch.Tensor) -> Callable[..., Any]:
    def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if args and isinstance(args[0], torch.Tensor):
            x = args[0]
            y = x * inv
            return (y if y.dtype == x.dtype else y.to(x.dtype), *args[1:]), kwargs
        if isinstance(kwargs.get("input"), torch.Tensor):
            x = kwargs["input"]
            y = x * inv
            return args, {**kwargs, "input": y if y.dtype == x.dtype else y.to(x.dtype)}
        return None

    return hook


def _run_calibration(
    prepared: PreparedModel,
    calib_data: Any,
    samples: dict[str, _RowSample],
    say: Progress,
) -> int:
    modules = prepared.modules
    state = {"batch": 0}

    def make_hook(name: str) -> Callable[..., None]:
        sample = samples[name]

        def hook(mod: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            x = args[0] if args else kwargs.get("input")
            if not isinstance(x, torch.Tensor):
                return
            x = x.detach()
            if not bool(torch.isfinite(x).all()):
                raise InvalidInputError(
                    f"NaN or inf reached the input of layer {name!r} during smoothing "
                    f"calibration (batch {state['batch']}); check the model and calib_data"
                )
            if x.numel():
                sample.update(x.reshape(-1, x.shape[-1]))

        return hook

    handles = [
        modules[name].register_forward_pre_hook(make_hook(name), with_kwargs=True)
        for name in samples
    ]

    def before(i: int) -> None:
        state["batch"] = i

    def after(i: int, total: int | None) -> None:
        say(f"smoothing calibration batch {i + 1}", 0.5 * (i + 1) / total if total else 0.0)

    try:
        batches, _ = run_calibration(prepared.model, calib_data, before=before, after=after)
    finally:
        for h in handles:
            h.remove()
    return batches


def smooth_layers(
    prepared: PreparedModel,
    calib_data: Any,
    *,
    w_bits: int,
    a_bits: int,
    act_mode: str = "static",
    group_size: int | None = None,
    method: str = "mmse",
    alpha: str | float | Sequence[float] = "mmse",
    max_rows: int = 2048,
    rng: RngLike = 0,
    progress: Progress | None = None,
) -> dict[str, SmoothChoice]:
    """Choose and apply SmoothQuant smoothing to the Linear layers of ``prepared`` (module doc).

    Parameters
    ----------
    prepared:
        From :func:`~frugalml.quant.prepare.prepare_model`; ``prepared.model`` is changed in
        place. Only exact ``nn.Linear`` candidates whose weight is not shared with another
        module are smoothed (convolutions and tied weights are left alone).
    calib_data:
        As for :func:`~frugalml.quant.convert.quantize_model` (moved to the model's device).
    w_bits, a_bits, act_mode, group_size, method:
        The quantization the choice is made for (see :func:`choose_alpha`).
    alpha:
        ``"mmse"``: per layer, the strength of :data:`DEFAULT_ALPHAS` or no smoothing with the
        least output error; a sequence of numbers in ``[0, 1]``: the same choice among those
        candidates (and no smoothing); a number: that strength for every layer.
    max_rows:
        Rows of each layer's input kept (a uniform random sample, seeded by ``rng``) to measure
        the errors on; ``max|x|`` per channel is taken over every row.
    progress:
        ``progress(message, fraction)`` after each calibration batch and each layer.

    Returns ``{layer name: SmoothChoice}`` for every smoothable layer the calibration called,
    in model order. Layers whose choice is not ``None`` now hold ``weight[:, j] * s_j`` (in
    the weight's dtype) and run the forward pre-hook ``x -> x * in_scale`` (``in_scale`` the
    float32 tensor ``1 / s``, the product cast back to ``x``'s dtype when that is not
    float32/float64), whose handle is the choice's ``handle``; remove it with
    :func:`remove_smoothing_hooks` when the layer is replaced by one that applies
    ``in_scale`` itself. The float model's outputs are unchanged up to float rounding.

    Raises :class:`~frugalml.errors.InvalidInputError` for bad options, NaN/inf in the inputs
    or in a layer's input (naming the layer), a model that fails on a batch, or a
    ``group_size`` that does not divide a layer's inputs. Cost: one forward pass, plus
    ``O(rows * in)`` per layer per batch for the sample, plus :func:`choose_alpha` per layer
    on at most ``max_rows`` rows. Memory: ``4 * max_rows * in`` bytes per layer.
    """
    if not isinstance(prepared, PreparedModel):
        raise InvalidInputError(
            f"prepared must be a PreparedModel (from frugalml.quant.prepare.prepare_model), got "
            f"{type(prepared).__name__}"
        )
    wb, ab, mode, _, meth = _check_common(w_bits, a_bits, act_mode, group_size, method, None)
    alphas: float | tuple[float, ...]
    if isinstance(alpha, str):
        if alpha != "mmse":
            raise InvalidInputError(
                f"alpha must be 'mmse' (choose per layer), a number in [0, 1] or a sequence of "
                f"candidates, got {alpha!r}"
            )
        alphas = DEFAULT_ALPHAS
    elif isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        alphas = _check_alpha(alpha)
    else:
        alphas = _check_alphas(alpha)
    cap = check_int(max_rows, "max_rows", low=1)
    seed = seed_from_rng(rng)
    say = progress or (lambda s, f: None)
    names = _smoothable(prepared)
    for name in names:
        in_features = prepared.modules[name].in_features
        if group_size is not None and in_features % int(group_size):
            raise InvalidInputError(
                f"group_size {group_size} does not divide the {in_features} inputs of layer "
                f"{name!r}; choose a divisor or skip= the layer"
            )
    check_memory(
        sum(4 * cap * prepared.modules[n].in_features for n in names),
        f"the smoothing samples ({cap} input rows of each of {len(names)} Linear layers)",
        fix="lower max_rows",
    )
    samples = {
        name: _RowSample(prepared.modules[name].in_features, cap, (seed, i))
        for i, name in enumerate(names)
    }
    _run_calibration(prepared, calib_data, samples, say)
    called = [name for name in names if samples[name].seen > 0]
    chosen: dict[str, SmoothChoice] = {}
    for k, name in enumerate(called):  # choose everything first: an error leaves no change
        sample = samples.pop(name)
        W = prepared.modules[name].weight.detach().to(torch.float64).cpu().numpy()
        try:
            chosen[name] = choose_alpha(
                sample.rows,
                W,
                w_bits=wb,
                a_bits=ab,
                act_mode=mode,
                group_size=group_size,
                method=meth,
                alphas=alphas,
                x_absmax=sample.absmax,
            )
        except InvalidInputError as exc:
            raise InvalidInputError(f"layer {name!r}: {exc}") from exc
        say(f"smoothing {name}", 0.5 + 0.5 * (k + 1) / len(called))
    choices: dict[str, SmoothChoice] = {}
    for name, choice in chosen.items():
        if choice.alpha is not None:
            layer = prepared.modules[name]
            w = layer.weight
            with torch.no_grad():
                w.mul_(torch.as_tensor(choice.scales, dtype=w.dtype, device=w.device))
            inv = torch.as_tensor(choice.in_scale, dtype=torch.float32, device=w.device)
            handle = layer.register_forward_pre_hook(_make_scaling_hook(inv), with_kwargs=True)
            choice = dataclasses.replace(choice, handle=handle)
        choices[name] = choice
    return choices


def remove_smoothing_hooks(choices: Mapping[str, SmoothChoice]) -> None:
    """Remove the input-scaling hooks that :func:`smooth_layers` registered (the weights stay
    scaled: the layers must then apply ``in_scale`` themselves). ``O(len(choices))``."""
    for choice in choices.values():
        if choice.handle is not None:
            choice.handle.remove()
