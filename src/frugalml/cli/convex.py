"""``frugalml convex fit``: globally optimal training of two-layer quadratic-activation
networks (the lifted SDP) and of binary-weight networks (the quantized SDP relaxation);
``frugalml convex gan ...``: convex Wasserstein GANs (:mod:`.convex_gan`)."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer

from .._io import atomic_write_bytes, check_output_path
from .._validate import check_choice
from ..errors import InvalidInputError
from ._common import BLAS_OPTION, JSON_OPTION, WorkBar, console, emit_json, limit_blas_threads
from .convex_gan import gan_app

__all__ = ["convex_app"]

convex_app = typer.Typer(
    help="Convex (globally optimal) training of polynomial-activation and quantized networks.",
    no_args_is_help=True,
)
convex_app.add_typer(gan_app, name="gan")

MODELS = ("poly", "quantized")
TASKS = ("regression", "classification")
_LOSSES = {
    ("poly", "regression"): ("squared", "absolute", "huber"),
    ("poly", "classification"): ("logistic", "hinge"),
    ("quantized", "regression"): ("squared", "absolute"),
    ("quantized", "classification"): ("logistic", "hinge"),
}


def _parse_activation(text: str) -> Any:
    """``"relu-fit"`` (a preset name) or ``"a,b,c"`` (three numbers)."""
    if "," not in text:
        return text
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        raise InvalidInputError(
            f"--activation must be a preset name or three numbers a,b,c; got {text!r}"
        )
    try:
        return tuple(float(p) for p in parts)
    except ValueError as exc:
        raise InvalidInputError(
            f"--activation must be a preset name or three numbers a,b,c; got {text!r}"
        ) from exc


def _estimator(model: str, task: str, loss: str, activation: Any, beta: float, solver: str,
               polish: bool, standardize: bool, n_samples: int, seed: int) -> Any:  # fmt: skip
    from ..convex import estimators as est

    common = dict(activation=activation, beta=beta, loss=loss, solver=solver,
                  standardize=standardize)  # fmt: skip
    if model == "poly":
        cls = est.PolySDPRegressor if task == "regression" else est.PolySDPClassifier
        return cls(polish=polish, **common)
    if polish:
        raise InvalidInputError("--polish applies to --model poly only (the quantized "
                                "rounding always refits the output weights)")  # fmt: skip
    cls = est.QuantizedSDPRegressor if task == "regression" else est.QuantizedSDPClassifier
    return cls(n_samples=n_samples, random_state=seed, **common)


def _network_npz(model: str, task: str, estimator: Any) -> bytes:
    """The fitted network as .npz bytes: ``U``, ``alpha``, ``activation`` = (a, b, c), the
    standardisation ``x_mean``, ``x_scale`` (predict with
    ``sigma(((X - x_mean) / x_scale) @ U) @ alpha + intercept``), ``intercept`` (regression)
    or ``classes`` (classification), and ``model``, ``task``, ``loss``, ``beta``."""
    net = estimator.network_
    act = estimator.activation_
    arrays: dict[str, Any] = {
        "U": net.U, "alpha": net.alpha, "activation": np.array([act.a, act.b, act.c]),
        "x_mean": estimator.x_mean_, "x_scale": estimator.x_scale_, "model": np.array(model),
        "task": np.array(task), "loss": np.array(estimator.loss),
        "beta": np.array(float(estimator.beta)),
    }  # fmt: skip
    if task == "regression":
        arrays["intercept"] = np.asarray(estimator.intercept_, dtype=float)
    else:
        arrays["classes"] = np.asarray(estimator.classes_)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@convex_app.command("fit")
def fit_cmd(
    data: Path = typer.Argument(
        ..., help="Data file: .npz (A, b) or (X, y), .npy or .csv (target column = labels)."
    ),
    model: str = typer.Option("poly", help="poly (lifted SDP) | quantized (binary weights)."),
    task: str = typer.Option("regression", help="regression | classification"),
    loss: str = typer.Option(
        None,
        help="regression: squared | absolute | huber (poly only); classification: logistic | "
        "hinge. Default: squared / logistic.",
    ),
    beta: float = typer.Option(1e-3, help="Weight beta > 0 of sum_j |alpha_j|."),
    solver: str = typer.Option("clarabel", help="clarabel | scs | first-order (poly only)."),
    activation: str = typer.Option(
        "relu-fit",
        help="relu-fit | relu-fit-normal | swish-fit | square, or a,b,c for a t^2 + b t + c.",
    ),
    polish: bool = typer.Option(False, "--polish", help="poly: refit the output weights."),
    standardize: bool = typer.Option(
        True, "--standardize/--no-standardize", help="Standardise the features."
    ),
    samples: int = typer.Option(
        2000, "--samples", help="quantized: sign neurons sampled by the rounding."
    ),
    seed: int = typer.Option(0, help="quantized: random seed of the rounding."),
    target: int = typer.Option(-1, help="Target column for .npy/.csv input (default: last)."),
    out: Path = typer.Option(None, "--out", help="Write the network to this .npz file."),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Fit a two-layer network to global optimality (quantized: with a certified gap)."""
    from ..sketch.io import load_problem

    limit_blas_threads(blas_threads)
    if out is not None:
        out = check_output_path(out, "--out")
    check_choice(model, "--model", MODELS)
    check_choice(task, "--task", TASKS)
    if loss is None:
        loss = "squared" if task == "regression" else "logistic"
    check_choice(loss, "--loss", _LOSSES[model, task])
    est = _estimator(model, task, loss, _parse_activation(activation), beta, solver, polish,
                     standardize, samples, seed)  # fmt: skip
    X, y = load_problem(data, target=target)
    if X.shape[0] < 2:
        raise InvalidInputError(f"{data} has {X.shape[0]} sample; fitting needs at least 2")
    t0 = time.perf_counter()
    with WorkBar(f"{model} SDP ({solver}, n={X.shape[0]}, d={X.shape[1]})", disable=json_out):
        est.fit(X, y)
    seconds = time.perf_counter() - t0
    act = est.activation_
    payload: dict[str, Any] = {
        "model": model, "task": task, "loss": loss, "beta": beta, "solver": solver,
        "activation": {"a": act.a, "b": act.b, "c": act.c}, "standardize": standardize,
        "n": int(X.shape[0]), "d": int(X.shape[1]), "objective": est.objective_,
        "neurons": est.n_neurons_, "seconds": seconds, "status": est.solution_.status,
    }  # fmt: skip
    if model == "poly":
        payload["network_objective"] = est.network_objective_
    else:
        payload["lower_bound"] = est.lower_bound_
        payload["certified_gap"] = est.certified_gap_
    if task == "regression":
        payload["train_r2"] = est.score(X, y)
        payload["train_rmse"] = float(np.sqrt(np.mean((est.predict(X) - y) ** 2)))
    else:
        payload["classes"] = est.classes_.tolist()
        payload["train_accuracy"] = est.score(X, y)
    if out is not None:
        atomic_write_bytes(out, _network_npz(model, task, est))
        payload["out"] = str(out)
    if json_out:
        emit_json(payload)
        return 0
    console.print(
        f"{model} network ({task}, {loss} loss, beta={beta:g}, {act.summary()}): objective "
        f"{est.objective_:.8g}, {est.n_neurons_} neurons, {seconds:.3g}s ({solver}, "
        f"status {est.solution_.status})"
    )
    if model == "quantized":
        console.print(
            f"SDP lower bound {est.lower_bound_:.8g}, certified relative gap "
            f"{est.certified_gap_:.3g}"
        )
    if task == "regression":
        console.print(f"train R^2 {payload['train_r2']:.6g}, RMSE {payload['train_rmse']:.6g}")
    else:
        console.print(f"train accuracy {payload['train_accuracy']:.4g}")
    if out is not None:
        console.print(f"network written to {out}")
    return 0
