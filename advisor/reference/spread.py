"""How sure a measured time is: medians with a bootstrap interval, and what may be said from them.

A clock on a shared machine adds time, in bursts; one pass can take twice another. So
every time a reference run reports is the median of several timed passes or steps,
with a 90% percentile-bootstrap interval: the samples are resampled with replacement
`RESAMPLES` times (a fixed seed, so a stored run re-renders the same) and the
statistic recomputed each time. A statistic of several sample sets (an extrapolation
through two depths, a ratio of two runs) resamples each set on its own; a ratio of
two variants timed in the same rounds resamples whole rounds, which cancels what the
rounds share (the machine's load at that moment).

An extrapolation q(L) = q(1) + (L - 1)(q(2) - q(1)) multiplies the noise in
q(2) - q(1) by L - 1: it is withheld when the interval of that per-layer cost
reaches zero, since then the measurements cannot tell one layer's cost from noise.
Through more than two depths (layers of several kinds), what the deeper layers add to
the shallowest depth's time is the cost whose interval must stay above zero.

Pure functions: no torch, no clock.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Sequence
from typing import Any

LEVEL = 0.90  # the interval's coverage
RESAMPLES = 1000
SEED = 0


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of sorted values, interpolated linearly."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap(stat: Callable[..., float | None], *groups: Sequence[Any]) -> list[float] | None:
    """The 90% percentile-bootstrap interval [low, high] of `stat(*groups)`, each group resampled on its own;
    None when a group has fewer than two samples or the statistic is undefined in most resamples."""
    if not groups or any(len(g) < 2 for g in groups):
        return None
    rng = random.Random(SEED)
    values = []
    for _ in range(RESAMPLES):
        value = stat(*(rng.choices(g, k=len(g)) for g in groups))
        if value is not None:
            values.append(value)
    if len(values) < RESAMPLES * LEVEL:
        return None
    values.sort()
    tail = (1 - LEVEL) / 2
    return [percentile(values, tail), percentile(values, 1 - tail)]


def median_interval(samples: Sequence[float]) -> list[float] | None:
    return bootstrap(median, samples)


def combined_median(
    groups: Sequence[Sequence[float]], weights: Sequence[float]
) -> tuple[float | None, list[float] | None]:
    """sum(w x median(group)): the median time at the real depth from the samples at the measured depths
    (`plan.ProxyPlan`'s weights), and its interval; (None, None) when the interval of what the deeper layers add
    to the shallowest depth's time reaches zero (their cost is within the noise)."""
    if not groups or any(not g for g in groups):
        return None, None
    weights = [float(w) for w in weights]

    def value(*gs):
        return sum(w * median(g) for w, g in zip(weights, gs, strict=True))

    added = bootstrap(lambda *gs: value(*gs) - median(gs[0]), *groups)
    if added is None or added[0] <= 0:
        return None, None
    return value(*groups), bootstrap(value, *groups)


def within(interval: list[float] | None, value: float) -> bool | None:
    """Whether `value` lies in `interval`; None without an interval."""
    return None if interval is None else interval[0] <= value <= interval[1]
