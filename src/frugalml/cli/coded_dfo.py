"""``frugalml coded es | attack``: coded derivative-free optimisation (frugalml.coded.dfo).

The commands are registered on ``frugalml coded`` by :mod:`.coded`; the straggler options
(``--stragglers``, ``--shift``, ``--rate``, ``--p-slow``, ``--slowdown``) are shared with
``coded matmul``. Option names follow docs/cli.md (``--steps``, ``--tol``, ``--stragglers``;
the 0.1 spellings are rewritten by :mod:`._aliases`).
"""

from __future__ import annotations

import warnings

import typer
from rich.progress import Progress

from .._resources import check_memory
from .._validate import (
    check_choice,
    check_int,
    check_nonnegative_float,
    check_positive_float,
    check_probability,
)
from ..errors import InvalidInputError
from ..runtime import (
    BACKENDS,
    FaultInjector,
    concurrent_options,
    make_executor,
    model_from_spec,
)
from ..runtime.local import check_pool_size
from ._common import (
    BLAS_OPTION,
    JSON_OPTION,
    PROGRESS_COLUMNS,
    SEED_OPTION,
    console,
    emit_json,
    limit_blas_threads,
)

__all__ = ["STRAGGLERS_HELP", "STRAGGLER_MODELS", "attack", "es", "straggler_model"]

STRAGGLERS_HELP = "Straggler model: none | shifted-exponential | pareto | bimodal."
STRAGGLER_MODELS = ("none", "shifted-exponential", "pareto", "bimodal")

ES_METHODS = ("coded", "wait-all", "drop", "structured")
ES_FUNCTIONS = ("quadratic", "rosenbrock", "logistic")


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def straggler_model(model: str, shift: float, rate: float, p_slow: float, slowdown: float):
    """The model of ``--stragglers`` (None for ``none``); its options checked first."""
    check_choice(model, "stragglers", STRAGGLER_MODELS)
    check_probability(p_slow, "p_slow")
    check_positive_float(slowdown, "slowdown")
    if model == "none":
        return None
    if model == "pareto":
        return model_from_spec("pareto")
    if model == "shifted-exponential":
        return model_from_spec(model, shift=shift, rate=rate)
    return model_from_spec(model, shift=shift, rate=rate, p_slow=p_slow, slowdown=slowdown)


def es(
    function: str = typer.Option("quadratic", help="quadratic | rosenbrock | logistic"),
    dim: int = typer.Option(32, help="Dimension d."),
    method: str = typer.Option("coded", help="coded | wait-all | drop | structured"),
    code: str = typer.Option("polar", help="Code of the coded method: polar | mds | replication."),
    directions: str = typer.Option(
        None, help="orthogonal | hadamard | gaussian [coded, structured: orthogonal; else gaussian]"
    ),
    workers: int = typer.Option(64, help="N workers (a power of two for polar)."),
    k: int = typer.Option(None, help="K coded directions [min(d, N/2)]."),
    sigma: float = typer.Option(1e-4, help="Finite-difference step."),
    step: float = typer.Option(None, help="Step size [quadratic 0.1, logistic 2, rosenbrock 0.1]."),
    step_rule: str = typer.Option("gradient", help="gradient | sign"),
    adam: bool = typer.Option(None, help="Adam moments [on for rosenbrock]."),
    steps: int = typer.Option(500, "--steps", help="Maximum iterations."),
    tol: float = typer.Option(1e-4, "--tol", help="Stop when f - f* <= tol * (f(x0) - f*)."),
    stragglers: str = typer.Option("bimodal", "--stragglers", help=STRAGGLERS_HELP),
    shift: float = typer.Option(1.0, help="Straggler model: minimum time."),
    rate: float = typer.Option(1.0, help="Straggler model: rate of the exponential tail."),
    p_slow: float = typer.Option(0.2, help="Bimodal: fraction of slow workers."),
    slowdown: float = typer.Option(10.0, help="Bimodal: slow-down of slow workers."),
    deadline: float = typer.Option(None, help="Per-iteration deadline (simulated seconds)."),
    backend: str = typer.Option(
        "none", help="none (in process, simulated clock) | local-thread | local | ray | ..."
    ),
    seed: int = SEED_OPTION,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Minimise a test function with coded ES (or a baseline) under injected stragglers."""
    from ..coded.dfo import (
        CodedES,
        DivergedError,
        DivergenceWarning,
        DropStragglersES,
        LogisticLoss,
        Quadratic,
        Rosenbrock,
        StructuredES,
        WaitAllES,
    )

    limit_blas_threads(blas_threads)
    check_choice(function, "function", ES_FUNCTIONS)
    check_choice(method, "method", ES_METHODS)
    if backend != "none":
        check_choice(backend, "backend", BACKENDS)
    if not 0 < tol < 1:
        raise InvalidInputError(f"--tol must lie in (0, 1), got {tol}")
    check_int(seed, "seed", low=0)
    dim = check_int(dim, "dim", low=2 if function == "rosenbrock" else 1)
    workers = check_int(workers, "workers", low=1)
    steps = check_int(steps, "steps", low=0)
    check_positive_float(sigma, "sigma")
    if step is not None:
        check_positive_float(step, "step")
    if deadline is not None:
        check_nonnegative_float(deadline, "deadline")
    # the test function's data (quadratic: its d x d matrix and the QR factors; logistic:
    # 500 x d samples), then CodedES checks its own generator and directions
    check_memory(
        8.0 * (3 * dim * dim if function == "quadratic" else 500 * dim),
        f"the {function} test function in dimension {dim}",
        fix="lower --dim",
    )
    if function == "quadratic":
        fn = Quadratic(dim, condition=10.0, rng=seed)
    elif function == "logistic":
        fn = LogisticLoss(dim, 500, rng=seed)
    else:
        fn = Rosenbrock(dim)
    defaults = {"quadratic": 0.1, "logistic": 2.0, "rosenbrock": 0.1}
    step = defaults[function] if step is None else step
    adam = (function == "rosenbrock") if adam is None else adam
    strag = straggler_model(stragglers, shift, rate, p_slow, slowdown)
    kwargs = dict(sigma=sigma, step=step, step_rule=step_rule, adam=adam, deadline=deadline,
                  batched=True, rng=seed)  # fmt: skip
    if directions is not None:
        kwargs["directions"] = directions
    if method == "coded":
        kwargs.update(code=code, n_directions=k)
    elif k is not None:
        raise InvalidInputError("--k applies to --method coded only (baselines use K = N)")
    cls = {"coded": CodedES, "wait-all": WaitAllES, "drop": DropStragglersES,
           "structured": StructuredES}[method]  # fmt: skip
    f0 = fn(fn.x0)
    target = fn.f_star + tol * (f0 - fn.f_star)
    if backend in ("local", "local-thread"):
        check_pool_size(workers, "thread" if backend == "local-thread" else "process")
    ex = None
    try:
        if backend != "none":
            ex = make_executor(backend, **concurrent_options(backend, workers))
            runner = (
                FaultInjector(ex, stragglers=strag, clock="simulated", rng=seed) if strag else ex
            )
            opt = cls(fn, fn.x0, n_workers=workers, executor=runner, **kwargs)
        else:
            opt = cls(fn, fn.x0, n_workers=workers, stragglers=strag, **kwargs)
        with (
            Progress(*PROGRESS_COLUMNS, console=console, disable=json_out) as bar,
            warnings.catch_warnings(),
        ):
            warnings.simplefilter("ignore", DivergenceWarning)  # reported below, as an error
            task = bar.add_task(f"{opt.name}", total=1.0)
            res = opt.run(
                steps,
                target=target,
                progress=lambda msg, f: bar.update(task, completed=f, description=msg),
            )
    finally:
        if ex is not None:
            ex.close()
    if res.diverged:
        raise DivergedError(
            f"{res.name} diverged after {res.iterations} iteration(s): f = {res.loss:.4g} from "
            f"f(x0) = {f0:.4g}; lower --step (now {step:g}), or use --adam or --step-rule sign"
        )
    payload = {
        "function": function, "dim": dim, "method": method, "name": res.name,
        "code": opt.coder.code_name, "directions": opt.coder.directions,
        "n_workers": workers, "n_directions": opt.n_directions, "f0": f0, "f_star": fn.f_star,
        "target": target, "loss": res.loss, "reached": res.stopped_by == "target",
        "iterations": res.iterations, "sim_time": res.total_sim_seconds,
        "wall_s": res.total_wall_seconds, "evaluations": res.total_evaluations,
        "exact_decodes": int(res.exact.sum()), "erasures": int(res.erasures.sum()),
        "mean_arrivals": float(res.arrivals.mean()) if res.iterations else 0.0,
        "clock": "simulated" if strag is not None else "none",
        "bytes_sent_per_round": res.mean_bytes_per_round, "bytes_placed": res.bytes_placed,
    }  # fmt: skip
    if json_out:
        emit_json(payload)
    else:
        console.print(res.summary())
        console.print(
            f"target f <= {target:.4g} ({'reached' if payload['reached'] else 'not reached'})"
        )
    return 0


def attack(
    dataset: str = typer.Option("digits", help="digits | mnist1d"),
    method: str = typer.Option("coded", help="coded | wait-all | drop | structured | random"),
    code: str = typer.Option("polar", help="polar | mds (coded method)."),
    examples: int = typer.Option(10, help="Number of correctly classified test examples."),
    eps: float = typer.Option(None, help="l_inf budget [digits 0.15, mnist1d 0.25]."),
    workers: int = typer.Option(32, help="N workers."),
    steps: int = typer.Option(20, "--steps", help="Maximum ES iterations per example."),
    stragglers: str = typer.Option("bimodal", "--stragglers", help=STRAGGLERS_HELP),
    p_slow: float = typer.Option(0.2, help="Bimodal: fraction of slow workers."),
    slowdown: float = typer.Option(10.0, help="Bimodal: slow-down of slow workers."),
    seed: int = SEED_OPTION,
    json_out: bool = JSON_OPTION,
    blas_threads: int = BLAS_OPTION,
) -> int:
    """Score-based black-box l_inf attack on an in-house CNN (simulated-clock stragglers)."""
    from ..coded.dfo.attack import ATTACK_METHODS, run_attack, train_classifier

    limit_blas_threads(blas_threads)
    # every option is checked before the classifier is trained
    check_choice(dataset, "dataset", ("digits", "mnist1d"))
    check_choice(method, "method", ATTACK_METHODS)
    check_choice(code, "code", ("polar", "mds", "replication"))
    eps = {"digits": 0.15, "mnist1d": 0.25}[dataset] if eps is None else eps
    check_positive_float(eps, "eps")
    check_int(seed, "seed", low=0)
    check_int(examples, "examples", low=1)
    workers = check_int(workers, "workers", low=1)
    check_int(steps, "steps", low=1)
    if method == "coded" and code == "polar" and workers & (workers - 1):
        raise InvalidInputError(f"a polar code needs --workers a power of two, got {workers}")
    # per iteration: the code's generator (polar: N x N) and 2N perturbed inputs of <= 64
    # values, float64
    check_memory(
        16.0 * workers * workers + 8.0 * 2 * workers * 64,
        f"an attack with N={workers} workers",
        fix="lower --workers",
    )
    strag = straggler_model(stragglers, 1.0, 1.0, p_slow, slowdown)
    with console.status("training the classifier") if not json_out else _nothing():
        clf = train_classifier(dataset, rng=seed)
    with Progress(*PROGRESS_COLUMNS, console=console, disable=json_out) as bar:
        task = bar.add_task("attacking", total=1.0)
        res = run_attack(
            clf, method=method, n_examples=examples, eps=eps, n_workers=workers, code=code,
            max_iter=steps, stragglers=strag, rng=seed,
            progress=lambda msg, f: bar.update(task, completed=f, description=msg),
        )  # fmt: skip
    payload = {
        "dataset": dataset, "method": method, "eps": eps, "n_workers": workers,
        "n_directions": res.n_directions, "test_accuracy": clf.test_accuracy,
        "examples": examples, "success_rate": res.success_rate,
        "mean_queries_success": res.mean_queries_success,
        "mean_sim_time_success": res.mean_sim_seconds_success,
        "mean_wall_s_success": res.mean_wall_seconds_success, "queries": res.queries.tolist(),
        "success": res.success.tolist(),
    }  # fmt: skip
    if json_out:
        emit_json(payload)
    else:
        console.print(clf.summary())
        console.print(res.summary())
    return 0
