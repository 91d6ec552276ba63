"""Report figures read well: no crowded log-axis labels, no legend over the curves."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from tests._bench_scripts import load_bench

runtime = load_bench("bench_runtime")
saddle = load_bench("bench_saddle")


def _curve(n: int, rate: float) -> dict:
    evals = np.arange(1, n + 1)
    return {"evals": evals, "seconds": 1e-4 * evals, "distance": np.exp(-rate * evals),
            "kkt_error": np.exp(-rate * evals)}  # fmt: skip


def test_saddle_legend_groups_the_admm_grid_and_sits_below_the_panels():
    curves = {f"ADMM (rho={r}, CG tol {t})": _curve(400, 0.01 * r * t)
              for r in (1, 3, 10, 30) for t in (0.1, 0.3, 0.7)}  # fmt: skip
    curves.update({"PD-SESOP inner saddle": _curve(200, 0.2), "GDA (0.1/L)": _curve(50, -0.1)})
    fig = saddle._figure({"constrained LS": ("kkt_error", curves)})
    fig.canvas.draw()
    top, bottom = fig.axes[0], fig.axes[1]
    assert top.get_legend() is None
    legend = bottom.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert len(labels) == 4  # 12 ADMM settings become two entries
    assert "best ADMM (rho=30, CG tol 0.7)" in labels and "ADMM, 11 other settings" in labels
    box = legend.get_window_extent()
    assert box.y1 <= bottom.get_window_extent().y0  # below the axes, off the curves
    plt.close(fig)


def test_runtime_arrivals_log_axis_has_few_plain_labels():
    fig, ax = plt.subplots()
    values = [0.21, 0.3, 0.55, 5.6, 6.3]
    ax.plot(values, range(len(values)))
    ax.set_xscale("log")
    runtime._readable_log_ticks(ax, values)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels == ["0.2", "0.5", "1", "2", "5"]
    assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    wide = [1e-3, 50.0]
    runtime._readable_log_ticks(ax, wide)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.001", "0.01", "0.1", "1", "10"]
    plt.close(fig)
