"""Linear codes, the BPSK/AWGN channel, and syndrome-based neural decoders with BP and OSD
baselines.

Paper: Bennatan, Choukroun, Kisilev, "Deep Learning for Decoding of Linear Codes - A
Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741); the transformer backbone follows
Choukroun & Wolf, "Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966).

* :mod:`.gf2` — GF(2) row reduction, rank, null space, systematic form.
* :mod:`.codes` — :class:`LinearCode`; BCH (n = 31, 63, 127), polar (Bhattacharyya frozen
  set), LDPC from alist files or a regular construction; :func:`get_code` by name
  (``"bch-63-45"``, ``"polar-64-32"``, ``"ldpc-<file>.alist"``, ``"ldpc-regular-n-dv-dc"``).
* :mod:`.channel` — Eb/N0 to noise level, BPSK over AWGN, Monte-Carlo BER/FER (:func:`simulate`).
* :mod:`.bp` — belief propagation (sum-product, min-sum; flooding, vectorised over the batch).
* :mod:`.osd` — ordered-statistics decoding of order 0-3 (batched bit-packed elimination).
* :mod:`.neural` (torch) — :class:`SyndromeDecoder` (GRU, MLP, transformer) and
  :func:`train_decoder` (zero-codeword training, resumable checkpoints).
* :mod:`.ensemble` (torch) — :class:`AutomorphismEnsemble`: decode automorphic images
  (Frobenius maps, preprocessing windows), keep the most likely output, optionally hand the
  detected failures to a fallback decoder such as OSD.

The torch parts are imported lazily: ``import frugalml.ecc`` needs only NumPy.
"""

from __future__ import annotations

from .._optional import lazy_exports
from .bp import BeliefPropagation
from .channel import BERResult, bpsk_awgn, bpsk_llr, ebn0_to_sigma, simulate
from .codes import (
    LinearCode,
    bch_code,
    get_code,
    ldpc_from_alist,
    ldpc_regular,
    polar_code,
    to_alist,
)
from .osd import OrderedStatistics, hard_decision

_LAZY = {
    "AutomorphismEnsemble": "ensemble",
    "frobenius_automorphisms": "ensemble",
    "SyndromeDecoder": "neural",
    "train_decoder": "neural",
    "save_decoder": "neural",
    "load_decoder": "neural",
}

__all__ = [
    "AutomorphismEnsemble",
    "BERResult",
    "BeliefPropagation",
    "LinearCode",
    "OrderedStatistics",
    "SyndromeDecoder",
    "bch_code",
    "bpsk_awgn",
    "bpsk_llr",
    "ebn0_to_sigma",
    "frobenius_automorphisms",
    "get_code",
    "hard_decision",
    "ldpc_from_alist",
    "ldpc_regular",
    "load_decoder",
    "polar_code",
    "save_decoder",
    "simulate",
    "to_alist",
    "train_decoder",
]


__getattr__ = lazy_exports(__name__, _LAZY)
