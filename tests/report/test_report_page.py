"""The report page renders in headless Chromium (benchmarks/check_report_page.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from frugalml.report import BenchResult, Table, registry, run_report

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "check_report_page.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("check_report_page", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


page = _load_script()
pytestmark = pytest.mark.skipif(
    page.find_chromium() is None, reason="Chromium not installed (apt-get install -y chromium)"
)


def _area(*, quick: bool, progress=None) -> BenchResult:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([0, 1, 2], [2, 0, 1], color="tab:red", lw=6)
    return BenchResult(
        "demo", "Demo area", "a headline", (Table("T", ("a", "b"), ((1, 2.5),)),),
        figures={"curve": fig},
    )  # fmt: skip


def test_report_page_screenshot(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})
    registry.register("demo", "Demo area", f"{__name__}:_area")
    from frugalml.report import runner

    monkeypatch.setattr(runner, "machine_info", lambda: {"cpu_count": 1})
    run_report(tmp_path / "rep", quick=True)
    assert page.main([str(tmp_path / "rep"), "--height", "1200"]) == 0
    shot = tmp_path / "rep-page.png"
    # the screenshot is not put into the report directory
    assert {p.name for p in (tmp_path / "rep").iterdir()} == {
        ".frugalml-report.json",
        "demo.json",
        "demo_curve.png",
        "index.html",
    }
    img = plt.imread(shot)
    assert img.shape[:2] == (1200, 1280)
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not a blank page
    red = (rgb[..., 0] > 0.7) & (rgb[..., 1] < 0.35) & (rgb[..., 2] < 0.35)
    assert red.sum() > 500  # the figure was loaded and drawn


def test_missing_page_is_a_clean_error(tmp_path, capsys):
    assert page.main([str(tmp_path / "nothing")]) == 2
    assert "no report page" in capsys.readouterr().err
