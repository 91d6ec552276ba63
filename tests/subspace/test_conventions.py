"""The subspace API in the library's conventions: ``rng=`` for randomness (an int seed keeps
its 0.1 results), ``time_limit=``, ``on_report=``, ``device=``, old keywords kept with a
warning, and the 0.1 module paths re-exporting the split modules' names."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from frugalml.errors import FrugalDeprecationWarning, InvalidInputError


def test_old_module_paths_re_export_the_split_modules():
    import importlib

    from frugalml.subspace import (
        baselines,
        directions,
        gan,
        problems,
        recorder,
        saddle,
        saddle_problem,
        sesop,
    )

    # (the package's attribute pd_sesop is the function, not the module)
    pd_sesop = importlib.import_module("frugalml.subspace.pd_sesop")

    assert saddle.SaddleProblem is saddle_problem.SaddleProblem
    assert saddle.NonFiniteError is saddle_problem.NonFiniteError
    assert saddle.SaddleResult is recorder.SaddleResult and saddle.Recorder is recorder.Recorder
    for name in ("gda", "extragradient", "optimistic_gda", "proximal_point", "admm_equality_ls"):
        assert getattr(saddle, name) is getattr(baselines, name)
    for name in ("GANProblem", "mixture_gan", "mode_metrics", "adam_gda"):
        assert getattr(problems, name) is getattr(gan, name)
    for name in ("DIRECTIONS", "nemirovski_weight", "orthonormal_basis"):
        assert getattr(pd_sesop, name) is getattr(directions, name)
    assert sesop.orthonormal_basis is directions.orthonormal_basis
    for mod in (saddle, problems, pd_sesop):
        for name in mod.__all__:
            assert getattr(mod, name) is not None, (mod.__name__, name)


def test_task_paths_re_export_the_split_modules():
    from frugalml.subspace import runs, tasks, training, workloads

    assert tasks.make_task is workloads.make_task and tasks.Task is workloads.Task
    assert tasks.RunConfig is runs.RunConfig and tasks.TrainResult is runs.TrainResult
    for name in ("train", "train_many", "train_jobs", "train_and_time", "measure_step_times"):
        assert getattr(tasks, name) is getattr(training, name)
    assert tasks.DEFAULTS is workloads.DEFAULTS
    for name in tasks.__all__:
        assert getattr(tasks, name) is not None, name


def test_the_adacons_formula_needs_no_torch():
    code = (
        "import sys, numpy as np\n"
        "from frugalml.subspace import adacons_aggregate\n"
        "d, c = adacons_aggregate(np.eye(3) + 1.0)\n"
        "print('torch' in sys.modules, round(float(c.alpha.sum()), 12))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "1.0"]


def test_make_task_takes_rng_and_the_old_seed_keyword_gives_the_same_data():
    pytest.importorskip("sklearn")
    from frugalml.subspace.tasks import make_task

    new = make_task("digits-mlp", rng=3)
    with pytest.warns(FrugalDeprecationWarning, match="'seed' is deprecated.*'rng'"):
        old = make_task("digits-mlp", seed=3)
    np.testing.assert_array_equal(new.arrays["X"], old.arrays["X"])
    other = make_task("digits-mlp", rng=np.random.default_rng(0))  # a Generator draws a seed
    assert other.arrays["X"].shape == new.arrays["X"].shape
    with pytest.raises(InvalidInputError, match="pass 'rng' only"):
        make_task("linreg", seed=1, rng=1)
    with pytest.raises(InvalidInputError, match="rng"):
        make_task("linreg", rng=-1)


def test_task_model_takes_rng():
    torch = pytest.importorskip("torch")
    from frugalml.subspace.tasks import make_task

    task = make_task("linreg")

    def flat(model):
        return torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    a = flat(task.model(4))
    assert torch.equal(a, flat(task.model(rng=4)))
    with pytest.warns(FrugalDeprecationWarning, match="'seed'"):
        assert torch.equal(a, flat(task.model(seed=4)))
    assert not torch.equal(a, flat(task.model(5)))


def test_training_drivers_take_rng_and_time_limit_and_keep_the_old_keywords():
    from frugalml.subspace import tasks

    # every check below fails before any worker process starts
    with pytest.raises(InvalidInputError, match="time_limit"):
        tasks.train("linreg", time_limit=float("nan"))
    with (
        pytest.warns(FrugalDeprecationWarning, match="'timeout'.*'time_limit'"),
        pytest.raises(InvalidInputError, match="time_limit"),
    ):
        tasks.train("linreg", timeout=float("nan"))
    with (
        pytest.warns(FrugalDeprecationWarning, match="'seed'.*'rng'"),
        pytest.raises(InvalidInputError, match="rng seed must be >= 0"),
    ):
        tasks.train("linreg", seed=-1)
    with pytest.warns(FrugalDeprecationWarning), pytest.raises(InvalidInputError, match="empty"):
        tasks.train_many("linreg", [], seed=0, timeout=10.0)
    with pytest.warns(FrugalDeprecationWarning), pytest.raises(InvalidInputError, match="no jobs"):
        tasks.train_jobs([], seed=0)
    with pytest.warns(FrugalDeprecationWarning), pytest.raises(InvalidInputError, match="empty"):
        tasks.measure_step_times("linreg", [], timeout=5.0)
    with pytest.raises(InvalidInputError, match="pass 'rng' only"):
        tasks.train("linreg", seed=0, rng=0)


def test_gan_sample_and_evaluate_take_rng():
    pytest.importorskip("torch")
    from frugalml.subspace import mixture_gan

    g = mixture_gan(hidden=8, batch=32, rng=0)
    a = g.sample(g.x0, 50, rng=5)
    np.testing.assert_array_equal(a, g.sample(g.x0, 50, rng=5))
    assert not np.array_equal(a, g.sample(g.x0, 50, rng=6))
    with pytest.warns(FrugalDeprecationWarning, match="'seed'.*'rng'"):
        np.testing.assert_array_equal(a, g.sample(g.x0, 50, seed=5))
    with pytest.warns(FrugalDeprecationWarning):
        assert g.evaluate(g.x0, 50, seed=5) == g.evaluate(g.x0, 50, rng=5)
    assert g.sample(g.x0, 7, rng=np.random.default_rng(1)).shape == (7, 2)


def test_mixture_gan_device():
    torch = pytest.importorskip("torch")
    from frugalml.subspace import mixture_gan, pd_sesop

    cpu = mixture_gan(hidden=8, batch=32, rng=0, device="cpu")
    default = mixture_gan(hidden=8, batch=32, rng=0)
    assert torch.equal(cpu.x0, default.x0) and cpu.x0.device.type == "cpu"
    with pytest.raises(InvalidInputError, match="device"):
        mixture_gan(device="no-such-device")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match="cuda"):
            mixture_gan(device="cuda")
        return
    gpu = mixture_gan(hidden=8, batch=32, rng=0, device="cuda")
    assert gpu.x0.is_cuda and torch.equal(gpu.x0.cpu(), cpu.x0)
    np.testing.assert_allclose(gpu.sample(gpu.x0, 100, rng=3), cpu.sample(cpu.x0, 100, rng=3),
                               rtol=1e-10, atol=1e-12)  # fmt: skip
    assert math.isclose(float(gpu.loss(gpu.x0, gpu.y0)), float(cpu.loss(cpu.x0, cpu.y0)),
                        rel_tol=1e-10)  # fmt: skip
    r = pd_sesop(gpu.loss, gpu.x0, gpu.y0, max_iter=2, inner="newton", target="residual")
    assert r.x.is_cuda and r.grad_evals > 0
