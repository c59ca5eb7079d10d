"""How big a reference run can be, and how proxy measurements carry over to the real model.

- **Preflight**: the estimator's peak for the largest run planned, with a margin, must
  fit in the device's free memory, or the run is refused with the numbers.
- **Proxy**: a model deeper than two layers is first measured cut to 1 and 2 layers
  (every layer, the embeddings and the head keep their exact shapes). Each figure is
  linear in the number of layers once the first layer is in (parameters, bytes and
  step time of identical layers add up), so two depths separate the per-layer cost
  from the fixed cost of embeddings and head: q(L) = q(1) + (L - 1) * (q(2) - q(1)).
  For a peak this holds while the peak stays in the same phase of the step; the
  estimator's figures for the real model sit beside the extrapolation to show it.
- **Whole model**: after the proxies, the whole model also runs when the estimator
  says it fits in free memory with the margin and the deeper proxy's own times, scaled
  by the parameter count, say it ends within the time budget.
"""

from __future__ import annotations

from ..errors import FieldIssue, Refused
from ..estimate.settings import Estimate
from ..units import fmt_bytes
from .measure import FreeMemory, median
from .result import Compared, Figures, Preflight, Savings
from .train import Measured

PROXY_DEPTHS = (1, 2)
MEMORY_MARGIN = 0.25
# Without --max-seconds, the whole model runs only if the proxies predict it ends within this
# budget with TIME_SAFETY to spare: a run's first steps page in fresh memory that the
# parameter-count scaling does not see, and imports come on top. This keeps the default
# run of a 1B-class model, imports included, under a minute on two cores.
DEFAULT_TIME_BUDGET_S = 45.0
TIME_SAFETY = 1.3


def predicted_peak(estimate: Estimate, *, fused_optimizer: bool) -> int | None:
    """The estimator's peak for the optimizer the run uses.

    The estimator models torch's foreach AdamW, whose step allocates a temporary the
    size of the trainable parameters (`optimizer_step_temporaries`); fused AdamW
    (used on the CPU) updates in place, so that term leaves its phase.
    """
    if estimate.peak_bytes is None:
        return None
    if not fused_optimizer:
        return estimate.peak_bytes
    phases = dict(estimate.phases)
    phases["optimizer_step"] -= estimate.sizes.get("optimizer_step_temporaries", 0)
    return max(phases.values())


def preflight(planned: dict[str, Estimate], free: FreeMemory, *, fused_optimizer: bool, held: int = 0) -> Preflight:
    """Refuse, with the numbers, a run whose largest part would not fit in free memory
    beside `held` bytes kept on the same device throughout (the starting weights, on the CPU)."""
    peaks = {label: predicted_peak(est, fused_optimizer=fused_optimizer) for label, est in planned.items()}
    what = "the estimator's peak"
    if None in peaks.values():
        # No activation model for this architecture: its weights, gradients and AdamW states are still exact.
        peaks = {label: _states_bytes(est) for label, est in planned.items()}
        what = "weights, gradients and AdamW states alone"
    label = max(peaks, key=peaks.get)
    needed = int(peaks[label] * (1 + MEMORY_MARGIN)) + held
    if needed > free.bytes:
        beside = f", beside the starting weights ({fmt_bytes(held)})" if held else ""
        message = (f"the reference run would not fit: {label} needs {fmt_bytes(needed)} "
                   f"({what}, {fmt_bytes(peaks[label])}, + {MEMORY_MARGIN:.0%} margin{beside}), "
                   f"and {fmt_bytes(free.bytes)} is free ({free.source}); "
                   "use a smaller --batch or --seq, or a device with more memory")
        raise Refused(message, fields=[FieldIssue(field="model", message=message)])
    return Preflight(free_bytes=free.bytes, free_source=free.source, needed_bytes=needed, margin=MEMORY_MARGIN)


def _states_bytes(est: Estimate) -> int:
    weight = 4 if est.settings.precision in ("fp32", "mixed") else 2
    if est.method == "full":
        return est.total_params * weight * 4  # weights, gradients, exp_avg, exp_avg_sq
    return est.total_params * weight + est.trainable_params * 4 * 4  # fp32 adapters, their gradients and states


def fits(estimates: list[Estimate], free: FreeMemory, *, fused_optimizer: bool, held: int = 0) -> tuple[bool, int]:
    peaks = [predicted_peak(e, fused_optimizer=fused_optimizer) for e in estimates]
    if any(p is None for p in peaks):
        return False, 0
    needed = int(max(peaks) * (1 + MEMORY_MARGIN)) + held
    return needed <= free.bytes, needed


def extrapolate(low: float | None, high: float | None, d_low: int, d_high: int, target: int) -> float | None:
    """The value at `target` layers on the line through (d_low, low) and (d_high, high)."""
    if low is None or high is None:
        return None
    return low + (high - low) * (target - d_low) / (d_high - d_low)


def extrapolate_time(low: float | None, high: float | None, d_low: int, d_high: int, target: int) -> float | None:
    """Like `extrapolate`, for a time: None when the deeper model measured faster, since then
    the noise of the clock (other work on the machine) is larger than one layer's cost."""
    if low is None or high is None or high < low:
        return None
    return extrapolate(low, high, d_low, d_high, target)


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
        step_seconds=median([s.seconds for s in m.steps[1:]]),  # the first step warms up
    )


def extrapolate_figures(low: Figures, high: Figures, d_low: int, d_high: int, target: int, est: Estimate, *,
                        fused_optimizer: bool) -> Figures:
    """Figures at `target` layers from two measured depths, beside the estimator's prediction for the real model."""

    def line(name: str, estimated: float | None) -> Compared:
        value = extrapolate(getattr(low, name).measured, getattr(high, name).measured, d_low, d_high, target)
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
        step_seconds=extrapolate_time(low.step_seconds, high.step_seconds, d_low, d_high, target),
    )


def savings(full: Figures, lora: Figures) -> Savings:
    """How many times more full fine-tuning needs than LoRA, measured and estimated."""

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
    )


def _div(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None
