"""Cold `advisor estimate --model llama-3.1-8b --json` against the floor of its light imports.

A fresh interpreter each run, as an agent or a script calls it. The catalog model's
architecture description is shipped as data (`advisor/catalog/descriptions/`), so the
estimate runs without importing torch, transformers or peft. Two measures, side by side in
one run:
- instructions executed (valgrind's callgrind), which do not depend on the load of a shared
  machine: the ratio of the estimate to `python -c "import pydantic, click, jinja2"`;
- wall time, median of runs taken in turns, with the load average at the start.
Target: a ratio of at most 3.

    .venv/bin/python bench/cold_estimate.py [--runs 11] [--model llama-3.1-8b] [--no-callgrind]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.cold_start import median_seconds  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def instructions(command: list[str], env: dict) -> int:
    """Instructions the command executes, counted by callgrind (children included)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.%p", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    counts = [int(m.replace(",", "")) for m in re.findall(r"Collected : ([\d,]+)", out.stderr)]
    return sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--model", default="llama-3.1-8b")
    parser.add_argument("--no-callgrind", action="store_true")
    args = parser.parse_args()
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "advisor")], check=True)
    with tempfile.TemporaryDirectory() as cache:
        # an empty user cache: only what ships with the package is used
        env = {**os.environ, "ADVISOR_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
        estimate = [sys.executable, "-m", "advisor", "estimate", "--model", args.model, "--json"]
        floor = [sys.executable, "-c", "import pydantic, click, jinja2"]
        load = os.getloadavg()
        os.environ.update(env)
        t_estimate, t_floor = median_seconds([estimate, floor], args.runs)
        print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
        print(
            f"advisor estimate --model {args.model} --json : {t_estimate * 1000:7.1f} ms wall (median of {args.runs})"
        )
        print(f"import pydantic, click, jinja2               : {t_floor * 1000:7.1f} ms wall")
        print(f"wall ratio                                   : {t_estimate / t_floor:7.2f}x")
        if args.no_callgrind or not shutil.which("valgrind"):
            print("instructions: valgrind not run")
            return
        i_estimate, i_floor = instructions(estimate, env), instructions(floor, env)
        print(f"instructions, estimate                      : {i_estimate:,}")
        print(f"instructions, floor                         : {i_floor:,}")
        print(f"instruction ratio                           : {i_estimate / i_floor:7.2f}x (target <= 3)")


if __name__ == "__main__":
    main()
