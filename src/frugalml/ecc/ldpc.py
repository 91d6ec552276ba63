"""Random (dv, dc)-regular LDPC codes (Gallager's regular ensemble) with 4-cycles removed.

LDPC codes are a test bed of Bennatan, Choukroun & Kisilev, "Deep Learning for Decoding of
Linear Codes - A Syndrome-Based Approach" (ISIT 2018, arXiv 1802.04741) and of Choukroun & Wolf,
"Error Correction Code Transformer" (NeurIPS 2022, arXiv 2203.14966). Gallager, "Low-Density
Parity-Check Codes" (MIT Press, 1963) for the ensemble; the graph is drawn from the
configuration model and cleaned by edge swaps.
"""

from __future__ import annotations

import numpy as np

from .._validate import RngLike, check_int, check_rng
from ..errors import InfeasibleError, InvalidInputError
from .gf2 import gf2_rank
from .linear_code import BinaryLinearCode, check_dense_size, code_from_h

__all__ = ["ldpc_regular"]


def _four_cycle_score(a: np.ndarray, overlap: np.ndarray) -> int:
    """Penalty of a check-variable count matrix: multi-edges weigh more than 4-cycles."""
    doubles = int(np.maximum(a - 1, 0).sum())
    iu = np.triu_indices(overlap.shape[0], 1)
    o = overlap[iu]
    cycles = int((o * (o - 1) // 2).sum())
    return doubles * (a.shape[0] * a.shape[1]) + cycles


def _regular_graph(
    n: int, dv: int, dc: int, gen: np.random.Generator, max_steps: int
) -> np.ndarray:
    """Random (dv, dc)-regular bipartite graph as an (m, n) 0/1 matrix, by the configuration
    model followed by edge swaps that remove multi-edges and then 4-cycles (best effort)."""
    m = n * dv // dc
    var = np.repeat(np.arange(n), dv)
    chk = gen.permutation(np.repeat(np.arange(m), dc))
    a = np.zeros((m, n), dtype=np.int64)
    np.add.at(a, (chk, var), 1)
    b = (a > 0).astype(np.float64)
    overlap = np.rint(b @ b.T).astype(np.int64)
    np.fill_diagonal(overlap, 0)
    score = _four_cycle_score(a, overlap)
    edges = var.size

    def refresh(rows: tuple[int, ...]) -> None:
        for c in rows:
            b[c] = a[c] > 0
        for c in rows:
            col = np.rint(b @ b[c]).astype(np.int64)
            overlap[c, :] = col
            overlap[:, c] = col
            overlap[c, c] = 0

    def swap(e: int, f: int) -> None:
        ce, cf = chk[e], chk[f]
        a[ce, var[e]] -= 1
        a[cf, var[f]] -= 1
        chk[e], chk[f] = cf, ce
        a[cf, var[e]] += 1
        a[ce, var[f]] += 1
        refresh((int(ce), int(cf)))

    for _ in range(max_steps):
        if score == 0:
            break
        multi = np.argwhere(a > 1)
        if multi.size:
            c, v = multi[gen.integers(len(multi))]
        else:
            pairs = np.argwhere(np.triu(overlap > 1, 1))
            c1, c2 = pairs[gen.integers(len(pairs))]
            common = np.flatnonzero(b[c1].astype(bool) & b[c2].astype(bool))
            v = common[gen.integers(common.size)]
            c = c1 if gen.integers(2) else c2
        e = int(np.flatnonzero((chk == c) & (var == v))[0])
        f = int(gen.integers(edges))
        if chk[f] == chk[e] or var[f] == var[e]:
            continue
        swap(e, f)
        new = _four_cycle_score(a, overlap)
        if new <= score:
            score = new
        else:
            swap(e, f)  # undo
    if np.any(a > 1):
        raise InfeasibleError(
            f"could not build a simple ({dv}, {dc})-regular graph on n={n} variables; "
            "use a larger n"
        )
    return (a > 0).astype(np.uint8)


def ldpc_regular(
    n: int, dv: int, dc: int, rng: RngLike = 0, *, max_steps: int | None = None
) -> BinaryLinearCode:
    """A random (dv, dc)-regular LDPC code of length n (Gallager's regular ensemble).

    The Tanner graph is drawn from the configuration model (a random matching of the n dv
    variable sockets to the m = n dv / dc check sockets), then random edge swaps remove
    multi-edges and, as far as ``max_steps`` (default 200 n) allows, 4-cycles (girth >= 6).
    Up to 8 graphs are drawn until H has full rank m (k = n - m); otherwise redundant checks
    are dropped (always the case for even dv, whose rows sum to zero). Cost
    O(max_steps (m n)) with small constants. Deterministic for an int ``rng``.
    """
    n = check_int(n, "n", low=2)
    dv = check_int(dv, "dv", low=1)
    dc = check_int(dc, "dc", low=2, high=n)
    check_dense_size(n, f"ldpc-regular-{n}-{dv}-{dc}")
    if (n * dv) % dc:
        raise InvalidInputError(f"n*dv must be divisible by dc: {n}*{dv} is not a multiple of {dc}")
    m = n * dv // dc
    if dv > m:
        raise InvalidInputError(f"dv={dv} exceeds the number of checks m=n*dv/dc={m}")
    if m >= n:
        raise InvalidInputError(f"dv/dc must be < 1 so that k = n - m > 0 (got dv={dv}, dc={dc})")
    steps = 200 * n if max_steps is None else check_int(max_steps, "max_steps", low=0)
    gen = check_rng(rng)
    h = _regular_graph(n, dv, dc, gen, steps)
    for _ in range(7 if dv % 2 else 0):
        if gf2_rank(h) == m:
            break
        h = _regular_graph(n, dv, dc, gen, steps)
    return code_from_h(f"ldpc-regular-{n}-{dv}-{dc}", h)
