"""The step-time calibration: predicted vs measured H200 step times, row by row, and the constants.

    python bench/step_time_calibration.py            # print the table and the fitted constants
    python bench/step_time_calibration.py --write    # also write them to advisor/plan/throughput.json

Rows: `step_s_best` of the training steps in bench/data/h200_training_memory.jsonl. The
model (advisor/plan/timing.py): a step takes the longer of launching every module's kernels
and doing its FLOPs at a utilisation of the H200's dense bf16 peak; the three constants are
fitted here and tests/test_plan_time.py checks that the data file holds this fit.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from advisor.fmt import fmt_pct, fmt_seconds  # noqa: E402
from advisor.model_specs import resolve_model_spec  # noqa: E402
from advisor.plan.timing import THROUGHPUT_FILE, architecture_for, fit_calibration  # noqa: E402
from bench.calibration import describe_row, load_rows, settings_for  # noqa: E402

ABOUT = (
    "Step-time constants fitted by advisor.plan.timing.fit_calibration to the measured H200 steps in "
    "bench/data/h200_training_memory.jsonl (step_s_best, eager PyTorch, SDPA); bench/step_time_calibration.py "
    "prints the fit row by row and --write regenerates this file; tests/test_plan_time.py checks it. "
    "range_low/range_high turn the calibration's worst over- and under-prediction into a range around each time. "
    "The utilisation is pinned by the compute-bound rows (Llama 3.2 1B at 4,096 tokens a step); larger models at "
    "larger steps usually run at a higher utilisation (times then overestimate), QLoRA and multi-GPU runs slower "
    "(times underestimate)."
)


def calibrate() -> tuple[list[dict], dict]:
    rows = load_rows()
    settings = [settings_for(r) for r in rows]
    archs = [architecture_for(resolve_model_spec(r["model"]), s) for r, s in zip(rows, settings, strict=True)]
    return rows, fit_calibration(rows, archs, settings)


def constants_for_file(rows: list[dict], fitted: dict) -> dict:
    errors = fitted["errors"]
    data = json.loads(THROUGHPUT_FILE.read_text(encoding="utf-8"))
    data.update(
        about=ABOUT,
        seconds_per_linear=round(fitted["seconds_per_linear"], 10),
        seconds_per_adapter=round(fitted["seconds_per_adapter"], 10),
        utilisation=round(fitted["utilisation"], 6),
        calibration_rows=len(rows),
        calibration_error_median=round(sorted(abs(e) for e in errors)[len(errors) // 2], 6),
        calibration_error_min=round(min(errors), 6),
        calibration_error_max=round(max(errors), 6),
        range_low=round(1 / (1 + max(errors)), 6),
        range_high=round(1 / (1 + min(errors)), 6),
    )
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the constants to advisor/plan/throughput.json")
    args = parser.parse_args()
    rows, fitted = calibrate()
    print(f"{'row':<52} {'measured':>10} {'predicted':>10} {'error':>8}")
    for row, error in zip(rows, fitted["errors"], strict=True):
        measured = row["step_s_best"]
        print(
            f"{describe_row(row):<52} {fmt_seconds(measured):>10} {fmt_seconds(measured * (1 + error)):>10} "
            f"{fmt_pct(error, signed=True):>8}"
        )
    data = constants_for_file(rows, fitted)
    print(
        f"utilisation {data['utilisation']:.2f} of 989 dense bf16 TFLOPS; launch {data['seconds_per_linear'] * 1e3:.3f}"
        f" ms per linear module, {data['seconds_per_adapter'] * 1e3:.3f} ms per LoRA-adapted module; median |error| "
        f"{fmt_pct(data['calibration_error_median'])}, worst {fmt_pct(data['calibration_error_min'], signed=True)} / "
        f"{fmt_pct(data['calibration_error_max'], signed=True)}"
    )
    if args.write:
        THROUGHPUT_FILE.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {THROUGHPUT_FILE}")


if __name__ == "__main__":
    main()
