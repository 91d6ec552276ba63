"""Linear codes, the BPSK/AWGN channel, and syndrome-based neural decoders with BP and OSD
baselines.

Paper: Bennatan, Choukroun, Kisilev, "Deep Learning for Decoding of Linear Codes - A
Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741); the transformer backbone follows
Choukroun & Wolf, "Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966).

* :mod:`.gf2` - GF(2) row reduction, rank, null space, systematic form.
* :mod:`.linear_code` - :class:`BinaryLinearCode` (G and H over GF(2)); :mod:`.bch`,
  :mod:`.polar`, :mod:`.alist`, :mod:`.ldpc` - BCH (n = 31, 63, 127), polar (Bhattacharyya
  frozen set), LDPC from alist files or a regular construction; :mod:`.codes` -
  :func:`get_code` by name (``"bch-63-45"``, ``"bch-63-45-conway"``, ``"polar-64-32"``,
  ``"ldpc-wimax-576-288"``, ``"ldpc-<file>.alist"``, ``"ldpc-regular-n-dv-dc"``);
  :mod:`.wimax` - the IEEE 802.16e rate-1/2 LDPC codes.
* :mod:`.decoder` - the one call convention of every decoder, ``decoder(llr, *, sigma=None)
  -> Decoded``, the LLR sign convention, and :class:`HardDecision`.
* :mod:`.channel` - Eb/N0 to noise level, BPSK over AWGN, Monte-Carlo BER/FER (:func:`simulate`).
* :mod:`.bp` - belief propagation (sum-product, min-sum; flooding, vectorised over the batch).
* :mod:`.osd` - ordered-statistics decoding of order 0-3 (batched bit-packed elimination).
* :mod:`.cascade` - :class:`CascadeDecoder`: a second decoder for the first one's detected
  failures (the recommended GRU -> OSD-2).
* torch: :mod:`.backbones` (GRU, MLP, transformer), :mod:`.syndrome` (:class:`SyndromeDecoder`),
  :mod:`.training` (:func:`train_decoder`: zero-codeword training, resumable checkpoints),
  :mod:`.checkpoint` (:func:`save_decoder`, :func:`load_decoder`, :func:`pretrained`: the
  trained decoders shipped with frugalml); :mod:`.neural` gathers them.
* :mod:`.ensemble` (torch) - :class:`AutomorphismEnsemble`: decode automorphic images
  (Frobenius maps, preprocessing windows), keep the most likely output, optionally hand the
  detected failures to a fallback decoder such as OSD.
* :mod:`.list_decoder` (torch) - :class:`NeuralListDecoder`: Chase test patterns around the
  ensemble, stopped by an ML certificate; the strongest pure syndrome decoder.

The torch parts are imported lazily: ``import frugalml.ecc`` needs only NumPy. ``LinearCode`` is
the deprecated name of :class:`BinaryLinearCode` (until frugalml 0.3).
"""

from __future__ import annotations

from typing import Any

from .._deprecation import warn_renamed
from .._optional import lazy_exports
from .bp import BeliefPropagation
from .cascade import CascadeDecoder
from .channel import BERResult, bpsk_awgn, bpsk_llr, ebn0_to_sigma, simulate
from .codes import (
    bch_code,
    bch_equivalence,
    get_code,
    ldpc_from_alist,
    ldpc_regular,
    ldpc_wimax,
    polar_code,
    to_alist,
)
from .decoder import Decoded, Decoder, HardDecision
from .linear_code import BinaryLinearCode
from .osd import OrderedStatistics, hard_decision

_LAZY = {
    "AutomorphismEnsemble": "ensemble",
    "frobenius_automorphisms": "ensemble",
    "NeuralListDecoder": "list_decoder",
    "SyndromeDecoder": "syndrome",
    "train_decoder": "training",
    "save_decoder": "checkpoint",
    "load_decoder": "checkpoint",
    "pretrained": "checkpoint",
    "list_pretrained": "checkpoint",
}

__all__ = [
    "AutomorphismEnsemble",
    "BERResult",
    "BeliefPropagation",
    "BinaryLinearCode",
    "CascadeDecoder",
    "Decoded",
    "Decoder",
    "HardDecision",
    "NeuralListDecoder",
    "OrderedStatistics",
    "SyndromeDecoder",
    "bch_code",
    "bch_equivalence",
    "bpsk_awgn",
    "bpsk_llr",
    "ebn0_to_sigma",
    "frobenius_automorphisms",
    "get_code",
    "hard_decision",
    "ldpc_from_alist",
    "ldpc_regular",
    "ldpc_wimax",
    "list_pretrained",
    "load_decoder",
    "polar_code",
    "pretrained",
    "save_decoder",
    "simulate",
    "to_alist",
    "train_decoder",
]

_lazy_getattr = lazy_exports(__name__, _LAZY)


def __getattr__(name: str) -> Any:
    """The torch parts on first access; ``LinearCode``, the deprecated name of
    :class:`BinaryLinearCode`, with a warning."""
    if name == "LinearCode":
        warn_renamed("LinearCode", "BinaryLinearCode", "frugalml.ecc")
        return BinaryLinearCode
    return _lazy_getattr(name)
