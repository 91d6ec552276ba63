"""Test-local GF(2) references for the ECC tests, written without the library."""

from __future__ import annotations

import numpy as np

from frugalml.ecc.linear_code import BinaryLinearCode


def nullspace(m: np.ndarray) -> np.ndarray:
    """Rows spanning {x : m x = 0 mod 2}, by plain Gauss-Jordan elimination (test-local)."""
    a = np.array(m, dtype=np.uint8) % 2
    pivots: list[int] = []
    r = 0
    for c in range(a.shape[1]):
        hits = [i for i in range(r, a.shape[0]) if a[i, c]]
        if not hits:
            continue
        a[[r, hits[0]]] = a[[hits[0], r]]
        for i in range(a.shape[0]):
            if i != r and a[i, c]:
                a[i] ^= a[r]
        pivots.append(c)
        r += 1
    free = [c for c in range(a.shape[1]) if c not in pivots]
    basis = np.zeros((len(free), a.shape[1]), dtype=np.uint8)
    for j, f in enumerate(free):
        basis[j, f] = 1
        for i, p in enumerate(pivots):
            basis[j, p] = a[i, f]
    return basis


def code_from_h(name: str, h) -> BinaryLinearCode:
    h_arr = np.array(h, dtype=np.uint8)
    g = nullspace(h_arr)
    return BinaryLinearCode(name=name, n=h_arr.shape[1], k=len(g), H=h_arr, G=g)


def rank_ref(m: np.ndarray) -> int:
    """Rank over GF(2) with each row an int bitmask and a basis keyed by leading bit."""
    basis: dict[int, int] = {}
    for row in m.tolist():
        r = int("".join(str(int(b)) for b in row) or "0", 2)
        while r:
            lead = r.bit_length() - 1
            if lead in basis:
                r ^= basis[lead]
            else:
                basis[lead] = r
                break
    return len(basis)


def sigma_of(ebn0_db: float, rate: float) -> float:
    """Noise std of BPSK/AWGN at Eb/N0 (dB) for code rate ``rate`` (written out, not imported)."""
    return float(np.sqrt(1.0 / (2.0 * rate * 10 ** (ebn0_db / 10))))


def noisy(code: BinaryLinearCode, frames: int, ebn0_db: float, seed: int):
    """(codewords, y, sigma): random codewords sent over BPSK/AWGN."""
    rng = np.random.default_rng(seed)
    msg = rng.integers(0, 2, size=(frames, code.k))
    cw = ((msg @ code.G) % 2).astype(np.uint8)
    sigma = sigma_of(ebn0_db, code.k / code.n)
    y = (1.0 - 2.0 * cw) + sigma * rng.standard_normal((frames, code.n))
    return cw, y, sigma


def llr_of(y, sigma: float):
    """Channel LLRs 2 y / sigma^2, computed as the library's simulate does (y * (2 / sigma^2))."""
    return np.asarray(y) * (2.0 / sigma**2)


def zero_codeword_frames(code: BinaryLinearCode, ebn0_db: float, frames: int, seed: int):
    """(y float32 (frames, n), sigma): the all-zero codeword over BPSK/AWGN."""
    from frugalml.ecc.channel import ebn0_to_sigma

    sigma = ebn0_to_sigma(ebn0_db, code.rate)
    y = 1.0 + sigma * np.random.default_rng(seed).standard_normal((frames, code.n))
    return y.astype(np.float32), sigma
