"""``frugalml ecc train | eval | codes``: syndrome-based neural decoders of linear codes against
hard-decision, belief-propagation and OSD baselines over BPSK/AWGN.

Paper: Bennatan, Choukroun & Kisilev, "Deep Learning for Decoding of Linear Codes - A
Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741); the transformer backbone follows
Choukroun & Wolf, "Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from .._io import check_output_path
from .._plot import require_plotting
from .._threads import default_blas_threads
from .._validate import check_choice
from ..errors import InvalidInputError
from ._common import (
    BLAS_OPTION,
    JSON_OPTION,
    WorkBar,
    console,
    emit_json,
    limit_blas_threads,
)

__all__ = ["ecc_app"]

ecc_app = typer.Typer(
    help="Neural syndrome decoders of linear codes (BCH, polar, LDPC) vs BP and OSD.",
    no_args_is_help=True,
)

BACKBONES = ("gru", "mlp", "transformer")  # == frugalml.ecc.neural.BACKBONES (needs no torch)
PRESETS = ("fast", "paper")
BASELINES = ("hard", "bp", "min-sum", "osd-0", "osd-1", "osd-2", "osd-3")
FALLBACKS = BASELINES[1:]  # decoders a cascade may hand its detected failures to
MODEL_SUFFIXES = (".pt", ".pth", ".ckpt")
PRETRAINED = tuple(f"pretrained-{b}" for b in BACKBONES)  # frugalml.ecc.pretrained(code, b)
CODE_EXAMPLES = (
    "bch-31-21",
    "bch-31-16",
    "bch-63-51",
    "bch-63-45",
    "bch-63-36",
    "bch-127-64",
    "polar-64-32",
    "polar-128-86",
    "ldpc-ldpc_96_48.alist",
    "ldpc-regular-96-3-6",
)

CODE_OPTION = typer.Option(
    "bch-63-45", "--code", help="Code name; `frugalml ecc codes` lists them."
)
SEED_OPTION = typer.Option(0, "--seed", min=0, help="Random seed.")
DEVICE_OPTION = typer.Option("cpu", "--device", help="Torch device: cpu | cuda[:i].")


def _code(name: str) -> Any:
    from ..ecc.codes import get_code

    code = get_code(name)
    if code.k >= code.n:
        raise InvalidInputError(f"{code.name} has no parity checks (k = n); nothing to decode")
    return code


def _check_out_path(path: Path | None, option: str) -> None:
    """An output file that can be written (checked before any work); None: not asked for."""
    if path is not None:
        check_output_path(path, option)


def _torch_threads(blas_threads: int | None) -> None:
    import torch

    torch.set_num_threads(blas_threads or default_blas_threads())


@contextlib.contextmanager
def _one_line_errors(path: Path | None = None) -> Iterator[None]:
    """Library errors that quote a multi-line message (torch.load's) as one line."""
    try:
        yield
    except InvalidInputError as exc:
        text = str(exc)
        if "\n" not in text:
            raise
        if path is not None and "is not a frugalml decoder file" in text:
            raise InvalidInputError(
                f"{path} is not a frugalml decoder file (torch.load could not read it)"
            ) from exc
        raise InvalidInputError(" ".join(text.split())) from exc


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


@ecc_app.command("train")
def train_cmd(
    code_name: str = CODE_OPTION,
    backbone: str = typer.Option("gru", help="gru (the paper's) | mlp | transformer (ECCT)."),
    preset: str = typer.Option("fast", help="fast (CPU-sized) | paper (the papers' sizes)."),
    hidden: int = typer.Option(None, min=1, help="Override the preset's hidden size / d."),
    layers: int = typer.Option(None, min=1, help="Override the preset's number of layers."),
    steps: int = typer.Option(5000, min=1, help="Training steps."),
    batch: int = typer.Option(512, min=1, help="Words per step."),
    lr: float = typer.Option(2e-3, help="Peak learning rate (cosine schedule)."),
    ebn0_min: float = typer.Option(4.0, "--ebn0-min", help="Lowest training Eb/N0 (dB)."),
    ebn0_max: float = typer.Option(7.0, "--ebn0-max", help="Highest training Eb/N0 (dB)."),
    out: Path = typer.Option(..., "--out", help="Write the trained decoder (.pt) here."),
    checkpoint: Path = typer.Option(
        None, "--checkpoint", help="Resumable training checkpoint (written atomically)."
    ),
    resume: bool = typer.Option(
        True, "--resume/--no-resume", help="Continue from --checkpoint if it exists."
    ),
    device: str = DEVICE_OPTION,
    seed: int = SEED_OPTION,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Train a syndrome-based neural decoder on the all-zero codeword over an Eb/N0 range."""
    limit_blas_threads(blas_threads)
    check_choice(backbone, "--backbone", BACKBONES)
    check_choice(preset, "--preset", PRESETS)
    _check_out_path(out, "--out")
    _check_out_path(checkpoint, "--checkpoint")
    if checkpoint is not None and checkpoint.resolve() == out.resolve():
        raise InvalidInputError("--checkpoint and --out must be different files")
    code = _code(code_name)
    from ..ecc.neural import SyndromeDecoder, save_decoder, train_decoder

    _torch_threads(blas_threads)
    decoder = SyndromeDecoder(code, backbone, preset=preset, hidden=hidden, layers=layers, rng=seed)
    with (
        WorkBar(f"training {backbone} decoder", 1.0, disable=json_out) as bar,
        _one_line_errors(checkpoint),
    ):
        result = train_decoder(
            decoder,
            ebn0_range=(ebn0_min, ebn0_max),
            batch=batch,
            steps=steps,
            lr=lr,
            checkpoint=checkpoint,
            resume=resume,
            device=device,
            rng=seed,
            progress=lambda msg, f: bar.update(f, msg),
        )
    save_decoder(decoder, out)
    payload = {
        "code": code.name,
        "n": code.n,
        "k": code.k,
        "backbone": backbone,
        "preset": preset,
        "config": dict(decoder.config),
        "parameters": decoder.parameter_count(),
        "steps": result.steps,
        "batch": result.batch,
        "lr": result.lr,
        "ebn0_range": list(result.ebn0_range),
        "seed": result.seed,
        "device": result.device,
        "final_loss": result.final_loss,
        "last_loss": result.losses[-1] if result.losses else None,
        "seconds": result.seconds,
        "resumed_from": result.resumed_from,
        "checkpoint": result.checkpoint,
        "out": str(out),
    }
    if json_out:
        emit_json(payload)
        return 0
    console.print(escape(decoder.summary()))
    console.print(escape(result.summary()))
    console.print(f"wrote {escape(str(out))}")
    return 0


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------


@dataclass
class _Decoder:
    name: str  # as given on the command line
    kind: str  # hard | bp | osd | neural | cascade | list
    description: str
    decoder: Any  # a frugalml.ecc Decoder: decoder(llr, sigma=...) -> Decoded
    model: Any = None  # the SyndromeDecoder of a trained or pretrained model

    @property
    def label(self) -> str:
        """Short name for tables and plot legends (a model's file name)."""
        return Path(self.name).name if self.kind == "neural" else self.name


def _parse_ebn0(text: str, rate: float) -> list[float]:
    """``"4,5,6"`` or ``"start:stop:step"`` (stop included) -> validated Eb/N0 values (dB)."""
    from ..ecc.channel import ebn0_to_sigma

    bad = f"--ebn0 must be numbers like 4,5,6 or start:stop:step like 3:7:0.5; got {text!r}"
    values: list[float] = []
    for part in (p.strip() for p in text.split(",")):
        pieces = part.split(":")
        if len(pieces) not in (1, 3):
            raise InvalidInputError(bad)
        try:
            nums = [float(v) for v in pieces]
        except ValueError:
            raise InvalidInputError(bad) from None
        if len(nums) == 1:
            values.append(nums[0])
            continue
        start, stop, step = nums
        if not (all(map(math.isfinite, nums)) and step > 0 and stop >= start):
            raise InvalidInputError(f"{bad} (need step > 0 and stop >= start)")
        count = math.floor((stop - start) / step + 1e-9) + 1
        if count > 1000:
            raise InvalidInputError(f"--ebn0 range {part!r} has {count} points (max 1000)")
        values.extend(round(start + i * step, 10) for i in range(count))
    for v in values:
        try:
            ebn0_to_sigma(v, rate)
        except InvalidInputError as exc:
            raise InvalidInputError(f"--ebn0: {exc}") from None
    if len(set(values)) != len(values):
        raise InvalidInputError(f"--ebn0 lists a value twice: {text!r}")
    return values


def _is_model_path(spec: str) -> bool:
    return spec.lower().endswith(MODEL_SUFFIXES) or "/" in spec or Path(spec).is_file()


def _baseline(spec: str, code: Any, bp_iterations: int) -> _Decoder:
    from ..ecc.bp import BeliefPropagation
    from ..ecc.decoder import HardDecision
    from ..ecc.osd import OrderedStatistics

    if spec == "hard":
        hard = HardDecision(code)
        return _Decoder(spec, "hard", "hard decision (no decoding)", hard)
    if spec in ("bp", "min-sum"):
        variant = "sum-product" if spec == "bp" else "min-sum"
        bp = BeliefPropagation(code, iterations=bp_iterations, variant=variant)
        return _Decoder(spec, "bp", bp.summary(), bp)
    osd = OrderedStatistics(code, order=int(spec.split("-")[1]))
    return _Decoder(spec, "osd", osd.summary(), osd)


def _neural(spec: str, code: Any, device: str) -> _Decoder:
    """A trained model: a file, or ``pretrained-<backbone>`` (shipped with frugalml)."""
    from ..ecc.checkpoint import load_decoder, pretrained

    if spec in PRETRAINED:
        decoder = pretrained(code.name, spec.removeprefix("pretrained-"), device=device)
        return _Decoder(spec, "neural", decoder.summary(), decoder, decoder)
    path = Path(spec)
    if not path.is_file():
        raise InvalidInputError(f"--decoders: no model file at {spec}")
    with _one_line_errors(path):
        decoder = load_decoder(path, code=code, device=device)
    return _Decoder(spec, "neural", decoder.summary(), decoder, decoder)


def _cascade(code: Any, device: str) -> _Decoder:
    """``cascade``: the shipped GRU, then OSD-2 on its detected failures."""
    from ..ecc.cascade import CascadeDecoder
    from ..ecc.checkpoint import pretrained
    from ..ecc.osd import OrderedStatistics

    gru = pretrained(code.name, "gru", device=device)
    cascade = CascadeDecoder(gru, OrderedStatistics(code, order=2))
    return _Decoder("cascade", "cascade", cascade.summary(), cascade, gru)


def _list(code: Any, device: str) -> _Decoder:
    """``list``: the shipped GRU in the neural list decoder (Chase patterns on the 8 least
    reliable positions over its Frobenius ensemble, ML certificate): the strongest pure
    syndrome decoder, slower than the cascade."""
    from ..ecc.checkpoint import pretrained
    from ..ecc.list_decoder import NeuralListDecoder

    gru = pretrained(code.name, "gru", device=device)
    dec = NeuralListDecoder(gru)
    return _Decoder("list", "list", dec.summary(), dec, gru)


def _derived(
    neural: _Decoder, code: Any, ensemble: int, fallback: str | None, bp_iterations: int
) -> _Decoder:
    """The automorphism ensemble and/or cascade to a baseline over a loaded neural decoder."""
    from ..ecc.bp import BeliefPropagation
    from ..ecc.cascade import CascadeDecoder
    from ..ecc.ensemble import AutomorphismEnsemble
    from ..ecc.osd import OrderedStatistics

    decoder: Any = neural.model
    name = neural.name
    if ensemble:
        decoder = AutomorphismEnsemble(decoder, windows=ensemble)
        name += f"+ensemble{len(decoder)}"
    if fallback in ("bp", "min-sum"):
        variant = "sum-product" if fallback == "bp" else "min-sum"
        fb: Any = BeliefPropagation(code, iterations=bp_iterations, variant=variant)
    elif fallback is not None:
        fb = OrderedStatistics(code, order=int(fallback.split("-")[1]))
    if fallback is not None:
        decoder = CascadeDecoder(decoder, fb)
        name += f"->{fallback}"
    return _Decoder(name, "neural", decoder.summary(), decoder)


def _decoders(
    text: str,
    code: Any,
    bp_iterations: int,
    device: str,
    ensemble: int = 0,
    fallback: str | None = None,
) -> list[_Decoder]:
    specs = [s.strip() for s in text.split(",")]
    if not any(specs) or not all(specs):
        raise InvalidInputError(f"--decoders must be a comma-separated list; got {text!r}")
    if len(set(specs)) != len(specs):
        raise InvalidInputError(f"--decoders lists a decoder twice: {text!r}")
    named = (*BASELINES, *PRETRAINED, "cascade", "list")
    for spec in specs:
        if spec not in named and not _is_model_path(spec):
            listed = ", ".join(named)
            raise InvalidInputError(
                f"unknown decoder {spec!r}; expected one of {listed} or a path to a trained "
                "model (.pt)"
            )
    if any(spec not in BASELINES for spec in specs):
        from .._optional import require

        require("torch", what="evaluating a neural decoder", extra="ecc")
    if fallback is not None and fallback not in FALLBACKS:
        raise InvalidInputError(
            f"--fallback must be one of {', '.join(FALLBACKS)}; got {fallback!r}"
        )
    models = [spec for spec in specs if spec not in (*BASELINES, "cascade", "list")]
    if (ensemble or fallback) and not models:
        raise InvalidInputError(
            "--ensemble and --fallback apply to trained models: list a model path or a "
            "pretrained-<backbone> in --decoders"
        )
    out = []
    for spec in specs:
        if spec in BASELINES:
            out.append(_baseline(spec, code, bp_iterations))
        elif spec == "cascade":
            out.append(_cascade(code, device))
        elif spec == "list":
            out.append(_list(code, device))
        else:
            neural = _neural(spec, code, device)
            out.append(neural)
            if ensemble or fallback:
                out.append(_derived(neural, code, ensemble, fallback, bp_iterations))
    return out


def _neg_ln(ber: float) -> float | None:
    return -math.log(ber) if ber > 0 else None


def _plot(code: Any, rows: list[dict[str, Any]], path: Path) -> None:
    from ..report.output import pyplot, save_png

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        pts = [(r["ebn0_db"], r["ber"]) for r in row["results"] if r["ber"] > 0]
        if pts:
            x, y = zip(*pts, strict=True)
            ax.semilogy(x, y, marker="o", label=row["label"])
    ax.set_xlabel("Eb/N0 (dB)")
    ax.set_ylabel("BER")
    ax.set_title(f"{code.name} (n={code.n}, k={code.k}), BPSK/AWGN")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    save_png(fig, path)


@ecc_app.command("eval")
def eval_cmd(
    code_name: str = CODE_OPTION,
    decoders: str = typer.Option(
        "hard,bp,min-sum,osd-1,osd-2",
        "--decoders",
        help="Comma-separated: hard, bp (sum-product), min-sum, osd-0..osd-3, "
        "pretrained-gru|mlp|transformer (shipped with frugalml), cascade (pretrained GRU, "
        "then OSD-2 on its detected failures: the recommended decoder), list (pretrained GRU "
        "in the neural list decoder: the best pure syndrome decoder, slower), or a trained "
        "model path (.pt).",
    ),
    ebn0: str = typer.Option(
        "4,5,6", "--ebn0", help="Eb/N0 values in dB: 4,5,6 or start:stop:step (stop included)."
    ),
    min_frame_errors: int = typer.Option(
        100, "--min-frame-errors", min=1, help="Stop a point after this many frame errors."
    ),
    max_frames: int = typer.Option(
        100_000, "--max-frames", min=1, help="Stop a point after this many frames."
    ),
    batch: int = typer.Option(10_000, "--batch", min=1, help="Frames simulated per batch."),
    bp_iterations: int = typer.Option(
        50, "--bp-iterations", min=1, max=10_000, help="BP iterations (at most 10000)."
    ),
    random_codewords: bool = typer.Option(
        False, "--random-codewords", help="Send random codewords instead of the all-zero one."
    ),
    ensemble: int = typer.Option(
        0,
        "--ensemble",
        min=0,
        help="Also evaluate each model's automorphism ensemble with this many preprocessing "
        "windows per Frobenius map (cyclic codes; 1 for other codes); 0: off.",
    ),
    fallback: str = typer.Option(
        None,
        "--fallback",
        help="Also evaluate each model as a cascade that hands its detected failures "
        "(non-codeword outputs) to this decoder: bp, min-sum, osd-0..osd-3.",
    ),
    plot: Path = typer.Option(None, "--plot", help="Write a semilog BER plot (PNG) here."),
    device: str = DEVICE_OPTION,
    seed: int = SEED_OPTION,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Monte-Carlo BER/FER of each decoder at each Eb/N0 (the same noise seed for every point).

    With --ensemble / --fallback each trained model gets a second row: its automorphism
    ensemble and/or its cascade to a classical decoder (frugalml.ecc.ensemble)."""
    from ..ecc.channel import simulate

    limit_blas_threads(blas_threads)
    _check_out_path(plot, "--plot")
    if plot is not None:
        require_plotting("--plot")
    code = _code(code_name)
    points = _parse_ebn0(ebn0, code.rate)
    decs = _decoders(decoders, code, bp_iterations, device, ensemble, fallback)
    if any(d.kind in ("neural", "cascade") for d in decs):
        _torch_threads(blas_threads)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with WorkBar("simulating", len(decs) * len(points), disable=json_out) as bar:
        done = 0
        for dec in decs:
            results = []
            for e in points:

                def progress(message: str, fraction: float, dec=dec, done=done) -> None:
                    bar.update(done + fraction, f"{dec.label}: {message}")

                res = simulate(
                    code,
                    dec.decoder,
                    e,
                    min_frame_errors=min_frame_errors,
                    max_frames=max_frames,
                    batch=batch,
                    zero_codeword=not random_codewords,
                    rng=seed,
                    progress=progress,
                )
                done += 1
                bar.update(done)
                results.append({**res.to_dict(), "neg_ln_ber": _neg_ln(res.ber)})
            rows.append(
                {"name": dec.name, "label": dec.label, "kind": dec.kind,
                 "description": dec.description, "results": results}
            )  # fmt: skip
    if plot is not None:
        _plot(code, rows, plot)
    payload = {
        "code": code.name,
        "n": code.n,
        "k": code.k,
        "rate": code.rate,
        "ebn0_db": points,
        "min_frame_errors": min_frame_errors,
        "max_frames": max_frames,
        "batch": batch,
        "bp_iterations": bp_iterations,
        "random_codewords": random_codewords,
        "seed": seed,
        "decoders": rows,
        "seconds": time.perf_counter() - t0,
        "plot": None if plot is None else str(plot),
    }
    if json_out:
        emit_json(payload)
        return 0
    table = Table(title=f"{escape(code.name)} (n={code.n}, k={code.k}), BPSK/AWGN, seed {seed}")
    table.add_column("decoder", overflow="fold")
    for col in ("Eb/N0", "BER", "FER", "-ln BER", "errors", "frames", "s"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in rows:
        for r in row["results"]:
            nl = r["neg_ln_ber"]
            table.add_row(
                escape(row["label"]), f"{r['ebn0_db']:g}", f"{r['ber']:.2e}", f"{r['fer']:.2e}",
                "inf" if nl is None else f"{nl:.2f}", str(r["frame_errors"]), str(r["frames"]),
                f"{r['seconds']:.2f}",
            )  # fmt: skip
        table.add_section()
    console.print(table)
    if plot is not None:
        console.print(f"plot written to {escape(str(plot))}")
    return 0


# --------------------------------------------------------------------------------------------
# codes
# --------------------------------------------------------------------------------------------


@ecc_app.command("codes")
def codes_cmd(json_out: bool = JSON_OPTION) -> int:
    """List the code-name formats, with examples (n, k, rate) and the valid BCH dimensions."""
    from ..ecc.codes import CODE_NAME_FORMATS, bch_dimensions

    examples = []
    for name in CODE_EXAMPLES:
        code = _code(name)
        examples.append(
            {"name": name, "n": code.n, "k": code.k, "rate": code.rate,
             "designed_distance": code.designed_distance}
        )  # fmt: skip
    bch = {n: bch_dimensions(n) for n in (7, 15, 31, 63, 127)}
    if json_out:
        emit_json(
            {"formats": list(CODE_NAME_FORMATS), "examples": examples,
             "bch_dimensions": {str(n): ks for n, ks in bch.items()}}
        )  # fmt: skip
        return 0
    console.print("code name formats: " + ", ".join(CODE_NAME_FORMATS))
    console.print(
        "  ldpc-<path.alist>: an alist file, or a bundled one by file name; "
        "ldpc-regular: random (dv, dc)-regular, seed 0"
    )
    table = Table(title="examples")
    table.add_column("name", overflow="fold")
    for col in ("n", "k", "rate", "designed distance"):
        table.add_column(col, justify="right", no_wrap=True)
    for ex in examples:
        dd = ex["designed_distance"]
        table.add_row(escape(ex["name"]), str(ex["n"]), str(ex["k"]), f"{ex['rate']:.3f}",
                      "" if dd is None else str(dd))  # fmt: skip
    console.print(table)
    for n, ks in bch.items():
        console.print(f"bch-{n}-<k>: k in {', '.join(map(str, ks))}")
    console.print("polar-<n>-<k>: n a power of two, 1 <= k < n")
    return 0
