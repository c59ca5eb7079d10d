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
import threading
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Literal

from ..errors import FieldIssue, InvalidInput
from ..estimate import estimate_training_memory
from ..estimate.settings import METHOD_LABELS, Estimate, TrainingSettings
from ..fmt import fmt_bytes
from ..hf import build_config, require_lora_stack
from ..model_specs import ModelSpec, resolve_model_spec
from ..versions import installed_versions
from . import corpus, plan
from .assemble import LEARNING_RATES, METHODS, TORCH_DTYPES, Measurements, depths_text, reference_run_result
from .control import Stop, exclusive, temporary_folder
from .measure import CpuMemoryTracker, CudaMemoryTracker, FreeMemory, device_name, free_memory
from .model import at_depth, build_model, layer_kinds, make_base_weights
from .result import DeviceInfo, ReferenceRun
from .train import Job, ServingStopped, adamw_options, measure_serving, train

if TYPE_CHECKING:
    import torch

DEFAULT_BATCH = 1
DEFAULT_SEQ = 64
DEFAULT_STEPS = 4  # one warm-up, then three timed: their median shrugs off one slow step
MAX_STEPS = 10_000
SERVING_REPEATS = {"cpu": 15, "cuda": 30}  # rounds at most (see train.measure_serving)

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
    cancel: threading.Event | None = None,
) -> ReferenceRun:
    """Train `spec` with full fine-tuning and with LoRA (`settings`) for `steps` steps each, and measure both.

    `max_seconds` stops the run cleanly (the step or timed pass under way finishes) and
    returns what was measured, with `complete=False`. Setting `cancel` (from another
    thread) stops it the same way and raises `advisor.reference.control.Cancelled`.
    `progress(description, done, total)` is called as work advances. One run at a time
    in a process: a call made while another is under way raises `advisor.errors.Busy`.
    """
    started = time.perf_counter()
    require_lora_stack()
    spec = spec if isinstance(spec, ModelSpec) else resolve_model_spec(spec)
    settings = settings or default_settings()
    settings = settings.model_copy(update={"alpha": settings.lora_alpha})  # the default (2 x rank), written out
    _check_request(spec, settings, steps, max_seconds)
    dev = _device(device, settings)
    with exclusive(max_seconds):
        stop = Stop(max_seconds - (time.perf_counter() - started) if max_seconds else None, cancel)
        runner = _Runner(spec, settings, dev, steps=steps, seed=seed, deadline=stop, progress=progress)
        return runner.run(dataset, max_seconds, started)


class _Runner:
    """Runs the plan: preflight, data, the proxy depths, then the whole model when it fits in memory and time."""

    def __init__(
        self,
        spec: ModelSpec,
        settings: TrainingSettings,
        device: "torch.device",
        *,
        steps: int,
        seed: int,
        deadline: Stop,
        progress: Progress | None,
    ):
        import torch

        config = build_config(spec)
        positions = getattr(config, "max_position_embeddings", None)
        if positions and settings.seq > positions:
            message = f"seq {settings.seq} is longer than the {positions} positions this model has"
            raise InvalidInput(message, fields=[FieldIssue(field="seq", message=message)])
        self.spec, self.settings, self.device, self.deadline = spec, settings, device, deadline
        self.layers = int(config.num_hidden_layers)
        self.vocab = int(config.vocab_size)
        self.dtype = getattr(torch, TORCH_DTYPES[settings.precision])
        self.progress = progress or (lambda *_: None)
        self.done = self.total = 0
        self.batches: list[list[list[int]]] = []
        self.m = Measurements(
            spec=spec,
            settings=settings,
            layers=self.layers,
            steps=steps,
            seed=seed,
            fused_optimizer=adamw_options(device).get("fused", False),
            estimate=cache(self._estimate),
            proxy=plan.proxy_plan(layer_kinds(spec)),
        )

    def _estimate(self, method: str, layers: int) -> Estimate:
        # traced families: emulate the attention kernels of the device measured, so like is compared with like
        return estimate_training_memory(
            self._spec_at(layers),
            self.settings.model_copy(update={"method": method}),
            kernels="cpu" if self.device.type == "cpu" else "cuda",
        )

    def _spec_at(self, layers: int) -> ModelSpec:
        return self.spec if layers == self.layers else at_depth(self.spec, layers)

    def run(self, dataset, max_seconds: float | None, started: float) -> ReferenceRun:
        m = self.m
        proxy = m.proxy.proxy
        depths = m.proxy.depths
        clock = time.perf_counter()
        free = free_memory(self.device)
        deepest = max(depths)
        planned = {f"{METHOD_LABELS[method]} at {_layers(deepest)}": m.estimate(method, deepest) for method in METHODS}
        preflight = plan.preflight(planned, free, fused_optimizer=m.fused_optimizer, held=self._held(deepest))
        m.seconds["estimate"] = time.perf_counter() - clock

        clock = time.perf_counter()
        texts = corpus.load_corpus(dataset)
        s = self.settings
        stream = corpus.tokenize(texts, self.spec, self.vocab, needed=s.batch * s.seq * m.steps)
        self.batches = corpus.batches(stream, batch=s.batch, seq=s.seq, steps=m.steps)
        dataset_info = corpus.dataset_info(texts, stream, batch=s.batch, seq=s.seq, steps=m.steps)
        m.seconds["data"] = time.perf_counter() - clock

        self.total = self._units(depths)
        with temporary_folder() as workdir:
            cut = self.measure(depths, workdir)
            if not proxy:
                reason = f"whole model: it has {_layers(self.layers)}" + (
                    f" ({m.proxy.pattern()}: a cut to fewer layers would lack a kind of layer it has)"
                    if self.layers > plan.PROXY_DEPTHS[-1]
                    else ""
                )
            elif cut is not None:
                reason = f"proxy: cut to {depths_text(depths)} layers; stopped before the whole model was considered"
            else:
                whole, reason = self._whole_model(free, max_seconds, started)
                if whole:
                    self.total += self._units((self.layers,))
                    cut = self.measure((self.layers,), workdir)
        return reference_run_result(
            m,
            device=self._device_info(),
            dataset=dataset_info,
            preflight=preflight,
            reason=reason,
            cut=cut,
            seconds=time.perf_counter() - started,
            versions=_versions(),
        )

    def _units(self, depths) -> int:
        return 1 + len(depths) * (2 * self.m.steps + 1)

    def _tick(self, description: str) -> None:
        self.done += 1
        self.progress(description, self.done, self.total)

    def measure(self, depths: tuple[int, ...], workdir: Path) -> str | None:
        """Prepare the weights once for the deepest depth, then run both methods and serving at each depth.
        Returns what was skipped when the deadline passed, else None."""
        m = self.m
        deepest = max(depths)
        clock = time.perf_counter()
        self.progress(f"weights for {deepest} layers", self.done, self.total)
        weights = make_base_weights(
            self._spec_at(deepest),
            pretrained=m.pretrained,
            seed=m.seed,
            dtype=self.dtype,
            attention=self.settings.attention,
        )
        m.seconds[f"prepare.{deepest}"] = time.perf_counter() - clock
        self._tick(f"weights for {deepest} layers")
        for layers in depths:
            trained = {}
            for method in METHODS:
                if self.deadline.passed():
                    return f"{method} at {layers} layers and everything after it"
                job = Job(
                    spec=self._spec_at(layers),
                    layers=layers,
                    method=method,
                    settings=self.settings,
                    weights=weights,
                    device=self.device,
                    dtype=self.dtype,
                    batches=self.batches,
                    learning_rate=LEARNING_RATES[method],
                    workdir=workdir,
                )
                label = f"{METHOD_LABELS[method]}, {_layers(layers)}"
                m.runs[(method, layers)], trained[method] = train(
                    job,
                    self.deadline,
                    lambda i, loss, label=label: self._tick(f"{label}: step {i + 1}, loss {loss:.3f}"),
                )
                if not m.complete(method, layers):
                    done = len(m.runs[(method, layers)].steps)
                    return f"steps {done + 1}-{m.steps} of {label} and everything after it"
            if self.deadline.passed():
                return f"the serving check at {layers} layers and everything after it"
            clock = time.perf_counter()
            try:
                base = build_model(
                    self._spec_at(layers),
                    weights,
                    device=self.device,
                    dtype=self.dtype,
                    attention=self.settings.attention,
                )
                m.latency[layers] = measure_serving(
                    trained.pop("lora"),
                    base,
                    self.batches[0],
                    layers=layers,
                    device=self.device,
                    repeats=SERVING_REPEATS[self.device.type],
                    stop=self.deadline,
                )
                del base  # not held through the next depth's training
            except ServingStopped:
                return f"the serving check at {layers} layers (stopped in its timed passes) and everything after it"
            m.seconds[f"serving.{layers}"] = time.perf_counter() - clock
            self._tick(f"serving check, {_layers(layers)}")
        return None

    def _held(self, layers: int) -> int:
        """Bytes the starting weights keep in host memory while the runs at `layers` go on (on the CPU, beside them)."""
        if self.device.type != "cpu":
            return 0
        return self.m.estimate("full", layers).total_params * self.dtype.itemsize

    def _whole_model(self, free: FreeMemory, max_seconds: float | None, started: float) -> tuple[bool, str]:
        """After the proxies: whether the whole model runs too, and why."""
        m = self.m
        L, depths = self.layers, m.proxy.depths
        proxy = f"measured cut to {depths_text(depths)} layers and extrapolated to {L}"
        ok, needed = plan.fits(
            [m.estimate(method, L) for method in METHODS], free, fused_optimizer=m.fused_optimizer, held=self._held(L)
        )
        if not ok:
            why = (
                f"the whole model needs {fmt_bytes(needed)} with the margin (estimator) and "
                f"{fmt_bytes(free.bytes)} is free"
                if needed
                else "the estimator has no memory model for this architecture"
            )
            return False, f"proxy: {why}; {proxy}"
        predicted = self._predicted_seconds(L)
        budget = max_seconds if max_seconds is not None else plan.DEFAULT_TIME_BUDGET_S
        left = budget - (time.perf_counter() - started)
        if predicted * plan.TIME_SAFETY > left:
            return False, (
                f"proxy: the whole model fits in memory but would take about {predicted:.0f} s more (the deeper "
                f"proxy's times scaled by the parameter count), and {max(left, 0):.0f} s of the {budget:.0f} s time "
                f"budget is left; {proxy}"
            )
        return True, (
            f"whole model: it fits in memory ({fmt_bytes(needed)} needed with the margin) and the proxies at "
            f"{depths_text(depths)} layers, measured first, predicted {predicted:.0f} s, within the time budget"
        )

    def _predicted_seconds(self, L: int) -> float:
        """The whole model's run: the deeper proxy's times (weights, both runs, serving) scaled by the parameter count.
        The work of a step grows with the parameters it touches; a ratio of two measurements does not amplify
        the clock's noise the way a slope extrapolated over many layers does."""
        m = self.m
        d2 = m.proxy.depths[-1]
        scale = m.estimate("full", L).total_params / m.runs[("full", d2)].total_params
        measured = (
            m.seconds[f"prepare.{d2}"] + m.seconds[f"serving.{d2}"] + sum(m.runs[(x, d2)].seconds for x in METHODS)
        )
        return measured * scale

    def _device_info(self) -> DeviceInfo:
        import torch

        cpu = self.device.type == "cpu"
        tracker = CpuMemoryTracker if cpu else CudaMemoryTracker
        return DeviceInfo(
            kind=self.device.type,
            name=device_name(self.device),
            threads=torch.get_num_threads() if cpu else None,
            memory_mechanism=tracker.mechanism,
            optimizer="torch.optim.AdamW, " + ("fused" if self.m.fused_optimizer else "foreach"),
        )


def _check_request(spec: ModelSpec, settings: TrainingSettings, steps: int, max_seconds: float | None) -> None:
    check_trainable(spec, settings, steps, max_seconds)
    if settings.method not in ("lora", "qlora"):
        _bad(
            "method",
            "the reference run trains LoRA (or QLoRA) beside full fine-tuning; choose the adapter method",
            ["lora", "qlora"],
        )
    if settings.gpus != 1 or settings.sharding != "none":
        _bad("gpus", "a reference run uses one device; multi-GPU figures come from `advisor estimate`", ["1"])


def check_trainable(spec: ModelSpec, settings: TrainingSettings, steps: int, max_seconds: float | None) -> None:
    """What a reference run, on one process or several, can train and compare: a causal LM, torch's AdamW, the
    model's own loss (its training forward computes transformers' loss: a fused or TRL head would be estimated for a
    loss the run does not measure), 2 steps or more, a positive time limit."""
    if spec.task != "causal-lm":
        chosen = {"catalog": "in the catalog", "architectures": "by its architectures"}.get(
            spec.task_from, "by its model type's masked-LM task (the config has no architectures)"
        )
        _bad(
            "model",
            f"{spec.id} is an encoder ({spec.model_type}, {chosen}); the reference run trains causal language models "
            "only: `advisor estimate` gives its exact counts",
        )
    if settings.optimizer != "adamw":
        _bad("optimizer", "the reference run measures torch's AdamW", ["adamw"])
    if settings.loss != "standard":
        _bad("loss", "the reference run measures the model's own loss (transformers' cross-entropy)", ["standard"])
    if not 2 <= steps <= MAX_STEPS:
        _bad("steps", f"steps must be 2 to {MAX_STEPS:,}: the first step warms up, the others are timed")
    if max_seconds is not None and not max_seconds > 0:
        _bad("max_seconds", "max_seconds must be a positive number of seconds")


def _bad(field_name: str, message: str, allowed: list[str] | None = None):
    raise InvalidInput(message, fields=[FieldIssue(field=field_name, message=message, allowed=allowed)])


def _device(choice: str, settings: TrainingSettings):
    import torch

    if choice not in ("auto", "cpu", "cuda"):
        raise InvalidInput(
            f"unknown device {choice!r}",
            fields=[FieldIssue(field="device", message="unknown device", allowed=["auto", "cpu", "cuda"])],
        )
    cuda = torch.cuda.is_available()
    if choice == "cuda" and not cuda:
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a CPU-only build")
        message = f"no CUDA device is available ({build})"
        raise InvalidInput(message, fields=[FieldIssue(field="device", message=message, allowed=["auto", "cpu"])])
    device = torch.device("cuda" if choice == "cuda" or (choice == "auto" and cuda) else "cpu")
    if settings.method == "qlora":
        message = (
            "QLoRA needs a CUDA GPU and bitsandbytes' 4-bit kernels; this run is on the CPU"
            if device.type == "cpu"
            else "the reference run does not measure QLoRA yet; run --method lora, and see "
            "`advisor estimate --method qlora` for the estimator's QLoRA figures"
        )
        raise InvalidInput(message, fields=[FieldIssue(field="method", message=message, allowed=["lora"])])
    return device


def _layers(n: int) -> str:
    return f"{n} layer{'s' * (n != 1)}"


def _versions() -> dict[str, str]:
    return {
        "python": sys.version.split()[0],
        **installed_versions("advisor", "torch", "transformers", "peft", "safetensors", "tokenizers"),
    }
