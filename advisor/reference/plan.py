"""How big a reference run can be: what fits in free memory and in the time budget.

- **Preflight**: the estimator's peak for the largest run planned, with a margin, must
  fit in the device's free memory, or the run is refused with the numbers.
- **Proxy**: a model deeper than two layers is first measured cut to a few depths and
  extrapolated (`extrapolate`). Alike layers need two depths, 1 and 2 (`PROXY_DEPTHS`);
  a model whose layers are not all alike (dense and MoE layers interleaved, sliding and
  full attention, layers without RoPE) is measured at the shallowest depths whose layer
  counts by kind combine into the real model's (`proxy_plan`), so every figure that adds
  up layer by layer extrapolates exactly.
- **Whole model**: after the proxies, the whole model also runs when the estimator
  says it fits in free memory with the margin and the deeper proxy's own times, scaled
  by the parameter count, say it ends within the time budget.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from fractions import Fraction

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


@dataclass(frozen=True)
class ProxyPlan:
    """Which depths a run measures and how they combine into the real depth: q(target) = sum(w x q(depth)).

    `kinds` is each layer's kind (the first layer's is folded into the fixed cost of embeddings and head, which
    every depth includes). Exact for any figure that is a fixed cost plus one cost per layer of each kind."""

    target: int
    depths: tuple[int, ...]
    weights: tuple[Fraction, ...]
    kinds: tuple[str, ...]

    @property
    def proxy(self) -> bool:
        """Whether the measured depths are shallower than the real model (else the whole model is measured)."""
        return self.depths[-1] < self.target

    def combine(self, values: Sequence[float | None]) -> float | None:
        """The figure at the real depth from its values at `depths` (None when one is missing). Ints are combined
        exactly (the weights are fractions) and come back as an int when the result is whole, else as a float."""
        if len(values) != len(self.depths) or any(v is None for v in values):
            return None
        if all(isinstance(v, int) for v in values):
            exact = sum(w * v for w, v in zip(self.weights, values, strict=True))
            return int(exact) if exact.denominator == 1 else float(exact)
        return sum(float(w) * v for w, v in zip(self.weights, values, strict=True))

    def formula(self) -> str:
        """q(target) written out: the line through two depths, or the weighted sum, e.g.
        `q(4) = q(1) + (4 - 1) x (q(2) - q(1))`, `q(4) = q(3) + q(2) - q(1)`."""
        if len(self.depths) == 2 and self.weights[1] == Fraction(
            self.target - self.depths[0], self.depths[1] - self.depths[0]
        ):
            d1, d2 = self.depths
            step = "" if d2 - d1 == 1 else f" / {d2 - d1}"
            return f"q({self.target}) = q({d1}) + ({self.target} - {d1}) x (q({d2}) - q({d1})){step}"
        terms = []
        for w, d in sorted(zip(self.weights, self.depths, strict=True), key=lambda x: (x[0] < 0, -x[1])):
            size = "" if abs(w) == 1 else f"{abs(w)} x "
            terms.append(("- " if w < 0 else "+ ") + f"{size}q({d})")
        text = " ".join(terms)
        return f"q({self.target}) = " + (text[2:] if text.startswith("+") else "-" + text[2:])

    def pattern(self) -> str:
        """The layers' kinds in order, runs of one kind collapsed and a repeating pattern written once:
        `dense, moe x 3`, `(sliding x 5, full) x 4, sliding x 2`."""
        kinds = list(self.kinds)
        for period in range(1, len(kinds) // 2 + 1):
            if all(kinds[i] == kinds[i - period] for i in range(period, len(kinds))):
                repeats, tail = divmod(len(kinds), period)
                if period == 1:
                    return _runs(kinds)
                return f"({_runs(kinds[:period])}) x {repeats}" + (f", {_runs(kinds[:tail])}" if tail else "")
        return _runs(kinds)


def _runs(kinds: list[str]) -> str:
    runs: list[list] = []
    for kind in kinds:
        if runs and runs[-1][0] == kind:
            runs[-1][1] += 1
        else:
            runs.append([kind, 1])
    return ", ".join(k if n == 1 else f"{k} x {n}" for k, n in runs)


def proxy_plan(kinds: Sequence[Hashable], names: Sequence[str] | None = None) -> ProxyPlan:
    """The shallowest depths to measure for a model whose layer `i` is of kind `kinds[i]`.

    A figure q is taken to be a fixed cost (embeddings, head and the first layer, present at every depth) plus
    one cost per later layer of each kind: q(d) = c0 + sum over kinds k of n_k(d) x c_k, n_k(d) the layers of
    kind k among layers 1..d-1. Depths 1, 2, 3, ... are taken in order, each kept when its counts are not a
    combination of those kept, until the real depth's counts are one; the weights of that combination
    extrapolate every such figure exactly, and a depth whose weight is 0 is not measured (Llama 4 Maverick's
    period of 4 layers: q(48) = 11 x q(8) - 10 x q(4)). Alike layers give depths 1 and 2 and the line through
    them; when only the whole model's counts complete the set, the plan is the whole model. `names` label the
    kinds.

    A cost shared by all the layers of a kind, paid once any is there, is outside this model (Gemma 3's global
    layers share RoPE tables the local ones do not use: 2 x seq x head_dim, counted once per measured depth that
    has a global layer, so with the plan's weights rather than once)."""
    target = len(kinds)
    labels = tuple(str(k) for k in (names if names is not None else kinds))
    if target < 1:
        raise ValueError("a model has at least one layer")
    order = list(dict.fromkeys(kinds[1:]))

    def counts(depth: int) -> list[Fraction]:
        later = kinds[1:depth]
        return [Fraction(1)] + [Fraction(sum(1 for k in later if k == kind)) for kind in order]

    goal = counts(target)
    chosen: list[int] = []
    for depth in range(1, target + 1):
        if depth < target and _combination([counts(d) for d in chosen], counts(depth)) is not None:
            continue  # nothing new: its counts are a combination of shallower ones
        chosen.append(depth)
        weights = _combination([counts(d) for d in chosen], goal)
        if weights is not None:
            break
    if chosen[-1] == target or target <= PROXY_DEPTHS[-1]:
        return ProxyPlan(target=target, depths=(target,), weights=(Fraction(1),), kinds=labels)
    used = [(d, w) for d, w in zip(chosen, weights, strict=True) if w != 0]
    return ProxyPlan(target=target, depths=tuple(d for d, _ in used), weights=tuple(w for _, w in used), kinds=labels)


def _combination(vectors: list[list[Fraction]], goal: list[Fraction]) -> list[Fraction] | None:
    """Weights w with sum(w_j x vectors[j]) == goal, for linearly independent `vectors`; None when there are none.
    Gaussian elimination in exact fractions."""
    if not vectors:
        return None if any(goal) else []
    rows = [[v[i] for v in vectors] + [goal[i]] for i in range(len(goal))]  # one equation per component
    n = len(vectors)
    pivots = []
    r = 0
    for c in range(n):
        pivot = next((i for i in range(r, len(rows)) if rows[i][c] != 0), None)
        if pivot is None:
            continue
        rows[r], rows[pivot] = rows[pivot], rows[r]
        rows[r] = [x / rows[r][c] for x in rows[r]]
        for i in range(len(rows)):
            if i != r and rows[i][c] != 0:
                f = rows[i][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[r], strict=True)]
        pivots.append(c)
        r += 1
    if any(all(x == 0 for x in row[:n]) and row[n] != 0 for row in rows):
        return None  # inconsistent: the goal is not in their span
    if len(pivots) < n:
        return None  # dependent vectors: not a unique combination (callers keep only independent ones)
    weights = [Fraction(0)] * n
    for i, c in enumerate(pivots):
        weights[c] = rows[i][n]
    return weights


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
