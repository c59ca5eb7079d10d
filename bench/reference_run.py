"""Time the default reference run of catalog models on this machine, and print how far the estimator is from it.

    .venv/bin/python bench/reference_run.py                      # llama-3.2-1b
    .venv/bin/python bench/reference_run.py llama-3.2-1b llama-3.1-8b

Each model runs as a user runs it, `advisor reference-run --model ID --json` in a fresh
process, so the wall time includes the imports. The table gives, for full fine-tuning
and LoRA, each component measured (or extrapolated from the proxy depths) beside the
estimator's prediction and its error, then the peak at every depth measured.
The JSON of each run is kept in bench/out/.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
COMPONENTS = ["trainable_params", "weight_bytes", "gradient_bytes", "optimizer_state_bytes", "activation_bytes",
              "output_bytes", "peak_bytes", "checkpoint_bytes"]


def measure(model: str) -> dict:
    """Run `advisor reference-run --model MODEL --json` in a fresh process: its wall time and its result."""
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "advisor", "reference-run", "--model", model, "--json"],
                         capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if res.returncode != 0:
        raise RuntimeError(f"{model}: exit {res.returncode}\n{res.stdout}{res.stderr}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"reference_run-{model}.json").write_text(res.stdout)
    return {"model": model, "wall_s": wall, "run": json.loads(res.stdout)}


def main(models: list[str]) -> int:
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} before the runs")
    for model in models:
        try:
            m = measure(model)
        except RuntimeError as exc:
            print(exc)
            return 1
        print_run(m["run"], m["wall_s"])
    return 0


def print_run(run: dict, wall: float) -> None:
    scale = run["scale"]
    print()
    print(f"{run['model']['id']} ({run['model']['layers']} layers) on {run['device']['kind']} ({run['device']['name']}, "
          f"{run['device']['threads']} threads): wall {wall:.1f} s including imports, {run['seconds']:.1f} s in the run")
    print(f"  {scale['kind']}: {scale['reason']}")
    print(f"  {run['steps']} steps of {run['settings']['batch']} x {run['settings']['seq']} tokens, "
          f"{run['settings']['precision']}, {run['device']['optimizer']}")
    header = f"  {'component':<22}" + "".join(f"{h:>16}" for h in ("full measured", "estimated", "error",
                                                                    "LoRA measured", "estimated", "error"))
    print(header)
    for name in COMPONENTS:
        cells = []
        for method in ("full", "lora"):
            figure = (run[method]["figures"] or {}).get(name)
            cells += _cells(figure, name)
        print(f"  {name:<22}" + "".join(f"{c:>16}" for c in cells))
    step = [run[m]["figures"]["step_seconds"] if run[m]["figures"] else None for m in ("full", "lora")]
    print(f"  {'step_seconds':<22}" + f"{_num(step[0], 's'):>16}{'':>32}{_num(step[1], 's'):>16}")
    print(f"  basis: full {run['full']['basis']}, LoRA {run['lora']['basis']}")
    print("  peak at each depth measured:")
    for method in ("full", "lora"):
        for r in run[method]["runs"]:
            peak = r["figures"]["peak_bytes"]
            print(f"    {method:<5} {r['layers']:>3} layers  measured {_gib(peak['measured'])}  estimated {_gib(peak['estimated'])}  "
                  f"error {_pct(peak['error'])}  median step {_num(r['figures']['step_seconds'], 's')}")
    serving = run["serving"]
    print(f"  serving ({serving['basis']}): base {_num(serving['base_seconds'], 's')}, unmerged {_num(serving['unmerged_seconds'], 's')}, "
          f"merged {_num(serving['merged_seconds'], 's')}; merged matches unmerged: {serving['outputs_match']}")
    print(f"  timings: {run['timings']}")


def _cells(figure: dict | None, name: str) -> list[str]:
    if figure is None:
        return ["-", "-", "-"]
    fmt = _count if name == "trainable_params" else _gib
    return [fmt(figure["measured"]), fmt(figure["estimated"]), _pct(figure["error"])]


def _gib(value) -> str:
    return "-" if value is None else f"{value / (1 << 30):.4f} GiB"


def _count(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _pct(value) -> str:
    return "-" if value is None else f"{value:+.2%}"


def _num(value, unit: str) -> str:
    return "-" if value is None else f"{value:.3f} {unit}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["llama-3.2-1b"]))
