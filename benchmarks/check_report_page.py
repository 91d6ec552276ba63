"""Render a built report's index.html in headless Chromium and save a screenshot, so a person
(or a test) can check that the page reads well: summary, contents, figures, tables.

Usage: python benchmarks/check_report_page.py REPORT_DIR [--out shot.png] [--height 4000]
The screenshot goes beside the report (REPORT_DIR-page.png), not into it: the report
directory holds only the files the report wrote.
Needs Chromium (``apt-get install -y chromium``); exits 2 with a one-line reason without it.
The page is opened from the file system with networking and background services off and a
fresh profile, so nothing outside the report is fetched.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name) if "/" not in name else (name if Path(name).is_file() else None)
        if path:
            return path
    return None


def screenshot(
    index: Path, out: Path, *, width: int = 1280, height: int = 4000, timeout: float = 120.0
) -> Path:
    """Render ``index`` (an HTML file) to the PNG ``out``; return ``out``.

    Raises ``FileNotFoundError`` (no index / no Chromium) or ``RuntimeError`` (Chromium
    failed or wrote no PNG).
    """
    index = Path(index).resolve()
    if not index.is_file():
        raise FileNotFoundError(f"no report page at {index}")
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("Chromium not found; install it with: apt-get install -y chromium")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="frugalml-chromium-") as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={out}",
            f"--window-size={width},{height}",
            index.as_uri(),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"Chromium exited {proc.returncode} without a screenshot: {tail}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="report directory (or its index.html)")
    parser.add_argument("--out", type=Path, default=None, help="PNG (default REPORT-page.png)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=4000)
    args = parser.parse_args(argv)
    index = args.report / "index.html" if args.report.is_dir() else args.report
    out = args.out or index.parent.with_name(f"{index.parent.resolve().name}-page.png")
    try:
        shot = screenshot(index, out, width=args.width, height=args.height)
    except (FileNotFoundError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"check_report_page: error: {exc}", file=sys.stderr)
        return 2
    print(f"screenshot of {index} written to {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
