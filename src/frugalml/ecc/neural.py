"""Neural syndrome-based decoders for binary linear codes: their public names in one place.

The decoder of Bennatan, Choukroun and Kisilev, "Deep Learning for Decoding of Linear Codes - A
Syndrome-Based Approach" (ISIT 2018, arXiv:1802.04741) feeds a network the reliabilities
``|y|`` and the syndrome of the hard decisions of the received word and flips the bits whose
logit is positive. Its parts, each documented (method, costs) in its own module:

* :mod:`.syndrome` - :class:`SyndromeDecoder`: the features, the cyclic-shift preprocessing
  (paper, Section IV), the calling convention and the cost per decoded word;
* :mod:`.backbones` - the networks: a stacked GRU (the paper's best), an MLP, and the Error
  Correction Code Transformer of Choukroun and Wolf (NeurIPS 2022, arXiv:2203.14966);
* :mod:`.training` - :func:`train_decoder` on the all-zero codeword;
* :mod:`.checkpoint` - save, load, :func:`pretrained`.

This module re-exports them, so ``from frugalml.ecc.neural import ...`` keeps working.

Torch is required (extra ``ecc``); this module imports it when it is imported.
"""

from __future__ import annotations

from .backbones import BACKBONES, PRESETS, tanner_mask
from .checkpoint import list_pretrained, load_decoder, pretrained, save_decoder
from .linear_code import code_identity, is_cyclic
from .syndrome import SyndromeDecoder
from .training import TrainResult, train_decoder

__all__ = [
    "BACKBONES",
    "PRESETS",
    "SyndromeDecoder",
    "TrainResult",
    "code_identity",
    "is_cyclic",
    "list_pretrained",
    "load_decoder",
    "pretrained",
    "save_decoder",
    "tanner_mask",
    "train_decoder",
]
