"""The reference run: full fine-tuning and LoRA side by side on the user's architecture, measured.

    >>> from advisor.reference import reference_run
    >>> run = reference_run("llama-3.2-1b")
    >>> run.lora.figures.peak_bytes, run.savings.peak_bytes.measured

Both methods train on the same tokens from the same starting weights, with the same
shapes and seed. A model deeper than two layers runs as layer-cut proxies at depths 1
and 2, extrapolated to its real depth (see `plan`), and then whole if it fits in memory
and in the time budget. Nothing is written outside a temporary folder, which is gone
when the function returns, however it returns.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

from ..errors import FieldIssue, InvalidInput
from ..estimate import estimate_training_memory
from ..estimate.architecture import build_config, require_lora_stack
from ..estimate.settings import Estimate, TrainingSettings
from ..specs import ModelSpec, resolve_model_spec
from ..units import fmt_bytes
from ..versions import installed_versions
from . import data, plan
from .measure import CpuMemoryTracker, CudaMemoryTracker, device_name, free_memory
from .model import at_depth, make_base_weights
from .result import (DeviceInfo, Figures, LatencyMeasurement, MethodResult, ModelInfo, ReferenceRun, RunMeasurement,
                     Scale, Serving)
from .train import Deadline, Job, Measured, adamw_options, measure_serving, train

if TYPE_CHECKING:
    import torch

DEFAULT_BATCH = 1
DEFAULT_SEQ = 64
DEFAULT_STEPS = 4  # one warm-up, then three timed: their median shrugs off one slow step
MAX_STEPS = 10_000
# Full fine-tuning and LoRA are trained with the learning rates each is usually given:
# adapters start at zero and take a rate about ten times higher.
LEARNING_RATES = {"full": 1e-4, "lora": 1e-3}
SERVING_REPEATS = {"cpu": 10, "cuda": 20}
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "mixed": "float32"}
METHODS = ("full", "lora")

Progress = Callable[[str, int, int], None]


def default_settings(**values) -> TrainingSettings:
    """The reference run's defaults: LoRA (PEFT's default targets, rank 8), batch 1 x 64 tokens, bf16."""
    return TrainingSettings(**{"method": "lora", "batch": DEFAULT_BATCH, "seq": DEFAULT_SEQ, **values})


def reference_run(
    spec: str | ModelSpec,
    settings: TrainingSettings | None = None,
    *,
    steps: int = DEFAULT_STEPS,
    dataset: str | Path | None = None,
    device: Literal["auto", "cpu", "cuda"] = "auto",
    max_seconds: float | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> ReferenceRun:
    """Train `spec` with full fine-tuning and with LoRA (`settings`) for `steps` steps each, and measure both.

    `max_seconds` stops the run cleanly (the step under way finishes) and returns what
    was measured, with `complete=False`. `progress(description, done, total)` is called
    as work advances.
    """
    started = time.perf_counter()
    require_lora_stack()
    spec = spec if isinstance(spec, ModelSpec) else resolve_model_spec(spec)
    settings = settings or default_settings()
    settings = settings.model_copy(update={"alpha": settings.lora_alpha})  # the default (2 x rank), written out
    _check_request(spec, settings, steps, max_seconds)
    dev = _device(device, settings)
    runner = _Runner(spec, settings, dev, steps=steps, seed=seed, deadline=Deadline(max_seconds),
                     progress=progress or (lambda *_: None))
    return runner.run(dataset, max_seconds, started)


@dataclass
class _Runner:
    spec: ModelSpec
    settings: TrainingSettings
    device: "torch.device"
    steps: int
    seed: int
    deadline: Deadline
    progress: Progress
    runs: dict[tuple[str, int], Measured] = field(default_factory=dict)
    latency: dict[int, LatencyMeasurement] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    done: int = 0
    total: int = 0

    def __post_init__(self):
        import torch

        self.workdir: Path | None = None  # the temporary folder, while the runs go on
        self.batches: list[list[list[int]]] = []
        self.dtype = getattr(torch, TORCH_DTYPES[self.settings.precision])
        self.fused = adamw_options(self.device).get("fused", False)
        config = build_config(self.spec)
        self.layers = int(config.num_hidden_layers)
        self.vocab = int(config.vocab_size)
        positions = getattr(config, "max_position_embeddings", None)
        if positions and self.settings.seq > positions:
            message = f"seq {self.settings.seq} is longer than the {positions} positions this model has"
            raise InvalidInput(message, fields=[FieldIssue(field="seq", message=message)])
        self._estimates: dict[tuple[str, int], Estimate] = {}

    # -- the estimator, at any depth -----------------------------------------
    def estimate(self, method: str, layers: int) -> Estimate:
        key = (method, layers)
        if key not in self._estimates:
            self._estimates[key] = estimate_training_memory(self._spec_at(layers),
                                                            self.settings.model_copy(update={"method": method}))
        return self._estimates[key]

    # -- the whole run --------------------------------------------------------
    def run(self, dataset, max_seconds: float | None, started: float) -> ReferenceRun:
        proxy = self.layers > plan.PROXY_DEPTHS[-1]
        depths = plan.PROXY_DEPTHS if proxy else (self.layers,)
        clock = time.perf_counter()
        free = free_memory(self.device)
        deepest = max(depths)
        planned = {f"{'full fine-tuning' if m == 'full' else 'LoRA'} at {_layers(deepest)}": self.estimate(m, deepest)
                   for m in METHODS}
        preflight = plan.preflight(planned, free, fused_optimizer=self.fused, held=self._held(deepest))
        self.seconds["estimate"] = time.perf_counter() - clock

        clock = time.perf_counter()
        corpus = data.load_corpus(dataset)
        s = self.settings
        stream = data.tokenize(corpus, self.spec, self.vocab, needed=s.batch * s.seq * self.steps)
        self.batches = data.batches(stream, batch=s.batch, seq=s.seq, steps=self.steps)
        dataset_info = data.dataset_info(corpus, stream, batch=s.batch, seq=s.seq, steps=self.steps)
        self.seconds["data"] = time.perf_counter() - clock

        self.total = self._units(depths)
        with tempfile.TemporaryDirectory(prefix="advisor-reference-") as tmp:
            self.workdir = Path(tmp)
            cut = self.measure(depths)
            if not proxy:
                reason = f"whole model: it has {_layers(self.layers)}"
            elif cut is not None:
                reason = f"proxy: cut to {depths[0]} and {depths[1]} layers; stopped before the whole model was considered"
            else:
                whole, reason = self._whole_model(free, max_seconds, started)
                if whole:
                    self.total += self._units((self.layers,))
                    cut = self.measure((self.layers,))
        return self._result(dataset_info, preflight, reason, cut, started)

    def _units(self, depths) -> int:
        return 1 + len(depths) * (2 * self.steps + 1)

    def _tick(self, description: str) -> None:
        self.done += 1
        self.progress(description, self.done, self.total)

    def measure(self, depths: tuple[int, ...]) -> str | None:
        """Prepare the weights once for the deepest depth, then run both methods and serving at each depth.
        Returns what was skipped when the deadline passed, else None."""
        deepest = max(depths)
        clock = time.perf_counter()
        self.progress(f"weights for {deepest} layers", self.done, self.total)
        weights = make_base_weights(self._spec_at(deepest), pretrained=self._pretrained(), seed=self.seed, dtype=self.dtype,
                                    attention=self.settings.attention)
        self.seconds[f"prepare.{deepest}"] = time.perf_counter() - clock
        self._tick(f"weights for {deepest} layers")
        for layers in depths:
            trained = {}
            for method in METHODS:
                if self.deadline.passed():
                    return f"{method} at {layers} layers and everything after it"
                job = Job(spec=self._spec_at(layers), layers=layers, method=method, settings=self.settings, weights=weights,
                          device=self.device, dtype=self.dtype, batches=self.batches, learning_rate=LEARNING_RATES[method],
                          workdir=self.workdir)
                label = f"{'full' if method == 'full' else 'LoRA'}, {_layers(layers)}"
                self.runs[(method, layers)], trained[method] = train(
                    job, self.deadline, lambda i, loss: self._tick(f"{label}: step {i + 1}, loss {loss:.3f}"))
                if not self._complete(method, layers):
                    done = len(self.runs[(method, layers)].steps)
                    return f"steps {done + 1}-{self.steps} of {label} and everything after it"
            if self.deadline.passed():
                return f"the serving check at {layers} layers and everything after it"
            clock = time.perf_counter()
            self.latency[layers] = measure_serving(trained.pop("lora"), self.batches[0], layers=layers, device=self.device,
                                                   repeats=SERVING_REPEATS[self.device.type])
            self.seconds[f"serving.{layers}"] = time.perf_counter() - clock
            self._tick(f"serving check, {_layers(layers)}")
        return None

    def _held(self, layers: int) -> int:
        """Bytes the starting weights keep in host memory while the runs at `layers` go on (on the CPU, beside them)."""
        return self.estimate("full", layers).total_params * self.dtype.itemsize if self.device.type == "cpu" else 0

    def _spec_at(self, layers: int) -> ModelSpec:
        return self.spec if layers == self.layers else at_depth(self.spec, layers)

    def _pretrained(self) -> bool:
        return self.spec.origin == "folder" and bool(self.spec.weight_files)

    def _whole_model(self, free, max_seconds: float | None, started: float) -> tuple[bool, str]:
        """After the proxies: whether the whole model runs too, and why."""
        L, (d1, d2) = self.layers, plan.PROXY_DEPTHS
        proxy = f"measured cut to {d1} and {d2} layers and extrapolated to {L}"
        ok, needed = plan.fits([self.estimate(m, L) for m in METHODS], free, fused_optimizer=self.fused, held=self._held(L))
        if not ok:
            why = (f"the whole model needs {fmt_bytes(needed)} with the margin (estimator) and "
                   f"{fmt_bytes(free.bytes)} is free" if needed else "the estimator has no memory model for this architecture")
            return False, f"proxy: {why}; {proxy}"
        predicted = self._predicted_seconds(L)
        budget = max_seconds if max_seconds is not None else plan.DEFAULT_TIME_BUDGET_S
        left = budget - (time.perf_counter() - started)
        if predicted * plan.TIME_SAFETY > left:
            return False, (f"proxy: the whole model fits in memory but would take about {predicted:.0f} s more (the deeper "
                           f"proxy's times scaled by the parameter count), and {max(left, 0):.0f} s of the {budget:.0f} s time "
                           f"budget is left; {proxy}")
        return True, (f"whole model: it fits in memory ({fmt_bytes(needed)} needed with the margin) and the proxies at "
                      f"{d1} and {d2} layers, measured first, predicted {predicted:.0f} s, within the time budget")

    def _predicted_seconds(self, L: int) -> float:
        """The whole model's run: the deeper proxy's times (weights, both runs, serving) scaled by the parameter count.
        The work of a step grows with the parameters it touches; a ratio of two measurements does not amplify
        the clock's noise the way a slope extrapolated over many layers does."""
        d2 = plan.PROXY_DEPTHS[-1]
        scale = self.estimate("full", L).total_params / self.runs[("full", d2)].total_params
        measured = (self.seconds[f"prepare.{d2}"] + self.seconds[f"serving.{d2}"]
                    + sum(self.runs[(m, d2)].seconds for m in METHODS))
        return measured * scale

    # -- the result -----------------------------------------------------------
    def _result(self, dataset_info, preflight, reason: str, cut: str | None, started: float) -> ReferenceRun:
        measured_depths = sorted({layers for _, layers in self.runs})
        whole = all(self._complete(m, self.layers) for m in METHODS)
        results = {m: self._method_result(m) for m in METHODS}
        full, lora = results["full"], results["lora"]
        s = self.settings
        d1, d2 = plan.PROXY_DEPTHS
        tracker = CudaMemoryTracker if self.device.type == "cuda" else CpuMemoryTracker
        any_run = next(iter(self.runs.values()), None)
        serving = self._serving()
        notes = self._notes(results, serving, whole)
        return ReferenceRun(
            model=ModelInfo(spec=self.spec.spec, id=self.spec.id, model_type=self.spec.model_type, layers=self.layers,
                            weights=(f"pretrained: safetensors in {self.spec.folder}" if self._pretrained()
                                     else f"random (transformers' initialisation, seed {self.seed})"),
                            attention=any_run.attention if any_run else "", dtype=TORCH_DTYPES[s.precision]),
            settings=s,
            steps=self.steps,
            seed=self.seed,
            dataset=dataset_info,
            device=DeviceInfo(kind=self.device.type, name=device_name(self.device),
                              threads=self._threads(), memory_mechanism=tracker.mechanism,
                              optimizer="torch.optim.AdamW, " + ("fused" if self.fused else "foreach")),
            preflight=preflight,
            scale=Scale(kind="full" if whole else "proxy", target_layers=self.layers, depths=measured_depths, reason=reason,
                        extrapolation=None if whole else (f"linear in depth through the measurements at {d1} and {d2} layers: "
                                                          f"q({self.layers}) = q({d1}) + ({self.layers} - {d1}) x (q({d2}) - q({d1}))")),
            full=full,
            lora=lora,
            savings=plan.savings(full.figures, lora.figures) if full.figures and lora.figures else None,
            serving=serving,
            complete=cut is None,
            cut_short=None if cut is None else f"stopped by --max-seconds; not measured: {cut}",
            seconds=time.perf_counter() - started,
            timings={k: round(v, 3) for k, v in self.seconds.items()} | {
                f"{m}.{d}": round(r.seconds, 3) for (m, d), r in sorted(self.runs.items())},
            notes=notes,
            versions=_versions(),
        )

    def _notes(self, results: dict[str, MethodResult], serving: Serving, whole: bool) -> list[str]:
        d1, d2 = plan.PROXY_DEPTHS
        notes = list(self.spec.notes)
        if self.fused:
            notes.append("AdamW runs fused on the CPU; the estimator models foreach AdamW, so the peak beside each measurement "
                         "is the estimator's without foreach's step temporaries (one copy of the trainable parameters)")
        if not self._pretrained():
            notes.append(f"random weights (transformers' initialisation, seed {self.seed}): memory and time do not depend "
                         "on the values; the losses show only that training moves")
        if self.device.type == "cpu":
            notes.append("measured on the CPU: the estimator predicts CUDA's allocator; CPU kernels may allocate "
                         "temporaries of their own (and skip some of CUDA's), which shows in the peak and activation errors")
        if whole and self.layers > d2:
            for m in METHODS:
                check = self._extrapolated(m)
                measured = results[m].figures.peak_bytes.measured
                if check is not None and check.peak_bytes.measured and measured:
                    notes.append(f"check of the proxy method: {m} peak extrapolated from {d1} and {d2} layers "
                                 f"{fmt_bytes(check.peak_bytes.measured)} vs {fmt_bytes(measured)} measured whole "
                                 f"({(check.peak_bytes.measured - measured) / measured:+.1%})")
        if serving.basis is None and len(serving.measurements) > 1:
            notes.append("serving latency is not extrapolated to the real depth: a deeper proxy ran faster than a shallower "
                         "one, so the clock's noise (other work on the machine) exceeds one layer's cost; see the measurements")
        for est in (self.estimate("full", self.layers), self.estimate("lora", self.layers)):
            notes += [n for n in est.notes if n not in notes]
        return notes

    def _threads(self) -> int | None:
        import torch

        return torch.get_num_threads() if self.device.type == "cpu" else None

    def _run_measurement(self, method: str, layers: int) -> RunMeasurement:
        m = self.runs[(method, layers)]
        return RunMeasurement(
            method=method,
            layers=layers,
            learning_rate=LEARNING_RATES[method],
            figures=plan.figures(m, self.estimate(method, layers), fused_optimizer=self.fused),
            optimizer_step_counter_bytes=m.optimizer_step_counter_bytes,
            checkpoint_header_bytes=m.checkpoint.header_bytes if m.checkpoint else None,
            build_peak_bytes=m.build_peak_bytes,
            steps=m.steps,
            steps_planned=self.steps,
            build_seconds=m.build_seconds,
            seconds=m.seconds,
        )

    def _complete(self, method: str, layers: int) -> bool:
        run = self.runs.get((method, layers))
        return run is not None and len(run.steps) == self.steps

    def _extrapolated(self, method: str) -> Figures | None:
        d1, d2 = plan.PROXY_DEPTHS
        if (method, d1) not in self.runs or (method, d2) not in self.runs:
            return None
        low = plan.figures(self.runs[(method, d1)], self.estimate(method, d1), fused_optimizer=self.fused)
        high = plan.figures(self.runs[(method, d2)], self.estimate(method, d2), fused_optimizer=self.fused)
        return plan.extrapolate_figures(low, high, d1, d2, self.layers, self.estimate(method, self.layers),
                                        fused_optimizer=self.fused)

    def _method_result(self, method: str) -> MethodResult:
        depths = sorted(layers for m, layers in self.runs if m == method)
        runs = [self._run_measurement(method, d) for d in depths]
        if self._complete(method, self.layers):
            basis, figures = "measured", runs[-1].figures
        else:
            figures = self._extrapolated(method)
            basis = "extrapolated" if figures else None
        deepest = runs[-1].steps if runs else []
        return MethodResult(method=method, basis=basis, figures=figures,
                            loss_first=deepest[0].loss if deepest else None,
                            loss_last=deepest[-1].loss if deepest else None,
                            learning_rate=LEARNING_RATES[method], runs=runs)

    def _serving(self) -> Serving:
        s = self.settings
        measurements = [self.latency[d] for d in sorted(self.latency)]
        values: dict[str, float | None] = {"base_seconds": None, "unmerged_seconds": None, "merged_seconds": None}
        basis = None
        if self.layers in self.latency:
            basis = "measured"
            values = {k: getattr(self.latency[self.layers], k) for k in values}
        elif all(d in self.latency for d in plan.PROXY_DEPTHS):
            d1, d2 = plan.PROXY_DEPTHS
            values = {k: plan.extrapolate_time(getattr(self.latency[d1], k), getattr(self.latency[d2], k), d1, d2, self.layers)
                      for k in values}
            if None in values.values():
                values = dict.fromkeys(values)
            else:
                basis = "extrapolated"
        base = values["base_seconds"]
        return Serving(
            batch=s.batch, seq=s.seq, basis=basis, **values,
            unmerged_overhead=values["unmerged_seconds"] / base - 1 if base else None,
            merged_overhead=values["merged_seconds"] / base - 1 if base else None,
            outputs_match=all(m.outputs_match for m in measurements) if measurements else None,
            measurements=measurements,
        )


def _check_request(spec: ModelSpec, settings: TrainingSettings, steps: int, max_seconds: float | None) -> None:
    def bad(field_name: str, message: str, allowed: list[str] | None = None):
        raise InvalidInput(message, fields=[FieldIssue(field=field_name, message=message, allowed=allowed)])

    if spec.task != "causal-lm":
        bad("model", f"{spec.id} is an encoder ({spec.model_type}); the reference run trains causal language models")
    if settings.method not in ("lora", "qlora"):
        bad("method", "the reference run trains LoRA (or QLoRA) beside full fine-tuning; choose the adapter method", ["lora", "qlora"])
    if settings.gpus != 1 or settings.sharding != "none":
        bad("gpus", "a reference run uses one device; multi-GPU figures come from `advisor estimate`", ["1"])
    if settings.optimizer != "adamw":
        bad("optimizer", "the reference run measures torch's AdamW", ["adamw"])
    if not 2 <= steps <= MAX_STEPS:
        bad("steps", f"steps must be 2 to {MAX_STEPS:,}: the first step warms up, the others are timed")
    if max_seconds is not None and not max_seconds > 0:
        bad("max_seconds", "max_seconds must be a positive number of seconds")


def _device(choice: str, settings: TrainingSettings):
    import torch

    if choice not in ("auto", "cpu", "cuda"):
        raise InvalidInput(f"unknown device {choice!r}", fields=[FieldIssue(field="device", message="unknown device", allowed=["auto", "cpu", "cuda"])])
    cuda = torch.cuda.is_available()
    if choice == "cuda" and not cuda:
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
        message = f"no CUDA device is available ({build})"
        raise InvalidInput(message, fields=[FieldIssue(field="device", message=message, allowed=["auto", "cpu"])])
    device = torch.device("cuda" if choice == "cuda" or (choice == "auto" and cuda) else "cpu")
    if settings.method == "qlora":
        message = ("QLoRA needs a CUDA GPU and bitsandbytes' 4-bit kernels; this run is on the CPU" if device.type == "cpu" else
                   "the reference run does not measure QLoRA yet; run --method lora, and see `advisor estimate --method qlora` "
                   "for the estimator's QLoRA figures")
        raise InvalidInput(message, fields=[FieldIssue(field="method", message=message, allowed=["lora"])])
    return device


def _layers(n: int) -> str:
    return f"{n} layer{'s' * (n != 1)}"


def _versions() -> dict[str, str]:
    return {"python": sys.version.split()[0],
            **installed_versions("advisor", "torch", "transformers", "peft", "safetensors", "tokenizers")}
