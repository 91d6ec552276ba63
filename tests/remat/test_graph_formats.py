"""Computation graphs for rematerialisation: validation, the minimum budget, the three JSON
layouts, the save/load round trip, the published graphs and the random layered generator.

Every expected value is computed here from the raw input (edge lists, JSON node/link lists),
never with the package's own helpers:

- ``RematGraph.from_edges`` rejects cycles (naming a node), self-loops, unknown edge endpoints,
  negative / NaN / infinite costs, negative or fractional memory, duplicate ids and a given
  order that is not topological; relabelling to a topological order keeps every node's id,
  name, cost, memory and inputs together;
- ``min_budget`` equals ``max_v memory[v] + sum of memory[u] over the distinct inputs u of v``
  on small hand graphs (numbers worked out by hand) and on the published graphs;
- the Checkmate, MOCCASIN layered and frugalml layouts parse from small files written here, and
  every published graph in /work/shared/data/remat-graphs loads with the node and edge counts,
  costs, sizes and edges of its raw JSON;
- ``save_graph`` / ``load_graph`` round trip costs, memory, names and edges exactly;
- bad files (unknown layout, missing cost field, invalid JSON, missing file) raise
  ``InvalidInputError`` naming the file and the problem;
- ``random_layered_graph`` is reproducible from a seed, acyclic, has ``n`` nodes, exactly one
  source, the documented cost/size ranges, and rejects bad knobs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from frugalml.errors import InvalidInputError
from frugalml.remat.formats import graph_from_dict, load_graph, save_graph
from frugalml.remat.generate import random_layered_graph
from frugalml.remat.graph import RematGraph

DATA = Path("/work/shared/data/remat-graphs")


# -- independent references ------------------------------------------------------------------------
def ref_min_budget(ids, memory, edges) -> int:
    """``max_v m_v + sum_{u -> v} m_u`` (distinct inputs) from a raw id/edge list."""
    mem = dict(zip(ids, (int(m) for m in memory), strict=True))
    inputs: dict = {v: set() for v in ids}
    for s, t in edges:
        inputs[t].add(s)
    return max(mem[v] + sum(mem[u] for u in inputs[v]) for v in ids)


def graph_edges_by_id(g: RematGraph) -> set:
    """The graph's edges translated back to the caller's ids."""
    return {(g.ids[i], g.ids[j]) for i, j in g.edges}


def has_cycle(n: int, edges) -> bool:
    adj: list[list[int]] = [[] for _ in range(n)]
    for s, t in edges:
        adj[s].append(t)
    state = [0] * n  # 0 new, 1 on stack, 2 done
    for root in range(n):
        if state[root]:
            continue
        stack = [(root, iter(adj[root]))]
        state[root] = 1
        while stack:
            v, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[v] = 2
                stack.pop()
            elif state[nxt] == 1:
                return True
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(adj[nxt])))
    return False


# -- validation ------------------------------------------------------------------------------------
def test_cycle_is_rejected_and_a_node_is_named():
    with pytest.raises(InvalidInputError, match="cycle") as exc:
        RematGraph.from_edges([1, 1, 1], [1, 1, 1], [("a", "b"), ("b", "c"), ("c", "a")],
                              ids=["a", "b", "c"])  # fmt: skip
    assert any(f"'{v}'" in str(exc.value) for v in "abc"), str(exc.value)
    with pytest.raises(InvalidInputError, match="cycle"):  # a cycle behind a valid prefix
        RematGraph.from_edges([1] * 4, [1] * 4, [(0, 1), (1, 2), (2, 3), (3, 1)])


def test_cycle_error_names_a_node_on_the_cycle():
    # x is listed first and fed by the 2-cycle a <-> b, but is not on it
    with pytest.raises(InvalidInputError, match="cycle") as exc:
        RematGraph.from_edges([1, 1, 1], [1, 1, 1], [("a", "b"), ("b", "a"), ("a", "x")],
                              ids=["x", "a", "b"])  # fmt: skip
    assert "'a'" in str(exc.value) or "'b'" in str(exc.value), str(exc.value)


def test_self_loop_unknown_endpoint_and_bad_edges():
    with pytest.raises(InvalidInputError, match="self-loop") as exc:
        RematGraph.from_edges([1, 1], [1, 1], [("a", "b"), ("b", "b")], ids=["a", "b"])
    assert "'b'" in str(exc.value)
    with pytest.raises(InvalidInputError, match="unknown node 'z'"):
        RematGraph.from_edges([1, 1], [1, 1], [("a", "z")], ids=["a", "b"])
    with pytest.raises(InvalidInputError, match="unknown node 'q'"):
        RematGraph.from_edges([1, 1], [1, 1], [("q", "a")], ids=["a", "b"])
    with pytest.raises(InvalidInputError, match="pair"):
        RematGraph.from_edges([1, 1], [1, 1], [("a", "b", "c")], ids=["a", "b"])
    with pytest.raises(InvalidInputError, match="pair"):
        RematGraph.from_edges([1, 1], [1, 1], [5], ids=["a", "b"])


@pytest.mark.parametrize(
    ("cost", "memory", "pattern"),
    [
        ([1.0, -2.0], [1, 1], "negative cost"),
        ([1.0, float("nan")], [1, 1], "non-finite cost"),
        ([float("inf"), 1.0], [1, 1], "non-finite cost"),
        ([1.0, 1.0], [1, -3], "negative memory"),
        ([1.0, 1.0], [1.0, 2.5], "whole numbers"),
        ([1.0, 1.0], [1.0, float("nan")], "whole numbers"),
        ([1.0, 1.0], ["1", "2"], "numeric"),
        ([1.0, 1.0], [1, 1, 1], "shape"),
        ([], [], "at least one node"),
    ],
)
def test_bad_costs_and_memory_are_rejected(cost, memory, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        RematGraph.from_edges(cost, np.asarray(memory), [])
    if len(cost) == len(memory) and cost:  # the ordered constructor validates the same things
        with pytest.raises(InvalidInputError, match=pattern):
            RematGraph(cost=cost, memory=np.asarray(memory), preds=((),) * len(cost))


def test_duplicate_ids_and_wrong_lengths():
    with pytest.raises(InvalidInputError, match="unique"):
        RematGraph.from_edges([1, 1], [1, 1], [], ids=["a", "a"])
    with pytest.raises(InvalidInputError, match="1 node ids for 2"):
        RematGraph.from_edges([1, 1], [1, 1], [], ids=["a"])
    with pytest.raises(InvalidInputError, match="1 names for 2"):
        RematGraph.from_edges([1, 1], [1, 1], [], names=["a"])


def test_constructor_requires_inputs_to_precede_consumers():
    for preds in (((), (1,)), ((1,), ()), ((), (-1,))):
        with pytest.raises(InvalidInputError, match="precede"):
            RematGraph(cost=[1, 1], memory=[1, 1], preds=preds)
    with pytest.raises(InvalidInputError, match="2 entries"):
        RematGraph(cost=[1, 1], memory=[1, 1], preds=((),))


def test_given_order_is_validated_and_kept():
    edges = [("a", "b"), ("a", "c"), ("c", "d"), ("b", "d")]
    with pytest.raises(InvalidInputError, match="not topological") as exc:
        RematGraph.from_edges([1] * 4, [1] * 4, edges, ids="abcd", order="adbc")
    assert "'b' -> 'd'" in str(exc.value) or "'c' -> 'd'" in str(exc.value)
    with pytest.raises(InvalidInputError, match="exactly once"):
        RematGraph.from_edges([1] * 4, [1] * 4, edges, ids="abcd", order="abcc")
    with pytest.raises(InvalidInputError, match="exactly once"):
        RematGraph.from_edges([1] * 4, [1] * 4, edges, ids="abcd", order="abc")
    with pytest.raises(InvalidInputError, match="unknown node 'e'"):
        RematGraph.from_edges([1] * 4, [1] * 4, edges, ids="abcd", order="abce")
    g = RematGraph.from_edges([1, 2, 3, 4], [10, 20, 30, 40], edges, ids="abcd", order="acbd")
    assert g.ids == ("a", "c", "b", "d")
    assert g.cost.tolist() == [1, 3, 2, 4] and g.memory.tolist() == [10, 30, 20, 40]
    assert graph_edges_by_id(g) == set(edges)


def test_relabelling_to_topological_order_keeps_ids_names_and_values():
    # caller lists the nodes out of order; c <- b <- a, d <- a, d <- c
    ids = ["c", "d", "a", "b"]
    names = ["conv", "dense", "input", "bn"]
    cost = [3.0, 4.0, 1.0, 2.0]
    memory = [30, 40, 10, 20]
    edges = [("a", "b"), ("b", "c"), ("a", "d"), ("c", "d"), ("a", "b")]  # duplicate edge
    g = RematGraph.from_edges(cost, memory, edges, ids=ids, names=names, name="toy")
    assert g.n == 4 and len(g) == 4 and g.name == "toy"
    assert sorted(g.ids) == sorted(ids)
    pos = {v: i for i, v in enumerate(g.ids)}
    assert all(pos[s] < pos[t] for s, t in edges)  # topological
    for k, v in enumerate(ids):  # every node keeps its own name, cost and size
        i = pos[v]
        assert g.names[i] == names[k] and g.cost[i] == cost[k] and g.memory[i] == memory[k]
    assert graph_edges_by_id(g) == set(edges) and g.n_edges == 4
    for j, ps in enumerate(g.preds):
        assert list(ps) == sorted(ps) and all(i < j for i in ps)
        assert {g.ids[i] for i in ps} == {s for s, t in edges if t == g.ids[j]}
    for i, ss in enumerate(g.succs):
        assert {g.ids[j] for j in ss} == {t for s, t in edges if s == g.ids[i]}
    # smallest-index Kahn order over the caller's listing: a (pos 2) first, then b, c, d
    assert g.ids == ("a", "b", "c", "d")
    assert g.total_cost == 10.0
    assert not g.cost.flags.writeable and not g.memory.flags.writeable
    assert g.memory.dtype == np.int64 and g.cost.dtype == np.float64


def test_bad_cost_error_names_the_callers_node():
    # caller's node 0 is 'a' (cost 1); the negative cost belongs to 'b', which sorts first
    with pytest.raises(InvalidInputError, match="negative cost") as exc:
        RematGraph.from_edges([1.0, -1.0], [1, 1], [("b", "a")], ids=["a", "b"])
    assert "'b'" in str(exc.value) or " b " in str(exc.value), str(exc.value)


# -- min_budget ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ids", "memory", "edges", "expected"),
    [
        (["x"], [9], [], 9),  # a single node
        (["a", "b", "c"], [4, 7, 2], [], 7),  # independent nodes: the largest
        (["a", "b", "c"], [3, 5, 2], [("a", "b"), ("b", "c")], 8),  # chain: b + a
        # diamond a -> b, a -> c, b -> d, c -> d: d needs b + c + d = 1 + 2 + 7
        (list("abcd"), [4, 1, 2, 7], [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")], 10),
        # fan-in of 3 zero-size outputs into one big node
        (list("abcd"), [0, 0, 0, 6], [("a", "d"), ("b", "d"), ("c", "d")], 6),
        # a duplicated edge counts its input once: b needs a + b = 5 + 1
        (["a", "b"], [5, 1], [("a", "b"), ("a", "b")], 6),
        # a big source feeding a small node: a + b = 10 + 1; c needs b + c = 1 + 3
        (list("abc"), [10, 1, 3], [("a", "b"), ("b", "c")], 11),
    ],
)
def test_min_budget_closed_form(ids, memory, edges, expected):
    g = RematGraph.from_edges([1.0] * len(ids), memory, edges, ids=ids)
    assert g.min_budget == expected
    assert ref_min_budget(ids, memory, edges) == expected


def test_min_budget_on_random_graphs_matches_reference():
    rng = np.random.default_rng(5)
    for _ in range(30):
        n = int(rng.integers(1, 15))
        ids = [f"v{k}" for k in rng.permutation(n)]
        edges = [(ids[a], ids[b]) for b in range(n) for a in range(b) if rng.random() < 0.3]
        memory = rng.integers(0, 100, n)
        g = RematGraph.from_edges(np.ones(n), memory, edges, ids=ids)
        assert g.min_budget == ref_min_budget(ids, memory, edges)
        assert graph_edges_by_id(g) == set(edges)


# -- the three layouts -----------------------------------------------------------------------------
def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def checkmate_dict():
    # ids deliberately not in topological order: 2 -> 0 -> 1
    return {
        "directed": True,
        "multigraph": False,
        "graph": {"name": "toy checkmate"},
        "nodes": [
            {"id": 0, "name": "conv", "cost_cpu": 7, "cost_ram": 300, "backward": False},
            {"id": 1, "name": "grad", "cost_cpu": 11, "cost_ram": 100, "backward": True},
            {"id": 2, "name": "input", "cost_cpu": 0, "cost_ram": 50, "backward": False},
        ],
        "links": [
            {"source": 2, "target": 0},
            {"source": 0, "target": 1},
            {"source": 2, "target": 1},
        ],
    }


def layered_dict():
    return {
        "directed": True,
        "graph": {"name": "toy layered", "order": [0, 2, 1, 3]},
        "nodes": [
            {"name": 0, "duration": 0, "out_cost": 100, "param_cost": 0},
            {"name": 1, "duration": 5, "out_cost": 200, "param_cost": 0},
            {"name": 2, "duration": 7, "out_cost": 300, "param_cost": 0},
            {"name": 3, "duration": 9, "out_cost": 400, "param_cost": 0},
        ],
        "links": [{"0": 0, "1": 1}, {"0": 0, "1": 2}, {"0": 1, "1": 3}, {"0": 2, "1": 3}],
    }


def frugalml_dict():
    return {
        "format": "frugalml-remat-1",
        "graph": {"name": "ours"},
        "nodes": [
            {"id": "x", "name": "X", "cost": 1.5, "memory": 8},
            {"id": "y", "name": "Y", "cost": 2.25, "memory": 16},
        ],
        "links": [{"source": "x", "target": "y"}],
    }


def check_against_raw(g: RematGraph, nodes, links, key, cost_key, mem_key, src, dst):
    assert g.n == len(nodes)
    assert g.n_edges == len({(lk[src], lk[dst]) for lk in links})
    pos = {v: i for i, v in enumerate(g.ids)}
    assert sorted(pos, key=str) == sorted((nd[key] for nd in nodes), key=str)
    for nd in nodes:
        i = pos[nd[key]]
        assert g.cost[i] == float(nd[cost_key])
        assert g.memory[i] == int(nd[mem_key])
        assert g.names[i] == str(nd.get("name", nd[key]))
    assert graph_edges_by_id(g) == {(lk[src], lk[dst]) for lk in links}


def test_checkmate_layout(tmp_path):
    data = checkmate_dict()
    g = load_graph(write_json(tmp_path / "cm.json", data))
    check_against_raw(g, data["nodes"], data["links"], "id", "cost_cpu", "cost_ram",
                      "source", "target")  # fmt: skip
    assert g.ids == (2, 0, 1)
    assert g.name == "cm"  # load_graph names the graph after the file
    assert g.meta["format"] == "checkmate"
    assert g.min_budget == ref_min_budget([0, 1, 2], [300, 100, 50], [(2, 0), (0, 1), (2, 1)])
    assert graph_from_dict(data).name == "toy checkmate"
    assert graph_from_dict(data, fmt="checkmate").n == 3


def test_checkmate_backward_flags_follow_the_nodes():
    data = checkmate_dict()
    g = graph_from_dict(data)
    flag = {nd["id"]: nd["backward"] for nd in data["nodes"]}
    assert g.meta["backward"] == [flag[v] for v in g.ids]


def test_layered_layout_keeps_the_authors_order(tmp_path):
    data = layered_dict()
    g = load_graph(write_json(tmp_path / "lay.json", data))
    check_against_raw(g, data["nodes"], data["links"], "name", "duration", "out_cost", "0", "1")
    assert g.ids == (0, 2, 1, 3)  # graph.order, not the smallest-index Kahn order (0, 1, 2, 3)
    assert g.meta["format"] == "layered"
    bad = layered_dict()
    bad["graph"]["order"] = [0, 3, 1, 2]
    with pytest.raises(InvalidInputError, match="not topological"):
        graph_from_dict(bad)


def test_frugalml_layout(tmp_path):
    data = frugalml_dict()
    g = load_graph(write_json(tmp_path / "ours.json", data))
    check_against_raw(g, data["nodes"], data["links"], "id", "cost", "memory",
                      "source", "target")  # fmt: skip
    assert g.ids == ("x", "y") and g.meta["format"] == "frugalml"
    # the explicit format works without the marker
    del data["format"]
    assert graph_from_dict(data, fmt="frugalml").n == 2


def test_frugalml_layout_is_detected_without_the_marker():
    data = frugalml_dict()
    del data["format"]
    assert graph_from_dict(data).n == 2


def test_edges_key_is_accepted_for_links():
    data = checkmate_dict()
    data["edges"] = data.pop("links")
    assert graph_from_dict(data).n_edges == 3


def test_explicit_format_mismatch_and_unknown_format():
    with pytest.raises(InvalidInputError, match="'duration'"):
        graph_from_dict(checkmate_dict(), fmt="layered")
    with pytest.raises(InvalidInputError, match="format must be one of"):
        graph_from_dict(checkmate_dict(), fmt="bogus")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "pattern"),
    [
        ([1, 2], "JSON object with a 'nodes' list"),
        ({"links": []}, "'nodes' list"),
        ({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 1}], "links": {}}, "must be a list"),
        ({"nodes": [{"id": 0, "weight": 1}], "links": []}, "unknown graph format"),
        ({"nodes": [], "links": []}, "unknown graph format"),
        ({"nodes": [{"id": 0, "cost_cpu": 1}], "links": []}, "no 'cost_ram'"),
        ({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": None}], "links": []}, "no 'cost_ram'"),
        ({"nodes": [{"cost_cpu": 1, "cost_ram": 1}], "links": []}, "no 'id' field"),
        ({"nodes": [{"id": 0, "cost_cpu": "x", "cost_ram": 1}], "links": []}, "non-numeric"),
        ({"nodes": [{"id": 0, "cost_cpu": -1, "cost_ram": 1}], "links": []}, "invalid cost"),
        ({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": -5}], "links": []}, "invalid cost"),
        ({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 1.5}], "links": []}, "whole number"),
        ({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 1}], "links": [{"source": 0}]},
         "lacks 'source'/'target'"),
        ({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 1}],
          "links": [{"source": 0, "target": 9}]}, "unknown node 9"),
        ({"nodes": [{"id": 0, "cost_cpu": 1, "cost_ram": 1}, {"id": 1, "cost_cpu": 1,
          "cost_ram": 1}], "links": [{"source": 0, "target": 1}, {"source": 1, "target": 0}]},
         "cycle"),
        ({"format": "frugalml-remat-1", "nodes": [5]}, "not an object"),
    ],
)  # fmt: skip
def test_bad_dicts_raise_invalid_input(data, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        graph_from_dict(data)


# -- files: errors name the file and the problem ---------------------------------------------------
def test_unknown_format_file(tmp_path):
    path = write_json(tmp_path / "weird.json", {"nodes": [{"id": 0, "flops": 3}], "links": []})
    with pytest.raises(InvalidInputError, match="unknown graph format") as exc:
        load_graph(path)
    assert str(path) in str(exc.value)


def test_missing_cost_field_file(tmp_path):
    data = checkmate_dict()
    del data["nodes"][1]["cost_cpu"]
    path = write_json(tmp_path / "nocost.json", data)
    with pytest.raises(InvalidInputError, match="cost_cpu") as exc:
        load_graph(path)
    assert str(path) in str(exc.value) and "1" in str(exc.value)


def test_invalid_json_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"nodes": [', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="not valid JSON") as exc:
        load_graph(path)
    assert str(path) in str(exc.value)


def test_missing_file_and_directory(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(InvalidInputError, match="does not exist") as exc:
        load_graph(path)
    assert str(path) in str(exc.value)
    with pytest.raises(InvalidInputError, match="is a directory"):
        load_graph(tmp_path)


def test_special_and_undecodable_files_are_refused(tmp_path):
    # /dev/zero never ends: reading it used to grow without bound (11 GB in 35 s)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        load_graph("/dev/zero")
    bad = tmp_path / "g.json"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InvalidInputError, match="not a UTF-8"):
        load_graph(bad)
    with pytest.raises(InvalidInputError, match="give the path"):
        load_graph("")


def test_a_graph_file_too_large_for_memory_is_refused(tmp_path, monkeypatch):
    from frugalml.errors import TooLargeError

    path = tmp_path / "g.json"
    path.write_text(json.dumps({"nodes": [{"id": i, "cost": 1, "memory": 1} for i in range(50)]}))
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", "1000")
    with pytest.raises(TooLargeError, match="graph file"):
        load_graph(path)
    monkeypatch.setenv("FRUGALML_MEMORY_LIMIT", str(10**9))
    assert load_graph(path).n == 50


# -- round trip ------------------------------------------------------------------------------------
def assert_same_graph(a: RematGraph, b: RematGraph):
    assert a.n == b.n
    assert np.array_equal(a.cost, b.cost) and a.cost.dtype == b.cost.dtype
    assert np.array_equal(a.memory, b.memory) and b.memory.dtype == np.int64
    assert a.edges == b.edges and a.preds == b.preds
    assert a.names == b.names


def test_save_load_round_trip(tmp_path):
    g = RematGraph.from_edges(
        [0.1, 1e-300, 2.0 / 3.0, 12345.678], [0, 2**40, 3, 7],
        [("s", "t"), ("u", "t"), ("s", "u"), ("t", "w")], ids=["w", "t", "u", "s"],
        names=["out", "mid", "side", "src"], name="rt",
    )  # fmt: skip
    path = save_graph(g, tmp_path / "sub" / "dir" / "g.json")  # parent folders are created
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    raw = json.loads(path.read_text())
    assert raw["format"] == "frugalml-remat-1" and len(raw["nodes"]) == 4
    assert len(raw["links"]) == 4
    h = load_graph(path)
    assert_same_graph(g, h)
    assert h.ids == tuple(range(4))  # saved ids are the topological positions
    # a second round trip is a fixed point, byte for byte
    again = save_graph(h, tmp_path / "again.json")
    raw2 = json.loads(again.read_text())
    raw2["graph"], raw["graph"] = None, None
    assert raw2 == raw


def test_round_trip_of_generated_graph(tmp_path):
    g = random_layered_graph(60, rng=11)
    h = load_graph(save_graph(g, tmp_path / "layered.json"))
    assert_same_graph(g, h)
    assert h.min_budget == g.min_budget


# -- the published graphs --------------------------------------------------------------------------
def published():
    return sorted(DATA.glob("*.json")) if DATA.is_dir() else []


@pytest.mark.parametrize("path", published() or [None], ids=lambda p: p.stem if p else "none")
def test_published_graph_matches_raw_json(path):
    if path is None or not path.exists():
        pytest.skip(f"published graphs not found in {DATA}")
    raw = json.loads(path.read_text())
    nodes, links = raw["nodes"], raw["links"]
    layered = "duration" in nodes[0]
    g = load_graph(path)
    assert g.n == len(nodes)
    assert g.n_edges == len(links)
    assert g.name == path.stem
    if layered:
        key, ck, mk, src, dst = "name", "duration", "out_cost", "0", "1"
        assert list(g.ids) == raw["graph"]["order"]
        assert g.meta["format"] == "layered"
    else:
        key, ck, mk, src, dst = "id", "cost_cpu", "cost_ram", "source", "target"
        assert g.meta["format"] == "checkmate"
        assert len(g.meta["backward"]) == g.n
    check_against_raw(g, nodes, links, key, ck, mk, src, dst)
    assert math.isclose(g.total_cost, sum(float(nd[ck]) for nd in nodes), rel_tol=1e-12)
    ids = [nd[key] for nd in nodes]
    assert g.min_budget == ref_min_budget(ids, [nd[mk] for nd in nodes],
                                          [(lk[src], lk[dst]) for lk in links])  # fmt: skip


# -- random layered graphs -------------------------------------------------------------------------
def test_random_layered_graph_is_reproducible():
    a = random_layered_graph(80, rng=7)
    b = random_layered_graph(80, rng=np.random.default_rng(7))
    assert_same_graph(a, b)
    c = random_layered_graph(80, rng=8)
    assert not (np.array_equal(a.cost, c.cost) and a.edges == c.edges)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n", [2, 3, 17, 150])
def test_random_layered_graph_structure(n, seed):
    g = random_layered_graph(n, width=0.4, edge_density=0.3, skip_density=0.2, rng=seed)
    assert g.n == n and g.name == f"random_layered_n{n}"
    assert not has_cycle(n, g.edges)
    assert all(i < j for i, j in g.edges)
    sources = [j for j in range(n) if not g.preds[j]]
    assert sources == [0]  # one source; every other node has an input
    assert g.cost[0] == 0.0
    assert np.all(g.cost[1:] == np.round(g.cost[1:]))
    assert np.all((g.cost[1:] >= 1) & (g.cost[1:] <= 1000))
    assert np.all(g.memory % 10 == 0) and np.all((g.memory >= 100) & (g.memory <= 1000))
    assert len(set(g.edges)) == g.n_edges


def test_random_layered_graph_without_extra_edges_is_a_tree():
    g = random_layered_graph(200, edge_density=0.0, skip_density=0.0, rng=1)
    assert [len(p) for p in g.preds] == [0] + [1] * 199
    assert g.n_edges == 199


def test_random_layered_graph_density_adds_edges():
    sparse = random_layered_graph(300, edge_density=0.0, skip_density=0.0, rng=2)
    dense = random_layered_graph(300, edge_density=0.6, skip_density=0.3, rng=2)
    assert dense.n_edges > 2 * sparse.n_edges


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n": 1}, "n must be >= 2"),
        ({"n": 0}, "n must be >= 2"),
        ({"n": 2.5}, "integer"),
        ({"n": "10"}, "integer"),
        ({"n": 10, "width": 0.0}, "width"),
        ({"n": 10, "width": 1.5}, "width"),
        ({"n": 10, "width": -0.2}, "width"),
        ({"n": 10, "layer_variance": 1.0}, "layer_variance"),
        ({"n": 10, "layer_variance": -0.1}, "layer_variance"),
        ({"n": 10, "edge_density": 1.1}, "edge_density"),
        ({"n": 10, "edge_density": float("nan")}, "edge_density"),
        ({"n": 10, "skip_density": -0.5}, "skip_density"),
        ({"n": 10, "rng": -1}, "seed"),
        ({"n": 10, "rng": "seed"}, "rng"),
    ],
)
def test_random_layered_graph_rejects_bad_knobs(kwargs, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        random_layered_graph(**kwargs)
