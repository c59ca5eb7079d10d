"""The fit search's speed on a 70B model over 8 GPUs, and the time/cost table for the worked examples.

    python bench/fit_search.py

1. `advisor fit` for Llama 3.1 70B on 8 x H100 (80 GB): the first search in a process
   builds each method's architecture on the meta device (PEFT's injection for LoRA;
   QLoRA reuses it), a second search finds them cached. Imports (torch, transformers,
   peft, advisor) are done before the clock starts. Target: under 5 s.
2. For every worked example that names a base model: the recommended method's plan
   and its training time and cost on the example's own GPU when it names one, and on
   an L4, an A100 80 GB and an H100 SXM, for tokens = dataset_tokens (or
   dataset_examples x 512 tokens, marked *) x 3 epochs.
3. What trying the fused loss costs the search: the cached 70B search with the standard loss
   only and with both losses, alternated three times in this process, medians and their ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import peft  # noqa: E402,F401
import torch  # noqa: E402,F401
import transformers  # noqa: E402,F401
import yaml  # noqa: E402

from advisor.assessment.worked_examples import example_names, example_path  # noqa: E402
from advisor.estimate.settings import METHOD_LABELS  # noqa: E402
from advisor.fmt import fmt_bytes, fmt_number, fmt_seconds  # noqa: E402
from advisor.plan.fit import fit_training, load_policy  # noqa: E402
from advisor.plan.timing import load_throughput, tokens_to_train  # noqa: E402

TARGET_S = 5.0
ASSUMED_MEAN_TOKENS = 512
REFERENCE_GPUS = ("l4", "a100-80gb", "h100-sxm")


def measure() -> dict:
    """The 70B fit search's first (building) and second (cached) time in this process, and its result."""
    start = time.perf_counter()
    result = fit_training("llama-3.1-70b", gpu="h100-sxm", gpus=8)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    fit_training("llama-3.1-70b", gpu="h100-sxm", gpus=8)
    warm = time.perf_counter() - start
    return {"cold_s": cold, "warm_s": warm, "result": result}


def bench_70b() -> tuple[float, float]:
    m = measure()
    cold, warm, result = m["cold_s"], m["warm_s"], m["result"]
    print("Fit search: llama-3.1-70b on 8 x H100 SXM (80 GB)")
    for o in result.options:
        s = o.settings
        print(
            f"  {METHOD_LABELS[o.method]:<17} {o.headroom:<13} {fmt_bytes(o.needed_bytes):>11} per GPU  "
            f"{s.sharding}, batch {s.batch} x {s.seq}, {s.optimizer}{', checkpointing' if s.grad_checkpointing else ''}"
        )
    print(
        f"  first search {fmt_seconds(cold)} (builds), second {fmt_seconds(warm)} (cached); target under "
        f"{TARGET_S:g} s: {'met' if cold < TARGET_S else 'NOT met'}"
    )
    return cold, warm


def cost_table() -> None:
    c = load_throughput()
    print(
        f"\nTime and cost of the worked examples' plans (utilisation {c['utilisation']:.2f} of dense bf16 peak, "
        f"calibrated on {c['calibration_rows']} H200 steps; range x{c['range_low']:.2f}-x{c['range_high']:.2f})"
    )
    print(f"  {'example':<26} {'model':<34} {'tokens':>13} {'GPU':<10} {'method':<6} {'hours (range)':>20} {'USD':>9}")
    for name in example_names():
        answers = yaml.safe_load(example_path(name).read_text(encoding="utf-8"))
        model = answers.get("base_model")
        if not model:
            continue
        examples, tokens = answers.get("dataset_examples"), answers.get("dataset_tokens")
        assumed = not tokens
        total = tokens_to_train(1, tokens) if tokens else tokens_to_train(examples, ASSUMED_MEAN_TOKENS)
        gpus = ([answers["gpu"]] if answers.get("gpu") else []) + [g for g in REFERENCE_GPUS if g != answers.get("gpu")]
        for gpu in gpus:
            fit = fit_training(model, gpu=gpu, gpus=answers.get("gpus") or 1, seq=answers.get("seq_len"), tokens=total)
            best = next((o for o in fit.options if o.method == fit.best), None)
            if best is None or best.time is None or best.time.hours is None:
                print(f"  {name:<26} {model:<34} {total:>13,} {gpu:<10} {'-':<6} {'nothing fits':>20}")
                continue
            t = best.time
            hours = f"{fmt_number(t.hours)} ({fmt_number(t.hours_low)}-{fmt_number(t.hours_high)})"
            cost = f"{t.cost_usd:,.2f}" if t.cost_usd is not None else "-"
            print(
                f"  {name:<26} {model:<34} {total:>13,}{'*' if assumed else ' '}{gpu:<10} {best.method:<6} "
                f"{hours:>20} {cost:>9}"
            )
    print(f"  * dataset_examples x {ASSUMED_MEAN_TOKENS} tokens x 3 epochs (no dataset_tokens in the answers)")


def bench_losses() -> float:
    import statistics

    search = load_policy()["search"]
    both = list(search["losses"])
    times: dict[int, list[float]] = {1: [], 2: []}
    try:
        for _ in range(3):
            for losses in (["standard"], both):
                search["losses"] = losses
                start = time.perf_counter()
                fit_training("llama-3.1-70b", gpu="h100-sxm", gpus=8)
                times[len(losses)].append(time.perf_counter() - start)
    finally:
        search["losses"] = both
    one, two = statistics.median(times[1]), statistics.median(times[2])
    print(
        f"\nThe loss in the search (cached 70B search, median of 3): standard only {one * 1e3:.0f} ms, "
        f"standard and fused {two * 1e3:.0f} ms: x{two / one:.2f}"
    )
    return two / one


if __name__ == "__main__":
    bench_70b()
    cost_table()
    bench_losses()
