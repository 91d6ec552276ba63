"""The 0.1 spellings of runtime results (``Gathered.elapsed``, ``TaskTiming.latency`` /
``run_time``) and of ``runtime.shared`` stay readable until 0.3, with a deprecation warning."""

from __future__ import annotations

import pytest

from frugalml.errors import FrugalDeprecationWarning
from frugalml.runtime import Gathered, TaskTiming, make_executor
from frugalml.runtime.base import Gathered as GatheredFromBase
from frugalml.runtime.results import Gathered as GatheredFromResults


def test_results_live_in_one_module_and_are_re_exported():
    assert Gathered is GatheredFromBase is GatheredFromResults


def test_old_timing_names_forward_with_a_warning():
    with make_executor("local-thread", workers=2) as ex:
        got = ex.gather([ex.submit(abs, -3)])
    assert got.seconds >= 0 and got.timings[0].latency_seconds >= 0
    with pytest.warns(FrugalDeprecationWarning, match="'elapsed'.*'seconds'"):
        assert got.elapsed == got.seconds
    timing = TaskTiming(0.5, 0.25)
    with pytest.warns(FrugalDeprecationWarning, match="'latency'.*'latency_seconds'"):
        assert timing.latency == 0.5
    with pytest.warns(FrugalDeprecationWarning, match="'run_time'.*'run_seconds'"):
        assert timing.run_time == 0.25


def test_with_ref_releases_through_the_registered_executor():
    import numpy as np

    ex = make_executor("local-thread", workers=1)
    with ex.share(np.ones(3)) as ref:
        assert ref in ex.shared
    assert ex.shared == ()
    ex.close()
    with ref:  # its executor closed and unregistered: leaving the block does nothing
        pass
