"""The bad-input matrix: run every case in ``benchmarks/bad_inputs/*.txt`` in a fresh process
and count how frugalml answers.

Each case is bad input (a wrong option, a size that would exhaust memory, an output path that
cannot be written, ...). It must end in a **clean error**: a non-zero exit with a one-line
``frugalml: error: ...`` (CLI) or a ``FrugalError`` (Python), no traceback. The other outcomes
are defects: a **traceback**, a **hang** (no answer within the case's time limit) or a
**silent** answer (exit 0: the bad input was accepted, or a ``check:`` assertion failed).

Case files, one case per line (``#`` starts a comment)::

    cli: coded matmul --seed -1              # frugalml's CLI, as a user types it
    py: from frugalml.coded import X; X(-1)  # Python; must raise a FrugalError
    check: r = f(...); assert r.diverged     # Python; must run and its asserts hold

``{tmp}`` in a case is a fresh empty directory (the working directory of the case),
``{file}`` an existing file in it, and ``{ro}`` a read-only directory (such cases are
``n/a (root)`` when run as root, who may write there). ``$FRUGALML_BENCHMARKS`` is this
directory unless set, so ``frugalml report`` finds the checkout's benchmarks. A leading
``[timeout=N]`` sets the case's limit (default 90 s).

Usage: python benchmarks/bad_input_matrix.py [--jobs 2] [--area NAME ...] [--json PATH]
(--area may be repeated or list several areas)
Writes benchmarks/results/bad_inputs.json and prints the counts and every defect.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE / "bad_inputs"
DEFAULT_TIMEOUT = 90.0

_PY_WRAPPER = """
import sys, traceback
from frugalml.errors import FrugalError
code = sys.argv[1]
try:
    exec(compile(code, "<case>", "exec"), {"__name__": "__case__"})
except FrugalError as exc:
    print("frugalml error:", type(exc).__name__ + ":", exc, file=sys.stderr)
    sys.exit(2)
except AssertionError:
    traceback.print_exc()
    sys.exit(3)
except BaseException:
    traceback.print_exc()
    sys.exit(1)
sys.exit(0)
"""


@dataclass
class Case:
    area: str
    line: int
    kind: str  # cli | py | check
    text: str
    timeout: float


@dataclass
class Outcome:
    area: str
    line: int
    kind: str
    text: str
    verdict: str  # clean | traceback | hang | silent
    seconds: float
    message: str


def load_cases(areas: list[str] | None) -> list[Case]:
    cases = []
    for path in sorted(CASES.glob("*.txt")):
        area = path.stem
        if areas and area not in areas:
            continue
        for number, raw in enumerate(path.read_text().splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            timeout = DEFAULT_TIMEOUT
            found = re.match(r"\[timeout=(\d+(?:\.\d+)?)\]\s*", line)
            if found:
                timeout = float(found.group(1))
                line = line[found.end() :]
            kind, _, text = line.partition(":")
            if kind not in ("cli", "py", "check") or not text.strip():
                raise SystemExit(f"{path}:{number}: expected 'cli:', 'py:' or 'check:' cases")
            cases.append(Case(area, number, kind, text.strip(), timeout))
    return cases


def _fill(text: str, tmp: Path) -> str:
    file = tmp / "existing.txt"
    file.write_text("a file that is not ours\n")
    ro = tmp / "readonly"
    ro.mkdir(exist_ok=True)
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    return text.replace("{tmp}", str(tmp)).replace("{file}", str(file)).replace("{ro}", str(ro))


def run_case(case: Case) -> Outcome:
    if "{ro}" in case.text and os.geteuid() == 0:
        # root writes into read-only directories: such a case cannot be bad input here
        return Outcome(case.area, case.line, case.kind, case.text, "n/a (root)", 0.0, "")
    tmp = Path(tempfile.mkdtemp(prefix="frugalml-bad-"))
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.setdefault("FRUGALML_BLAS_THREADS", "1")
    # report cases run in {tmp}: their areas come from this checkout's benchmarks
    env.setdefault("FRUGALML_BENCHMARKS", str(Path(__file__).resolve().parent))
    text = _fill(case.text, tmp)
    if case.kind == "cli":
        import shlex

        entry = "import sys; from frugalml.cli import main; sys.exit(main(sys.argv[1:]))"
        argv = [sys.executable, "-c", entry, *shlex.split(text)]
    else:
        argv = [sys.executable, "-c", _PY_WRAPPER, text]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=case.timeout, cwd=tmp, env=env
        )
    except subprocess.TimeoutExpired:
        verdict, message = "hang", f"no answer in {case.timeout:.0f} s"
    else:
        out = (proc.stderr or "") + (proc.stdout or "")
        lines = [ln for ln in out.strip().splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        if "Traceback (most recent call last)" in out and proc.returncode != 3:
            verdict, message = "traceback", last
        elif proc.returncode == 0:
            ok = case.kind == "check"
            verdict, message = ("clean" if ok else "silent"), (last or "(exit 0)")
        elif proc.returncode == 3 and case.kind == "check":
            verdict, message = "silent", "assertion failed: " + last
        elif case.kind == "cli" and any(ln.startswith("frugalml: error:") for ln in lines):
            verdict = "clean"
            message = next(ln for ln in lines if ln.startswith("frugalml: error:"))
        elif case.kind != "cli" and "frugalml error:" in out:
            verdict, message = "clean", next(ln for ln in lines if "frugalml error:" in ln)
        else:
            verdict, message = "traceback", f"exit {proc.returncode}: {last}"
    seconds = time.perf_counter() - start
    for path in tmp.rglob("*"):
        if path.is_dir():
            path.chmod(stat.S_IRWXU)
    shutil.rmtree(tmp, ignore_errors=True)
    return Outcome(case.area, case.line, case.kind, case.text, verdict, seconds, message[:300])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--area", nargs="+", action="extend", default=None)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "bad_inputs.json")
    args = parser.parse_args()
    cases = load_cases(args.area)
    with ThreadPoolExecutor(args.jobs) as pool:
        outcomes = list(pool.map(run_case, cases))
    verdicts = ("clean", "traceback", "hang", "silent", "n/a (root)")
    rows = {}
    for o in outcomes:
        row = rows.setdefault(
            (o.area, o.kind if o.kind == "cli" else "python"), dict.fromkeys(verdicts, 0)
        )
        row[o.verdict] += 1
    print(f"{'area':<10} {'kind':<7} {'cases':>5} " + " ".join(f"{v:>10}" for v in verdicts))
    total = dict.fromkeys(verdicts, 0)
    for (area, kind), row in sorted(rows.items()):
        print(
            f"{area:<10} {kind:<7} {sum(row.values()):>5} "
            + " ".join(f"{row[v]:>10}" for v in verdicts)
        )
        for v in verdicts:
            total[v] += row[v]
    print(
        f"{'all':<10} {'':<7} {len(outcomes):>5} " + " ".join(f"{total[v]:>10}" for v in verdicts)
    )
    defects = [o for o in outcomes if o.verdict in ("traceback", "hang", "silent")]
    for o in defects:
        print(f"\n[{o.verdict}] {o.area}.txt:{o.line} {o.kind}: {o.text}\n    {o.message}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {"counts": total, "cases": len(outcomes), "outcomes": [asdict(o) for o in outcomes]}
    args.json.write_text(json.dumps(payload, indent=1) + "\n")
    return 1 if defects else 0


if __name__ == "__main__":
    sys.exit(main())
