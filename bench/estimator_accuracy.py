"""How far each estimator is from measured peak training memory, row by row.

    python bench/estimator_accuracy.py [--rows FILE]

Rows: real `torch.cuda.max_memory_allocated` peaks of training steps on an H200
(bench/data/h200_training_memory.jsonl; protocol in h200_training_memory.md).
Beside ours, the rules people use today, computed as their authors define them:
- accelerate: `accelerate estimate-memory`'s "Training using Adam" column, from its own
  `estimate_training_usage` (bf16 rows: its float16 column; mixed rows: float32). It has
  no LoRA, so LoRA rows are blank.
- LLaMA-Factory: its README's hardware table, x = billions of parameters: full AMP 18x GB,
  full pure bf16 8x GB, LoRA 2x GB.
- W+G+O: weights + gradients + optimizer states, as measured in the row itself.
Also the time to count an 8B model's parameters once imports are done.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor.estimate import estimate_training_memory  # noqa: E402
from bench.calibration import DEFAULT_ROWS, describe_row, load_rows, settings_for  # noqa: E402


def accelerate_rule(row: dict) -> float | None:
    if row["method"] != "full":
        return None
    try:
        from accelerate.commands.estimate import estimate_training_usage
    except ImportError:
        return None
    column = "float16" if row["precision"] == "bf16" else "float32"
    return max(estimate_training_usage(4 * row["total_params"], column).values())


def llama_factory_rule(row: dict) -> float:
    billions = row["total_params"] / 1e9
    multiple = 2 if row["method"] != "full" else (8 if row["precision"] == "bf16" else 18)
    return multiple * billions * 1e9


def states_only(row: dict) -> float:
    return row["weight_bytes"] + row["grad_bytes"] + row["optim_state_bytes"]


def measure(rows_path: Path = DEFAULT_ROWS) -> dict:
    """Per row, each estimator's relative error; per estimator, rows covered and median and max |error|;
    and the seconds to count and estimate an 8B model once imports are done."""
    rows = []
    errors: dict[str, list[float]] = {"advisor": [], "accelerate": [], "LLaMA-Factory": [], "W+G+O": []}
    for row in load_rows(rows_path):
        measured = row["peak_allocated_bytes"]
        est = estimate_training_memory(row["model"], settings_for(row))
        predictions = {
            "advisor": est.peak_bytes,
            "accelerate": accelerate_rule(row),
            "LLaMA-Factory": llama_factory_rule(row),
            "W+G+O": states_only(row),
        }
        row_errors = {k: None if p is None else p / measured - 1 for k, p in predictions.items()}
        for k, e in row_errors.items():
            if e is not None:
                errors[k].append(abs(e))
        rows.append({"row": describe_row(row), "measured": measured, "advisor": est.peak_bytes, "errors": row_errors})
    summary = {k: {"rows": len(v), "median": statistics.median(v), "max": max(v)} for k, v in errors.items() if v}

    from advisor.estimate import TrainingSettings

    start = time.perf_counter()
    est = estimate_training_memory("llama-3.1-8b", TrainingSettings(targets="all-linear"))
    return {
        "rows": rows,
        "summary": summary,
        "count_8b_s": time.perf_counter() - start,
        "count_8b": (est.trainable_params, est.total_params),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=Path, default=DEFAULT_ROWS)
    args = parser.parse_args()
    m = measure(args.rows)

    def cell(e):
        return "" if e is None else f"{100 * e:+7.1f}%"

    print(
        f"{'row':52s} {'measured':>10s} {'advisor':>10s} {'err':>8s} {'accelerate':>10s} {'LLaMA-F':>9s} {'W+G+O':>8s}"
    )
    for r in m["rows"]:
        e = r["errors"]
        print(
            f"{r['row']:52s} {r['measured'] / 2**30:9.2f}G {r['advisor'] / 2**30:9.2f}G {cell(e['advisor'])} "
            f"{cell(e['accelerate']):>10s} {cell(e['LLaMA-Factory']):>9s} {cell(e['W+G+O']):>8s}"
        )
    print()
    print(f"{'estimator':15s} {'rows':>5s} {'median |err|':>13s} {'max |err|':>10s}")
    for k, v in m["summary"].items():
        print(f"{k:15s} {v['rows']:5d} {100 * v['median']:12.2f}% {100 * v['max']:9.2f}%")
    trainable, total = m["count_8b"]
    print(
        f"\nllama-3.1-8b LoRA all-linear: {trainable:,} trainable of {total:,}, "
        f"counted and estimated in {m['count_8b_s']:.2f} s after imports"
    )


if __name__ == "__main__":
    main()
