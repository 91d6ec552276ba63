"""Every command and Python snippet in README.md runs here.

The README is parsed at collection time: each ``bash`` line and each ``python`` block must have
an entry below saying how it runs (at small sizes where the README's are large), so a README
change without a test fails. Commands run through the CLI entry point in a fresh directory
that holds the small input files the README names (data.npz, data.csv, graph.json, ...).
Figures the README quotes from a snippet's result are checked against the measured value.
"""

from __future__ import annotations

import re
import shlex
import textwrap
from pathlib import Path

import numpy as np
import pytest

from frugalml.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def _bash_commands() -> list[str]:
    commands = []
    for block in _blocks("bash"):
        text = block.replace("\\\n", " ")
        for line in text.splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            if line and not line.startswith("#"):
                commands.append(" ".join(line.split()))
    return commands


# -- shell commands ------------------------------------------------------------------------
#
# README command -> (the command run here, marks): "=" is the README's command as written,
# "= --opt v" appends options that cut sizes where the README's run for minutes (a repeated
# option's last value wins), "" marks a command this suite does not run, with the reason.
_SLOW = pytest.mark.slow
COMMANDS: dict[str, tuple[str, tuple]] = {
    # the two Makefile targets: `make test` is what CI runs; `make report` runs this command
    # (run from a scratch directory: --benchmarks names the checkout's, which make finds itself)
    "make report": (
        f"frugalml report --quick --out frugalml-report --benchmarks {ROOT / 'benchmarks'}",
        (_SLOW,),
    ),
    "make test": ("", ()),  # this test suite, run by .ci/run
    "pip install -c constraints.txt -e '.[all]'": ("", ()),  # how `make` builds .venv
    "frugalml --help": ("=", ()),
    "frugalml runtime check": ("=", ()),
    "frugalml runtime simulate --stragglers bimodal --workers 64 --k 48 --plot latency.png": (
        "=",
        (),
    ),
    "frugalml coded matmul --code polar --workers 16 --backend local --stragglers bimodal": (
        "=",
        (),
    ),
    "frugalml coded simulate --workers 256 --stragglers bimodal --p-slow 0.02 --plot latency.png": (
        "=",
        (),
    ),
    "frugalml coded es --function rosenbrock --dim 8 --workers 64 --code polar --stragglers "
    "bimodal --adam --step 0.1 --steps 1500": ("=", ()),
    "frugalml coded attack --dataset digits --method coded --workers 64 --eps 0.15": (
        "= --examples 2 --steps 5",
        (),
    ),
    "frugalml sketch lstsq data.npz --method sketch-and-precondition --compare": ("=", ()),
    "frugalml sketch distributed data.csv --workers 16 --sketch-size 200 --backend local "
    "--deadline 5": ("=", ()),
    "frugalml sketch newton data.csv --loss logistic --lam 1 --workers 16 --averaging debiased": (
        "=",
        (),
    ),
    "frugalml remat solve graph.json --budget 0.9 --solver moccasin --out schedule.json": (
        "= --time-limit 5",
        (),
    ),
    "frugalml remat model transformer --budget 0.9": ("= --time-limit 5", ()),
    "frugalml convex fit data.npz --model poly --beta 1e-3 --solver first-order --json": (
        "=",
        (),
    ),
    "frugalml convex gan --help": ("=", ()),
    "frugalml quant eval --model minilm --w-bits 4 --a-bits 8 --rounding gptq": ("=", (_SLOW,)),
    "frugalml quant eval --hf minilm --calib calib.txt --texts held_out.txt --act-mode dynamic": (
        "=",
        (),
    ),
    "frugalml quant model --hf minilm --calib calib.txt --act-mode dynamic --group-size 32 "
    "--rounding gptq --out minilm_w4a8.onnx": ("=", ()),
    "frugalml quant model model.pt --calib calib.npy --out model_int4.pt --trust-pickle": (
        "=",
        (),
    ),
    "frugalml ecc train --code bch-63-45 --backbone gru --steps 5000 --out gru.pt": (
        "frugalml ecc train --code bch-63-45 --backbone gru --steps 20 --out gru.pt",
        (),
    ),
    "frugalml ecc eval --code bch-63-45 --decoders hard,bp,osd-2,pretrained-gru,cascade,gru.pt "
    "--ebn0 4,5,6 --ensemble 3 --fallback osd-2": ("= --max-frames 200 --batch 200", ()),
    "frugalml subspace saddle --problem bilinear --kappa 100": ("=", ()),
    "frugalml subspace train --task digits-mlp --workers 4 --aggregation adacons": (
        "= --steps 5 --eval-every 5",
        (),
    ),
}


def _write_inputs(directory: Path) -> None:
    """The input files the README's commands name, at small sizes."""
    import torch

    from frugalml.remat import save_graph
    from frugalml.remat.generate import random_layered_graph

    rng = np.random.default_rng(0)
    A = rng.standard_normal((600, 8))
    b = A @ rng.standard_normal(8) + 0.1 * rng.standard_normal(600)
    np.savez(directory / "data.npz", A=A, b=b)
    X = rng.standard_normal((2000, 10))
    labels = (X @ rng.standard_normal(10) + 0.5 * rng.standard_normal(2000) > 0).astype(float)
    np.savetxt(directory / "data.csv", np.column_stack([X, labels]), delimiter=",")
    # (seed 2: a graph the greedy start schedules at 90% of the plain peak; with seed 0 no
    # solver found a schedule at 90% within a minute, and at 80% greedy fails on seeds 0-11)
    save_graph(random_layered_graph(100, rng=2), directory / "graph.json")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    torch.save(model, directory / "model.pt")
    np.save(directory / "calib.npy", rng.standard_normal((64, 16)).astype(np.float32))
    from frugalml.quant.data import stdlib_docstrings

    docs = [" ".join(t.split()) for t in stdlib_docstrings(limit=40)]
    (directory / "calib.txt").write_text("\n".join(docs[:8]) + "\n")
    (directory / "held_out.txt").write_text("\n".join(docs[-16:]) + "\n")


def test_every_readme_command_has_an_entry():
    missing = [c for c in _bash_commands() if c not in COMMANDS]
    assert not missing, f"README commands with no test entry in {__file__}: {missing}"
    stale = [c for c in COMMANDS if c not in _bash_commands()]
    assert not stale, f"entries for commands no longer in the README: {stale}"


def _argv(command: str) -> list[str]:
    run, _ = COMMANDS[command]
    if run.startswith("="):
        run = command + run[1:]
    argv = shlex.split(run)
    assert argv[0] == "frugalml", run
    return argv[1:]


def _command_params():
    return [
        pytest.param(command, marks=COMMANDS[command][1], id=command[:60])
        for command in _bash_commands()
        if COMMANDS.get(command, ("",))[0]
    ]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("readme")
    _write_inputs(directory)
    return directory


@pytest.mark.parametrize("command", _command_params())
def test_readme_command_runs(command, workdir, monkeypatch, capsys):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("COLUMNS", "100")
    if command.startswith("frugalml ecc eval"):  # needs the model of `ecc train`
        assert main(_argv(next(c for c in COMMANDS if "ecc train" in c))) == 0
    code = main(_argv(command))
    out, err = capsys.readouterr()
    assert code == 0, f"{command!r} exited {code}:\n{out[-2000:]}\n{err[-2000:]}"
    assert "Traceback" not in out + err
    for line in out.splitlines():  # a README command reaches what it sets out to do
        assert "not reached" not in line, f"{command!r}: {line}"


# -- Python snippets -----------------------------------------------------------------------
#
# A block is identified by its first line. ``setup`` defines the names the README leaves to
# the reader (at small sizes); ``replace`` cuts sizes; ``check`` runs after the block.

_RUNTIME_SETUP = """
import numpy as np
from tests._readme_tasks import work
A = np.random.default_rng(0).standard_normal((2000, 50))
"""

SNIPPETS: dict[str, dict] = {
    "from frugalml.runtime import CommModel": {
        "setup": _RUNTIME_SETUP,
        "replace": {"workers=8": "workers=2"},
        "check": "assert len(got.results) == 12\n"
        "assert all(v == work(A, i) for i, v in got.results.items())",
    },
    "from frugalml.coded import PolarCode": {
        "setup": """
import numpy as np
from frugalml.runtime import make_executor
rng = np.random.default_rng(0)
A = rng.standard_normal((64, 16)); B = rng.standard_normal((16, 8)); x = rng.standard_normal(16)
executor = make_executor("local-thread", workers=2)
""",
        "check": "assert np.allclose(y, A @ x)\nexecutor.close()",
    },
    "from frugalml.coded.dfo import CodedES": {
        "check": "assert res.time_to(0.01) is not None, res.summary()",
    },
    "from frugalml.sketch import lstsq, make_sketch": {
        "setup": """
import numpy as np
from frugalml.runtime import make_executor
rng = np.random.default_rng(0)
A = rng.standard_normal((4096, 20)); b = A @ rng.standard_normal(20) + rng.standard_normal(4096)
ex = make_executor("local-thread", workers=2)
""",
        "check": "assert np.allclose(res.x, np.linalg.lstsq(A, b, rcond=None)[0])\nex.close()",
    },
    "from frugalml.sketch import SketchedRidge": {
        "setup": """
import numpy as np
rng = np.random.default_rng(0)
X = rng.standard_normal((2000, 10))
y = (X @ rng.standard_normal(10) + 0.5 * rng.standard_normal(2000) > 0).astype(int)
A = X
""",
        "check": "assert (clf.predict(X) == y).mean() > 0.8",
    },
    "from frugalml.remat import load_graph, solve": {
        "in_workdir": True,  # reads graph.json
        "replace": {"time_limit=120": "time_limit=10"},
        "check": "assert sol.feasible and sol.report.within(sol.budget)",
    },
    "model = frugalml.remat.rematerialize(": {
        "setup": """
import torch, frugalml.remat
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64),
                            torch.nn.ReLU(), torch.nn.Linear(64, 2))
example_inputs = torch.randn(32, 8)
loader = [(torch.randn(32, 8), torch.randint(0, 2, (32,))) for _ in range(3)]
loss_fn = torch.nn.functional.cross_entropy
opt = torch.optim.SGD(model.parameters(), lr=0.1)
""",
        "replace": {"budget=0.6)": "budget=0.9, time_limit=5)"},  # a tiny MLP: min 78%
        "check": "assert frugalml.remat.remat_plans(model)[0].peak_bytes <= "
        "frugalml.remat.remat_plans(model)[0].budget_bytes",
    },
    "from frugalml.convex import Polynomial": {
        "setup": """
import numpy as np
rng = np.random.default_rng(0)
X = rng.standard_normal((40, 4)); y = np.maximum(X @ rng.standard_normal(4), 0)
""",
        "check": "assert abs(net.objective(X, y, beta=1e-3) - sol.objective)"
        " <= 1e-4 * max(1, abs(sol.objective))",
    },
    "from frugalml.convex.gan import ConvexWGAN": {
        "check": "assert samples.shape == (64, 8, 8)",
    },
    "from frugalml.quant import export_onnx, load, quantize_model": {
        "setup": """
import torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
calib_batches = [torch.randn(32, 64) for _ in range(4)]
""",
        "in_workdir": True,  # writes model_w4a8.onnx
        "check": "assert y.shape == (32, 4) and qmodel(torch.randn(8, 64)).shape == (8, 4)",
    },
    "import numpy as np": {  # the ecc block
        "replace": {"10_000": "500"},
        "check": "assert bits.shape == (500, 63)",
    },
    "import math": {  # the PD-SESOP block: its comment quotes the gradient count
        "check": "assert res.grad_evals == _readme_figure",
    },
    "from frugalml.subspace.aggregation import AdaConsAggregator": {
        "setup": """
import torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tests._readme_tasks import free_port
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1)
torch.manual_seed(0)
ddp_model = DistributedDataParallel(torch.nn.Linear(4, 1))
optimizer = torch.optim.SGD(ddp_model.parameters(), lr=0.1)
before = [p.detach().clone() for p in ddp_model.parameters()]
loss = ddp_model(torch.randn(8, 4)).pow(2).mean()
""",
        "check": """
after = list(ddp_model.parameters())
assert any(not torch.equal(a, b) for a, b in zip(after, before))
dist.destroy_process_group()
""",
    },
}


def _snippet_key(block: str) -> str:
    first = block.strip().splitlines()[0]
    return next((k for k in SNIPPETS if first.startswith(k)), first)


def test_every_readme_snippet_has_an_entry():
    keys = [_snippet_key(b) for b in _blocks("python")]
    missing = [k for k in keys if k not in SNIPPETS]
    assert not missing, f"README Python blocks with no test entry in {__file__}: {missing}"
    assert sorted(keys) == sorted(SNIPPETS), "SNIPPETS must match the README's blocks"


@pytest.mark.parametrize("block", _blocks("python"), ids=lambda b: _snippet_key(b)[:40])
def test_readme_snippet_runs(block, monkeypatch, workdir):
    entry = SNIPPETS[_snippet_key(block)]
    code = block
    for old, new in entry.get("replace", {}).items():
        assert old in code, f"replacement {old!r} no longer matches the README block"
        code = code.replace(old, new)
    namespace: dict = {"__name__": "__readme__"}
    figure = re.search(r"# (\d[\d,]*) to distance", block)
    if figure:
        namespace["_readme_figure"] = int(figure.group(1).replace(",", ""))
    # the README's relative paths are from the repository root, or name the input files
    monkeypatch.chdir(workdir if entry.get("in_workdir") else ROOT)
    exec(compile(textwrap.dedent(entry.get("setup", "")), "<setup>", "exec"), namespace)
    exec(compile(code, "<README>", "exec"), namespace)
    exec(compile(textwrap.dedent(entry.get("check", "")), "<check>", "exec"), namespace)
