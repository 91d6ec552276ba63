"""``frugalml remat solve``: JSON output checked against the graph file, ``--out``, the
MOCCASIN solver, one-line errors with exit code 2, and ``frugalml remat --help``.

The graph is a small hand-made DAG written with ``save_graph`` (the frugalml layout). The
printed schedule is re-scored here by a direct simulation of the memory model (values live from
their step to their last read before being recomputed, plus the output being computed) on the
raw node/link lists of the file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from frugalml.cli import main
from frugalml.remat.formats import save_graph
from frugalml.remat.graph import RematGraph


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("frugalml: error:"), err
    return lines[0]


# a -> b -> c -> d -> e -> f with skips a -> d and b -> e: plain peak 90 (at d: a + b + c + d),
# minimum 80 (d needs a + c); in between, b is dropped at d and recomputed before e
IDS = ["a", "b", "c", "d", "e", "f"]
MEMORY = [40, 10, 30, 10, 20, 5]
COST = [3.0, 1.0, 2.0, 4.0, 5.0, 1.0]
EDGES = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d"), ("d", "e"), ("b", "e"), ("e", "f")]


@pytest.fixture
def graph_file(tmp_path) -> Path:
    g = RematGraph.from_edges(COST, MEMORY, EDGES, ids=IDS, name="toy")
    return save_graph(g, tmp_path / "toy.json")


def raw(path: Path):
    data = json.loads(path.read_text())
    nodes = {nd["id"]: nd for nd in data["nodes"]}
    inputs = {v: {lk["source"] for lk in data["links"] if lk["target"] == v} for v in nodes}
    return nodes, inputs


def simulate(path: Path, schedule: list[int]) -> tuple[int, float]:
    """Peak and cost of ``schedule`` (ids of the saved file) by explicit live sets."""
    nodes, inputs = raw(path)
    computed: set = set()
    peak = 0
    for t, v in enumerate(schedule):
        assert inputs[v] <= computed, f"step {t} reads a value never computed"
        live = set()
        for u in computed:
            for w in schedule[t:]:
                if u in inputs[w]:
                    live.add(u)
                    break
                if w == u:
                    break
        peak = max(peak, nodes[v]["memory"] + sum(nodes[u]["memory"] for u in live - {v}))
        computed.add(v)
    assert computed == set(nodes)
    return peak, sum(nodes[v]["cost"] for v in schedule)


def plain(path: Path) -> tuple[int, float]:
    nodes, _ = raw(path)
    return simulate(path, sorted(nodes))  # saved ids are the topological positions


def test_simulation_numbers(graph_file):
    # a: 40 | a+b: 50 | a+b+c: 80 | a+b+c+d: 90 | b+d+e: 40 | e+f: 25
    assert plain(graph_file) == (90, 16.0)


def check_payload(payload, path: Path, budget_bytes: int):
    nodes, _ = raw(path)
    assert payload["budget"] == budget_bytes
    sched = payload["schedule"]
    assert isinstance(sched, list) and all(isinstance(v, int) for v in sched)
    peak, cost = simulate(path, sched)
    assert payload["peak_memory"] == peak <= budget_bytes
    assert payload["total_cost"] == pytest.approx(cost)
    assert payload["recomputations"] == len(sched) - len(nodes)
    assert payload["overhead"] == pytest.approx(cost / plain(path)[1] - 1.0)
    info = payload["graph"]
    assert (info["nodes"], info["edges"]) == (len(IDS), len(EDGES))
    assert info["name"] == path.stem and info["total_cost"] == sum(COST)


def test_solve_greedy_json(capsys, graph_file):
    code, out, err = run_cli(capsys, "remat", "solve", graph_file, "--budget", "0.9",
                             "--solver", "greedy", "--json")  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert payload["solver"] == "greedy" and payload["status"] == "feasible"
    check_payload(payload, graph_file, math.floor(0.9 * plain(graph_file)[0]))


def test_solve_bytes_budget_and_out_file(capsys, graph_file, tmp_path):
    out_path = tmp_path / "results" / "sol.json"
    out_path.parent.mkdir()
    code, out, err = run_cli(capsys, "remat", "solve", graph_file, "--budget", "85",
                             "--solver", "greedy", "--out", out_path, "--json")  # fmt: skip
    assert code == 0, err
    assert out_path.exists()
    written = json.loads(out_path.read_text())
    assert written == json.loads(out)
    check_payload(written, graph_file, 85)
    assert not [p for p in out_path.parent.iterdir() if p.name != "sol.json"]  # no temp files
    # without --json: a human summary, and the file is still written
    out2 = tmp_path / "human.json"
    code, out, err = run_cli(capsys, "remat", "solve", graph_file, "--budget", "85",
                             "--solver", "greedy", "--out", out2)  # fmt: skip
    assert code == 0, err
    assert "wrote" in out and "greedy" in out
    check_payload(json.loads(out2.read_text()), graph_file, 85)


def test_solve_moccasin(capsys, graph_file):
    budget = math.floor(0.9 * plain(graph_file)[0])
    code, out, err = run_cli(capsys, "remat", "solve", graph_file, "--budget", "0.9",
                             "--solver", "moccasin", "--time-limit", "10", "--threads", "1",
                             "--json")  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert payload["solver"] == "moccasin" and payload["status"] == "optimal"
    check_payload(payload, graph_file, budget)
    assert payload["objective"] == pytest.approx(payload["total_cost"])
    assert payload["recomputations"] == 1  # b, the cheapest value to drop at d
    assert payload["total_cost"] == sum(COST) + 1.0


def test_solve_moccasin_human_output(capsys, graph_file):
    code, out, err = run_cli(capsys, "remat", "solve", graph_file, "--budget", "1.0",
                             "--time-limit", "10", "--threads", "1")  # fmt: skip
    assert code == 0, err
    assert "moccasin: optimal" in out and "toy" in out


def test_solve_old_workers_spelling_still_works(capsys, graph_file):
    code, out, err = run_cli(capsys, "remat", "solve", graph_file, "--budget", "0.9",
                             "--solver", "moccasin", "--time-limit", "10", "--workers", "1",
                             "--blas-threads", "1", "--json")  # fmt: skip
    assert code == 0, err
    assert "'remat solve --workers' is deprecated" in err and "use --threads" in err
    assert json.loads(out)["status"] == "optimal"


def test_model_old_workers_spelling_is_rewritten(capsys):
    # (checked before any model is built: --workers 0 reaches the command as --threads 0)
    code, out, err = run_cli(capsys, "remat", "model", "mlp", "--workers", "0")
    assert code == 2 and out.strip() == ""
    warning, error = err.strip().splitlines()
    assert "'remat model --workers' is deprecated" in warning and "use --threads" in warning
    assert error.startswith("frugalml: error:") and "--threads" in error


def test_no_schedule_exits_1_with_json(capsys, graph_file, tmp_path):
    # one computation per node leaves only the plain order (peak 90), over the 85-byte budget
    out_path = tmp_path / "none.json"
    code, out, err = run_cli(capsys, "remat", "solve", graph_file, "--budget", "85",
                             "--solver", "moccasin", "--copies", "1", "--time-limit", "10",
                             "--threads", "1", "--json", "--out", out_path)  # fmt: skip
    assert code == 1, err
    payload = json.loads(out)
    assert payload["status"] == "infeasible" and payload["schedule"] is None
    assert payload["peak_memory"] is None and payload["budget"] == 85
    assert json.loads(out_path.read_text()) == payload


def test_budget_below_minimum(capsys, graph_file):
    # the minimum is 80 (d needs a + c + d); 0.5 of the plain peak is 45 bytes
    for budget in ("0.5", "10"):
        code, out, err = run_cli(capsys, "remat", "solve", graph_file, "--budget", budget,
                                 "--solver", "greedy", "--json")  # fmt: skip
        assert code == 2 and out.strip() == ""
        line = one_line_error(err)
        assert "infeasible" in line and "minimum is 80" in line


def test_unknown_solver(capsys, graph_file):
    code, out, err = run_cli(capsys, "remat", "solve", graph_file, "--solver", "simplex")
    assert code == 2 and out.strip() == ""
    line = one_line_error(err)
    assert "solver must be one of" in line and "'simplex'" in line and "'moccasin'" in line


def test_missing_file(capsys, tmp_path):
    path = tmp_path / "absent.json"
    code, out, err = run_cli(capsys, "remat", "solve", path, "--solver", "greedy")
    assert code == 2 and out.strip() == ""
    line = one_line_error(err)
    assert "does not exist" in line and str(path) in line


def test_invalid_graph_file(capsys, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json", encoding="utf-8")
    code, _, err = run_cli(capsys, "remat", "solve", path, "--solver", "greedy")
    assert code == 2
    assert "not valid JSON" in one_line_error(err)


@pytest.mark.parametrize(
    "args",
    [("--budget", "abc"), ("--budget", "-1"), ("--time-limit", "0", "--solver", "moccasin"),
     ("--copies", "0", "--solver", "greedy")],
)  # fmt: skip
def test_bad_options(capsys, graph_file, args):
    code, out, err = run_cli(capsys, "remat", "solve", graph_file, *args)
    assert code == 2 and out.strip() == ""
    one_line_error(err)


def test_remat_help_lists_commands(capsys):
    code, out, _ = run_cli(capsys, "remat", "--help")
    assert code == 0
    assert "solve" in out and "model" in out
    code, out, _ = run_cli(capsys, "remat", "solve", "--help")
    assert code == 0
    for option in ("--budget", "--solver", "--time-limit", "--threads", "--blas-threads",
                   "--json", "--out"):  # fmt: skip
        assert option in out
    assert "--workers" not in out  # the old spelling is a hidden alias


@pytest.mark.slow
def test_remat_model_mlp(capsys):
    pytest.importorskip("torch")
    code, out, err = run_cli(capsys, "remat", "model", "mlp", "--budget", "0.9",
                             "--time-limit", "20", "--json")  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    execution = payload["execution"]
    assert execution["max_grad_diff"] < 1e-6
    assert execution["measured_peak"] <= payload["budget"]
    assert payload["peak_memory"] <= payload["budget"]


# -- cases of the bad-input matrix (benchmarks/bad_inputs/remat.txt) that found tracebacks,
# -- hangs or silent acceptance
@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b'{"nodes": [{"id": 0, "cost": 1, "memory": 1e300}], "links": []}', "beyond any memory"),
        (b'{"nodes": [{"id": [0], "cost": 1, "memory": 1}], "links": []}', "string or an integer"),
        (b"\xff\xfe\x00garbage", "not a UTF-8"),
    ],
)
def test_bad_graph_files_give_one_line_errors(capsys, tmp_path, content, match):
    path = tmp_path / "g.json"
    path.write_bytes(content)
    code, out, err = run_cli(capsys, "remat", "solve", path, "--solver", "greedy")
    assert code == 2 and out.strip() == ""
    assert match in one_line_error(err)


def test_special_files_and_directories_are_not_graphs(capsys, tmp_path):
    # /dev/zero was read until memory ran out (11 GB in 35 s)
    for path, match in (("/dev/zero", "not a regular file"), (tmp_path, "is a directory")):
        code, _, err = run_cli(capsys, "remat", "solve", path)
        assert code == 2 and match in one_line_error(err)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("--time-limit", "nan"), "--time-limit"),
        (("--time-limit", "-1"), "--time-limit"),
        (("--budget", "nan"), "--budget"),
        (("--budget", "inf"), "--budget"),
        (("--threads", "0"), "--threads"),
        (("--copies", "-1"), "--copies"),
    ],
)
def test_bad_numbers_are_refused_before_reading_the_graph(capsys, tmp_path, args, match):
    missing = tmp_path / "absent.json"  # (options are checked first: no "does not exist")
    code, _, err = run_cli(capsys, "remat", "solve", missing, *args)
    assert code == 2 and match in one_line_error(err)


def test_output_paths_are_checked_before_the_work(capsys, graph_file, tmp_path):
    # (an existing directory and "" were IsADirectoryError / OSError tracebacks after the solve;
    # a missing directory was created silently)
    # ("" arrives as ".")
    cases = ((tmp_path, "is a directory"), (tmp_path / "no" / "x.json", "not exist"),
             ("", "is a directory"))  # fmt: skip
    for out, match in cases:
        for cmd in (("solve", graph_file), ("model", "mlp")):
            code, _, err = run_cli(capsys, "remat", *cmd, "--out", out)
            assert code == 2
            line = one_line_error(err)
            assert "--out" in line and match in line
