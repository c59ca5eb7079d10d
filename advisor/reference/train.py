"""One real training run, measured: build, steps, the adapter's checkpoint; and the serving check of a LoRA model.

A step is the one the estimator models and every trainer runs:

    out = model(input_ids=x, labels=x)     # causal-LM loss inside the model
    out.loss.backward()
    optimizer.step(); optimizer.zero_grad(set_to_none=True)

with `torch.optim.AdamW` over the trainable parameters: foreach on CUDA (PyTorch's
default there, and the calibration protocol's), fused on the CPU, where the foreach
path is about fifteen times slower (its arithmetic runs tensor by tensor in 16-bit).
The previous step's `out` stays alive until the next forward returns, as in any loop.
"""

from __future__ import annotations

import gc
import shutil
import time
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..estimate.settings import TrainingSettings
from ..hf import inject_lora, quiet, returned_cache
from ..model_specs import ModelSpec
from . import spread
from .control import Stop
from .measure import (
    TRACKED_STEPS,
    CheckpointSize,
    SavedForBackward,
    memory_tracker,
    safetensors_size,
    storage_bytes,
    tensors_in,
)
from .model import build_model
from .result import LatencyMeasurement, StepRecord

if TYPE_CHECKING:
    import torch

# merged and unmerged logits agree when they differ by at most this fraction of the
# largest logit: merging rounds W + BA to the weight dtype once per weight, so 16-bit
# weights allow a few units in the last place (bf16: 2^-8) compounded over the layers.
MERGE_TOLERANCE = {"bfloat16": 2.0**-5, "float16": 2.0**-7, "float32": 2.0**-14}
MIN_ROUNDS = 7  # timed rounds of base, unmerged and merged: enough for a median and its interval
SERVING_SECONDS = 2.0  # more rounds, up to the device's repeats, while they add up to less than this
# Merged and base have the same modules and shapes: their times agree when the interval of merged / base - 1
# comes within this of zero (a few percent covers what placement in memory changes between two copies).
SAME_TIME = 0.05


@dataclass
class Job:
    """One training run: which model (at which depth), which method, on what."""

    spec: ModelSpec
    layers: int
    method: str  # full | lora
    settings: TrainingSettings
    weights: dict  # name -> starting tensor (host memory), from `make_base_weights`
    device: "torch.device"
    dtype: "torch.dtype"
    batches: list[list[list[int]]]
    learning_rate: float
    workdir: Path


@dataclass
class Measured:
    """What one run measured (bytes, counts, seconds); None where the run stopped before."""

    total_params: int
    trainable_params: int
    weight_bytes: int
    build_seconds: float
    gradient_bytes: int | None = None
    optimizer_state_bytes: int | None = None
    optimizer_step_counter_bytes: int | None = None
    activation_bytes: int | None = None
    activation_cache_bytes: int | None = None  # of activation_bytes: the returned cache beyond what autograd saved
    output_bytes: int | None = None
    build_peak_bytes: int = 0
    peak_bytes: int | None = None
    steps: list[StepRecord] = field(default_factory=list)
    checkpoint: CheckpointSize | None = None  # the adapter file (LoRA)
    seconds: float = 0.0
    attention: str = ""


class ServingStopped(Exception):
    """The time limit passed during the serving check: its figures are incomplete and are not reported."""


def train(job: Job, deadline: Stop, on_step: Callable[[int, float], None]) -> tuple[Measured, object | None]:
    """Run `job`; return its measurements and, for LoRA, the trained model (for `measure_serving`)."""
    import torch

    started = time.perf_counter()
    gc.collect()
    tracker = memory_tracker(job.device)
    with quiet(), ExitStack() as recording:
        recording.enter_context(tracker)
        with tracker.window("build"):
            model = build_model(
                job.spec, job.weights, device=job.device, dtype=job.dtype, attention=job.settings.attention
            )
            if job.method == "lora":
                s = job.settings
                model = inject_lora(model, job.spec, rank=s.rank, alpha=s.lora_alpha, targets=s.targets)
            if job.settings.grad_checkpointing:
                model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.train()
            params = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(params, lr=job.learning_rate, **adamw_options(job.device))
        trainable = sum(p.numel() for p in params)
        everything = sum(p.numel() for p in model.parameters())
        m = Measured(
            total_params=everything - trainable if job.method == "lora" else everything,
            trainable_params=trainable,
            weight_bytes=storage_bytes(model.parameters()),
            build_seconds=time.perf_counter() - started,
            attention=str(getattr(model.config, "_attn_implementation", "") or ""),
        )
        live: dict = {}  # the last step's output, as a training loop's `out` variable holds it
        ids = None
        for i, rows in enumerate(job.batches):
            if deadline.passed():
                break
            if i == TRACKED_STEPS:
                recording.close()  # later steps add nothing to the peak (see measure's module doc)
            ids = torch.tensor(rows, device=job.device)
            with tracker.window(f"step{i}") if i < TRACKED_STEPS else nullcontext():
                record = _step(model, optimizer, params, ids, live, job, m, first=i == 0)
            m.steps.append(record)
            on_step(i, record.loss)
        del live, ids, optimizer, params
        if job.method == "full":
            model = None  # freed here, like everything the run allocated
            gc.collect()
    _peaks(m, tracker.windows)
    if job.method == "lora":
        folder = job.workdir / f"adapter-{job.layers}"
        with quiet():
            model.save_pretrained(str(folder))
        m.checkpoint = safetensors_size(folder)
        shutil.rmtree(folder)
    m.seconds = time.perf_counter() - started
    return m, model


def adamw_options(device) -> dict:
    return {"foreach": True} if device.type == "cuda" else {"fused": True}


def _step(model, optimizer, params, ids, live: dict, job: Job, m: Measured, *, first: bool) -> StepRecord:
    import torch

    started = time.perf_counter()
    saved = SavedForBackward(model.parameters()) if first else None
    hooks = torch.autograd.graph.saved_tensors_hooks(saved.pack, saved.unpack) if saved else nullcontext()
    head_hook = None
    if saved:
        # What the loss saves is not an activation of the model: stop counting once the LM head has run.
        head_hook = model.get_output_embeddings().register_forward_hook(lambda *_: setattr(saved, "recording", False))
    autocast = (
        torch.autocast(job.device.type, dtype=torch.bfloat16) if job.settings.precision == "mixed" else nullcontext()
    )
    try:
        with hooks, autocast:
            # The previous step's output is released only now, once this forward has returned.
            live["out"] = model(input_ids=ids, labels=ids)
    finally:
        if head_hook is not None:
            head_hook.remove()
    out = live["out"]
    out.loss.backward()
    if first:
        # The cache the forward returns lives through backward, as the saved tensors do; its storages that
        # autograd did not save are activations too (the estimator books them so, as the trace finds them).
        cache = returned_cache(out)
        m.activation_cache_bytes = saved.hold(tensors_in(cache))
        m.activation_bytes = saved.bytes
        m.gradient_bytes = storage_bytes(p.grad for p in params)
        m.output_bytes = storage_bytes(tensors_in({k: v for k, v in out.items() if k != "loss"}))
    optimizer.step()
    if first:
        states = [v for state in optimizer.state.values() for k, v in state.items() if k in ("exp_avg", "exp_avg_sq")]
        counters = [v for state in optimizer.state.values() for k, v in state.items() if k == "step"]
        m.optimizer_state_bytes = storage_bytes(states)
        m.optimizer_step_counter_bytes = storage_bytes(counters)
    optimizer.zero_grad(set_to_none=True)
    loss = out.loss.item()  # waits for the device
    return StepRecord(loss=loss, seconds=time.perf_counter() - started)


def _peaks(m: Measured, windows) -> None:
    """Peaks relative to what was allocated before the build (the protocol's `base`)."""
    base = windows["build"].start_bytes
    m.build_peak_bytes = windows["build"].peak_bytes - base
    for i, record in enumerate(m.steps[:TRACKED_STEPS]):
        record.peak_bytes = windows[f"step{i}"].peak_bytes - base
    m.peak_bytes = max((r.peak_bytes for r in m.steps if r.peak_bytes is not None), default=None)


def measure_serving(
    model, base, rows: list[list[int]], *, layers: int, device, repeats: int, stop: Stop | None = None
) -> LatencyMeasurement:
    """Forward latency of the plain base model, the trained adapter unmerged, and merged; and that merging
    changes nothing.

    `model` is the trained PEFT model; `base` the plain model built from the same starting weights (which
    LoRA never changes), with no adapter code in its modules; the merged model is a copy of `model` after
    `merge_and_unload()`, so it has `base`'s modules and shapes. The three are timed in interleaved rounds
    (one pass of each, in an order that rotates from round to round, so none always runs first or last):
    `MIN_ROUNDS` rounds, and more up to `repeats` while they add up to under `SERVING_SECONDS`. Each figure
    is the median with its bootstrap interval (`spread`); each overhead is the median of the per-round
    ratios to the base, whose rounds share the machine's conditions.

    `stop` is checked before every round: a cancellation raises `Cancelled`, the time limit
    `ServingStopped`.
    """
    import copy

    import torch

    stop = stop or Stop()
    ids = torch.tensor(rows, device=device)
    dtype = str(next(p for p in model.parameters() if not p.requires_grad).dtype).removeprefix("torch.")
    model.eval()
    base.eval()
    with torch.no_grad(), quiet():
        merged_model = copy.deepcopy(model).merge_and_unload()
        variants = {"base": base, "unmerged": model, "merged": merged_model}
        outputs = {name: _forward(m, ids).logits.float() for name, m in variants.items()}  # warm-up, compared
        samples: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        started = time.perf_counter()
        while True:
            done = len(samples["base"])
            if done >= MIN_ROUNDS and (done >= repeats or time.perf_counter() - started >= SERVING_SECONDS):
                break
            if stop.passed():
                raise ServingStopped()
            for k in range(len(names)):
                name = names[(done + k) % len(names)]
                samples[name].append(_timed(variants[name], ids, device))
    del merged_model, variants
    base_out, unmerged, merged = outputs["base"], outputs["unmerged"], outputs["merged"]
    diff = (merged - unmerged).abs().max().item()
    tolerance = MERGE_TOLERANCE.get(dtype, MERGE_TOLERANCE["bfloat16"])
    return latency_measurement(
        layers,
        samples,
        merged_max_abs_diff=diff,
        adapter_max_abs_diff=(unmerged - base_out).abs().max().item(),
        tolerance=tolerance,
        outputs_match=diff <= tolerance * unmerged.abs().max().item(),
    )


def latency_measurement(layers: int, samples: dict[str, list[float]], **checks) -> LatencyMeasurement:
    """The figures of one depth's timed rounds (`samples[variant][round]`): medians, intervals, overheads, and
    whether merged timed like base, as it must."""
    rounds = list(zip(samples["base"], samples["unmerged"], samples["merged"], strict=True))

    def overhead(i: int):
        return lambda rs: spread.median([r[i] / r[0] for r in rs]) - 1

    merged_overhead, merged_interval = overhead(2)(rounds), spread.bootstrap(overhead(2), rounds)
    return LatencyMeasurement(
        layers=layers,
        rounds=len(rounds),
        base_seconds=spread.median(samples["base"]),
        unmerged_seconds=spread.median(samples["unmerged"]),
        merged_seconds=spread.median(samples["merged"]),
        base_interval=spread.median_interval(samples["base"]),
        unmerged_interval=spread.median_interval(samples["unmerged"]),
        merged_interval=spread.median_interval(samples["merged"]),
        unmerged_overhead=overhead(1)(rounds),
        unmerged_overhead_interval=spread.bootstrap(overhead(1), rounds),
        merged_overhead=merged_overhead,
        merged_overhead_interval=merged_interval,
        merged_times_like_base=merged_times_like_base(merged_overhead, merged_interval),
        base_samples=samples["base"],
        unmerged_samples=samples["unmerged"],
        merged_samples=samples["merged"],
        **checks,
    )


def merged_times_like_base(overhead: float | None, interval: list[float] | None) -> bool | None:
    """The invariant: merged weights have the base's modules and shapes, so their passes must take the base's
    time. It holds when the overhead's interval comes within `SAME_TIME` of zero."""
    if overhead is None:
        return None
    low, high = interval or (overhead, overhead)
    return low <= SAME_TIME and high >= -SAME_TIME


def _forward(model, ids):
    return model(input_ids=ids, use_cache=False)


def _timed(model, ids, device) -> float:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    _forward(model, ids)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - started
