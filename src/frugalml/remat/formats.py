"""Reading and writing computation graphs as JSON.

Three node-link layouts are understood (``format="auto"`` tells them apart):

- ``"checkmate"``: the training/inference graphs Checkmate (Jain et al., MLSys 2020) extracted
  from Keras models and MOCCASIN published: nodes ``{id, name, cost_cpu, cost_ram, backward}``,
  links ``{source, target}``.
- ``"layered"``: MOCCASIN's random layered graphs (Gagrani et al., NeurIPS 2022, App. A): nodes
  ``{name, duration, out_cost, ...}``, links ``{"0": source, "1": target}``, the authors'
  topological order in ``graph.order``.
- ``"frugalml"``: what :func:`save_graph` writes: nodes ``{id, name, cost, memory}``, links
  ``{source, target}``, ``"format": "frugalml-remat-1"``.

Paper: Bartan et al., "Moccasin" (ICML 2023, arXiv 2304.14463), Sec. 5 (benchmark graphs).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._io import atomic_write_text
from .._resources import check_memory
from ..errors import InvalidInputError
from .graph import RematGraph

__all__ = ["FORMATS", "graph_from_dict", "graph_to_dict", "load_graph", "save_graph"]

FORMATS = ("checkmate", "layered", "frugalml")
Format = Literal["auto", "checkmate", "layered", "frugalml"]
_FIELDS = {
    "checkmate": ("id", "cost_cpu", "cost_ram", "source", "target"),
    "layered": ("name", "duration", "out_cost", "0", "1"),
    "frugalml": ("id", "cost", "memory", "source", "target"),
}


#: largest memory size a node may declare (exact in float64; sums stay within int64)
_MAX_BYTES = 2**53


def _detect(data: dict[str, Any]) -> str:
    if data.get("format") == "frugalml-remat-1":
        return "frugalml"
    nodes = data.get("nodes") or []
    first = nodes[0] if nodes and isinstance(nodes[0], dict) else {}
    if "cost_cpu" in first or "cost_ram" in first:
        return "checkmate"
    if "duration" in first or "out_cost" in first:
        return "layered"
    if "cost" in first and "memory" in first:
        return "frugalml"
    raise InvalidInputError(
        "unknown graph format: expected node-link JSON whose nodes carry cost_cpu/cost_ram "
        "(Checkmate), duration/out_cost (MOCCASIN random layered) or cost/memory (frugalml)"
    )


def graph_from_dict(data: Any, *, fmt: Format = "auto", name: str = "") -> RematGraph:
    """Build a :class:`RematGraph` from parsed node-link JSON (see module docstring)."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise InvalidInputError("a graph file must hold a JSON object with a 'nodes' list")
    links = data.get("links", data.get("edges", []))
    if not isinstance(links, list):
        raise InvalidInputError("the graph's 'links' must be a list")
    kind = _detect(data) if fmt == "auto" else fmt
    if kind not in FORMATS:
        raise InvalidInputError(f"format must be one of {('auto', *FORMATS)}, got {fmt!r}")
    key, cost_key, mem_key, src, dst = _FIELDS[kind]
    ids, cost, mem, names = [], [], [], []
    for k, node in enumerate(data["nodes"]):
        if not isinstance(node, dict):
            raise InvalidInputError(f"node entry {k} is not an object")
        if key not in node:
            raise InvalidInputError(f"node entry {k} has no '{key}' field ({kind} format)")
        for f in (cost_key, mem_key):
            if node.get(f) is None:
                raise InvalidInputError(
                    f"node {node[key]!r} has no '{f}' ({kind} format): every node needs a "
                    "duration and an output size"
                )
        try:
            c, m = float(node[cost_key]), float(node[mem_key])
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"node {node[key]!r} has a non-numeric cost: {exc}") from exc
        if not (np.isfinite(c) and np.isfinite(m)) or c < 0 or m < 0:
            raise InvalidInputError(
                f"node {node[key]!r} has an invalid cost ({cost_key}={c}, {mem_key}={m}); "
                "costs must be finite and >= 0"
            )
        if m != round(m):
            raise InvalidInputError(
                f"node {node[key]!r}: {mem_key} must be a whole number of bytes"
            )
        if m > _MAX_BYTES:
            raise InvalidInputError(
                f"node {node[key]!r}: {mem_key}={m:g} bytes is beyond any memory (at most "
                f"2^53 bytes per node)"
            )
        if not isinstance(node[key], (str, int)) or isinstance(node[key], bool):
            raise InvalidInputError(
                f"node entry {k}: its '{key}' must be a string or an integer, got "
                f"{type(node[key]).__name__}"
            )
        ids.append(node[key])
        cost.append(c)
        mem.append(int(m))
        names.append(str(node.get("name", node[key])))
    edges = []
    for k, link in enumerate(links):
        if not isinstance(link, dict) or src not in link or dst not in link:
            raise InvalidInputError(f"link {k} lacks '{src}'/'{dst}' ({kind} format)")
        edges.append((link[src], link[dst]))
    graph_meta = data.get("graph") if isinstance(data.get("graph"), dict) else {}
    order = graph_meta.get("order") if kind == "layered" else None
    meta: dict[str, Any] = {"format": kind}
    graph = RematGraph.from_edges(
        cost, np.array(mem, dtype=np.int64), edges, ids=ids, names=names, order=order,
        name=name or str(graph_meta.get("name", "")), meta=meta,
    )  # fmt: skip
    if kind == "checkmate":  # per node of the graph (topological) order, not the file's
        flags = {node[key]: bool(node.get("backward", False)) for node in data["nodes"]}
        graph.meta["backward"] = [flags[i] for i in graph.ids]
    return graph


def load_graph(path: str | Path, *, fmt: Format = "auto") -> RematGraph:
    """Read a graph file (any layout in the module docstring). Errors name the file."""
    path = Path(path)
    if str(path) in ("", "."):
        raise InvalidInputError("give the path of a graph file")
    try:
        info = path.stat()
    except FileNotFoundError as exc:
        raise InvalidInputError(f"graph file {path} does not exist") from exc
    except OSError as exc:
        raise InvalidInputError(f"cannot read graph file {path}: {exc}") from exc
    if path.is_dir():
        raise InvalidInputError(f"{path} is a directory; give a graph file (JSON)")
    if not stat.S_ISREG(info.st_mode):
        raise InvalidInputError(f"{path} is not a regular file; give a graph file (JSON)")
    # parsed JSON takes ~20x the file's bytes in Python objects, the graph a little more
    check_memory(24.0 * info.st_size, f"reading the {info.st_size}-byte graph file {path}",
                 fix="use a smaller graph")  # fmt: skip
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path} is not a UTF-8 text (JSON) file: {exc}") from exc
    except OSError as exc:
        raise InvalidInputError(f"cannot read graph file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidInputError(f"{path} is not valid JSON: {exc}") from exc
    try:
        return graph_from_dict(data, fmt=fmt, name=path.stem)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{path}: {exc}") from exc


def graph_to_dict(graph: RematGraph) -> dict[str, Any]:
    """The ``frugalml`` node-link layout (node ids are the topological positions)."""
    return {
        "format": "frugalml-remat-1",
        "directed": True,
        "graph": {"name": graph.name},
        "nodes": [
            {
                "id": i,
                "name": graph.names[i],
                "cost": float(graph.cost[i]),
                "memory": int(graph.memory[i]),
            }
            for i in range(graph.n)
        ],
        "links": [{"source": i, "target": j} for i, j in graph.edges],
    }


def save_graph(graph: RematGraph, path: str | Path) -> Path:
    """Write ``graph`` atomically in the ``frugalml`` layout."""
    return atomic_write_text(path, json.dumps(graph_to_dict(graph)))
