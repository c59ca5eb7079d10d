"""Proxy depths for models whose layers are not all alike, and their extrapolation.

`plan.proxy_plan` picks the depths a reference run measures from each layer's kind;
`model.layer_kinds` reads the kinds off the config and the model built on the meta
device. A figure that is a fixed cost plus one cost per layer of each kind must come out
exact at the real depth; a real run of a tiny interleaved dense/MoE model checks that the
activations it measures at the proxy depths combine into what it measures whole.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import pytest

from advisor.reference.plan import proxy_plan

PATTERNS = {
    "alike": ["a"] * 16,
    "deepseek first_k_dense_replace=3": ["dense"] * 3 + ["moe"] * 11,
    "llama 4 maverick": ["dense-rope", "moe-rope", "dense-rope", "moe-nope"] * 12,
    "llama 4 scout": ["moe-rope"] * 3 + ["moe-nope"] + ["moe-rope"] * 3 + ["moe-nope"] * 1,
    "gemma 3 (5 local : 1 global)": (["sliding"] * 5 + ["full"]) * 4 + ["sliding"] * 2,
    "gpt-oss": ["sliding", "full"] * 12,
    "only the first differs": ["dense"] + ["moe"] * 9,
}


def linear_figure(kinds, depth, costs, fixed):
    """A figure that adds up layer by layer: the fixed cost plus each layer's cost by kind."""
    return fixed + sum(costs[k] for k in kinds[:depth])


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_the_proxy_depths_extrapolate_a_per_kind_linear_figure_exactly(name):
    kinds = PATTERNS[name]
    plan = proxy_plan(kinds)
    rng = random.Random(name)
    for _ in range(5):
        costs = {k: rng.randrange(1, 10**9) for k in set(kinds)}
        fixed = rng.randrange(0, 10**9)
        values = [linear_figure(kinds, d, costs, fixed) for d in plan.depths]
        assert plan.combine(values) == linear_figure(kinds, len(kinds), costs, fixed)


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_the_deepest_proxy_is_the_first_depth_with_every_kind(name):
    """No shallower cut can stand for a kind it lacks; by that depth the counts always combine."""
    kinds = PATTERNS[name]
    plan = proxy_plan(kinds)
    first = max(kinds.index(k, 1) + 1 for k in set(kinds[1:]))
    assert plan.proxy and plan.depths[-1] == max(first, 2)
    assert list(plan.depths) == sorted(set(plan.depths)) and all(w != 0 for w in plan.weights)


def test_alike_layers_keep_the_line_through_one_and_two_layers():
    plan = proxy_plan(["layer"] * 6)
    assert plan.depths == (1, 2) and plan.weights == (Fraction(-4), Fraction(5))
    assert plan.formula() == "q(6) = q(1) + (6 - 1) x (q(2) - q(1))"
    assert plan.combine([10, 13]) == 25 and plan.combine([1.0, 1.5]) == pytest.approx(3.5)
    assert plan.combine([10, None]) is None


def test_a_depth_whose_weight_is_zero_is_not_measured():
    """Two kinds after a first layer of its own: the counts at 1, 2 and 3 layers span the goal, but q(1) is not
    needed (every later layer alternates)."""
    plan = proxy_plan(["first"] + ["a", "b"] * 4)
    assert 0 not in plan.weights and len(plan.depths) <= 3
    costs, fixed = {"first": 7, "a": 100, "b": 300}, 1000
    assert plan.combine([linear_figure(plan.kinds, d, costs, fixed) for d in plan.depths]) == linear_figure(
        plan.kinds, 9, costs, fixed
    )


def test_the_old_line_would_be_wrong_where_layers_interleave():
    """Llama 4's dense/MoE interleave: the line through 1 and 2 layers counts every later layer as MoE."""
    kinds = ["dense", "moe"] * 3
    plan = proxy_plan(kinds)
    assert plan.depths == (1, 2, 3)
    costs, fixed = {"dense": 100, "moe": 300}, 1000
    q = {d: linear_figure(kinds, d, costs, fixed) for d in (1, 2, 3, 6)}
    assert q[1] + 5 * (q[2] - q[1]) != q[6]
    assert plan.combine([q[1], q[2], q[3]]) == q[6]
    assert plan.formula() == "q(6) = 2 x q(3) + q(2) - 2 x q(1)"
    assert plan.pattern() == "(dense, moe) x 3"


def test_a_model_whose_last_layer_is_its_only_one_of_a_kind_runs_whole():
    plan = proxy_plan(["sliding", "sliding", "sliding", "full"])
    assert not plan.proxy and plan.depths == (4,) and plan.combine([7]) == 7


def test_shallow_models_run_whole():
    assert proxy_plan(["a"]).depths == (1,) and proxy_plan(["a", "b"]).depths == (2,)


# --- the kinds, read off real configs ------------------------------------------------------------------------------


def spec_of(tmp_path: Path, model_type: str, architecture: str, **changes):
    """A config file of `model_type`'s small shape (tests/test_traced.py's, on which the trace is checked against
    autograd), with `changes`, resolved as a user's config is."""
    from advisor.model_specs import resolve_model_spec
    from tests.test_traced import COMMON, FAMILIES

    path = tmp_path / "config.json"
    config = {**COMMON, **FAMILIES[model_type], "model_type": model_type, "architectures": [architecture]}
    path.write_text(json.dumps({**config, **changes}))
    return resolve_model_spec(str(path))


def test_kinds_of_deepseek_dense_then_moe_layers(tmp_path):
    from advisor.reference.model import layer_kinds

    spec = spec_of(tmp_path, "deepseek_v3", "DeepseekV3ForCausalLM", num_hidden_layers=5, first_k_dense_replace=2)
    kinds = layer_kinds(spec)
    assert kinds[0] == kinds[1] != kinds[2] == kinds[3] == kinds[4]
    assert kinds[0] == "DeepseekV3MLP" and kinds[2] == "DeepseekV3MoE"
    plan = proxy_plan(kinds)  # the second dense layer and one MoE layer: the line through 2 and 3 layers
    assert plan.depths == (2, 3) and plan.formula() == "q(5) = q(2) + (5 - 2) x (q(3) - q(2))"


def test_kinds_of_llama4_interleaved_moe_and_no_rope_layers(tmp_path):
    from advisor.reference.model import layer_kinds

    spec = spec_of(tmp_path, "llama4_text", "Llama4ForCausalLM", num_hidden_layers=8)
    kinds = layer_kinds(spec)
    # MoE at 1, 3, 5, 7; no RoPE at 3 and 7 (every fourth layer)
    assert len(set(kinds)) == 3
    assert kinds[0] == kinds[2] == kinds[4] == kinds[6]
    assert kinds[1] == kinds[5] != kinds[3] == kinds[7] != kinds[0]
    assert proxy_plan(kinds).depths == (1, 2, 3, 4)


@pytest.mark.parametrize("window", [8, 1000])
def test_sliding_and_full_attention_layers_are_two_kinds_whatever_the_window(tmp_path, window):
    """Even with a window longer than the sequence (no mask then) a sliding layer stays its own kind: its position
    embeddings may differ (Gemma 3's local RoPE base)."""
    from advisor.reference.model import layer_kinds

    spec = spec_of(tmp_path, "gpt_oss", "GptOssForCausalLM", num_hidden_layers=4, sliding_window=window)
    kinds = layer_kinds(spec)
    assert kinds[0] == kinds[2] != kinds[1] == kinds[3]
    assert proxy_plan(kinds).depths == (1, 2, 3)


def test_kinds_of_qwen3_moe_sparse_step(tmp_path):
    from advisor.reference.model import layer_kinds

    spec = spec_of(tmp_path, "qwen3_moe", "Qwen3MoeForCausalLM", num_hidden_layers=6, decoder_sparse_step=2)
    kinds = layer_kinds(spec)
    assert kinds[0] == kinds[2] == kinds[4] != kinds[1] == kinds[3] == kinds[5]
    assert proxy_plan(kinds).depths == (1, 2, 3)


def test_a_config_giving_its_depth_under_two_names_is_cut_under_both(tmp_path):
    """GPT-2's n_layer beside num_hidden_layers: transformers takes the latter, so a cut of only n_layer kept every
    layer (the 1- and 2-layer proxies were the whole model and the extrapolation flat)."""
    from advisor.hf import build_config
    from advisor.reference.model import at_depth

    spec = spec_of(tmp_path, "gpt2", "GPT2LMHeadModel", n_layer=4, num_hidden_layers=4)
    assert build_config(spec).num_hidden_layers == 4
    for depth in (1, 2):
        assert build_config(at_depth(spec, depth)).num_hidden_layers == depth


# --- a real run ----------------------------------------------------------------------------------------------------


def test_a_real_run_of_interleaved_layers_extrapolates_its_activations_exactly(tmp_path):
    """Tiny Llama 4 with dense and MoE layers interleaved, 6 layers: measured at the proxy depths (1, 2, 3) and
    whole. The proxies' measured activations, combined, equal the whole model's; the line through 1 and 2
    layers would not."""
    import torch

    from advisor.fmt import fmt_bytes
    from advisor.reference import default_settings, reference_run

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = spec_of(  # every layer with RoPE: two kinds, dense and MoE
            tmp_path, "llama4_text", "Llama4ForCausalLM", num_hidden_layers=6, no_rope_layer_interval=1000
        )
        run = reference_run(spec, default_settings(batch=2, seq=32), steps=2, max_seconds=300)
    finally:
        torch.set_num_threads(threads)
    assert run.scale.kind == "full" and run.scale.depths == [1, 2, 3, 6]
    assert [n for n in run.notes if n.startswith("check of the proxy method") and "activations" in n] == [
        f"check of the proxy method: {method} activations extrapolated from 1, 2 and 3 layers "
        f"{fmt_bytes(getattr(run, method).figures.activation_bytes.measured)} vs "
        f"{fmt_bytes(getattr(run, method).figures.activation_bytes.measured)} measured whole (+0.00%)"
        for method in ("full", "lora")
    ]
    plan = proxy_plan(["dense", "moe"] * 3)
    for method in ("full", "lora"):
        measured = {r.layers: r.figures.activation_bytes.measured for r in getattr(run, method).runs}
        assert plan.combine([measured[d] for d in (1, 2, 3)]) == measured[6], method
        assert measured[1] + 5 * (measured[2] - measured[1]) != measured[6]


def test_gpt2s_copied_kv_cache_is_measured_as_the_estimator_books_it(tmp_path):
    """GPT-2's attention reads its own keys and values while DynamicCache keeps concatenated copies: storages
    autograd never saves, alive through backward. The run counts them into its activations as the trace does
    (k and v, batch x seq x hidden bf16 each, per layer). With the CPU's kernels emulated (SDPA's math path under
    GPT-2's dropout, LayerNorm's statistics in bf16 where CUDA keeps fp32) the estimate equals it to the byte."""
    import torch

    from advisor.reference import default_settings, reference_run

    hidden, batch, seq, layers = 64, 2, 32, 2
    spec = spec_of(tmp_path, "gpt2", "GPT2LMHeadModel", n_embd=hidden, n_layer=layers)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = reference_run(spec, default_settings(batch=batch, seq=seq), steps=2)
    finally:
        torch.set_num_threads(threads)
    for method in ("full", "lora"):
        (measured,) = getattr(run, method).runs
        assert measured.activation_cache_bytes == layers * 2 * batch * seq * hidden * 2
        act = measured.figures.activation_bytes
        assert act.estimated == act.measured, method
