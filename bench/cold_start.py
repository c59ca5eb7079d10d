"""Cold start of `advisor assess --answers ... --json` against the floor of its imports.

Prints the median wall time of `python -m advisor assess --answers <example> --json`
(a fresh interpreter each run, as an agent calls it) next to
`python -c "import pydantic, click, jinja2"`, and their ratio. Target: under 2x.

    .venv/bin/python bench/cold_start.py [--runs 21] [--example sql-dialect]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def median_seconds(commands: list[list[str]], runs: int) -> list[float]:
    """Median wall time of each command, run in turns so that load on the machine hits them alike."""
    for command in commands:  # warm the OS file cache and the .pyc files
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for command, samples in zip(commands, times, strict=True):
            start = time.perf_counter()
            subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
            samples.append(time.perf_counter() - start)
    return [statistics.median(samples) for samples in times]


def measure(runs: int = 21, example: str = "sql-dialect") -> dict:
    """Median seconds of `advisor assess --json` and of the import floor, and their ratio.

    The package is byte-compiled first, as installing a wheel does for it and did for
    pydantic, click and jinja2: with PYTHONDONTWRITEBYTECODE set (as on some CI and
    sandbox machines) an editable install would otherwise recompile every module at
    every start, which measures the compiler, not the start-up."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "advisor")], check=True)
    assess = [sys.executable, "-m", "advisor", "assess", "--answers", f"examples/{example}.yaml", "--json"]
    floor = [sys.executable, "-c", "import pydantic, click, jinja2"]
    t_assess, t_floor = median_seconds([assess, floor], runs)
    return {"example": example, "runs": runs, "assess_s": t_assess, "floor_s": t_floor, "ratio": t_assess / t_floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--example", default="sql-dialect")  # no base model: the estimator is not run
    args = parser.parse_args()
    m = measure(args.runs, args.example)
    print(
        (
            f"advisor assess --answers examples/{args.example}.yaml --json : {m['assess_s'] * 1000:7.1f} ms (median of "
            f"{args.runs})"
        )
    )
    print(
        f'python -c "import pydantic, click, jinja2"          : {m["floor_s"] * 1000:7.1f} ms (median of {args.runs})'
    )
    print(f"ratio: {m['ratio']:.2f}x (target: under 2x)")


if __name__ == "__main__":
    main()
