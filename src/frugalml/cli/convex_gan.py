"""``frugalml convex gan fit | sample | metrics``: the progressive convex WGAN (ProCoGAN,
Sahiner et al., arXiv:2107.05680) on a built-in data set or a ``.npy`` file of samples."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from .._io import check_output_path
from .._plot import require_plotting
from .._validate import check_choice
from ..errors import InvalidInputError
from ._common import BLAS_OPTION, JSON_OPTION, WorkBar, console, emit_json, limit_blas_threads

__all__ = ["gan_app"]

gan_app = typer.Typer(
    help="Convex Wasserstein GANs: closed-form progressive generator (ProCoGAN).",
    no_args_is_help=True,
)

_DATASETS = ("digits", "patches", "mnist1d")
DATASET_OPTION = typer.Option(
    None, "--dataset", help="Built-in data: digits | patches | mnist1d (or give --data)."
)
DATA_OPTION = typer.Option(
    None, "--data", help="A .npy file of samples (n, L) or (n, h, w) instead of --dataset."
)


def _load(dataset: str | None, data: Path | None, seed: int) -> tuple[np.ndarray, Any, int]:
    """``(X, labels or None, default number of stages)``."""
    if (dataset is None) == (data is None):
        raise InvalidInputError("give exactly one of --dataset and --data")
    if data is not None:
        if data.suffix != ".npy":
            raise InvalidInputError(f"--data must be a .npy file, got {data.name!r}")
        try:
            X = np.load(data, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(f"cannot read {data}: {exc}") from exc
        if X.ndim not in (2, 3):
            raise InvalidInputError(
                f"--data must hold (n, L) signals or (n, h, w) images, got shape {X.shape}"
            )
        stages = 1
        while all(s % (2**stages) == 0 and s // (2**stages) >= 2 for s in X.shape[1:]):
            stages += 1
        return X, None, min(stages, 4)
    from ..convex.gan.data import load_dataset

    d = load_dataset(check_choice(dataset, "--dataset", _DATASETS), rng=seed)
    return d.X, d.y, d.n_stages


@gan_app.command("fit")
def fit_cmd(
    out: Path = typer.Option(..., "--out", help="Write the fitted model (.npz) here."),
    dataset: str = DATASET_OPTION,
    data: Path = DATA_OPTION,
    stages: int = typer.Option(0, min=0, help="Progressive stages (0: the data set's default)."),
    latent_dim: int = typer.Option(16, min=1, help="Latent dimension of the first stage."),
    truncation: int = typer.Option(
        0, min=0, help="Truncation index per stage (0: the largest admissible)."
    ),
    stage_noise: int = typer.Option(0, min=0, help="Fresh noise columns per later stage."),
    histogram_matching: bool = typer.Option(
        False, "--histogram-matching", help="Match per-pixel marginals to the data."
    ),
    seed: int = typer.Option(0, min=0, help="Random seed."),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> None:
    """Fit the progressive convex GAN (closed form per stage) and save it."""
    from ..convex.gan import ProgressiveConvexGAN

    limit_blas_threads(blas_threads)
    out = check_output_path(out, "--out")
    X, _, default_stages = _load(dataset, data, seed)
    model = ProgressiveConvexGAN(
        stages or default_stages, latent_dim, truncation=truncation or None,
        stage_noise=stage_noise, histogram_matching=histogram_matching,
    )  # fmt: skip
    with WorkBar("ProCoGAN", total=1.0, disable=json_out) as bar:
        model.fit(X, rng=seed, progress=lambda msg, f: bar.update(f, msg))
    model.save(out)
    payload = {
        "out": str(out), "n": int(X.shape[0]), "sample_shape": list(model.sample_shape_),
        "fit_seconds": model.fit_seconds_,
        "stages": [{"shape": list(s.shape), "k": s.k, "beta": s.beta, "constraint": s.constraint}
                   for s in model.stages_],
    }  # fmt: skip
    if json_out:
        emit_json(payload)
    else:
        console.print(model.summary())
        console.print(f"wrote {out}")


def _load_model(model: Path) -> Any:
    from ..convex.gan import ProgressiveConvexGAN

    if not model.exists():
        raise InvalidInputError(f"model file {model} does not exist; run `gan fit` first")
    return ProgressiveConvexGAN.load(model)


@gan_app.command("sample")
def sample_cmd(
    model: Path = typer.Argument(..., help="A model written by `gan fit`."),
    out: Path = typer.Option(..., "--out", help="PNG grid (or .npy array) to write."),
    samples: int = typer.Option(64, "--samples", min=1, help="Number of samples drawn."),
    ncols: int = typer.Option(8, min=1, help="Grid columns."),
    seed: int = typer.Option(0, min=0, help="Random seed."),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> None:
    """Draw samples; write a PNG grid (``.png``) or the raw array (``.npy``)."""
    from .._io import atomic_write_bytes
    from ..convex.gan.metrics import save_sample_grid

    limit_blas_threads(blas_threads)
    n = samples
    if out.suffix not in (".png", ".npy"):
        raise InvalidInputError(f"--out must end in .png or .npy, got {out.name!r}")
    out = check_output_path(out, "--out")
    if out.suffix == ".png":
        require_plotting("a PNG sample grid")
    S = _load_model(model).sample(n, rng=seed)
    if out.suffix == ".png":
        save_sample_grid(S, out, ncols=ncols)
    else:
        import io

        buf = io.BytesIO()
        np.save(buf, S)
        atomic_write_bytes(out, buf.getvalue())
    if json_out:
        emit_json({"out": str(out), "n": n, "shape": list(S.shape)})
    else:
        console.print(f"wrote {n} samples to {out}")


@gan_app.command("metrics")
def metrics_cmd(
    model: Path = typer.Argument(..., help="A model written by `gan fit`."),
    dataset: str = DATASET_OPTION,
    data: Path = DATA_OPTION,
    samples: int = typer.Option(
        1000, "--samples", min=2, help="Samples compared (real and generated)."
    ),
    seed: int = typer.Option(0, min=0, help="Random seed."),
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> None:
    """Frechet distance (classifier features with labels, else PCA), sliced Wasserstein and
    MMD between the model's samples and the real data."""
    from ..convex.gan.metrics import fit_feature_map, frechet_distance, mmd, sliced_wasserstein

    limit_blas_threads(blas_threads)
    gan = _load_model(model)
    X, y, _ = _load(dataset, data, seed)
    if tuple(X.shape[1:]) != tuple(gan.sample_shape_):
        raise InvalidInputError(
            f"the model makes samples of shape {gan.sample_shape_} but the data has {X.shape[1:]}"
        )
    t0 = time.perf_counter()
    gen = np.random.default_rng(seed)
    idx = gen.permutation(X.shape[0])[: min(samples, X.shape[0])]
    with WorkBar("metrics: features", total=4, disable=json_out) as bar:
        features = fit_feature_map(X, y, rng=seed)
        bar.update(1, "metrics: Frechet distance")
        S = gan.sample(idx.size, rng=seed + 1)
        frechet = frechet_distance(X[idx], S, features)
        bar.update(2, "metrics: sliced Wasserstein")
        sliced = sliced_wasserstein(X[idx], S, rng=seed)
        bar.update(3, "metrics: MMD")
        payload = {
            "n": int(idx.size), "features": features.kind, "frechet": frechet,
            "sliced_wasserstein": sliced, "mmd": mmd(X[idx], S),
            "seconds": time.perf_counter() - t0,
        }  # fmt: skip
    if json_out:
        emit_json(payload)
    else:
        table = Table(title=f"convex GAN {model.name} vs {dataset or data}")
        table.add_column("metric", overflow="fold")
        table.add_column("value", justify="right", no_wrap=True)
        for key, value in payload.items():
            text = f"{value:.6g}" if isinstance(value, float) else str(value)
            table.add_row(key, text)
        console.print(table)
