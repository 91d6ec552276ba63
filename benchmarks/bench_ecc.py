"""ECC benchmark: syndrome-based neural decoders vs hard decision, belief propagation and OSD.

Paper: Bennatan, Choukroun, Kisilev, "Deep Learning for Decoding of Linear Codes - A
Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741); transformer backbone after Choukroun &
Wolf, "Error Correction Code Transformer" (NeurIPS 2022).

Sections (same run):
1. BER, FER and -ln(BER) per code and Eb/N0 for hard decision, BP (sum-product and min-sum,
   50 flooding iterations), OSD-1, OSD-2 and the neural decoders (GRU, MLP; the slow
   transformer on the first code only), all on the same seeded noise; Monte-Carlo until 100
   frame errors or a frame cap. Over the GRU: its automorphism ensemble (cyclic codes: Frobenius
   maps x 3 preprocessing windows, lazy) and the cascade that hands the GRU's detected failures
   (non-codeword outputs) to OSD-2 (:mod:`frugalml.ecc.ensemble`, :mod:`frugalml.ecc.cascade`);
   a larger tagged GRU (``<code>-gru-medium.pt``) on the first code when it was trained.
   Every decoder is called the same way, on the channel LLRs:
   ``decoder(llr, sigma=sigma) -> Decoded`` (:mod:`frugalml.ecc.decoder`).
2. Decoding throughput (codewords per second, batch 4096, at 5 dB) on this machine's CPU.
3. The paper's invariance: BER of the neural decoders (and the cascade) on random codewords vs
   the all-zero one.

Trained models: ``models/ecc/<code>-<backbone>.pt`` beside this file (written by
``train_ecc.py``, the longer training run, whose budget is stored in each file) when present;
otherwise a short CPU training run here (stated in the table). A larger tagged model that is
missing is listed as skipped in the table note, with the command that trains it.

Usage: python benchmarks/bench_ecc.py [--quick | --tiny] [--out DIR]
Writes DIR/ecc.json and ecc_ber.png (DIR: benchmarks/results) and prints the tables.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from frugalml.progress import Progress
from frugalml.report.output import optional_figures, pyplot
from frugalml.report.results import MET, NOT_CHECKED, NOT_MET, BenchResult, Table
from frugalml.report.script import bench_main

__all__ = ["CONFIG", "MODEL_DIR", "REPORT_AREA", "REPORT_TITLE", "TINY", "main", "run"]

REPORT_AREA = "ecc"
REPORT_TITLE = "ECC: syndrome-based neural decoding"
RESULTS = Path(__file__).resolve().parent / "results"
#: the trained decoders of ``train_ecc.py``
MODEL_DIR = Path(__file__).resolve().parent / "models" / "ecc"
CONFIG: dict[bool, dict[str, Any]] = {
    True: {
        "codes": ("bch-63-45",),
        "ebn0": (4.0, 5.0, 6.0),
        "curve": (),
        "backbones": ("gru",),
        "slow_backbones_first_code_only": (),
        "max_frames": 20000,
        "train_steps": 300,
        "throughput_batch": 4096,
        "ensemble_windows": 3,
        "extra_models": (),
    },
    False: {
        "codes": ("bch-63-45", "bch-63-36", "polar-64-32", "ldpc-ldpc_96_48.alist"),
        "ebn0": (4.0, 5.0, 6.0),
        "curve": (1.0, 2.0, 3.0, 7.0),
        "backbones": ("gru", "mlp", "transformer"),
        # the transformer decodes ~2.5e3 words/s on one core: evaluated on the first code only
        "slow_backbones_first_code_only": ("transformer",),
        "max_frames": 50000,
        "train_steps": 3000,
        "throughput_batch": 4096,
        # automorphism ensemble: Frobenius maps x preprocessing windows (18 for n = 63)
        "ensemble_windows": 3,
        # (backbone, tag) of larger models evaluated on the first code when their file exists
        "extra_models": (("gru", "medium"),),
    },
}
#: the smoke test's sizes (``run(tiny=True)``): one code, one Eb/N0, 1024 frames
TINY: dict[str, Any] = {
    **CONFIG[True],
    "ebn0": (5.0,),
    "max_frames": 1024,
    "train_steps": 20,
    "throughput_batch": 256,
    "throughput_seconds": 0.05,
    "ensemble_windows": 1,
}
MIN_FRAME_ERRORS = 100


def _neural(
    code,
    backbone: str,
    steps: int,
    say,
    at: float,
    path: Path | None = None,
    model_dir: Path = MODEL_DIR,
) -> tuple[Any, str]:
    """A trained decoder: the stored longer run when present, else a short training here."""
    from frugalml.ecc.neural import SyndromeDecoder, load_decoder, train_decoder

    path = path or model_dir / f"{code.name}-{backbone}.pt"
    if path.exists():
        import torch

        dec = load_decoder(path, code=code)
        ck = torch.load(path, map_location="cpu", weights_only=True)
        st = ck.get("settings", {})
        budget = (
            f"{ck.get('step', '?')} steps x {st.get('batch', '?')} words"
            if "step" in ck
            else "budget not recorded"
        )
        return dec, f"stored {path.name}: {budget}"
    say(f"ecc: training {backbone} on {code.name} ({steps} steps)", at)
    dec = SyndromeDecoder(code, backbone, rng=0)
    t0 = time.perf_counter()
    train_decoder(dec, steps=steps, batch=256, rng=0)
    return dec, f"trained here: {steps} steps x 256 words, {time.perf_counter() - t0:.0f} s"


def _decoders(
    code, cfg, say, at: float, first: bool, skipped: list[str] | None = None
) -> list[tuple[str, Any, str]]:
    """(name, decoder, note) for every decoder of the comparison, each a
    :class:`~frugalml.ecc.decoder.Decoder` (``decoder(llr, sigma=sigma) -> Decoded``); a
    missing larger model is described in ``skipped``."""
    model_dir = Path(cfg.get("model_dir", MODEL_DIR))
    from frugalml.ecc.bp import BeliefPropagation
    from frugalml.ecc.decoder import HardDecision
    from frugalml.ecc.osd import OrderedStatistics

    out: list[tuple[str, Any, str]] = [("hard decision", HardDecision(code), "")]
    sp = BeliefPropagation(code, iterations=50, variant="sum-product")
    ms = BeliefPropagation(code, iterations=50, variant="min-sum")
    out += [("BP sum-product", sp, "50 it."), ("BP min-sum", ms, "50 it.")]
    out += [(f"OSD-{o}", OrderedStatistics(code, order=o), "") for o in (1, 2)]
    for bb in cfg["backbones"]:
        if not first and bb in cfg["slow_backbones_first_code_only"]:
            continue
        dec, note = _neural(code, bb, cfg["train_steps"], say, at, model_dir=model_dir)
        out.append((f"syndrome {bb}", dec, note))
        if bb == "gru":
            out += _ensembles(code, dec, "gru", note, cfg)
    if first:  # larger models from the longer run, when they were trained
        for bb, tag in cfg["extra_models"]:
            path = model_dir / f"{code.name}-{bb}-{tag}.pt"
            if not path.exists() and skipped is not None:
                skipped.append(
                    f"syndrome {bb}-{tag} on {code.name}: model not found at {path}; train it "
                    f"with python benchmarks/train_ecc.py --codes {code.name} --backbones {bb} "
                    f"--tag {tag} (and its size options)"
                )
            if path.exists():
                dec, note = _neural(code, bb, 0, say, at, path=path)
                out.append((f"syndrome {bb}-{tag}", dec, note))
                out += _ensembles(code, dec, f"{bb}-{tag}", note, cfg)
    return out


def _ensembles(code, dec, label: str, note: str, cfg) -> list[tuple[str, Any, str]]:
    """The automorphism ensemble (cyclic codes) and the cascade to OSD-2 over ``dec``."""
    from frugalml.ecc.cascade import CascadeDecoder
    from frugalml.ecc.ensemble import AutomorphismEnsemble
    from frugalml.ecc.osd import OrderedStatistics

    out: list[tuple[str, Any, str]] = []
    if dec.permute:
        ens = AutomorphismEnsemble(dec, windows=cfg["ensemble_windows"])
        out.append((f"syndrome {label} + ensemble {len(ens)}", ens, note))
    cascade = CascadeDecoder(dec, OrderedStatistics(code, order=2))
    out.append((f"cascade {label} -> OSD-2", cascade, f"{note}; OSD-2 on detected failures"))
    return out


def _ber_section(cfg, say, frac):
    import torch

    from frugalml.ecc.channel import bpsk_llr, ebn0_to_sigma, simulate
    from frugalml.ecc.codes import get_code

    rows, records, throughput, invariance, skipped = [], [], [], [], []
    lo, hi = frac
    for ci, name in enumerate(cfg["codes"]):
        code = get_code(name)
        say(f"ecc: {code.name}", lo + (hi - lo) * ci / len(cfg["codes"]))
        decs = _decoders(code, cfg, say, lo + (hi - lo) * ci / len(cfg["codes"]), ci == 0, skipped)
        points = cfg["ebn0"] + (cfg["curve"] if ci == 0 else ())
        for ebn0 in sorted(points):
            sigma = ebn0_to_sigma(ebn0, code.rate)
            for dname, dec, note in decs:
                res = simulate(
                    code,
                    dec,
                    ebn0,
                    min_frame_errors=MIN_FRAME_ERRORS,
                    max_frames=cfg["max_frames"],
                    batch=4096,
                    rng=int(ebn0 * 100),
                )
                nl = -np.log(res.ber) if res.ber > 0 else None
                rows.append(
                    (
                        code.name,
                        ebn0,
                        dname,
                        res.ber,
                        res.fer,
                        nl,
                        res.frames,
                        res.frame_errors,
                        note,
                    )
                )
                records.append(
                    dict(
                        code=code.name,
                        ebn0=ebn0,
                        decoder=dname,
                        ber=res.ber,
                        fer=res.fer,
                        neg_ln_ber=nl,
                        frames=res.frames,
                        frame_errors=res.frame_errors,
                        note=note,
                    )
                )
        # throughput at 5 dB, batch 4096, one process on this machine
        sigma = ebn0_to_sigma(5.0, code.rate)
        gen = np.random.default_rng(1)
        y = 1.0 + sigma * gen.standard_normal((cfg["throughput_batch"], code.n))
        llr = bpsk_llr(y, sigma)  # the channel's LLRs, every decoder's input
        torch.set_num_threads(2)  # the throughput goal is for 2 CPU cores
        for dname, dec, _ in decs:
            dec(llr[:64], sigma=sigma)  # warm-up
            reps, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < cfg.get("throughput_seconds", 1.0) or reps < 2:
                dec(llr, sigma=sigma)
                reps += 1
            cps = reps * llr.shape[0] / (time.perf_counter() - t0)
            throughput.append((code.name, dname, cps))
        torch.set_num_threads(1)
        if ci == 0:
            for dname, dec, _ in decs:
                if not dname.startswith(("syndrome", "cascade")):
                    continue
                ber = {}
                for zero in (True, False):
                    ber[zero] = simulate(
                        code,
                        dec,
                        5.0,
                        min_frame_errors=10**9,
                        max_frames=cfg["max_frames"] // 2,
                        batch=4096,
                        rng=7,
                        zero_codeword=zero,
                    )
                zero, rand = ber[True], ber[False]
                invariance.append((code.name, dname, zero.ber, rand.ber, zero.frames))
    return rows, records, throughput, invariance, skipped


def run(
    *,
    quick: bool = True,
    progress: Progress | None = None,
    rng: int = 0,
    tiny: bool = False,
    model_dir: str | Path | None = None,
) -> BenchResult:
    """Sizes: :data:`CONFIG` (quick or full) or :data:`TINY` (the smoke test). Trained
    models come from ``model_dir`` (default :data:`MODEL_DIR`)."""
    import torch

    say = progress or (lambda s, f: None)
    quick = quick or tiny
    cfg = dict(TINY if tiny else CONFIG[quick])
    if model_dir is not None:
        cfg["model_dir"] = str(model_dir)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # training and BER runs; the throughput rows use 2 threads
    try:
        rows, records, throughput, invariance, skipped = _ber_section(cfg, say, (0.0, 1.0))
    finally:
        torch.set_num_threads(threads)
    del rng  # every simulation is seeded by its Eb/N0; decoders by 0
    tables = (
        Table(
            title="BER / FER / -ln(BER) per code, Eb/N0 and decoder",
            columns=(
                "code",
                "Eb/N0 dB",
                "decoder",
                "BER",
                "FER",
                "-ln BER",
                "frames",
                "frame errors",
                "model",
            ),
            rows=tuple(rows),
            note=f"BPSK over AWGN, all-zero codeword, until {MIN_FRAME_ERRORS} frame errors "
            f"or {cfg['max_frames']} frames; the same seeded noise for every decoder."
            + "".join(f" Skipped: {s}." for s in skipped),
        ),
        Table(
            title="Decoding throughput (codewords / s, batch 4096, Eb/N0 5 dB)",
            columns=("code", "decoder", "codewords / s"),
            rows=tuple(throughput),
            note="this machine's CPU, torch with 2 threads, NumPy decoders single-threaded; "
            "each decoder called on the channel LLRs, decoder(llr, sigma=sigma) (hard "
            "decision: the bits and their syndrome check). Goal: >= 1e5 codewords/s for n = 63.",
        ),
        Table(
            title="Invariance: neural decoder BER on the zero codeword vs random codewords",
            columns=("code", "decoder", "BER zero codeword", "BER random codewords", "frames"),
            rows=tuple(invariance),
            note="same noise seed for both; the syndrome decoder's errors depend on the noise "
            "only, so the two BERs must agree within Monte-Carlo error.",
        ),
    )
    return BenchResult(
        name="ecc",
        title="Syndrome-based neural decoding vs BP and OSD",
        headline=_headline(records, throughput)
        + ("; quick size: the >= 1e5 codewords/s goal is checked at full size" if quick else ""),
        status=NOT_CHECKED if quick else _status(throughput),
        tables=tables,
        figures=optional_figures(_figures, records),
        data={
            "ber": records,
            "throughput": [list(r) for r in throughput],
            "invariance": [list(r) for r in invariance],
            "skipped": skipped,
            "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
            "seconds": time.perf_counter() - t0,
        },
        mode="wall clock, local machine",
    )


def _status(throughput) -> str:
    """Goal: every syndrome-based decoder of a length-63 code decodes >= 1e5 codewords/s."""
    rows = [r for r in throughput if "-63-" in f"{r[0]}-" and r[1].startswith("syndrome")]
    return MET if rows and all(r[2] >= 1e5 for r in rows) else NOT_MET


def _headline(records, throughput) -> str:
    parts = []
    code = records[0]["code"] if records else None
    for ebn0 in (4.0, 5.0, 6.0):
        at = {
            r["decoder"]: r["neg_ln_ber"]
            for r in records
            if r["code"] == code and r["ebn0"] == ebn0
        }
        nn = {k: v for k, v in at.items() if k.startswith("syndrome") and v is not None}
        casc = {k: v for k, v in at.items() if k.startswith("cascade") and v is not None}
        bp, osd = at.get("BP sum-product"), at.get("OSD-2")
        if nn and bp is not None and osd is not None:
            best = max(nn, key=nn.get)
            closed = (nn[best] - bp) / (osd - bp) if osd != bp else None
            parts.append(
                f"{code} {ebn0:g} dB -ln BER: BP {bp:.2f}, {best} {nn[best]:.2f}, OSD-2 {osd:.2f}"
                + ("" if closed is None else f" ({100 * closed:.0f}% of the BP-OSD-2 gap)")
                + "".join(f", {k} {v:.2f}" for k, v in casc.items())
            )
    fast = [
        r
        for r in throughput
        if r[0] == code and (r[1].startswith(("syndrome", "cascade")) or r[1] == "OSD-2")
    ]
    if fast:
        parts.append(", ".join(f"{r[1]} {r[2]:.3g} cw/s" for r in fast))
    return "; ".join(parts)


def _figures(records) -> dict[str, Any]:
    plt = pyplot()
    codes = sorted({r["code"] for r in records})
    fig, axes = plt.subplots(1, len(codes), figsize=(4.5 * len(codes), 4), squeeze=False)
    for ax, code in zip(axes[0], codes, strict=True):
        for dec in sorted({r["decoder"] for r in records if r["code"] == code}):
            pts = sorted(
                (r["ebn0"], r["ber"])
                for r in records
                if r["code"] == code and r["decoder"] == dec and r["ber"] > 0
            )
            if pts:
                ax.semilogy(*zip(*pts, strict=True), marker="o", ms=3, label=dec)
        ax.set_title(code)
        ax.set_xlabel("Eb/N0 (dB)")
        ax.set_ylabel("BER")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return {"ber": fig}


def main(argv: list[str] | None = None) -> BenchResult:
    return bench_main(run, RESULTS, title=REPORT_TITLE, argv=argv)


if __name__ == "__main__":
    main()
