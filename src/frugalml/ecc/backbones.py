"""The networks of the syndrome-based decoders: (B, 2n - k) features -> (B, n) flip logits.

The decoder of Bennatan, Choukroun and Kisilev, "Deep Learning for Decoding of Linear Codes - A
Syndrome-Based Approach" (ISIT 2018, arXiv:1802.04741) feeds a network the reliabilities and
the syndrome of the received word (:mod:`.syndrome`).

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

Costs per decoded word (multiply-accumulates, ``m = 2n - k``, hidden ``h``, ``L`` layers,
``T`` steps): GRU ``~3 h (m + (2L - 1) T h)``; MLP ``~h (m + (L - 1) h + n)``; transformer
``~L m d (12 d + 2 m)``.

Torch is required (extra ``ecc``); this module imports it when it is imported.
"""

from __future__ import annotations

import math

import numpy as np

from .._optional import require
from ..errors import InvalidInputError

require("torch", what="the neural syndrome decoder of frugalml.ecc", extra="ecc")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

__all__ = [
    "BACKBONES",
    "PRESETS",
    "ECCTBlock",
    "ECCTNet",
    "GRUNet",
    "MLPNet",
    "estimate_size",
    "preset_sizes",
    "tanner_mask",
]

BACKBONES = ("gru", "mlp", "transformer")
PRESETS = ("fast", "paper")


def tanner_mask(H: np.ndarray) -> np.ndarray:
    """ECCT attention mask from a parity-check matrix ``H`` (r, n): bool (n + r, n + r).

    Token order: the ``n`` bits, then the ``r`` checks. Entry ``[a, b]`` is True where token
    ``a`` may attend to token ``b``:

    * bit i - bit j: they share a check (``(H^T H)[i, j] > 0``);
    * bit i - check c and check c - bit i: ``H[c, i] = 1``;
    * check c - check d: they share a bit (``(H H^T)[c, d] > 0``);
    * every token attends to itself.

    The mask is symmetric. Cost O(n^2 r + r^2 n).
    """
    H = np.asarray(H)
    if H.ndim != 2:
        raise InvalidInputError(f"H must be 2-D, got shape {H.shape}")
    Hi = (H != 0).astype(np.int64)
    r, n = Hi.shape
    mask = np.zeros((n + r, n + r), dtype=bool)
    mask[:n, :n] = (Hi.T @ Hi) > 0
    mask[:n, n:] = Hi.T > 0
    mask[n:, :n] = Hi > 0
    mask[n:, n:] = (Hi @ Hi.T) > 0
    np.fill_diagonal(mask, True)
    return mask


class GRUNet(nn.Module):
    """Stacked GRU unrolled ``steps`` times on a constant input; linear read-out.

    Same gate equations as :class:`torch.nn.GRU`: ``r = sig(W_ir x + W_hr h)``,
    ``z = sig(W_iz x + W_hz h)``, ``c = tanh(W_ic x + r * (W_hc h))``,
    ``h' = (1 - z) c + z h`` (biases in both projections).
    """

    def __init__(self, m: int, n: int, hidden: int, layers: int, steps: int):
        super().__init__()
        self.hidden, self.layers, self.steps = hidden, layers, steps
        self.ih = nn.ModuleList(
            nn.Linear(m if i == 0 else hidden, 3 * hidden) for i in range(layers)
        )
        self.hh = nn.ModuleList(nn.Linear(hidden, 3 * hidden) for _ in range(layers))
        self.out = nn.Linear(hidden, n)
        bound = 1.0 / math.sqrt(hidden)  # torch.nn.GRU's initialisation
        for lin in [*self.ih, *self.hh]:
            nn.init.uniform_(lin.weight, -bound, bound)
            nn.init.uniform_(lin.bias, -bound, bound)

    @property
    def head(self) -> nn.Linear:
        return self.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Fused form of the GRU cell: the r/z pre-activations take both biases and the recurrent
        # product in one addmm; c = tanh(i_c + r * (W_hc h + b_hc)); h' = lerp(c, h, z).
        hd = self.hidden
        biases = []
        for ih, hh in zip(self.ih, self.hh, strict=True):
            zero = torch.zeros_like(hh.bias[2 * hd :])
            biases.append(ih.bias + torch.cat([hh.bias[: 2 * hd], zero]))
        gi0 = torch.addmm(biases[0], x, self.ih[0].weight.t())  # constant input: project once
        state: list[torch.Tensor | None] = [None] * self.layers
        inp = x
        for _ in range(self.steps):
            for i in range(self.layers):
                gi = gi0 if i == 0 else torch.addmm(biases[i], inp, self.ih[i].weight.t())
                w_hh, b_hh = self.hh[i].weight, self.hh[i].bias
                h = state[i]
                if h is None:  # zero initial state: no recurrent product, h' = (1 - z) c
                    rz = torch.sigmoid(gi[:, : 2 * hd])
                    r, z = rz[:, :hd], rz[:, hd:]
                    c = torch.tanh(torch.addcmul(gi[:, 2 * hd :], r, b_hh[2 * hd :]))
                    h = torch.addcmul(c, z, c, value=-1.0)
                else:
                    rz = torch.sigmoid(torch.addmm(gi[:, : 2 * hd], h, w_hh[: 2 * hd].t()))
                    r, z = rz[:, :hd], rz[:, hd:]
                    hc = torch.addmm(b_hh[2 * hd :], h, w_hh[2 * hd :].t())
                    c = torch.tanh(torch.addcmul(gi[:, 2 * hd :], r, hc))
                    h = torch.lerp(c, h, z)
                state[i] = h
                inp = h
        return self.out(inp)


class MLPNet(nn.Module):
    """Fully connected layers with ReLU, linear read-out."""

    def __init__(self, m: int, n: int, hidden: int, layers: int):
        super().__init__()
        mods: list[nn.Module] = []
        width = m
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        mods.append(nn.Linear(width, n))
        self.net = nn.Sequential(*mods)

    @property
    def head(self) -> nn.Linear:
        return self.net[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ECCTBlock(nn.Module):
    """Pre-LayerNorm self-attention block with the Tanner-graph mask (ECCT)."""

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d)
        self.ff = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        q, k, v = (
            self.qkv(self.norm1(x))
            .view(B, L, 3, self.heads, d // self.heads)
            .permute(2, 0, 3, 1, 4)
        )
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(att.transpose(1, 2).reshape(B, L, d))
        return x + self.ff(self.norm2(x))


class ECCTNet(nn.Module):
    """Error Correction Code Transformer: scaled one-hot embedding, masked blocks, read-out."""

    def __init__(self, H: np.ndarray, d: int, layers: int, heads: int):
        super().__init__()
        r, n = H.shape
        m = n + r
        self.embed = nn.Parameter(torch.randn(m, d))
        self.blocks = nn.ModuleList(ECCTBlock(d, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.to_scalar = nn.Linear(d, 1)
        self.out = nn.Linear(m, n)
        self.register_buffer("mask", torch.from_numpy(tanner_mask(H)), persistent=False)

    @property
    def head(self) -> nn.Linear:
        return self.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.unsqueeze(-1) * self.embed  # (B, m, d)
        for block in self.blocks:
            t = block(t, self.mask)
        return self.out(self.to_scalar(self.norm(t)).squeeze(-1))


def preset_sizes(backbone: str, preset: str, n: int, k: int) -> dict[str, int]:
    """Default sizes (``hidden``, ``layers``, and ``steps`` or ``heads``) of a preset."""
    m = 2 * n - k
    if backbone == "gru":
        if preset == "paper":  # the paper: 5 layers, hidden 5 (2n - k), T = 5
            return {"hidden": 5 * m, "layers": 5, "steps": 5}
        return {"hidden": m, "layers": 2, "steps": 3}
    if backbone == "mlp":
        if preset == "paper":
            return {"hidden": 5 * m, "layers": 5}
        return {"hidden": 2 * m, "layers": 3}
    if preset == "paper":  # ECCT's largest setting: N = 6, d = 128, 8 heads
        return {"hidden": 128, "layers": 6, "heads": 8}
    return {"hidden": 32, "layers": 2, "heads": 4}


def estimate_size(backbone: str, sizes: dict[str, int], n: int, k: int) -> tuple[int, int]:
    """``(parameters, float32 activations kept for backward per training word)`` of a decoder
    of these sizes, from its layer shapes (the memory guards' estimate, within ~2x)."""
    m, h, layers = 2 * n - k, sizes["hidden"], sizes["layers"]
    if backbone == "gru":
        params = 3 * h * (m + h) + (layers - 1) * 3 * h * 2 * h + 6 * h * layers + h * n + n
        acts = sizes["steps"] * layers * 12 * h + m + n
    elif backbone == "mlp":
        params = m * h + (layers - 1) * h * h + h * (layers + n) + n
        acts = 2 * h * layers + m + n
    else:  # transformer: 12 d^2 per block, attention L^2 per head
        params = layers * (12 * h * h + 13 * h) + m * h + m * n + h + 1
        acts = layers * (16 * m * h + 2 * sizes["heads"] * m * m) + m * h
    return params, acts
