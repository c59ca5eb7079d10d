"""How big a reference run can be: what fits in free memory and in the time budget.

- **Preflight**: the estimator's peak for the largest run planned, with a margin, must
  fit in the device's free memory, or the run is refused with the numbers.
- **Proxy**: a model deeper than two layers is first measured cut to `PROXY_DEPTHS`
  layers and extrapolated (`extrapolate`).
- **Whole model**: after the proxies, the whole model also runs when the estimator
  says it fits in free memory with the margin and the deeper proxy's own times, scaled
  by the parameter count, say it ends within the time budget.
"""

from __future__ import annotations

from ..errors import FieldIssue, Refused
from ..estimate.settings import Estimate
from ..fmt import fmt_bytes
from .measure import FreeMemory
from .result import Preflight

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
        message = (
            f"the reference run would not fit: {label} needs {fmt_bytes(needed)} "
            f"({what}, {fmt_bytes(peaks[label])}, + {MEMORY_MARGIN:.0%} margin{beside}), "
            f"and {fmt_bytes(free.bytes)} is free ({free.source}); "
            "use a smaller --batch or --seq, or a device with more memory"
        )
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
