"""The longer training run of the syndrome-based decoders evaluated by ``bench_ecc.py``.

Trains one ``SyndromeDecoder`` per code and backbone on the all-zero codeword (Eb/N0 uniform in
4-7 dB) and keeps it as a resumable checkpoint ``benchmarks/models/ecc/<code>-<backbone>.pt``
(the training settings and losses are stored in it, so the table can state the budget);
rerunning continues where a run stopped. Usage::

    python benchmarks/train_ecc.py [--codes bch-63-45,...] [--backbones gru,mlp,transformer]
                                   [--steps 20000] [--batch 512] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

from frugalml.ecc import get_code
from frugalml.ecc.neural import SyndromeDecoder, train_decoder
from frugalml.report.benches.ecc import CONFIG, MODEL_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", default=",".join(CONFIG[False]["codes"]))
    parser.add_argument("--backbones", default=",".join(CONFIG[False]["backbones"]))
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    for name in args.codes.split(","):
        code = get_code(name)
        for backbone in args.backbones.split(","):
            path = MODEL_DIR / f"{code.name}-{backbone}.pt"
            t0 = time.perf_counter()
            res = train_decoder(
                SyndromeDecoder(code, backbone, rng=0),
                steps=args.steps,
                batch=args.batch,
                lr=args.lr,
                checkpoint=path,
                checkpoint_every=200,
                device=args.device,
                rng=0,
                progress=lambda msg, f, p=path: print(f"{p.name}: {msg}", flush=True),
            )
            print(f"{path.name}: {res.summary()} ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
