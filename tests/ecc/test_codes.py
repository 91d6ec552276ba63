"""Binary codes: BCH, polar, LDPC, alist I/O and names, checked against independent references.

* every code: G H^T = 0 and both ranks, by integer matrix products and a bitmask rank written
  here (not the library's GF(2) routines);
* BCH: generator polynomials against the Lin & Costello table (n = 31) and ``galois.BCH``
  (n = 63, 127); minimum distance by brute force over all 2^16 codewords of BCH(31, 16) and,
  for BCH(63, 45), by checking that all sums of <= 3 columns of H are distinct and nonzero
  (equivalent to d >= 7); closure under cyclic shifts;
* polar: the (8, 4) information set {3, 5, 6, 7} (= RM(1, 3), d = 4), Bhattacharyya values
  against a plain recursion, nestedness and the universal partial order, G against
  ``np.kron`` powers;
* LDPC: regular degrees and no 4-cycles of ``ldpc_regular``, the bundled alist file, alist
  round trips and line-numbered parse errors.
"""

from __future__ import annotations

import itertools
import re
from functools import reduce

import numpy as np
import pytest

from frugalml.ecc.bch import bch_equivalence
from frugalml.ecc.codes import (
    CODE_NAME_FORMATS,
    BinaryLinearCode,
    bch_code,
    bch_dimensions,
    bundled_alist,
    get_code,
    ldpc_from_alist,
    ldpc_regular,
    polar_bhattacharyya,
    polar_code,
    polar_information_set,
    to_alist,
)
from frugalml.errors import FrugalDeprecationWarning, InvalidInputError

from ._reference import rank_ref

# -- references -------------------------------------------------------------------------------


def mod2(a, b):
    return (np.asarray(a, dtype=np.int64) @ np.asarray(b, dtype=np.int64)) % 2


def check_code(code: BinaryLinearCode) -> None:
    n, k = code.n, code.k
    assert code.G.shape == (k, n) and code.H.shape == (n - k, n)
    assert code.G.dtype == np.uint8 and code.H.dtype == np.uint8
    assert not mod2(code.G, code.H.T).any()
    assert rank_ref(code.G) == k
    assert rank_ref(code.H) == n - k
    assert code.rate == pytest.approx(k / n)


def all_codewords(code: BinaryLinearCode) -> np.ndarray:
    k = code.k
    msgs = (np.arange(2**k)[:, None] >> np.arange(k)) & 1
    return mod2(msgs, code.G)


def min_distance_brute(code: BinaryLinearCode) -> int:
    w = all_codewords(code).sum(axis=1)
    return int(w[w > 0].min())


# Lin & Costello, "Error Control Coding" (2nd ed.), Appendix C: generator polynomials of the
# length-31 primitive BCH codes (octal, highest degree first; GF(32) from x^5 + x^2 + 1).
LIN_COSTELLO_31 = {26: "45", 21: "3551", 16: "107657", 11: "5423325", 6: "313365047"}

CODES = [
    ("bch", 31, 26),
    ("bch", 31, 16),
    ("bch", 31, 11),
    ("bch", 63, 57),
    ("bch", 63, 45),
    ("bch", 63, 36),
    ("bch", 63, 24),
    ("bch", 127, 120),
    ("bch", 127, 99),
    ("bch", 127, 64),
    ("polar", 64, 32),
    ("polar", 128, 64),
    ("polar", 8, 4),
    ("polar", 16, 16),
]


@pytest.mark.parametrize(("family", "n", "k"), CODES)
def test_generator_and_parity_check_are_consistent(family, n, k):
    code = get_code(f"{family}-{n}-{k}")
    assert code.name == f"{family}-{n}-{k}"
    check_code(code)


def test_ldpc_codes_are_consistent():
    check_code(ldpc_regular(96, 3, 6, rng=0))
    check_code(ldpc_from_alist(bundled_alist()))
    code = ldpc_regular(96, 4, 8, rng=1)  # even column weight: the rows sum to zero
    check_code(code)
    assert code.k > 96 - 48


# -- BCH --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "octal"), sorted(LIN_COSTELLO_31.items()))
def test_bch31_generator_polynomial_matches_table(k, octal):
    g = int(octal, 8)
    coeffs = [(g >> i) & 1 for i in range(g.bit_length())]
    code = bch_code(31, k)
    # systematic G: row 0 is x^(n-k) + (x^(n-k) mod g) = g(x) itself
    assert code.G[0, : len(coeffs)].tolist() == coeffs
    assert not code.G[0, len(coeffs) :].any()


@pytest.mark.parametrize("field", ["textbook", "conway"])
@pytest.mark.parametrize(("n", "k"), [(31, 21), (63, 45), (63, 30), (127, 64), (127, 113)])
def test_bch_generator_polynomial_matches_galois(n, k, field):
    galois = pytest.importorskip("galois")
    m = (n + 1).bit_length() - 1
    # galois.BCH's own default field is MATLAB's (textbook) primitive polynomial; galois.GF's
    # default is the Conway polynomial. No JIT compilation in tests.
    poly = galois.matlab_primitive_poly(2, m) if field == "textbook" else None
    gf = galois.GF(2**m, irreducible_poly=poly, compile="python-calculate")
    ref = galois.BCH(n, k, extension_field=gf)
    coeffs = np.asarray(ref.generator_poly.coeffs)[::-1].tolist()  # ascending
    code = bch_code(n, k, field=field)
    assert code.G[0, : n - k + 1].tolist() == coeffs
    assert code.designed_distance == ref.d
    assert code.name == (f"bch-{n}-{k}" if field == "textbook" else f"bch-{n}-{k}-conway")


def test_bch_default_is_the_textbook_code_and_conway_is_equivalent():
    galois = pytest.importorskip("galois")
    ref = galois.BCH(63, 45)  # galois's default BCH(63, 45): field x^6 + x + 1
    assert int(ref.extension_field.irreducible_poly) == 0b1000011
    coeffs = np.asarray(ref.generator_poly.coeffs)[::-1].tolist()
    assert get_code("bch-63-45").G[0, :19].tolist() == coeffs
    text, conway = get_code("bch-63-45"), get_code("bch-63-45-conway")
    assert not np.array_equal(text.H, conway.H)
    p = bch_equivalence(conway, text)
    assert p is not None
    msgs = np.random.default_rng(0).integers(0, 2, (200, 45), dtype=np.uint8)
    assert not text.syndrome(conway.encode(msgs)[:, p]).any()
    q = bch_equivalence(text, conway)
    assert not conway.syndrome(text.encode(msgs)[:, q]).any()
    assert bch_equivalence(text, get_code("bch-63-36")) is None
    with pytest.raises(InvalidInputError, match="field"):
        bch_code(63, 45, field="matlab")


def test_bch_31_16_minimum_distance_by_brute_force():
    code = bch_code(31, 16)
    assert code.designed_distance == 7
    assert min_distance_brute(code) == 7  # all 2^16 codewords


def test_bch_63_45_minimum_distance_at_least_7():
    code = bch_code(63, 45)
    assert code.designed_distance == 7
    # d >= 7 iff no nonzero codeword of weight <= 6 iff all sums of <= 3 columns of H are
    # distinct and nonzero (a collision of two such sums is a codeword of weight <= 6).
    cols = np.array([int("".join(map(str, c)), 2) for c in code.H.T.tolist()], dtype=np.int64)
    sums = [cols]
    i, j = np.triu_indices(63, 1)
    sums.append(cols[i] ^ cols[j])
    triples = np.array(list(itertools.combinations(range(63), 3)))
    sums.append(cols[triples[:, 0]] ^ cols[triples[:, 1]] ^ cols[triples[:, 2]])
    allsums = np.concatenate(sums)
    assert allsums.size == 63 + 1953 + 39711
    assert np.all(allsums != 0)
    assert np.unique(allsums).size == allsums.size


@pytest.mark.parametrize(("n", "k"), [(31, 16), (63, 45), (127, 64)])
def test_bch_codes_are_cyclic(n, k):
    code = bch_code(n, k)
    assert code.automorphisms == "cyclic"
    rng = np.random.default_rng(n)
    words = mod2(rng.integers(0, 2, size=(20, k)), code.G)
    for s in range(n):
        shifted = np.roll(words, s, axis=1)
        assert not mod2(shifted, code.H.T).any()
    # H itself is the banded cyclic matrix: each row is the previous one shifted by one
    assert np.array_equal(code.H[1:, 1:], code.H[:-1, :-1])


def test_bch_systematic_encoding():
    code = bch_code(63, 45)
    rng = np.random.default_rng(1)
    msg = rng.integers(0, 2, size=(5, 45), dtype=np.uint8)
    cw = code.encode(msg)
    assert np.array_equal(cw[:, 18:], msg)  # message in the last k positions


def test_bch_invalid_parameters():
    with pytest.raises(InvalidInputError, match=r"valid k: 26, 21, 16, 11, 6, 1"):
        bch_code(31, 17)
    with pytest.raises(InvalidInputError, match=r"2\^m - 1"):
        bch_code(64, 32)
    with pytest.raises(InvalidInputError, match="k must be an integer"):
        bch_code(31, 2.5)
    with pytest.raises(InvalidInputError, match="45"):
        get_code("bch-63-44")
    assert bch_dimensions(63) == [57, 51, 45, 39, 36, 30, 24, 18, 16, 10, 7, 1]


# -- polar ------------------------------------------------------------------------------------


def z_ref(n: int, z: float) -> list[float]:
    """Bhattacharyya recursion by plain recursion: first half degraded, second upgraded."""
    if n == 1:
        return [z]
    return z_ref(n // 2, 2 * z - z * z) + z_ref(n // 2, z * z)


F = np.array([[1, 0], [1, 1]], dtype=np.int64)


def test_polar_8_4_information_set():
    z = polar_bhattacharyya(8, 0.5)  # BEC(1/2) design
    assert set(np.argsort(z)[:4].tolist()) == {3, 5, 6, 7}
    assert polar_information_set(8, 4).tolist() == [3, 5, 6, 7]  # AWGN design at 0 dB
    code = polar_code(8, 4)
    f3 = reduce(np.kron, [F, F, F])
    assert np.array_equal(code.G, f3[[3, 5, 6, 7]])
    assert min_distance_brute(code) == 4  # the (8, 4) Reed-Muller code RM(1, 3)


@pytest.mark.parametrize(("n", "z0"), [(64, 0.3), (256, 0.7), (32, 0.5)])
def test_polar_bhattacharyya_matches_recursion(n, z0):
    assert np.allclose(polar_bhattacharyya(n, z0), z_ref(n, z0), rtol=1e-9, atol=1e-300)


@pytest.mark.parametrize("snr", [-2.0, 0.0, 3.0])
def test_polar_information_sets_are_nested_and_respect_the_partial_order(snr):
    n = 128
    prev: set[int] = set()
    for k in range(1, n + 1, 7):
        info = set(polar_information_set(n, k, snr).tolist())
        assert len(info) == k and prev <= info
        prev = info
        # universal partial order: i reliable and j covers i bitwise (j | i == j) -> j reliable
        for i in info:
            for j in range(n):
                if j | i == j:
                    assert j in info, (k, i, j)


def test_polar_matrices_against_kron():
    code = polar_code(64, 32)
    f6 = reduce(np.kron, [F] * 6)
    info = polar_information_set(64, 32)
    frozen = np.setdiff1d(np.arange(64), info)
    assert np.array_equal(code.G, f6[info])
    assert np.array_equal(code.H, f6[:, frozen].T)
    assert code.automorphisms is None


def test_polar_invalid_parameters():
    with pytest.raises(InvalidInputError, match="power of two"):
        polar_code(48, 24)
    with pytest.raises(InvalidInputError, match="k must be <= 64"):
        get_code("polar-64-65")
    with pytest.raises(InvalidInputError, match="design_snr_db"):
        polar_code(64, 32, design_snr_db=float("nan"))
    with pytest.raises(InvalidInputError, match="z0"):
        polar_bhattacharyya(8, 1.0)


# -- LDPC -------------------------------------------------------------------------------------


def test_ldpc_regular_structure_and_determinism():
    code = ldpc_regular(96, 3, 6, rng=0)
    h = code.H.astype(np.int64)
    assert code.k == 48
    assert np.all(h.sum(axis=0) == 3) and np.all(h.sum(axis=1) == 6)
    overlap = h @ h.T
    np.fill_diagonal(overlap, 0)
    assert overlap.max() <= 1  # no 4-cycles: two checks share at most one variable
    assert np.array_equal(ldpc_regular(96, 3, 6, rng=0).H, code.H)
    assert not np.array_equal(ldpc_regular(96, 3, 6, rng=1).H, code.H)
    assert get_code("ldpc-regular-96-3-6").name == "ldpc-regular-96-3-6"


def test_bundled_alist_is_the_seed_0_regular_code():
    path = bundled_alist("ldpc_96_48")
    code = ldpc_from_alist(path)
    assert (code.n, code.k) == (96, 48) and code.name == "ldpc-ldpc_96_48.alist"
    assert np.array_equal(code.H, ldpc_regular(96, 3, 6, rng=0).H)
    by_name = get_code("ldpc-ldpc_96_48.alist")
    assert np.array_equal(by_name.H, code.H) and by_name.name == "ldpc-ldpc_96_48.alist"
    with pytest.raises(InvalidInputError, match="no bundled"):
        bundled_alist("nope")


def test_ldpc_regular_invalid_parameters():
    with pytest.raises(InvalidInputError, match="divisible"):
        ldpc_regular(10, 3, 7)
    with pytest.raises(InvalidInputError, match="dc must be <= 5"):
        ldpc_regular(5, 3, 6)
    with pytest.raises(InvalidInputError, match="k = n - m > 0"):
        ldpc_regular(12, 3, 3)


# -- alist --------------------------------------------------------------------------------------

# Hand-written: H = [[1 1 1 0 1 0 0], [0 1 0 1 1 0 1], [0 0 1 0 1 1 0]]; some column lists are
# zero-padded to the maximum weight, some are not (both occur in the wild).
SMALL_ALIST = """\
7 3
3 4
1 2 2 1 3 1 1
4 4 3
1 0 0
1 2
1 3 0
2
1 2 3
3 0 0
2 0 0
1 2 3 5
2 4 5 7
3 5 6 0
"""
SMALL_H = np.array(
    [[1, 1, 1, 0, 1, 0, 0], [0, 1, 0, 1, 1, 0, 1], [0, 0, 1, 0, 1, 1, 0]], dtype=np.uint8
)


def test_alist_parses_hand_written_code():
    code = ldpc_from_alist(SMALL_ALIST)
    assert np.array_equal(code.H, SMALL_H)
    assert (code.n, code.k) == (7, 4) and code.name == "ldpc-alist"
    check_code(code)
    assert ldpc_from_alist(to_alist(SMALL_H)).H.tolist() == SMALL_H.tolist()


@pytest.mark.parametrize("name", ["ldpc", "bch", "polar"])
def test_alist_round_trip(name, tmp_path):
    code = {
        "ldpc": lambda: ldpc_regular(48, 3, 6, rng=5),
        "bch": lambda: bch_code(31, 16),
        "polar": lambda: polar_code(32, 16),
    }[name]()
    text = to_alist(code)
    again = ldpc_from_alist(text)
    assert np.array_equal(again.H, code.H)
    path = tmp_path / "code.alist"
    path.write_text(text)
    from_file = get_code(f"ldpc-{path}")
    assert np.array_equal(from_file.H, code.H) and from_file.name == f"ldpc-{path}"
    # G differs (null-space basis) but spans the same code
    assert not mod2(from_file.G, code.H.T).any()


def test_alist_drops_redundant_checks():
    h = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 0], [0, 0, 1, 1]], dtype=np.uint8)
    code = ldpc_from_alist(to_alist(h))  # row 2 = row 0 + row 1
    assert code.H.tolist() == h[[0, 1, 3]].tolist() and code.k == 1


def _lines(text: str) -> list[str]:
    return text.splitlines()


MALFORMED = [
    # (line index to replace, new content, expected line number, message fragment)
    (0, "7", 1, "expected 2 integer"),
    (1, "3 x", 2, "expected integers"),
    (2, "1 2 2 1 3 1", 3, "expected 7 integer"),
    (2, "1 2 2 1 3 1 2", 4, "but column weights to 12"),
    (3, "4 4 5", 4, "row weights must lie in [0, 4]"),
    (4, "9 0 0", 5, "row indices must lie in 1..3"),
    (5, "1 1 0", 6, "repeated row index"),
    (4, "0 1 0", 5, "must list 1 row"),
    (13, "3 5 7 0", 14, "disagrees with the column lists"),
]


@pytest.mark.parametrize(("idx", "new", "line", "fragment"), MALFORMED)
def test_malformed_alist_errors_name_the_line(idx, new, line, fragment):
    lines = _lines(SMALL_ALIST)
    lines[idx] = new
    with pytest.raises(InvalidInputError, match=rf"line {line}\b.*{re.escape(fragment)}"):
        ldpc_from_alist("\n".join(lines) + "\n")


def test_malformed_alist_truncated_trailing_and_blank_lines(tmp_path):
    text = SMALL_ALIST
    with pytest.raises(InvalidInputError, match="unexpected end of file"):
        ldpc_from_alist("\n".join(_lines(text)[:-1]) + "\n")
    with pytest.raises(InvalidInputError, match="line 15: unexpected content"):
        ldpc_from_alist(text + "1 2\n")
    # blank lines are skipped but still counted in error line numbers
    lines = _lines(text)
    lines.insert(2, "")
    lines[5] = "1 2 3 4"  # now physical line 6: the first column list, weight 1
    with pytest.raises(InvalidInputError, match=r"line 6\b"):
        ldpc_from_alist("\n".join(lines) + "\n")
    bad = tmp_path / "bad.alist"
    bad.write_text("3 2\n")
    with pytest.raises(InvalidInputError, match=r"bad\.alist.*unexpected end"):
        ldpc_from_alist(bad)
    with pytest.raises(InvalidInputError, match="cannot read"):
        ldpc_from_alist(tmp_path / "missing.alist")
    with pytest.raises(InvalidInputError, match="not found"):
        get_code("ldpc-definitely_missing.alist")


# -- BinaryLinearCode ---------------------------------------------------------------------------


def test_syndrome_of_codeword_plus_noise_is_syndrome_of_noise():
    rng = np.random.default_rng(7)
    for code in (bch_code(63, 45), polar_code(64, 32), ldpc_regular(96, 3, 6, rng=0)):
        msg = rng.integers(0, 2, size=(4, 50, code.k), dtype=np.uint8)
        cw = code.encode(msg)
        assert cw.shape == (4, 50, code.n) and cw.dtype == np.uint8
        assert np.array_equal(cw, mod2(msg, code.G))
        noise = (rng.random((4, 50, code.n)) < 0.1).astype(np.uint8)
        s = code.syndrome(cw ^ noise)
        assert s.shape == (4, 50, code.n - code.k)
        assert np.array_equal(s, code.syndrome(noise))
        assert np.array_equal(s, mod2(noise, code.H.T))
        assert np.all(code.is_codeword(cw))
        assert code.is_codeword(cw[0, 0]) is True
        assert code.is_codeword(cw[0, 0] ^ np.eye(code.n, dtype=np.uint8)[0]) is False


def test_linear_code_validation_and_immutability():
    code = bch_code(31, 26)
    with pytest.raises(ValueError, match="read-only"):
        code.H[0, 0] = 1
    with pytest.raises(InvalidInputError, match=r"G H\^T != 0"):
        BinaryLinearCode("bad", 3, 1, np.array([[1, 1, 0], [0, 1, 1]]), np.array([[1, 1, 0]]))
    with pytest.raises(InvalidInputError, match="H must have shape"):
        BinaryLinearCode("bad", 3, 1, np.array([[1, 1, 1]]), np.array([[1, 1, 1]]))
    with pytest.raises(InvalidInputError, match="full rank"):
        BinaryLinearCode("bad", 3, 1, np.array([[1, 1, 0], [1, 1, 0]]), np.array([[0, 0, 1]]))
    with pytest.raises(InvalidInputError, match="bits"):
        BinaryLinearCode("bad", 2, 1, np.array([[1, 2]]), np.array([[1, 1]]))
    with pytest.raises(InvalidInputError, match="msg must have shape"):
        code.encode(np.zeros(25))
    with pytest.raises(InvalidInputError, match="bits must have shape"):
        code.syndrome(np.zeros((2, 30)))
    with pytest.raises(InvalidInputError, match="bits"):
        code.syndrome(np.full(31, 3))
    s = code.summary()
    assert "bch-31-26" in s and "(31, 26)" in s and "cyclic" in s


def test_unknown_code_names_list_the_formats():
    for bad in ("hamming-7-4", "bch-63", "ldpc-foo", "polar-64-32-x", 42):
        with pytest.raises(InvalidInputError) as info:
            get_code(bad)
        if isinstance(bad, str):
            for fmt in CODE_NAME_FORMATS:
                assert fmt in str(info.value)


def test_linear_code_is_the_deprecated_name_of_binary_linear_code():
    import frugalml.ecc
    import frugalml.ecc.codes

    for module in (frugalml.ecc, frugalml.ecc.codes):
        with pytest.warns(FrugalDeprecationWarning, match="BinaryLinearCode"):
            assert module.LinearCode is BinaryLinearCode
    with pytest.warns(FrugalDeprecationWarning):
        from frugalml.ecc.codes import LinearCode
    assert LinearCode is BinaryLinearCode
    assert "LinearCode" not in frugalml.ecc.__all__
    with pytest.raises(AttributeError):
        _ = frugalml.ecc.codes.no_such_name


def test_get_code_builds_the_wimax_codes_by_name():
    from frugalml.ecc.wimax import ldpc_wimax

    code = get_code("ldpc-wimax-576-288")
    assert (code.name, code.n, code.k) == ("ldpc-wimax-576-288", 576, 288)
    assert np.array_equal(code.H, ldpc_wimax(576).H)
    assert "ldpc-wimax-<n>-<k>" in CODE_NAME_FORMATS
    with pytest.raises(InvalidInputError, match="rate 1/2"):
        get_code("ldpc-wimax-576-300")
    with pytest.raises(InvalidInputError, match="576"):
        get_code("ldpc-wimax-600-300")
