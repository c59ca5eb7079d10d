"""From what a run measured to the figures it reports: one depth beside the estimator, the real depth
from the proxy depths, and what LoRA saves.

A model deeper than two layers is first measured cut to fewer layers (every layer,
the embeddings and the head keep their exact shapes). Each figure is linear in the
number of layers of each kind once the first layer is in (parameters, bytes and step
time of identical layers add up), so for alike layers two depths separate the
per-layer cost from the fixed cost of embeddings and head:
q(L) = q(1) + (L - 1) * (q(2) - q(1)); layers of several kinds (dense and MoE, sliding
and full attention) take one more depth per kind, combined with the weights of
`plan.proxy_plan`. For a peak this holds while the peak stays in the same phase of the
step; the estimator's figures for the real model sit beside the extrapolation to show it.

Pure functions: no torch, no clock, no device.
"""

from __future__ import annotations

from ..estimate.settings import Estimate
from . import spread
from .plan import ProxyPlan, predicted_peak
from .result import Compared, Figures, Savings
from .train import Measured


def figures(m: Measured, est: Estimate, *, fused_optimizer: bool) -> Figures:
    """One run's measurements beside the estimator's prediction for the same depth and settings."""
    sizes = est.sizes
    return Figures(
        total_params=Compared.of(m.total_params, est.total_params),
        trainable_params=Compared.of(m.trainable_params, est.trainable_params),
        weight_bytes=Compared.of(m.weight_bytes, sizes.get("weights")),
        gradient_bytes=Compared.of(m.gradient_bytes, sizes.get("gradients")),
        optimizer_state_bytes=Compared.of(m.optimizer_state_bytes, sizes.get("optimizer_states")),
        activation_bytes=Compared.of(m.activation_bytes, sizes.get("activations")),
        output_bytes=Compared.of(m.output_bytes, sizes.get("previous_step_outputs")),
        peak_bytes=Compared.of(m.peak_bytes if m.steps else None, predicted_peak(est, fused_optimizer=fused_optimizer)),
        # LoRA saves its adapter file; full fine-tuning saves every weight (its file adds a header of a few KB).
        checkpoint_bytes=Compared.of(m.checkpoint.bytes if m.checkpoint else m.weight_bytes, est.checkpoint_bytes),
        step_seconds=spread.median(step_samples(m)),
        step_seconds_interval=spread.median_interval(step_samples(m)),
    )


def step_samples(m: Measured) -> list[float]:
    """The timed steps' seconds: all but the first, which warms up."""
    return [s.seconds for s in m.steps[1:]]


def extrapolate_figures(
    measured: list[Figures],
    proxy: ProxyPlan,
    est: Estimate,
    *,
    fused_optimizer: bool,
    steps: list[list[float]] | None = None,
) -> Figures:
    """Figures at the real depth from those measured at the proxy depths (`proxy.depths`, in order), beside the
    estimator's prediction for the real model. The step time comes from the timed steps at each depth (`steps`),
    with its interval; it is withheld when what the deeper layers add is within the noise
    (`spread.combined_median`)."""
    step_seconds, step_interval = spread.combined_median(steps or [[] for _ in measured], proxy.weights)

    def line(name: str, estimated: float | None) -> Compared:
        value = proxy.combine([getattr(f, name).measured for f in measured])
        return Compared.of(None if value is None else round(value), estimated)

    sizes = est.sizes
    return Figures(
        total_params=line("total_params", est.total_params),
        trainable_params=line("trainable_params", est.trainable_params),
        weight_bytes=line("weight_bytes", sizes.get("weights")),
        gradient_bytes=line("gradient_bytes", sizes.get("gradients")),
        optimizer_state_bytes=line("optimizer_state_bytes", sizes.get("optimizer_states")),
        activation_bytes=line("activation_bytes", sizes.get("activations")),
        output_bytes=line("output_bytes", sizes.get("previous_step_outputs")),
        peak_bytes=line("peak_bytes", predicted_peak(est, fused_optimizer=fused_optimizer)),
        checkpoint_bytes=line("checkpoint_bytes", est.checkpoint_bytes),
        step_seconds=step_seconds,
        step_seconds_interval=step_interval,
    )


def savings(full: Figures, lora: Figures, step_interval: list[float] | None = None) -> Savings:
    """How many times more full fine-tuning needs than LoRA, measured and estimated; `step_interval` is the
    interval of the step-time ratio (from the samples, which `Figures` does not keep)."""

    def ratio(name: str) -> Compared:
        f, lo = getattr(full, name), getattr(lora, name)
        return Compared.of(_div(f.measured, lo.measured), _div(f.estimated, lo.estimated))

    return Savings(
        trainable_params=ratio("trainable_params"),
        gradient_bytes=ratio("gradient_bytes"),
        optimizer_state_bytes=ratio("optimizer_state_bytes"),
        peak_bytes=ratio("peak_bytes"),
        checkpoint_bytes=ratio("checkpoint_bytes"),
        step_seconds=_div(full.step_seconds, lora.step_seconds),
        step_seconds_interval=step_interval if full.step_seconds and lora.step_seconds else None,
    )


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None
