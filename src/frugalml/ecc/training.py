"""Training of the syndrome-based neural decoders on the all-zero codeword.

The decoder and its training follow Bennatan, Choukroun and Kisilev, "Deep Learning for Decoding
of Linear Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv:1802.04741): since the decoder's
error rate is the same for every codeword, training on the all-zero one generalises to all.

Training (:func:`train_decoder`) draws, for each sample, an Eb/N0 uniformly in a range, sends the
all-zero codeword (``y = 1 + sigma z``) and minimises binary cross-entropy between the flip
logits and the hard decisions, with Adam, a cosine learning-rate schedule and gradient-norm
clipping. Noise is drawn on the CPU from a seeded ``torch.Generator`` (so CPU and CUDA runs see
the same data), and checkpoints hold the model, the optimiser, the step, the generator state and
the code's identity (name, n, k, SHA-256 of H), written atomically; a resumed run is bitwise
identical to an uninterrupted one on the CPU (tested).

Torch is required (extra ``ecc``); this module imports it when it is imported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_write_bytes
from .._optional import require
from .._resources import check_memory
from .._results import ResultRepr
from .._validate import RngLike, check_int, check_nonnegative_float, check_positive_float
from ..errors import InvalidInputError
from ..progress import Progress
from .channel import ebn0_to_sigma
from .linear_code import code_identity

require("torch", what="the neural syndrome decoder of frugalml.ecc", extra="ecc")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from .backbones import estimate_size  # noqa: E402
from .checkpoint import (  # noqa: E402
    CHECKPOINT_FORMAT,
    check_same_code,
    check_same_config,
    code_data,
    read_decoder_file,
    serialise,
)
from .syndrome import SyndromeDecoder, check_device, torch_seed  # noqa: E402

__all__ = ["TrainResult", "train_decoder"]


@dataclass(frozen=True, repr=False)
class TrainResult(ResultRepr):
    """Outcome of :func:`train_decoder`.

    ``losses`` holds the training loss of every step from 1 to ``steps`` (restored from the
    checkpoint for the steps done before a resume); ``seconds`` is this call's wall time.
    """

    steps: int
    batch: int
    lr: float
    ebn0_range: tuple[float, float]
    losses: tuple[float, ...]
    seconds: float
    resumed_from: int
    seed: int
    device: str
    checkpoint: str | None

    @property
    def final_loss(self) -> float:
        """Mean loss over the last ``min(50, steps)`` steps."""
        tail = self.losses[-50:]
        return float(np.mean(tail)) if tail else float("nan")

    def summary(self) -> str:
        resumed = f", resumed from step {self.resumed_from}" if self.resumed_from else ""
        return (
            f"trained {self.steps} steps x batch {self.batch} at Eb/N0 "
            f"{self.ebn0_range[0]:g}-{self.ebn0_range[1]:g} dB on {self.device}: final loss "
            f"{self.final_loss:.5f} (lr {self.lr:g}, seed {self.seed}){resumed}; "
            f"{self.seconds:.3g}s"
        )


def _check_ebn0_range(ebn0_range: Sequence[float], rate: float) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in ebn0_range)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(
            f"ebn0_range must be a pair (low, high) in dB, got {ebn0_range!r}"
        ) from exc
    if not lo <= hi:
        raise InvalidInputError(f"ebn0_range must have low <= high, got {ebn0_range!r}")
    ebn0_to_sigma(lo, rate)  # validates the range (finite, in [-10, 30] dB)
    ebn0_to_sigma(hi, rate)
    return lo, hi


def _cosine(step: int, steps: int, lr: float, min_lr: float) -> float:
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + math.cos(math.pi * step / steps))


def train_decoder(
    decoder: SyndromeDecoder,
    *,
    ebn0_range: Sequence[float] = (4.0, 7.0),
    batch: int = 512,
    steps: int = 5000,
    lr: float = 2e-3,
    min_lr: float = 1e-5,
    weight_decay: float = 0.0,
    grad_clip: float = 1.0,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 500,
    resume: bool = True,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
    rng: RngLike = 0,
) -> TrainResult:
    """Train ``decoder`` in place on the all-zero codeword over an Eb/N0 range.

    Each step draws ``batch`` words: Eb/N0 ``~ U(ebn0_range)`` dB per word,
    ``sigma = sqrt(1 / (2 R 10^(EbN0/10)))``, ``y = 1 + sigma z`` with ``z ~ N(0, I_n)``; the
    loss is the mean binary cross-entropy between the flip logits and ``hard(y)`` (the bits the
    noise flipped). Adam (``weight_decay`` as L2), learning rate
    ``min_lr + (lr - min_lr)(1 + cos(pi t / steps)) / 2`` at step ``t``, gradient norm clipped
    to ``grad_clip`` (0 disables). Noise comes from a CPU ``torch.Generator`` seeded from
    ``rng`` (``None``: a fresh seed, or the checkpoint's when resuming). The model weights are
    the decoder's as passed (seeded by its own ``rng``) or the checkpoint's.

    With ``checkpoint`` set, the state (model, optimiser, step, generator, losses, code
    identity, architecture and training settings) is written atomically every
    ``checkpoint_every`` steps and at the end; with ``resume`` and an existing file, training
    continues from it. A checkpoint for another code, another architecture or other training
    settings raises :class:`~frugalml.errors.InvalidInputError` (use ``resume=False`` or a new
    path to start over); a resumed run reproduces the uninterrupted one exactly on the CPU.
    ``progress(message, fraction)`` is called about 100 times (after that step's checkpoint,
    so an exception raised there interrupts a resumable run). The decoder is left on
    ``device``, in eval mode. Cost per step: ~3x a forward pass on ``batch`` words.
    """
    if not isinstance(decoder, SyndromeDecoder):
        raise InvalidInputError(f"decoder must be a SyndromeDecoder, got {type(decoder).__name__}")
    rate = decoder.k / decoder.n
    lo, hi = _check_ebn0_range(ebn0_range, rate)
    batch = check_int(batch, "batch", low=1)
    _, per_word = estimate_size(decoder.backbone, decoder.config, decoder.n, decoder.k)
    check_memory(
        3 * 4 * per_word * batch,  # activations + their gradients, float32, with slack
        f"a training step of {batch} words through the {decoder.backbone} decoder",
        fix="lower --batch",
    )
    steps = check_int(steps, "steps", low=1)
    lr = check_positive_float(lr, "lr")
    min_lr = check_nonnegative_float(min_lr, "min_lr")
    if min_lr > lr:
        raise InvalidInputError(f"min_lr ({min_lr}) must not exceed lr ({lr})")
    weight_decay = check_nonnegative_float(weight_decay, "weight_decay")
    grad_clip = check_nonnegative_float(grad_clip, "grad_clip")
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", low=1)
    dev = check_device(device)
    ckpt_path = None if checkpoint is None else Path(checkpoint)
    resuming = ckpt_path is not None and resume and ckpt_path.exists()
    state = read_decoder_file(ckpt_path, map_location=dev) if resuming else None
    if state is not None and rng is None:  # no seed given: continue with the file's
        seed = torch_seed(state.get("settings", {}).get("seed", 0))
    else:
        seed = torch_seed(rng)
    settings = {
        "ebn0_range": [lo, hi],
        "batch": batch,
        "steps": steps,
        "lr": lr,
        "min_lr": min_lr,
        "weight_decay": weight_decay,
        "grad_clip": grad_clip,
        "seed": seed,
    }
    identity = code_identity(decoder.code)

    decoder.to(dev)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    losses: list[float] = []
    start = 0
    if state is not None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise InvalidInputError(f"{ckpt_path} is a saved model, not a training checkpoint")
        check_same_code(state["code"], decoder.code, ckpt_path)
        check_same_config(state["config"], decoder, ckpt_path)
        if state["settings"] != settings:
            diff = [k for k in settings if state["settings"].get(k) != settings[k]]
            raise InvalidInputError(
                f"{ckpt_path} was written with other training settings "
                f"({', '.join(diff)}); pass the same ones, resume=False, or another path"
            )
        decoder.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        gen.set_state(state["rng_state"].cpu())
        start = int(state["step"])
        losses = [float(v) for v in state["losses"].tolist()]

    pending: list[torch.Tensor] = []  # losses not yet read back (no device sync every step)

    def flush() -> None:
        if pending:
            losses.extend(torch.stack(pending).double().cpu().tolist())
            pending.clear()

    def save(step: int) -> None:
        if ckpt_path is None:
            return
        flush()
        payload = {
            "format": CHECKPOINT_FORMAT,
            "code": identity,
            "code_data": code_data(decoder.code),
            "config": dict(decoder.config),
            "settings": settings,
            "model": {k: v.detach().cpu() for k, v in decoder.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "rng_state": gen.get_state(),
            "step": step,
            "losses": torch.tensor(losses, dtype=torch.float64),
        }
        atomic_write_bytes(ckpt_path, serialise(payload))

    report_every = max(1, steps // 100)
    t0 = time.perf_counter()
    decoder.train()
    ten = math.log(10.0)
    for step in range(start + 1, steps + 1):
        for group in optimizer.param_groups:
            group["lr"] = _cosine(step - 1, steps, lr, min_lr)
        ebn0 = lo + (hi - lo) * torch.rand(batch, generator=gen)
        sigma = torch.sqrt(1.0 / (2.0 * rate * torch.exp(ebn0 * (ten / 10.0))))
        noise = torch.randn(batch, decoder.n, generator=gen)
        y = (1.0 + sigma.unsqueeze(1) * noise).to(dev, non_blocking=True)
        target = (y < 0).to(y.dtype)
        logits = decoder.logits(y)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(decoder.parameters(), grad_clip)
        optimizer.step()
        pending.append(loss.detach())
        if step % checkpoint_every == 0 or step == steps:
            save(step)
        if progress is not None and (step % report_every == 0 or step == steps):
            flush()
            progress(f"step {step}/{steps}: loss {losses[-1]:.5f}", step / steps)
    flush()
    decoder.eval()
    if start >= steps and progress is not None:
        progress(f"checkpoint {ckpt_path} already holds all {steps} steps", 1.0)
    return TrainResult(
        steps=steps,
        batch=batch,
        lr=lr,
        ebn0_range=(lo, hi),
        losses=tuple(losses),
        seconds=time.perf_counter() - t0,
        resumed_from=start,
        seed=seed,
        device=str(dev),
        checkpoint=None if ckpt_path is None else str(ckpt_path),
    )
