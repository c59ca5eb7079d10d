"""From the measurements of a reference run to the `ReferenceRun` it returns.

Pure functions over `Measurements` (what the runs recorded, by method and depth) and
the estimator's figures: which figures are measured and which extrapolated, what LoRA
saves, the serving comparison, the notes. No torch and no clock: the orchestration in
`run` does the measuring, this only reads what it measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..estimate.settings import Estimate, TrainingSettings
from ..fmt import fmt_bytes
from ..model_specs import ModelSpec
from . import extrapolate, plan, spread
from .result import (
    DatasetInfo,
    DeviceInfo,
    Figures,
    LatencyMeasurement,
    MethodResult,
    ModelInfo,
    Preflight,
    ReferenceRun,
    RunMeasurement,
    Scale,
    Serving,
)
from .train import Measured

METHODS = ("full", "lora")
# Full fine-tuning and LoRA are trained with the learning rates each is usually given:
# adapters start at zero and take a rate about ten times higher.
LEARNING_RATES = {"full": 1e-4, "lora": 1e-3}
TORCH_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32", "mixed": "float32"}


@dataclass
class Measurements:
    """What a reference run recorded, and what it needs to read it: the model, its settings and the estimator."""

    spec: ModelSpec
    settings: TrainingSettings
    layers: int  # the model's real depth
    steps: int
    seed: int
    fused_optimizer: bool
    estimate: Callable[[str, int], Estimate]  # (method, layers) -> the estimator's figures at that depth
    proxy: plan.ProxyPlan  # the depths measured first and how they combine into the real depth
    runs: dict[tuple[str, int], Measured] = field(default_factory=dict)
    latency: dict[int, LatencyMeasurement] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def complete(self, method: str, layers: int) -> bool:
        run = self.runs.get((method, layers))
        return run is not None and len(run.steps) == self.steps

    @property
    def pretrained(self) -> bool:
        return self.spec.origin == "folder" and bool(self.spec.weight_files)


def reference_run_result(
    m: Measurements,
    *,
    device: DeviceInfo,
    dataset: DatasetInfo,
    preflight: Preflight,
    reason: str,
    cut: str | None,
    seconds: float,
    versions: dict[str, str],
) -> ReferenceRun:
    """The result: every figure at the real depth, measured or extrapolated, beside the estimator's."""
    whole = all(m.complete(method, m.layers) for method in METHODS)
    results = {method: method_result(m, method) for method in METHODS}
    full, lora = results["full"], results["lora"]
    any_run = next(iter(m.runs.values()), None)
    served = serving(m)
    s = m.settings
    return ReferenceRun(
        model=ModelInfo(
            spec=m.spec.spec,
            id=m.spec.id,
            model_type=m.spec.model_type,
            layers=m.layers,
            weights=(
                f"pretrained: safetensors in {m.spec.folder}"
                if m.pretrained
                else f"random (transformers' initialisation, seed {m.seed})"
            ),
            attention=any_run.attention if any_run else "",
            dtype=TORCH_DTYPES[s.precision],
        ),
        settings=s,
        steps=m.steps,
        seed=m.seed,
        dataset=dataset,
        device=device,
        preflight=preflight,
        scale=Scale(
            kind="full" if whole else "proxy",
            target_layers=m.layers,
            depths=sorted({layers for _, layers in m.runs}),
            reason=reason,
            extrapolation=None if whole else extrapolation_text(m.proxy),
        ),
        full=full,
        lora=lora,
        savings=extrapolate.savings(full.figures, lora.figures, step_ratio_interval(m, whole))
        if full.figures and lora.figures
        else None,
        serving=served,
        complete=cut is None,
        cut_short=None if cut is None else f"stopped by --max-seconds; not measured: {cut}",
        seconds=seconds,
        timings={k: round(v, 3) for k, v in m.seconds.items()}
        | {f"{method}.{d}": round(r.seconds, 3) for (method, d), r in sorted(m.runs.items())},
        notes=notes(m, results, served, whole=whole, device_kind=device.kind),
        versions=versions,
    )


def extrapolation_text(proxy: plan.ProxyPlan) -> str:
    """How the proxy depths make the real depth, with the layers' kinds when they are not all alike."""
    at = f"at {depths_text(proxy.depths)} layers"
    if len(set(proxy.kinds[1:])) <= 1:
        return f"linear in depth through the measurements {at}: {proxy.formula()}"
    return (
        f"linear in the layers of each kind ({proxy.pattern()}; the first layer counted with embeddings and head) "
        f"through the measurements {at}: {proxy.formula()}"
    )


def depths_text(depths) -> str:
    names = [str(d) for d in depths]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def run_measurement(m: Measurements, method: str, layers: int) -> RunMeasurement:
    """One run at one depth, beside the estimator's figures for that depth."""
    run = m.runs[(method, layers)]
    return RunMeasurement(
        method=method,
        layers=layers,
        learning_rate=LEARNING_RATES[method],
        figures=extrapolate.figures(run, m.estimate(method, layers), fused_optimizer=m.fused_optimizer),
        optimizer_step_counter_bytes=run.optimizer_step_counter_bytes,
        activation_cache_bytes=run.activation_cache_bytes,
        checkpoint_header_bytes=run.checkpoint.header_bytes if run.checkpoint else None,
        build_peak_bytes=run.build_peak_bytes,
        steps=run.steps,
        steps_planned=m.steps,
        build_seconds=run.build_seconds,
        seconds=run.seconds,
    )


def extrapolated(m: Measurements, method: str) -> Figures | None:
    """`method`'s figures at the real depth from the proxy depths, or None when one is missing."""
    depths = m.proxy.depths
    if not m.proxy.proxy or any((method, d) not in m.runs for d in depths):
        return None
    measured = [
        extrapolate.figures(m.runs[(method, d)], m.estimate(method, d), fused_optimizer=m.fused_optimizer)
        for d in depths
    ]
    return extrapolate.extrapolate_figures(
        measured,
        m.proxy,
        m.estimate(method, m.layers),
        fused_optimizer=m.fused_optimizer,
        steps=[extrapolate.step_samples(m.runs[(method, d)]) for d in depths],
    )


def step_ratio_interval(m: Measurements, whole: bool) -> list[float] | None:
    """The interval of full / LoRA median step time at the real depth: the two runs' steps resampled apart."""
    samples = {key: extrapolate.step_samples(run) for key, run in m.runs.items()}
    if whole:
        return spread.bootstrap(
            lambda f, lo: spread.median(f) / spread.median(lo), samples[("full", m.layers)], samples[("lora", m.layers)]
        )
    depths = m.proxy.depths
    if not all((method, d) in samples for method in METHODS for d in depths):
        return None
    n = len(depths)

    def ratio(*groups):
        full = m.proxy.combine([spread.median(g) for g in groups[:n]])
        lora = m.proxy.combine([spread.median(g) for g in groups[n:]])
        return full / lora if lora > 0 else None

    groups = [samples[(method, d)] for method in METHODS for d in depths]
    return spread.bootstrap(ratio, *groups)


def method_result(m: Measurements, method: str) -> MethodResult:
    """`method` at the real depth: measured when the whole model ran, else extrapolated, else nothing."""
    runs = [run_measurement(m, method, d) for d in sorted(layers for mm, layers in m.runs if mm == method)]
    if m.complete(method, m.layers):
        basis, figures = "measured", runs[-1].figures
    else:
        figures = extrapolated(m, method)
        basis = "extrapolated" if figures else None
    deepest = runs[-1].steps if runs else []
    return MethodResult(
        method=method,
        basis=basis,
        figures=figures,
        loss_first=deepest[0].loss if deepest else None,
        loss_last=deepest[-1].loss if deepest else None,
        learning_rate=LEARNING_RATES[method],
        runs=runs,
    )


def serving(m: Measurements) -> Serving:
    """Base, unmerged and merged forward latency at the real depth: measured, extrapolated with intervals,
    withheld (a per-layer cost within the noise), or not measured."""
    measurements = [m.latency[d] for d in sorted(m.latency)]
    names = ("base", "unmerged", "merged")
    fields: dict = {}
    basis, withheld = None, None
    if m.layers in m.latency:
        basis = "measured"
        x = m.latency[m.layers]
        for name in names:
            fields[f"{name}_seconds"] = getattr(x, f"{name}_seconds")
            fields[f"{name}_interval"] = getattr(x, f"{name}_interval")
        for name in ("unmerged", "merged"):
            fields[f"{name}_overhead"] = getattr(x, f"{name}_overhead")
            fields[f"{name}_overhead_interval"] = getattr(x, f"{name}_overhead_interval")
    elif m.proxy.proxy and all(d in m.latency for d in m.proxy.depths):
        depths = m.proxy.depths
        at = [m.latency[d] for d in depths]
        lines = {
            name: spread.combined_median([getattr(x, f"{name}_samples") for x in at], m.proxy.weights) for name in names
        }
        if any(value is None for value, _ in lines.values()):
            withheld = (
                f"the forward pass at {depths_text(depths[1:])} layers did not take measurably longer than at "
                f"{depths[0]} (the interval of what the deeper layers add reaches zero): a layer's cost is within "
                f"the clock's noise, and extrapolating it to {m.layers} layers would print noise"
            )
        else:
            basis = "extrapolated"
            rounds = [_rounds(x) for x in at]
            for name, (value, interval) in lines.items():
                fields[f"{name}_seconds"], fields[f"{name}_interval"] = value, interval
            for i, name in ((1, "unmerged"), (2, "merged")):

                def overhead(*groups, i=i):
                    at = [m.proxy.combine([spread.median([r[k] for r in g]) for g in groups]) for k in (0, i)]
                    return at[1] / at[0] - 1 if at[0] > 0 else None

                fields[f"{name}_overhead"] = overhead(*rounds)
                fields[f"{name}_overhead_interval"] = spread.bootstrap(overhead, *rounds)
    checks = [x.merged_times_like_base for x in measurements if x.merged_times_like_base is not None]
    return Serving(
        batch=m.settings.batch,
        seq=m.settings.seq,
        basis=basis,
        base_seconds=fields.get("base_seconds"),
        unmerged_seconds=fields.get("unmerged_seconds"),
        merged_seconds=fields.get("merged_seconds"),
        base_interval=fields.get("base_interval"),
        unmerged_interval=fields.get("unmerged_interval"),
        merged_interval=fields.get("merged_interval"),
        unmerged_overhead=fields.get("unmerged_overhead"),
        unmerged_overhead_interval=fields.get("unmerged_overhead_interval"),
        merged_overhead=fields.get("merged_overhead"),
        merged_overhead_interval=fields.get("merged_overhead_interval"),
        merged_times_like_base=all(checks) if checks else None,
        withheld=withheld,
        outputs_match=all(x.outputs_match for x in measurements) if measurements else None,
        measurements=measurements,
    )


def _rounds(x: LatencyMeasurement) -> list[tuple[float, float, float]]:
    return list(zip(x.base_samples, x.unmerged_samples, x.merged_samples, strict=True))


def notes(
    m: Measurements, results: dict[str, MethodResult], served: Serving, *, whole: bool, device_kind: str
) -> list[str]:
    """What the reader must know to trust the figures: the optimizer, the weights, the device, the checks."""
    at = depths_text(m.proxy.depths)
    out = list(m.spec.notes)
    if m.fused_optimizer:
        out.append(
            "AdamW runs fused on the CPU; the estimator models foreach AdamW, so the peak beside each measurement "
            "is the estimator's without foreach's step temporaries (one copy of the trainable parameters)"
        )
    if not m.pretrained:
        out.append(
            f"random weights (transformers' initialisation, seed {m.seed}): memory and time do not depend "
            "on the values; the losses show only that training moves"
        )
    if device_kind == "cpu":
        out.append(
            "measured on the CPU: the estimator predicts CUDA's allocator; CPU kernels may allocate "
            "temporaries of their own (and skip some of CUDA's), which shows in the peak and activation errors"
        )
    if whole and m.proxy.proxy:
        for method in METHODS:
            check = extrapolated(m, method)
            for name, what in (("peak_bytes", "peak"), ("activation_bytes", "activations")):
                measured = getattr(results[method].figures, name).measured
                guess = getattr(check, name).measured if check is not None else None
                if guess and measured:
                    out.append(
                        f"check of the proxy method: {method} {what} extrapolated from {at} layers "
                        f"{fmt_bytes(guess)} vs {fmt_bytes(measured)} measured whole "
                        f"({(guess - measured) / measured:+.2%})"
                    )
    if served.withheld:
        out.append(f"serving latency is not extrapolated to the real depth: {served.withheld}; see the measurements")
    if served.merged_times_like_base is False:
        bad = [x for x in served.measurements if x.merged_times_like_base is False]
        out.append(
            "measurement problem: merged weights have the base model's modules and shapes, so a merged pass must "
            "take the base's time, but at "
            + ", ".join(f"{x.layers} layer{'s' * (x.layers != 1)} it took {x.merged_overhead:+.0%}" for x in bad)
            + " (interval outside +-5%): other work on the machine disturbed the clock; the serving overheads "
            "are not evidence either way, run again on a quiet machine"
        )
    for method in METHODS:
        figures = results[method].figures
        if results[method].basis == "extrapolated" and figures is not None and figures.step_seconds is None:
            out.append(
                f"{method} step time is not extrapolated to the real depth: the steps at "
                f"{depths_text(m.proxy.depths[1:])} layers did not take measurably longer than at "
                f"{m.proxy.depths[0]} (a layer's cost is within the clock's noise)"
            )
    for est in (m.estimate("full", m.layers), m.estimate("lora", m.layers)):
        out += [n for n in est.notes if n not in out]
    return out
