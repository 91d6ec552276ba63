"""The longer training run of the syndrome-based decoders evaluated by ``bench_ecc.py``.

Trains one ``SyndromeDecoder`` per code and backbone on the all-zero codeword (Eb/N0 uniform in
4-7 dB, ``--ebn0 LO,HI`` to change it: a long LDPC code works at 1-3 dB) and keeps it as a
resumable checkpoint ``benchmarks/models/ecc/<code>-<backbone>.pt``
(another directory with ``--models DIR``)
(``<code>-<backbone>-<tag>.pt`` with ``--tag``; the training settings and losses are stored in
it, so the table can state the budget); rerunning continues where a run stopped. Sizes default
to the "fast" preset; ``--hidden/--layers/--unroll`` override them (a tagged model is evaluated
by the benchmark as an extra row). Usage::

    python benchmarks/train_ecc.py [--codes bch-63-45,...] [--backbones gru,mlp,transformer]
                                   [--steps 20000] [--batch 512] [--device cpu|cuda]
                                   [--ebn0 4,7]
                                   [--hidden H --layers L --unroll T --tag medium]
                                   [--threads 1] [--models DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from bench_ecc import CONFIG, MODEL_DIR
from frugalml.ecc import get_code
from frugalml.ecc.neural import SyndromeDecoder, train_decoder


def main(argv: list[str] | None = None) -> list[Path]:
    """Train (or continue) every requested decoder; returns the checkpoint paths."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", default=",".join(name for name, _ in CONFIG[False]["codes"]))
    parser.add_argument("--backbones", default=",".join(CONFIG[False]["backbones"]))
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument(
        "--ebn0", default="4,7", help="training Eb/N0 range in dB, LO,HI (default 4,7)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="fast", choices=("fast", "paper"))
    parser.add_argument("--hidden", type=int, default=None)
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--unroll", type=int, default=None, help="GRU time steps T")
    parser.add_argument("--tag", default="", help="file-name suffix for a non-default size")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--models", type=Path, default=MODEL_DIR, help="checkpoint directory")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sized = args.preset != "fast" or any(
        v is not None for v in (args.hidden, args.layers, args.unroll)
    )
    if sized and not args.tag:
        parser.error("a non-default size needs --tag (the default files hold the fast preset)")
    try:
        lo, hi = (float(v) for v in args.ebn0.split(","))
    except ValueError:
        parser.error(f"--ebn0 must be LO,HI in dB, e.g. 4,7; got {args.ebn0!r}")
    ebn0_range = (lo, hi)
    args.models.mkdir(parents=True, exist_ok=True)
    suffix = f"-{args.tag}" if args.tag else ""
    written = []
    for name in args.codes.split(","):
        code = get_code(name)
        for backbone in args.backbones.split(","):
            path = args.models / f"{code.name}-{backbone}{suffix}.pt"
            sizes = {"hidden": args.hidden, "layers": args.layers}
            if backbone == "gru":
                sizes["steps"] = args.unroll
            t0 = time.perf_counter()
            res = train_decoder(
                SyndromeDecoder(code, backbone, preset=args.preset, rng=0, **sizes),
                steps=args.steps,
                batch=args.batch,
                lr=args.lr,
                ebn0_range=ebn0_range,
                checkpoint=path,
                checkpoint_every=200,
                device=args.device,
                rng=0,
                progress=lambda msg, f, p=path: print(f"{p.name}: {msg}", flush=True),
            )
            print(f"{path.name}: {res.summary()} ({time.perf_counter() - t0:.0f} s)", flush=True)
            written.append(path)
    return written


if __name__ == "__main__":
    main()
