"""Time the default reference run of catalog models on this machine, and print how far the estimator is from it.

    .venv/bin/python bench/reference_run.py                      # llama-3.2-1b
    .venv/bin/python bench/reference_run.py llama-3.2-1b llama-3.1-8b

Times are medians with 90% bootstrap intervals (advisor/reference/spread.py): each step
time, full / LoRA, and serving (base, unmerged, merged timed in interleaved rounds) at
every depth measured, with whether merged / base - 1 has 0 in its interval, as it must.
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
sys.path.insert(0, str(ROOT))

from advisor.fmt import fmt_gib, fmt_int, fmt_pct, fmt_seconds  # noqa: E402

OUT = ROOT / "bench" / "out"
COMPONENTS = [
    "trainable_params",
    "weight_bytes",
    "gradient_bytes",
    "optimizer_state_bytes",
    "activation_bytes",
    "output_bytes",
    "peak_bytes",
    "checkpoint_bytes",
]


def measure(model: str) -> dict:
    """Run `advisor reference-run --model MODEL --json` in a fresh process: its wall time and its result."""
    started = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "advisor", "reference-run", "--model", model, "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    wall = time.perf_counter() - started
    if res.returncode != 0:
        raise RuntimeError(f"{model}: exit {res.returncode}\n{res.stdout}{res.stderr}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"reference_run-{model}.json").write_text(res.stdout)
    return {"model": model, "wall_s": wall, "run": json.loads(res.stdout)}


def main(models: list[str]) -> int:
    print(
        f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} before the runs"
    )
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
    print(
        f"{run['model']['id']} ({run['model']['layers']} layers) on {run['device']['kind']} ({run['device']['name']}, "
        f"{run['device']['threads']} threads): wall {wall:.1f} s including imports, {run['seconds']:.1f} s in the run"
    )
    print(f"  {scale['kind']}: {scale['reason']}")
    print(
        f"  {run['steps']} steps of {run['settings']['batch']} x {run['settings']['seq']} tokens, "
        f"{run['settings']['precision']}, {run['device']['optimizer']}"
    )
    header = f"  {'component':<22}" + "".join(
        f"{h:>16}" for h in ("full measured", "estimated", "error", "LoRA measured", "estimated", "error")
    )
    print(header)
    for name in COMPONENTS:
        cells = []
        for method in ("full", "lora"):
            figure = (run[method]["figures"] or {}).get(name)
            cells += _cells(figure, name)
        print(f"  {name:<22}" + "".join(f"{c:>16}" for c in cells))
    step = [run[m]["figures"]["step_seconds"] if run[m]["figures"] else None for m in ("full", "lora")]
    print(f"  {'step_seconds':<22}" + f"{fmt_seconds(step[0]):>16}{'':>32}{fmt_seconds(step[1]):>16}")
    for method in ("full", "lora"):
        figures = run[method]["figures"] or {}
        print(
            f"    {method} step: median {fmt_seconds(figures.get('step_seconds'))}, 90% interval "
            f"{_range(figures.get('step_seconds_interval'), fmt_seconds)}"
        )
    savings = run["savings"] or {}
    ratio = lambda x: f"{x:.2f}x"  # noqa: E731
    saved = ratio(savings["step_seconds"]) if savings.get("step_seconds") else "-"
    print(
        f"    savings.step_seconds (full / LoRA): {saved}, "
        f"90% interval {_range(savings.get('step_seconds_interval'), ratio)}"
    )
    print(f"  basis: full {run['full']['basis']}, LoRA {run['lora']['basis']}")
    print("  peak at each depth measured:")
    for method in ("full", "lora"):
        for r in run[method]["runs"]:
            peak = r["figures"]["peak_bytes"]
            measured, estimated = fmt_gib(peak["measured"], 4), fmt_gib(peak["estimated"], 4)
            print(
                f"    {method:<5} {r['layers']:>3} layers  measured {measured}  estimated {estimated}  "
                f"error {fmt_pct(peak['error'], 2, signed=True)}  "
                f"median step {fmt_seconds(r['figures']['step_seconds'])}"
            )
    serving = run["serving"]
    pct = lambda x: fmt_pct(x, 1, signed=True)  # noqa: E731
    print(
        f"  serving ({serving['basis']}): base {fmt_seconds(serving['base_seconds'])} "
        f"({_range(serving['base_interval'], fmt_seconds)}), "
        f"unmerged {fmt_seconds(serving['unmerged_seconds'])} ({_range(serving['unmerged_interval'], fmt_seconds)}), "
        f"merged {fmt_seconds(serving['merged_seconds'])} ({_range(serving['merged_interval'], fmt_seconds)}); "
        f"merged matches unmerged: {serving['outputs_match']}"
    )
    if serving["base_seconds"] is not None:
        print(
            f"    at {run['model']['layers']} layers: unmerged/base - 1 {pct(serving['unmerged_overhead'])} "
            f"({_range(serving['unmerged_overhead_interval'], pct)}), merged/base - 1 "
            f"{pct(serving['merged_overhead'])} ({_range(serving['merged_overhead_interval'], pct)}); "
            f"merged times like base at every depth: {serving['merged_times_like_base']}"
        )
    if serving["withheld"]:
        print(f"    withheld: {serving['withheld']}")
    for x in serving["measurements"]:
        interval = x["merged_overhead_interval"]
        contains = interval is not None and interval[0] <= 0 <= interval[1]
        print(
            f"    {x['layers']:>3} layers, {x['rounds']} rounds: base {fmt_seconds(x['base_seconds'])}, "
            f"unmerged/base - 1 {pct(x['unmerged_overhead'])} ({_range(x['unmerged_overhead_interval'], pct)}), "
            f"merged/base - 1 {pct(x['merged_overhead'])} ({_range(interval, pct)}); "
            f"interval contains 0 (merged = base): {'yes' if contains else 'NO'}; "
            f"merged times like base (within 5%): {x['merged_times_like_base']}"
        )
    print(f"  timings: {run['timings']}")


def _range(interval: list[float] | None, fmt) -> str:
    return "-" if not interval else f"{fmt(interval[0])} to {fmt(interval[1])}"


def _cells(figure: dict | None, name: str) -> list[str]:
    if figure is None:
        return ["-", "-", "-"]
    fmt = fmt_int if name == "trainable_params" else (lambda n: fmt_gib(n, 4))
    return [fmt(figure["measured"]), fmt(figure["estimated"]), fmt_pct(figure["error"], 2, signed=True)]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["llama-3.2-1b"]))
