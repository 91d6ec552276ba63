"""Neural syndrome-based decoders for binary linear codes.

The decoder follows Bennatan, Choukroun and Kisilev, "Deep Learning for Decoding of Linear
Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv:1802.04741). The channel output
``y`` (B, n) (BPSK, bit 0 -> +1, bit 1 -> -1) is reduced to

* the reliabilities ``|y|`` (n numbers) and
* the syndrome ``s = H hard(y)`` of the hard decisions (n - k bits, fed as ``1 - 2 s`` in
  {+1, -1}),

a vector of length ``2n - k``. A neural network maps it to ``n`` *flip logits* and the estimate
is ``x_hat = hard(y) xor (logit > 0)``. Since ``|y|`` and ``s`` do not depend on the transmitted
codeword (the noise's sign pattern relative to it is what matters), the error pattern
``x_hat xor c`` for the received word ``(1 - 2c) * y0`` is *exactly* the one for ``y0``: the
decoder's error rate is the same for every codeword, so training on the all-zero codeword
(``y = 1 + noise``, flip target ``hard(y)``) generalises to all of them (Theorem 1 of the paper;
tested exactly).

Three backbones map the ``2n - k`` features to ``n`` logits:

* ``"gru"`` - the paper's best design: a stacked GRU unrolled for ``steps`` time steps, fed
  the *same* input at every step; the top layer's last hidden state goes through a linear
  layer. The input projection of the first layer is computed once (the input does not change)
  and the first step skips the recurrent matmul (the initial state is zero).
* ``"mlp"`` - fully connected layers with ReLU.
* ``"transformer"`` - the Error Correction Code Transformer (ECCT) of Choukroun and Wolf,
  "Error Correction Code Transformer" (NeurIPS 2022, arXiv:2203.14966): ``2n - k`` tokens
  (the n reliabilities and the n - k syndrome values), each embedded as its scalar times a
  learned per-position vector ("scaled one-hot" embedding); pre-LayerNorm self-attention blocks
  whose attention is masked by the Tanner graph of ``H`` (see :func:`tanner_mask`); a final
  LayerNorm, a ``d -> 1`` projection per token and a ``(2n - k) -> n`` linear layer.

Permutation preprocessing (paper, Section IV): for a *cyclic* code every cyclic shift is an
automorphism, so the decoder may decode a shifted word and shift the answer back. For each
received word it picks the shift ``s`` that moves the ``n - k`` consecutive positions of least
total reliability to the canonical window ``[k, n)`` (the parity positions of the systematic
cyclic form; the ``k`` most reliable consecutive positions land on the information window),
decodes ``y_p[i] = y[(i + s) mod n]`` and un-shifts the logits. The shift depends on ``|y|``
only, so the codeword invariance above is kept. Cyclicity is checked algebraically
(``H (G shifted)^T = 0``); for other codes the option is a no-op.

Training (:func:`train_decoder`) draws, for each sample, an Eb/N0 uniformly in a range, sends the
all-zero codeword (``y = 1 + sigma z``) and minimises binary cross-entropy between the flip
logits and the hard decisions, with Adam, a cosine learning-rate schedule and gradient-norm
clipping. Noise is drawn on the CPU from a seeded ``torch.Generator`` (so CPU and CUDA runs see
the same data), and checkpoints hold the model, the optimiser, the step, the generator state and
the code's identity (name, n, k, SHA-256 of H), written atomically; a resumed run is bitwise
identical to an uninterrupted one on the CPU (tested).

Costs per decoded word (multiply-accumulates, ``m = 2n - k``, hidden ``h``, ``L`` layers,
``T`` steps): GRU ``~3 h (m + (2L - 1) T h)``; MLP ``~h (m + (L - 1) h + n)``; transformer
``~L m d (12 d + 2 m)``.

This module gathers the public names of the neural decoder, which live in :mod:`.backbones`
(the networks), :mod:`.syndrome` (:class:`SyndromeDecoder`), :mod:`.training`
(:func:`train_decoder`) and :mod:`.checkpoint` (save, load, :func:`pretrained`), so
``from frugalml.ecc.neural import ...`` keeps working.

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
