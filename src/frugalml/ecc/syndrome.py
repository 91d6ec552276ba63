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

The network (:mod:`.backbones`) is a GRU (the paper's best), an MLP, or the Error Correction Code
Transformer of Choukroun & Wolf (NeurIPS 2022, arXiv:2203.14966).

Permutation preprocessing (paper, Section IV): for a *cyclic* code every cyclic shift is an
automorphism, so the decoder may decode a shifted word and shift the answer back. For each
received word it picks the shift ``s`` that moves the ``n - k`` consecutive positions of least
total reliability to the canonical window ``[k, n)`` (the parity positions of the systematic
cyclic form; the ``k`` most reliable consecutive positions land on the information window),
decodes ``y_p[i] = y[(i + s) mod n]`` and un-shifts the logits. The shift depends on ``|y|``
only, so the codeword invariance above is kept. Cyclicity is checked algebraically
(``H (G shifted)^T = 0``); for other codes the option is a no-op.

Calling convention (:mod:`frugalml.ecc.decoder`): ``decoder(llr, sigma=sigma)`` decodes channel
LLRs (..., n) into a :class:`~frugalml.ecc.decoder.Decoded`; the network sees the channel
outputs ``y = llr / (2 / sigma^2)`` it was trained on. :meth:`SyndromeDecoder.logits` is the
network's forward pass (flip logits), used for training.

Costs per decoded word (multiply-accumulates, ``m = 2n - k``, hidden ``h``, ``L`` layers,
``T`` steps): GRU ``~3 h (m + (2L - 1) T h)``; MLP ``~h (m + (L - 1) h + n)``; transformer
``~L m d (12 d + 2 m)``.

Torch is required (extra ``ecc``); this module imports it when it is imported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._deprecation import warn_renamed
from .._device import check_device as _check_device
from .._optional import require
from .._resources import check_memory
from .._validate import (
    RngLike,
    check_array,
    check_choice,
    check_int,
    check_probability,
    seed_from_rng,
)
from ..errors import InvalidInputError
from .decoder import Decoded, check_llr, llr_scale
from .linear_code import BinaryLinearCode, code_parameters, is_cyclic

require("torch", what="the neural syndrome decoder of frugalml.ecc", extra="ecc")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from .backbones import (  # noqa: E402
    BACKBONES,
    PRESETS,
    ECCTNet,
    GRUNet,
    MLPNet,
    estimate_size,
    preset_sizes,
)

__all__ = ["SyndromeDecoder", "check_device", "torch_seed"]


def torch_seed(rng: RngLike, name: str = "rng") -> int:
    """An integer seed for torch from ``rng`` (:func:`frugalml._validate.seed_from_rng`: an
    int in [0, 2**63) is used as is)."""
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return check_int(rng, name, low=0, high=2**63 - 1)
    return seed_from_rng(rng)


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a :class:`torch.device` of type cpu or an available cuda
    (:func:`frugalml._device.check_device`)."""
    return _check_device(device)


class SyndromeDecoder(nn.Module):
    """Syndrome-based neural decoder for a binary linear code (``nn.Module``).

    Parameters
    ----------
    code:
        A :class:`~frugalml.ecc.linear_code.BinaryLinearCode` (uses ``n``, ``k``, ``H``,
        ``name``, ``G``).
    backbone:
        ``"gru"`` (the paper's best; default), ``"mlp"`` or ``"transformer"`` (ECCT).
    preset:
        Default sizes. ``"fast"`` (default) aims at high CPU throughput; with ``m = 2n - k``:
        GRU ``hidden=m, layers=2, steps=3``; MLP ``hidden=2m, layers=3``; transformer
        ``d=32, layers=2, heads=4``. ``"paper"``: GRU ``hidden=5m, layers=5, steps=5`` (the
        paper's design), MLP ``hidden=5m, layers=5``, transformer ``d=128, layers=6,
        heads=8`` (ECCT's largest).
    hidden, layers, steps, heads:
        Override the preset: hidden size (the model dimension ``d`` for the transformer),
        number of layers, GRU unroll steps ``T`` (GRU only), attention heads (transformer only;
        must divide ``hidden``).
    permute:
        Cyclic-shift preprocessing for cyclic codes (see the module docstring); ignored for
        other codes. :attr:`permute` holds the effective setting.
    flip_prior:
        The read-out bias starts at ``log(p / (1 - p))`` for this ``p`` (the rough rate of
        hard-decision errors at the training SNRs) instead of 0: from logits of 0 the GRU
        drifts into saturated "never flip" states that it leaves only after thousands of
        steps (measured: loss 0.060 vs 0.018 after 1000 steps on BCH(31, 21)).
    rng:
        Seed (or generator) for the parameter initialisation; torch's global RNG is untouched.
    device:
        Where the weights live (``"cpu"`` default, ``"cuda[:i]"``); initialised on the CPU
        from ``rng`` and then moved, so the weights do not depend on the device.

    ``decoder(llr, sigma=sigma)`` decodes channel LLRs (..., n) (NumPy or a tensor) into a
    :class:`~frugalml.ecc.decoder.Decoded` (the convention of :mod:`frugalml.ecc.decoder`);
    :meth:`decode_received` decodes channel outputs ``y`` directly; :meth:`logits` (the
    module's forward pass) maps a float tensor (B, n) of channel outputs to flip logits (B, n)
    in the code's bit order. The earlier ``decoder(y_tensor)`` for logits and
    :meth:`decode` for bits are deprecated.
    """

    def __init__(
        self,
        code: BinaryLinearCode,
        backbone: str = "gru",
        *,
        preset: str = "fast",
        hidden: int | None = None,
        layers: int | None = None,
        steps: int | None = None,
        heads: int | None = None,
        permute: bool = True,
        flip_prior: float = 0.02,
        rng: RngLike = 0,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        n, k, H = code_parameters(code)
        dev = check_device(device)
        backbone = check_choice(backbone, "backbone", BACKBONES)
        preset = check_choice(preset, "preset", PRESETS)
        flip_prior = check_probability(flip_prior, "flip_prior")
        if not 0.0 < flip_prior < 1.0:
            raise InvalidInputError(f"flip_prior must lie in (0, 1), got {flip_prior}")
        sizes = preset_sizes(backbone, preset, n, k)
        if hidden is not None:
            sizes["hidden"] = check_int(hidden, "hidden", low=1)
        if layers is not None:
            sizes["layers"] = check_int(layers, "layers", low=1)
        if steps is not None:
            if backbone != "gru":
                raise InvalidInputError(
                    f"steps applies to the 'gru' backbone only, not {backbone!r}"
                )
            sizes["steps"] = check_int(steps, "steps", low=1)
        if heads is not None:
            if backbone != "transformer":
                raise InvalidInputError(
                    f"heads applies to the 'transformer' backbone only, not {backbone!r}"
                )
            sizes["heads"] = check_int(heads, "heads", low=1)
        if backbone == "transformer" and sizes["hidden"] % sizes["heads"]:
            raise InvalidInputError(
                f"hidden (model dimension {sizes['hidden']}) must be a multiple of heads "
                f"({sizes['heads']})"
            )
        params, _ = estimate_size(backbone, sizes, n, k)
        check_memory(
            16 * params,  # weights, gradients and Adam's two moments, float32
            f"a {backbone} decoder with {params:.3g} parameters (hidden {sizes['hidden']}, "
            f"{sizes['layers']} layers) and its training state",
            fix="lower --hidden / --layers",
        )
        self.code = code
        self.n, self.k, self.m = n, k, 2 * n - k
        self.backbone = backbone
        self.permute = bool(permute) and is_cyclic(code)
        self.config: dict[str, Any] = {
            "backbone": backbone,
            "preset": preset,
            **sizes,
            "permute": bool(permute),
        }
        self.register_buffer(
            "_ht", torch.from_numpy(H.T.astype(np.float32)).contiguous(), persistent=False
        )
        self.register_buffer("_arange", torch.arange(n), persistent=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed(rng))
            if backbone == "gru":
                self.net: nn.Module = GRUNet(
                    self.m, n, sizes["hidden"], sizes["layers"], sizes["steps"]
                )
            elif backbone == "mlp":
                self.net = MLPNet(self.m, n, sizes["hidden"], sizes["layers"])
            else:
                self.net = ECCTNet(H, sizes["hidden"], sizes["layers"], sizes["heads"])
        # prior-probability initialisation of the read-out bias: logits start at the log-odds
        # of a typical flip rate instead of 0 (p = 1/2), which otherwise drives the net into
        # saturated "never flip" states that the GRU is slow to leave
        with torch.no_grad():
            self.net.head.bias.fill_(math.log(flip_prior / (1.0 - flip_prior)))
        if dev.type != "cpu":
            self.to(dev)

    # ---- preprocessing ---------------------------------------------------------------------

    def shift_index(self, reliability: torch.Tensor, window: int = 0) -> torch.Tensor:
        """Gather index (B, n) of the cyclic-shift preprocessing: ``y_p = y.gather(1, idx)``.

        ``idx[b, i] = (i + s_b) mod n`` where ``s_b`` moves the ``n - k`` consecutive positions
        (cyclically) of least total ``reliability`` to ``[k, n)``; ties go to the first window.
        ``window = w > 0`` takes the window of rank ``w`` (0 = least reliable) instead, which
        gives an automorphism ensemble another member (:mod:`frugalml.ecc.ensemble`).
        Cost O(n (n - k)) per word (plus a sort of the n window sums when ``window > 0``).
        """
        n, r = self.n, self.n - self.k
        window = check_int(window, "window", low=0, high=n - 1)
        ext = torch.cat([reliability, reliability[:, : r - 1]], dim=1)
        sums = ext.unfold(1, r, 1).sum(-1)  # (B, n): window starting at t
        if window == 0:
            t = sums.argmin(dim=1)
        else:
            t = torch.argsort(sums, dim=1, stable=True)[:, window]
        s = torch.remainder(t - self.k, n)
        return torch.remainder(self._arange + s.unsqueeze(1), n)

    def features(
        self, y: torch.Tensor, window: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Network input ``[|y_p|, 1 - 2 syndrome(hard(y_p))]`` (B, 2n - k) and the gather
        index of the shift (None without permutation); ``y_p`` is the shifted ``y`` (shifted
        by the window of rank ``window``, see :meth:`shift_index`)."""
        a = y.abs()
        hard = (y < 0).to(y.dtype)
        idx = None
        if self.permute:
            idx = self.shift_index(a, window)
            a = a.gather(1, idx)
            hard = hard.gather(1, idx)
        syn = torch.remainder(hard @ self._ht.to(y.dtype), 2.0)  # integer sums: exact
        return torch.cat([a, 1.0 - 2.0 * syn], dim=1), idx

    def forward(self, y: torch.Tensor, window: int = 0) -> torch.Tensor:
        """Flip logits (B, n), in the code's bit order, for channel outputs ``y`` (B, n).

        ``window`` picks the shift of the preprocessing (rank of the least reliable window,
        0 = the canonical one the decoder is trained with; ignored without permutation)."""
        feats, idx = self.features(y.to(self._ht.dtype), window)
        logits = self.net(feats)
        if idx is None:
            return logits
        out = torch.empty_like(logits)
        return out.scatter_(1, idx, logits)  # out[b, idx[b, i]] = logits[b, i]

    def logits(self, y: torch.Tensor, window: int = 0) -> torch.Tensor:
        """Flip logits (B, n) for channel outputs ``y`` (B, n): the module's forward pass
        (hooks included), see :meth:`forward`."""
        return nn.Module.__call__(self, y, window)

    # ---- decoding --------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``decoder(llr, *, sigma, window=0, batch_size=4096) -> Decoded``.

        Decodes channel LLRs (..., n) (NumPy or a tensor, :mod:`frugalml.ecc.decoder`'s
        convention): the network sees ``y = llr / (2 / sigma^2)``, so ``sigma`` (the noise
        standard deviation the LLRs were computed with) is required. ``window`` and
        ``batch_size`` are those of :meth:`decode_received`. Called on a tensor without
        ``sigma`` it is the deprecated ``nn.Module`` call: flip logits of channel outputs (use
        :meth:`logits`).
        """
        if "sigma" in kwargs:
            return self._decode_llr(*args, **kwargs)
        if args and isinstance(args[0], torch.Tensor):
            warn_renamed("decoder(y) for flip logits", "decoder.logits(y)", "SyndromeDecoder")
            return self.logits(*args, **kwargs)
        raise InvalidInputError(
            "call decoder(llr, sigma=sigma): the neural decoder needs the channel's noise "
            "standard deviation to turn LLRs into the channel outputs it was trained on"
        )

    def _decode_llr(
        self, llr: Any, *, sigma: float | None, window: int = 0, batch_size: int = 4096
    ) -> Decoded:
        if sigma is None:
            raise InvalidInputError(
                "sigma is required: the neural decoder turns LLRs into channel outputs "
                "y = llr / (2 / sigma^2)"
            )
        scale = llr_scale(sigma)
        if isinstance(llr, torch.Tensor):
            n = self.n
            if llr.ndim == 0 or llr.shape[-1] != n:
                raise InvalidInputError(
                    f"llr must have shape (..., n) with n = {n}, got {tuple(llr.shape)}"
                )
            lead = tuple(int(d) for d in llr.shape[:-1])
            y = (llr.detach().reshape(-1, n).double() / scale).float()
            if not bool(torch.isfinite(y).all()):
                raise InvalidInputError("llr contains NaN or inf value(s); clean the input")
        else:
            arr, lead = check_llr(llr, self.n)
            y = np.ascontiguousarray(arr / scale, dtype=np.float32)
        return self.decode_received(y, window=window, batch_size=batch_size, lead=lead)

    def decode_received(
        self,
        y: Any,
        *,
        window: int = 0,
        batch_size: int = 4096,
        lead: tuple[int, ...] | None = None,
    ) -> Decoded:
        """Decode channel outputs ``y`` (B, n) or (n,) (NumPy or a tensor; the network's own
        domain, see the module docstring) into a :class:`~frugalml.ecc.decoder.Decoded`.

        ``x_hat = hard(y) xor (logits > 0)``, in batches of ``batch_size`` under
        ``torch.inference_mode`` on the module's device, with the preprocessing shift of rank
        ``window`` (see :meth:`forward`); ``valid`` is the syndrome check of ``x_hat``.
        ``lead`` reshapes the result (its product must be B). Cost per word: the network's
        (see the module docstring) plus O(n (n - k)) for the two syndromes.
        """
        batch_size = check_int(batch_size, "batch_size", low=1)
        window = check_int(window, "window", low=0, high=self.n - 1)
        if isinstance(y, torch.Tensor):
            if y.ndim not in (1, 2) or y.shape[-1] != self.n:
                raise InvalidInputError(
                    f"y must have shape (n,) or (B, n) with n = {self.n}, got {tuple(y.shape)}"
                )
            single = y.ndim == 1
            yt_all = y.detach().reshape(-1, self.n).float()
        else:
            arr = check_array(y, "y", ndim=(1, 2), dtype=np.float32, min_size=0)
            single = arr.ndim == 1
            arr = arr.reshape(1, -1) if single else arr
            if arr.shape[1] != self.n:
                raise InvalidInputError(
                    f"y must have {self.n} columns (code length), got {arr.shape}"
                )
            yt_all = torch.from_numpy(np.ascontiguousarray(arr))
        rows = yt_all.shape[0]
        out = np.empty((rows, self.n), dtype=np.uint8)
        valid = np.empty(rows, dtype=bool)
        device = self.device
        with torch.inference_mode():
            for start in range(0, rows, batch_size):
                yt = yt_all[start : start + batch_size].to(device)
                bits = (yt < 0) ^ (self.logits(yt, window) > 0)
                syn = torch.remainder(bits.to(self._ht.dtype) @ self._ht, 2.0).any(dim=1)
                out[start : start + batch_size] = bits.to(torch.uint8).cpu().numpy()
                valid[start : start + batch_size] = (~syn).cpu().numpy()
        if lead is None:
            lead = () if single else (rows,)
        return Decoded.from_flat(out, valid, lead)

    def decode(self, y: np.ndarray, *, batch_size: int = 4096, window: int = 0) -> np.ndarray:
        """Deprecated: ``decode_received(y).bits`` (or ``decoder(llr, sigma=sigma).bits``).

        Decodes channel outputs ``y`` (B, n) or (n,) to bits uint8 of the same shape.
        """
        warn_renamed("decode(y)", "decoder(llr, sigma=sigma)", "SyndromeDecoder")
        return self.decode_received(y, batch_size=batch_size, window=window).bits

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def summary(self) -> str:
        cfg = self.config
        sizes = ", ".join(
            f"{key}={cfg[key]}" for key in ("hidden", "layers", "steps", "heads") if key in cfg
        )
        name = getattr(self.code, "name", "")
        return (
            f"SyndromeDecoder[{self.backbone}, preset {cfg['preset']}] for {name} "
            f"(n={self.n}, k={self.k}): {sizes}; {self.parameter_count()} parameters; "
            f"cyclic-shift preprocessing {'on' if self.permute else 'off'}"
        )
