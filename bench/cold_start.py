"""Cold start of `advisor assess --answers ... --json` against the floor of its imports.

Prints the median wall time of `python -m advisor assess --answers <example> --json`
(a fresh interpreter each run, as an agent calls it) next to
`python -c "import pydantic, click, jinja2"`, and their ratio, and the same for CPU time. Target: at most 2x.

    .venv/bin/python bench/cold_start.py [--runs 21] [--example sql-dialect]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def median_seconds(commands: list[list[str]], runs: int) -> list[tuple[float, float]]:
    """Median wall time and median CPU time (user + system, from the child's rusage) of each command, run in
    turns so that load on the machine hits them alike. CPU time moves less than wall time when other processes
    compete for the cores; both are reported."""
    for command in commands:  # warm the OS file cache and the .pyc files
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    wall: list[list[float]] = [[] for _ in commands]
    cpu: list[list[float]] = [[] for _ in commands]
    for _ in range(runs):
        for i, command in enumerate(commands):
            start = time.perf_counter()
            child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(child.pid, 0)
            wall[i].append(time.perf_counter() - start)
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"{' '.join(command)} failed")
            cpu[i].append(usage.ru_utime + usage.ru_stime)
    return [(statistics.median(w), statistics.median(c)) for w, c in zip(wall, cpu, strict=True)]


def measure(runs: int = 21, example: str = "sql-dialect") -> dict:
    """Median seconds (wall and CPU) of `advisor assess --json` and of the import floor, and their ratios.

    The package is byte-compiled first, as installing a wheel does for it and did for
    pydantic, click and jinja2: with PYTHONDONTWRITEBYTECODE set (as on some CI and
    sandbox machines) an editable install would otherwise recompile every module at
    every start, which measures the compiler, not the start-up."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "advisor")], check=True)
    assess = [sys.executable, "-m", "advisor", "assess", "--answers", f"examples/{example}.yaml", "--json"]
    floor = [sys.executable, "-c", "import pydantic, click, jinja2"]
    (t_assess, cpu_assess), (t_floor, cpu_floor) = median_seconds([assess, floor], runs)
    return {
        "example": example,
        "runs": runs,
        "assess_s": t_assess,
        "floor_s": t_floor,
        "ratio": t_assess / t_floor,
        "assess_cpu_s": cpu_assess,
        "floor_cpu_s": cpu_floor,
        "cpu_ratio": cpu_assess / cpu_floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--example", default="sql-dialect")  # no base model: the estimator is not run
    args = parser.parse_args()
    m = measure(args.runs, args.example)
    print(f"advisor assess --answers examples/{args.example}.yaml --json, median of {args.runs}:")
    print(f"  wall {m['assess_s'] * 1000:7.1f} ms   CPU {m['assess_cpu_s'] * 1000:7.1f} ms")
    print('python -c "import pydantic, click, jinja2":')
    print(f"  wall {m['floor_s'] * 1000:7.1f} ms   CPU {m['floor_cpu_s'] * 1000:7.1f} ms")
    print(f"ratio: wall {m['ratio']:.2f}x, CPU {m['cpu_ratio']:.2f}x (target: at most 2x)")


if __name__ == "__main__":
    main()
