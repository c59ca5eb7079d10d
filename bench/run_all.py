"""Every benchmark of the project, run side by side, in one table.

    .venv/bin/python bench/run_all.py            # everything: a few minutes on 2 cores
    .venv/bin/python bench/run_all.py --quick    # fewer repetitions, no 8B reference run

Prints the date and the machine, then one row per figure: what was measured, the
target where there is one, and whether it was met. The README's "Performance and
reliability" section quotes this output.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import cold_start  # noqa: E402
import estimator_accuracy  # noqa: E402
import fit_search  # noqa: E402
import fuzz_stats  # noqa: E402
import mcp_latency  # noqa: E402
import reference_run  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            mem = int(next(line.split()[1] for line in fh if line.startswith("MemTotal"))) / (1 << 20)
        memory = f", {mem:.0f} GiB"
    except (OSError, StopIteration):
        memory = ""
    gpu = "no GPU" if not _has_cuda() else "CUDA GPU"
    return f"{os.cpu_count()} CPUs ({cpu}){memory}, {gpu}, Python {platform.python_version()}, {platform.system()}"


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, and no 8B reference run")
    args = parser.parse_args()
    runs, calls, starts = (7, 15, 3) if args.quick else (21, 50, 7)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    rows: list[tuple[str, str, str, str]] = []

    def add(benchmark: str, measured: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("yes" if met else "NO")
        rows.append((benchmark, measured, target, verdict))

    start = cold_start.measure(runs=runs)
    add(
        "cold start: `advisor assess --answers ... --json` vs `import pydantic, click, jinja2`",
        f"{1000 * start['assess_s']:.0f} ms vs {1000 * start['floor_s']:.0f} ms = {start['ratio']:.2f}x",
        "at most 2x",
        start["ratio"] <= 2,
    )
    add(
        "beside it, CPU time (user + system) of the same runs",
        f"{1000 * start['assess_cpu_s']:.0f} ms vs {1000 * start['floor_cpu_s']:.0f} ms = {start['cpu_ratio']:.2f}x",
    )

    accuracy = estimator_accuracy.measure()
    ours = accuracy["summary"]["advisor"]
    add(
        f"estimator peak memory vs {ours['rows']} H200 measurements: median / max abs error",
        f"{100 * ours['median']:.2f}% / {100 * ours['max']:.2f}%",
        "<= 5% / <= 15%",
        ours["median"] <= 0.05 and ours["max"] <= 0.15,
    )
    for name in ("accelerate", "LLaMA-Factory", "W+G+O"):
        other = accuracy["summary"][name]
        add(
            f"  beside it, {name} on {other['rows']} rows: median / max abs error",
            f"{100 * other['median']:.1f}% / {100 * other['max']:.1f}%",
        )
    add(
        "exact counts and estimate of llama-3.1-8b (LoRA all-linear) after imports",
        f"{accuracy['count_8b_s']:.2f} s",
        "well under 1 s",
        accuracy["count_8b_s"] < 1,
    )

    for model, budget in (("llama-3.2-1b", 60), *(() if args.quick else (("llama-3.1-8b", 180),))):
        run = reference_run.measure(model)
        peak = run["run"]["lora"]["figures"]["peak_bytes"]
        add(
            f"reference run, default settings, {model} on this CPU: wall time incl. imports",
            f"{run['wall_s']:.0f} s ({run['run']['scale']['kind']}; "
            f"LoRA peak vs estimator {100 * peak['error']:+.1f}%)",
            f"under {budget} s",
            run["wall_s"] < budget,
        )

    fit = fit_search.measure()
    lora = next(o for o in fit["result"].options if o.method == "lora")
    add(
        "fit search, llama-3.1-70b on 8 x H100, after imports: first (meta builds) / cached",
        f"{fit['cold_s']:.2f} s / {1000 * fit['warm_s']:.0f} ms (LoRA {lora.settings.sharding}, {lora.headroom})",
        "under 5 s",
        fit["cold_s"] < 5,
    )
    throughput = fit_search.load_throughput()
    add(
        f"step time vs {throughput['calibration_rows']} H200 steps: median / worst error (step_time_calibration.py)",
        f"{100 * throughput['calibration_error_median']:.1f}% / "
        f"{100 * throughput['calibration_error_min']:+.1f}%, {100 * throughput['calibration_error_max']:+.1f}%",
    )

    mcp = mcp_latency.measure(calls=calls, starts=starts)
    add(
        "MCP assess_lora_fit, in-process client (median)",
        f"{1000 * mcp['in_process_s']:.1f} ms",
        "under 20 ms",
        mcp["in_process_s"] < 0.020,
    )
    add(
        "MCP assess_lora_fit over stdio after start-up (median)",
        f"{1000 * mcp['stdio_s']:.1f} ms",
        "under 50 ms",
        mcp["stdio_s"] < 0.050,
    )
    add(
        "MCP server start-up (spawn to initialize answered)",
        f"{mcp['start_up_s']:.2f} s (the SDK's import alone: {mcp['sdk_import_s']:.2f} s)",
    )

    fuzz = fuzz_stats.measure()
    add(
        f"fuzz cases tried ({len(fuzz['tests'])} fuzz tests, derandomized, {fuzz['seconds']:.0f} s)",
        f"{fuzz['cases']:,} tried, {fuzz['failed']} failed",
        "0 failures",
        fuzz["failed"] == 0 and fuzz["exit_code"] == 0,
    )

    print(
        f"advisor benchmarks, {datetime.date.today().isoformat()}, {machine()}, "
        f"load average before the runs: {load_before}"
    )
    print()
    width = max(len(r[0]) for r in rows)
    print(f"| {'benchmark':<{width}} | measured | target | met |")
    print(f"|{'-' * (width + 2)}|---|---|---|")
    for benchmark, measured, target, met in rows:
        print(f"| {benchmark:<{width}} | {measured} | {target} | {met} |")
    return 0 if all(r[3] != "NO" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
