"""Times with their spreads: medians, bootstrap intervals, extrapolations withheld within the noise, and the
merged-equals-base invariant of the serving check, on a real tiny model."""

from __future__ import annotations

import json
import random
import statistics

import pytest

from advisor.reference import spread
from advisor.reference.plan import proxy_plan
from tests.test_reference_run import TINY

pytest.importorskip("peft")


def test_the_interval_of_a_median_brackets_it_and_narrows_with_more_samples():
    rng = random.Random(1)
    few = [1.0 + rng.random() * 0.2 for _ in range(5)]
    many = [1.0 + rng.random() * 0.2 for _ in range(200)]
    for samples in (few, many):
        low, high = spread.median_interval(samples)
        assert min(samples) <= low <= statistics.median(samples) <= high <= max(samples)
    assert spread.median_interval(many)[1] - spread.median_interval(many)[0] < (
        spread.median_interval(few)[1] - spread.median_interval(few)[0]
    )
    assert spread.median_interval([1.0]) is None  # one sample has no spread


def test_an_extrapolation_is_withheld_when_one_layers_cost_is_within_the_noise():
    rng = random.Random(2)
    noisy_1 = [1.0 + rng.random() for _ in range(9)]
    noisy_2 = [1.02 + rng.random() for _ in range(9)]  # a layer's 2% hidden in 100% of noise
    to_32 = proxy_plan(["alike"] * 32)  # measured at 1 and 2 layers, extrapolated to 32
    assert spread.combined_median([noisy_1, noisy_2], to_32.weights) == (None, None)
    clear_1 = [1.0 + rng.random() * 0.01 for _ in range(9)]
    clear_2 = [1.5 + rng.random() * 0.01 for _ in range(9)]
    value, (low, high) = spread.combined_median([clear_1, clear_2], to_32.weights)
    expected = statistics.median(clear_1) + 31 * (statistics.median(clear_2) - statistics.median(clear_1))
    assert value == pytest.approx(expected) and low <= value <= high
    assert high - low > 31 * 0.001  # the noise of the difference, times 31 layers, shows in the interval


def test_merged_taking_longer_than_base_is_a_measurement_problem_not_a_finding():
    from advisor.reference.train import latency_measurement

    base = [0.010, 0.011, 0.010, 0.012, 0.010, 0.011, 0.010]
    checks = {"merged_max_abs_diff": 0.0, "adapter_max_abs_diff": 1.0, "tolerance": 0.03, "outputs_match": True}
    steady = latency_measurement(2, {"base": base, "unmerged": [t * 1.3 for t in base], "merged": base}, **checks)
    assert steady.merged_times_like_base is True and steady.merged_overhead == 0
    assert steady.unmerged_overhead == pytest.approx(0.3)
    disturbed = latency_measurement(
        2, {"base": base, "unmerged": [t * 1.3 for t in base], "merged": [t * 1.5 for t in base]}, **checks
    )
    assert disturbed.merged_times_like_base is False


def test_merged_times_like_the_plain_base_model_on_a_tiny_model(tmp_path):
    """The invariant, measured: base (the plain model, no adapter code), unmerged and merged timed in rounds."""
    import torch

    from advisor.hf import inject_lora
    from advisor.model_specs import resolve_model_spec
    from advisor.reference.model import build_model, make_base_weights
    from advisor.reference.train import MIN_ROUNDS, measure_serving

    (tmp_path / "config.json").write_text(json.dumps(TINY))
    spec = resolve_model_spec(str(tmp_path / "config.json"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        weights = make_base_weights(spec, pretrained=False, seed=0, dtype=torch.float32)
        lora = build_model(spec, weights, device="cpu", dtype=torch.float32)
        lora = inject_lora(lora, spec, rank=8, alpha=16, targets=None)
        with torch.no_grad():
            for name, p in lora.named_parameters():
                if "lora_B" in name:
                    p.normal_(0, 0.05)  # a trained adapter: B is no longer zero
        base = build_model(spec, weights, device="cpu", dtype=torch.float32)
        assert not any("lora" in name for name, _ in base.named_modules())
        ids = [[i % 512 for i in range(64)]]
        x = measure_serving(lora, base, ids, layers=2, device=torch.device("cpu"), repeats=30)
    finally:
        torch.set_num_threads(threads)
    assert x.rounds >= MIN_ROUNDS and len(x.base_samples) == len(x.merged_samples) == x.rounds
    assert x.outputs_match and x.merged_max_abs_diff < 0.01 * x.adapter_max_abs_diff
    assert x.merged_times_like_base is True, (x.merged_overhead, x.merged_overhead_interval)
    assert x.base_interval[0] <= x.base_seconds <= x.base_interval[1]
