"""The 0.1 spellings of the coded area still work until 0.3, with a deprecation warning:
``LinearCode`` (now ``RealLinearCode``), the ``*_s`` / ``*_time(s)`` timing fields (now
``*_seconds``), ``countsketch(..., seed=)`` (now ``rng=``) and the module paths that were
split (``coded.dfo.es``, ``coded.dfo.estimator``, ``coded.dfo.attack``)."""

from __future__ import annotations

import numpy as np
import pytest

from frugalml.coded import RealLinearCode, coded_matmul
from frugalml.coded.dfo import CodedES, Quadratic
from frugalml.coded.matmul import streamed_matmul
from frugalml.coded.oversketch import countsketch
from frugalml.errors import FrugalDeprecationWarning


def test_linear_code_is_the_real_linear_code_with_a_warning():
    with pytest.warns(FrugalDeprecationWarning, match="'LinearCode'.*'RealLinearCode'"):
        from frugalml.coded import LinearCode
    assert LinearCode is RealLinearCode
    with pytest.warns(FrugalDeprecationWarning, match="'LinearCode'.*'RealLinearCode'"):
        from frugalml.coded.base import LinearCode as FromBase
    assert FromBase is RealLinearCode
    import frugalml.coded

    with pytest.raises(AttributeError, match="NoSuchCode"):
        frugalml.coded.NoSuchCode  # noqa: B018


def test_coded_result_timing_names():
    rng = np.random.default_rng(0)
    res = coded_matmul(rng.standard_normal((16, 4)), rng.standard_normal((4, 2)), n_workers=4,
                       code="mds", rng=0)  # fmt: skip
    assert res.wait_seconds >= 0 and res.decode_seconds >= 0
    with pytest.warns(FrugalDeprecationWarning, match="'wait_s'.*'wait_seconds'"):
        assert res.wait_s == res.wait_seconds
    with pytest.warns(FrugalDeprecationWarning, match="'decode_s'.*'decode_seconds'"):
        assert res.decode_s == res.decode_seconds
    assert "wait" in res.summary()


def test_es_timing_names():
    fn = Quadratic(4, rng=0)
    es = CodedES(fn, fn.x0, n_workers=8, rng=0)
    info = es.step()
    res = CodedES(fn, fn.x0, n_workers=8, rng=0).run(2)
    pairs = [(info, "sim_time", "sim_seconds"), (info, "wall_time", "wall_seconds"),
             (info, "decode_time", "decode_seconds"), (info, "draw_time", "draw_seconds"),
             (info, "encode_time", "encode_seconds"), (info, "eval_time", "eval_seconds"),
             (res, "sim_times", "sim_seconds"), (res, "wall_times", "wall_seconds"),
             (res, "total_sim_time", "total_sim_seconds"),
             (res, "total_wall_time", "total_wall_seconds")]  # fmt: skip
    for obj, old, new in pairs:
        with pytest.warns(FrugalDeprecationWarning, match=f"'{old}'.*'{new}'"):
            np.testing.assert_array_equal(getattr(obj, old), getattr(obj, new))


def test_countsketch_rng_and_old_seed():
    a = countsketch(50, 6, 7).toarray()  # positional, as in 0.1
    np.testing.assert_array_equal(countsketch(50, 6, rng=7).toarray(), a)
    np.testing.assert_array_equal(countsketch(50, 6, np.random.default_rng(7)).toarray(), a)
    with pytest.warns(FrugalDeprecationWarning, match="'seed'.*'rng'"):
        np.testing.assert_array_equal(countsketch(50, 6, seed=7).toarray(), a)


def test_streamed_matmul_progress_is_message_and_fraction():
    rng = np.random.default_rng(0)
    calls = []
    streamed_matmul(rng.standard_normal((100, 4)), rng.standard_normal((4, 2)), chunk_rows=40,
                    code="mds", n_workers=4, rng=0,
                    progress=lambda msg, f: calls.append((msg, f)))  # fmt: skip
    assert [f for _, f in calls] == [0.4, 0.8, 1.0]
    assert calls[-1][0] == "100/100 rows"


def test_split_modules_keep_their_old_import_paths():
    from frugalml.coded.dfo import baselines, coded_es, differences, es, estimator, results

    assert es.CodedES is coded_es.CodedES and es.WaitAllES is baselines.WaitAllES
    assert es.ESResult is results.ESResult and es.StepInfo is results.StepInfo
    assert estimator.finite_difference is differences.finite_difference
    assert estimator.call_objective is differences.call_objective
