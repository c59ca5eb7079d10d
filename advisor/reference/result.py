"""What a reference run returns: every measured figure beside the estimator's prediction.

Each number is either measured on the device (live tensors, the allocator, files on
disk, a clock) or extrapolated from measurements at two depths, and says which; the
estimator's figure beside it is its prediction for the same settings. Nothing here
imports torch: the models serialise to the JSON agents get and render into the report
(`advisor/report/templates/reference_run.md.j2`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..estimate.settings import TrainingSettings
from .measure import TRACKED_STEPS

Basis = Literal["measured", "extrapolated"]
RunMethod = Literal["full", "lora"]
Interval = list[float]  # [low, high]: the 90% bootstrap interval of the figure beside it (advisor.reference.spread)


class Compared(BaseModel):
    """A measured figure beside the estimator's prediction for the same model, depth and settings."""

    measured: int | float | None = Field(
        description="Measured on the device, or extrapolated from two measured depths (see `basis`)."
    )
    estimated: int | float | None = Field(
        description="The estimator's prediction; null where it predicts nothing for this figure."
    )
    error: float | None = Field(
        description="(estimated - measured) / measured: the estimator's relative error, positive when it over-predicts."
    )

    @classmethod
    def of(cls, measured: int | float | None, estimated: int | float | None) -> "Compared":
        error = None
        if measured and estimated is not None:
            error = (estimated - measured) / measured
        return cls(measured=measured, estimated=estimated, error=error)


class Figures(BaseModel):
    """One training method's figures at one depth of the model."""

    total_params: Compared = Field(description="Parameters of the base model.")
    trainable_params: Compared
    weight_bytes: Compared = Field(description="All parameters as stored (base weights, adapters), tied weights once.")
    gradient_bytes: Compared = Field(description="The .grad tensors after backward.")
    optimizer_state_bytes: Compared = Field(
        description="AdamW's exp_avg and exp_avg_sq (its per-parameter step counters are counted apart)."
    )
    activation_bytes: Compared = Field(
        description=(
            "Tensors autograd saved for backward during the forward pass, up to and including the LM head "
            "(weights excluded), and the storages of the returned KV cache that autograd did not save (alive "
            "through backward as well)."
        )
    )
    output_bytes: Compared = Field(
        description="Tensors the model's output holds (logits, KV cache), alive until the next step's forward returns."
    )
    peak_bytes: Compared = Field(
        description=(
            "Peak of tensor bytes during the training steps, above what was allocated before the model was "
            "built (building it is reported apart)."
        )
    )
    checkpoint_bytes: Compared = Field(
        description=(
            "What training saves: LoRA's adapter file written with save_pretrained (safetensors); for full "
            "fine-tuning the model's weight bytes, which its checkpoint holds (not written: its header adds a few KB)."
        )
    )
    step_seconds: float | None = Field(
        description=(
            "Median wall time of the steps after the warm-up step (no estimate); extrapolated: null when the "
            "per-layer cost is within the noise."
        )
    )
    step_seconds_interval: Interval | None = Field(
        None, description="90% bootstrap interval of step_seconds (null with fewer than two timed steps)."
    )


class StepRecord(BaseModel):
    loss: float
    seconds: float
    peak_bytes: int | None = Field(
        default=None,
        description=f"Peak tensor bytes during this step, above what was allocated before the model was built; "
        f"recorded for the first {TRACKED_STEPS} steps (None after them: a later step allocates as the one before).",
    )


class RunMeasurement(BaseModel):
    """One real training run (full fine-tuning or LoRA) of the model cut to `layers` layers."""

    method: RunMethod
    layers: int
    learning_rate: float
    figures: Figures = Field(description="Measured at this depth, beside the estimator's prediction for this depth.")
    optimizer_step_counter_bytes: int | None = Field(
        None, description="AdamW's scalar `step` tensors (one per trainable tensor)."
    )
    activation_cache_bytes: int | None = Field(
        None,
        description="Of activation_bytes: the returned KV cache's storages that autograd did not save (0 for most "
        "families, whose attention reads the cache's own keys and values).",
    )
    checkpoint_header_bytes: int | None = Field(
        None,
        description="The safetensors header of the adapter file (its JSON index of tensor names, dtypes and offsets).",
    )
    build_peak_bytes: int = Field(description="Peak tensor bytes while building the model and loading its weights.")
    steps: list[StepRecord]
    steps_planned: int
    build_seconds: float
    seconds: float = Field(description="Wall time of the whole run: build, steps, the adapter's checkpoint.")


class MethodResult(BaseModel):
    """One method at the model's real depth: measured when the whole model ran, else extrapolated from the
    proxy depths."""

    method: RunMethod
    basis: Basis | None = Field(
        description="measured, extrapolated, or null when too little was measured (run cut short)."
    )
    figures: Figures | None = Field(
        description="At the real depth, beside the estimator's prediction for the real model."
    )
    loss_first: float | None = Field(description="Training loss at the first step of the deepest run measured.")
    loss_last: float | None = Field(description="Training loss at the last step of the deepest run measured.")
    learning_rate: float
    runs: list[RunMeasurement] = Field(description="The runs measured, one per depth.")


class LatencyMeasurement(BaseModel):
    """Forward latency at one depth: the plain base model, the adapter unmerged, the adapter merged; timed in
    interleaved rounds (one pass of each per round, the order rotating)."""

    layers: int
    rounds: int = Field(description="Timed rounds, after one warm-up pass of each variant.")
    base_seconds: float = Field(
        description="Median forward pass of the plain base model (built from the starting weights, no adapter code)."
    )
    unmerged_seconds: float = Field(description="Median forward pass with the adapter beside the frozen weights.")
    merged_seconds: float = Field(description="Median forward pass after merge_and_unload().")
    base_interval: Interval | None
    unmerged_interval: Interval | None
    merged_interval: Interval | None
    unmerged_overhead: float = Field(description="Median over the rounds of unmerged / base - 1.")
    unmerged_overhead_interval: Interval | None
    merged_overhead: float = Field(description="Median over the rounds of merged / base - 1.")
    merged_overhead_interval: Interval | None
    merged_times_like_base: bool | None = Field(
        description=(
            "The invariant: merged has the base's modules and shapes, so it must time like the base (the "
            "interval of merged_overhead within 5% of zero). False is a measurement problem, not a finding."
        )
    )
    base_samples: list[float] = Field(description="Seconds of each round's pass, in round order.")
    unmerged_samples: list[float]
    merged_samples: list[float]
    merged_max_abs_diff: float = Field(description="Largest |merged - unmerged| over the logits.")
    adapter_max_abs_diff: float = Field(
        description="Largest |unmerged - base| over the logits: the trained adapter's effect, for scale."
    )
    tolerance: float = Field(
        description="merged and unmerged agree when |merged - unmerged| <= tolerance x max|unmerged| everywhere."
    )
    outputs_match: bool


class Serving(BaseModel):
    """What LoRA costs at inference: af-lora-3 (no added latency once merged), measured."""

    batch: int
    seq: int
    basis: Basis | None = Field(
        description="measured, extrapolated, or null: not measured, or withheld (a per-layer cost within the noise)."
    )
    base_seconds: float | None
    unmerged_seconds: float | None
    merged_seconds: float | None
    base_interval: Interval | None = None
    unmerged_interval: Interval | None = None
    merged_interval: Interval | None = None
    unmerged_overhead: float | None = Field(description="unmerged / base - 1 (median of the rounds when measured).")
    unmerged_overhead_interval: Interval | None = None
    merged_overhead: float | None = Field(description="merged / base - 1 (median of the rounds when measured).")
    merged_overhead_interval: Interval | None = None
    merged_times_like_base: bool | None = Field(
        None,
        description=(
            "Whether merged timed like base at every depth measured, as it must; false means the timings are "
            "disturbed (a measurement problem), and the overheads are not evidence either way."
        ),
    )
    withheld: str | None = Field(None, description="Why figures at the real depth are not given, when they are not.")
    outputs_match: bool | None = Field(description="Merged and unmerged outputs agree at every depth measured.")
    measurements: list[LatencyMeasurement]


class Savings(BaseModel):
    """Full fine-tuning over LoRA (x times more), measured beside the estimator's ratio."""

    trainable_params: Compared
    gradient_bytes: Compared
    optimizer_state_bytes: Compared
    peak_bytes: Compared
    checkpoint_bytes: Compared
    step_seconds: float | None = Field(description="Measured ratio of median step times (no estimate).")
    step_seconds_interval: Interval | None = Field(None, description="90% bootstrap interval of step_seconds.")


class Scale(BaseModel):
    kind: Literal["full", "proxy"] = Field(
        description=(
            "full: the model ran at its real depth; proxy: layer-truncated copies ran and the figures are extrapolated."
        )
    )
    target_layers: int
    depths: list[int] = Field(description="Depths (layers) measured.")
    reason: str
    extrapolation: str | None = Field(None, description="How the proxy depths were extrapolated to the real depth.")


class Preflight(BaseModel):
    free_bytes: int = Field(description="Free memory on the device before the run.")
    free_source: str = Field(description="Where `free_bytes` came from.")
    needed_bytes: int = Field(
        description=(
            "The estimator's peak for the largest run planned, with the margin (on the CPU, plus the "
            "starting weights kept in memory)."
        )
    )
    margin: float


class DatasetInfo(BaseModel):
    source: str = Field(description="The file, or `built-in corpus`.")
    format: Literal["builtin", "text", "jsonl"]
    records: int = Field(description="Texts read (JSONL lines, or 1 for a text file).")
    characters: int
    tokenizer: str
    tokens: int = Field(description="Tokens read from the text (a long file is read only as far as the run needs).")
    tokens_per_step: int
    passes: float = Field(description="How many times the steps read through the tokens (above 1: the text is reused).")


class DeviceInfo(BaseModel):
    kind: Literal["cpu", "cuda"]
    name: str
    threads: int | None = None
    memory_mechanism: str = Field(description="How peak memory was measured.")
    optimizer: str = Field(description="The optimizer implementation used.")


class ModelInfo(BaseModel):
    spec: str
    id: str
    model_type: str
    layers: int
    weights: str = Field(description="random (seeded) or pretrained from the model folder's safetensors.")
    attention: str = Field(description="The attention implementation transformers chose.")
    dtype: str


class ReferenceRun(BaseModel):
    """A real, small run of full fine-tuning and LoRA side by side on the user's architecture."""

    model: ModelInfo
    settings: TrainingSettings = Field(
        description="The estimator's settings for the LoRA run (the full run differs only in method)."
    )
    steps: int = Field(description="Training steps per run; the first is the warm-up and is not timed.")
    seed: int
    dataset: DatasetInfo
    device: DeviceInfo
    preflight: Preflight
    scale: Scale
    full: MethodResult
    lora: MethodResult
    savings: Savings | None
    serving: Serving
    complete: bool = Field(
        description="False when --max-seconds stopped the run before everything planned was measured."
    )
    cut_short: str | None = Field(None, description="What was skipped, when the run was stopped early.")
    seconds: float = Field(description="Wall time of the reference run, after imports.")
    timings: dict[str, float] = Field(default_factory=dict, description="Wall time by phase, seconds.")
    notes: list[str] = Field(default_factory=list)
    versions: dict[str, str] = Field(default_factory=dict)
