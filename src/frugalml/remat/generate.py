"""Random layered computation graphs, in the spirit of Gagrani et al. (NeurIPS 2022, App. A).

Gagrani, Rainone, Yang, Teague, Jeon, van Hoof, Zeng, Zappi, Lott, Bondesan, "Neural Topological
Ordering for Computation Graphs" (NeurIPS 2022) generate graphs layer by layer; MOCCASIN (Bartan
et al., ICML 2023) benchmarks on them. Our generator (our own code, same knobs):

- ``width`` (0, 1]: the mean layer width is ``width * sqrt(n) * 2`` nodes; layer sizes vary by a
  factor ``1 +- layer_variance`` (uniform);
- every node of layer ``l > 0`` gets one input drawn from layer ``l - 1`` (so the graph is
  connected layer to layer) plus each other node of layer ``l - 1`` with probability
  ``edge_density``;
- ``skip_density``: probability of an extra input from each node of layers ``< l - 1``, decaying
  geometrically with the distance (long skips are rarer);
- durations uniform integers in ``[1, 1000]``, output sizes uniform in ``[10, 100]`` x 10 bytes
  (the ranges of the published graphs' ``duration``/``out_cost``);
- the first node is a zero-cost input.

``O(n^2)`` worst case (skip sampling), fine for n <= 10^4.
"""

from __future__ import annotations

import math

import numpy as np

from .._resources import check_memory
from .._validate import RngLike, check_int, check_probability, check_rng
from ..errors import InvalidInputError
from .graph import RematGraph

__all__ = ["random_layered_graph"]


def random_layered_graph(
    n: int,
    *,
    width: float = 0.3,
    layer_variance: float = 0.75,
    edge_density: float = 0.2,
    skip_density: float = 0.14,
    rng: RngLike = None,
) -> RematGraph:
    """A random layered DAG with ``n`` nodes (see the module docstring for the knobs)."""
    n = check_int(n, "n", low=2)
    if not 0.0 < float(width) <= 1.0:
        raise InvalidInputError(f"width must be in (0, 1], got {width}")
    layer_variance = check_probability(layer_variance, "layer_variance", allow_one=False)
    edge_density = check_probability(edge_density, "edge_density")
    skip_density = check_probability(skip_density, "skip_density")
    gen = check_rng(rng)
    mean = max(1.0, 2.0 * float(width) * math.sqrt(n))
    # the edge list (~100 bytes a Python edge) and the validated graph
    per_node = 1.0 + (edge_density + 2.0 * skip_density) * mean
    check_memory(n * (200.0 + 100.0 * per_node), f"a random layered graph of {n} nodes",
                 fix="use a smaller n")  # fmt: skip
    layers: list[list[int]] = [[0]]
    nxt = 1
    while nxt < n:
        size = round(mean * (1.0 + layer_variance * (2.0 * gen.random() - 1.0)))
        size = max(1, min(size, n - nxt))
        layers.append(list(range(nxt, nxt + size)))
        nxt += size
    edges: list[tuple[int, int]] = []
    for li in range(1, len(layers)):
        prev = layers[li - 1]
        for v in layers[li]:
            first = int(prev[gen.integers(len(prev))])
            ins = {first}
            for u in prev:
                if u != first and gen.random() < edge_density:
                    ins.add(u)
            for lj in range(li - 2, -1, -1):
                p = skip_density * 0.5 ** (li - 2 - lj)
                if p < 1e-4:
                    break
                for u in layers[lj]:
                    if gen.random() < p:
                        ins.add(u)
            edges.extend((u, v) for u in sorted(ins))
    cost = gen.integers(1, 1001, size=n).astype(np.float64)
    cost[0] = 0.0
    memory = 10 * gen.integers(10, 101, size=n)
    return RematGraph.from_edges(
        cost, memory, edges, name=f"random_layered_n{n}",
        meta={"generator": "random_layered_graph", "width": float(width)},
    )  # fmt: skip
