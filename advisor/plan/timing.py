"""Step time, training time and cost: FLOPs over the device's throughput, calibrated on measured steps.

A step takes the longer of two things that run at once: the host launching every module's
kernels (`seconds_per_linear x linear modules + seconds_per_adapter x LoRA-adapted modules`,
eager PyTorch) and the device doing the arithmetic (`FLOPs / (peak bf16 TFLOPS x
utilisation)`). The calibration shows both regimes: on the H200, Llama 3.2 1B full
fine-tuning took 0.085 s for 512 tokens and only 0.097 s for 4,096 (launch-bound, then
compute-bound), and Qwen2.5 0.5B with LoRA on every linear layer stays launch-bound.
The three constants in `throughput.json` minimise the squared log error over the H200
steps in `bench/data/h200_training_memory.jsonl` (`step_s_best`); `fit_calibration`
reproduces them and tests/test_plan_time.py checks the data file against it. On another
device the arithmetic term scales with its dense bf16 throughput and the launch term is
kept as measured.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

from pydantic import BaseModel, Field

from ..estimate.architecture import Architecture
from ..estimate.settings import Method, TrainingSettings
from .flops import kernel_counts, step_flops

THROUGHPUT_FILE = Path(__file__).with_name("throughput.json")


@cache
def load_throughput() -> dict:
    return json.loads(THROUGHPUT_FILE.read_text(encoding="utf-8"))


def architecture_for(spec, settings: TrainingSettings) -> Architecture:
    """The estimator's (cached) meta-device description of `spec` under `settings`' method."""
    from ..estimate.architecture import describe
    from ..estimate.memory import precision_of

    p = precision_of(settings)
    return describe(
        spec,
        method=settings.method,
        rank=settings.rank,
        alpha=settings.lora_alpha,
        targets=settings.targets,
        weights=p.weights,
        others=p.others,
    )


def step_seconds(arch: Architecture, settings: TrainingSettings, tflops: float, constants: dict | None = None) -> float:
    """Predicted wall time of one step on one device of `tflops` dense bf16 TFLOPS."""
    c = constants or load_throughput()
    linears, adapted = kernel_counts(arch, settings)
    flops = step_flops(arch, settings).total
    launch = c["seconds_per_linear"] * linears + c["seconds_per_adapter"] * adapted
    return max(launch, flops / (tflops * 1e12 * c["utilisation"]))


def fit_calibration(rows: list[dict], archs: list[Architecture], settings: list[TrainingSettings]) -> dict:
    """The three constants that minimise the mean squared log error over measured steps (a grid search: the
    max() makes the problem non-linear), with each row's relative error under them."""
    import numpy as np

    peak = load_throughput()["calibration_device_bf16_tflops"] * 1e12
    counts = np.array([kernel_counts(a, s) for a, s in zip(archs, settings, strict=True)], dtype=float)
    flops = np.array([step_flops(a, s).total for a, s in zip(archs, settings, strict=True)])
    measured = np.array([row["step_s_best"] for row in rows])
    per_linear = np.geomspace(1e-5, 1e-2, 61)[:, None, None, None]
    per_adapter = np.concatenate([[0.0], np.geomspace(1e-5, 1e-2, 60)])[None, :, None, None]
    utilisation = np.linspace(0.02, 1.0, 99)[None, None, :, None]
    launch = per_linear * counts[:, 0] + per_adapter * counts[:, 1]
    predicted = np.maximum(launch, flops / (peak * utilisation))
    loss = (np.log(predicted / measured) ** 2).mean(axis=-1)
    i, j, k = np.unravel_index(np.argmin(loss), loss.shape)
    constants = {
        "seconds_per_linear": float(per_linear[i, 0, 0, 0]),
        "seconds_per_adapter": float(per_adapter[0, j, 0, 0]),
        "utilisation": float(utilisation[0, 0, k, 0]),
    }
    constants["errors"] = [float(e) for e in predicted[i, j, k] / measured - 1]
    return constants


class MethodCost(BaseModel):
    """Time and cost of one method's plan."""

    method: Method
    tokens: int = Field(description="Tokens to train: examples x mean tokens per example x epochs.")
    step_tokens: int = Field(description="Tokens per optimizer micro-step on all GPUs together.")
    steps: int = Field(description="Micro-steps per GPU to see every token.")
    step_seconds: float | None = Field(description="Predicted seconds per micro-step; null without a throughput.")
    hours: float | None = Field(description="Wall-clock hours.")
    hours_low: float | None = Field(description="Low end of the range (the calibration's best case).")
    hours_high: float | None = Field(description="High end of the range (the calibration's worst case, and more).")
    gpu_hours: float | None
    cost_usd: float | None = Field(description="GPU hours x price per GPU-hour; null without a price.")
    price_usd_per_hour: float | None
    notes: list[str] = Field(default=[])


def method_cost(
    arch: Architecture,
    settings: TrainingSettings,
    *,
    tokens: int,
    tflops: float | None,
    price: float | None,
) -> MethodCost:
    """Time and cost of training `tokens` tokens with `settings` (micro-batch x seq per GPU, on settings.gpus)."""
    c = load_throughput()
    step_tokens = settings.batch * settings.seq * settings.gpus
    steps = math.ceil(tokens / step_tokens) if tokens else 0
    notes = []
    if settings.method == "qlora":
        notes.append(c["qlora_note"])
    if settings.gpus > 1:
        notes.append(c["multi_gpu_note"])
    if tflops is None:
        return MethodCost(
            method=settings.method,
            tokens=tokens,
            step_tokens=step_tokens,
            steps=steps,
            step_seconds=None,
            hours=None,
            hours_low=None,
            hours_high=None,
            gpu_hours=None,
            cost_usd=None,
            price_usd_per_hour=price,
            notes=[*notes, "no published bf16 throughput for this device: time not estimated"],
        )
    sec = step_seconds(arch, settings, tflops)
    hours = steps * sec / 3600
    gpu_hours = hours * settings.gpus
    return MethodCost(
        method=settings.method,
        tokens=tokens,
        step_tokens=step_tokens,
        steps=steps,
        step_seconds=sec,
        hours=hours,
        hours_low=hours * c["range_low"],
        hours_high=hours * c["range_high"],
        gpu_hours=gpu_hours,
        cost_usd=gpu_hours * price if price is not None else None,
        price_usd_per_hour=price,
        notes=notes,
    )


DEFAULT_EPOCHS = 3.0  # transformers' TrainingArguments.num_train_epochs default, which TRL's SFTConfig inherits


def tokens_to_train(examples: int | None, mean_tokens: int | None, epochs: float | None = None) -> int | None:
    """examples x mean tokens x epochs; None unless both examples and mean tokens are given."""
    from ..errors import FieldIssue, InvalidInput

    issues = [
        FieldIssue(field=name, message="must be a positive number")
        for name, value in (("examples", examples), ("mean_tokens", mean_tokens), ("epochs", epochs))
        if value is not None and not (value > 0 and math.isfinite(value) and value <= 1e15)
    ]
    if issues:
        raise InvalidInput("invalid time and cost input", fields=issues)
    if not examples or not mean_tokens:
        return None
    return int(examples * mean_tokens * (epochs or DEFAULT_EPOCHS))
