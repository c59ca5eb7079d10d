"""Compute feasibility: the estimator decides between LoRA, QLoRA and full fine-tuning for the answers' hardware."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from advisor import assess, parse_answers  # noqa: E402
from advisor.assessment.compute import assess_compute  # noqa: E402
from advisor.assessment.contract import Answers  # noqa: E402
from advisor.errors import InvalidInput  # noqa: E402
from advisor.estimate import estimate_training_memory, training_settings  # noqa: E402
from advisor.estimate.settings import METHOD_LABELS  # noqa: E402
from advisor.fmt import fmt_bytes  # noqa: E402

# Answers that call for a format adapter and block nothing: only the hardware decides between the options.
READY_TO_TRAIN = dict(
    change_kind="format",
    stability="stable",
    context_tried="partly_works",
    dataset_examples=2000,
    dataset_quality="curated",
    data_provenance="human_written",
    dataset_license="LicenseRef-Proprietary",
    commercial_use=True,
    privacy="no_personal_data",
    serving_mode="merged",
    eval_set="production_like",
    baseline_measured=True,
)


def test_not_assessed_names_what_is_missing():
    compute = assess_compute(Answers(base_model="llama-3.1-8b"))
    assert compute.status == "not_assessed"
    assert set(compute.options.values()) == {"not_assessed"}
    assert "gpu_memory_gib" in compute.reason


def test_lora_fits_a_large_gpu_and_full_fine_tuning_does_not():
    compute = assess_compute(Answers(base_model="llama-3.1-8b", gpu_memory_gib=48, batch_size=4, seq_len=1024))
    assert compute.status == "assessed"
    assert compute.options == {"lora": "fits", "qlora": "fits", "full_finetune": "does_not_fit"}
    # one line per option ("QLoRA" holds "LoRA": the labels are compared whole)
    options = [line for line in compute.details if not line.startswith("note: ")]
    assert sorted(line.split(" (")[0] for line in options) == sorted(METHOD_LABELS.values())
    assert all("GiB per GPU" in line for line in options)
    # the plan is the one the next steps hand over as a TRL script, planned with the head TRL runs
    assert any(line.startswith("note: planned for TRL") for line in compute.details)


def test_qlora_when_lora_does_not_fit():
    """16 GiB: LoRA's bf16 base alone (16 GB) leaves no room, QLoRA's 4-bit base does."""
    answers = Answers(
        base_model="meta-llama/Llama-3.1-8B-Instruct", gpu_memory_gib=16, batch_size=4, seq_len=1024, **READY_TO_TRAIN
    )
    result = assess(answers)
    assert (result.decision, result.primary) == ("recommend_lora", "qlora")
    assert result.compute.options["lora"] == "does_not_fit"
    # the reason carries the estimator's figures
    reason = next(r for r in result.reasons if r.id == "lora_does_not_fit_but_qlora_does")
    assert "GiB per GPU of 16 GiB" in reason.text and "advisor-estimator" in reason.sources


def test_8b_on_12_gib_becomes_qlora_with_its_change_named_not_a_contradiction():
    """The case from issue 14: at 1,024 tokens on 12 GiB nothing fitted the fixed recipe (not_ready, "fits but
    blocked"); the fit search finds QLoRA at the asked 1,024 tokens and names what it changed. The assessment plans
    the TRL script its next steps hand over, so with TRL's fused LM head gradient checkpointing is enough (with the
    standard loss the sequence had to be halved; `advisor fit`, planning for no framework, takes the fused loss:
    tests/test_plan_fit.py)."""
    answers = Answers(base_model="llama-3.1-8b", gpu_memory_gib=12, seq_len=1024, **READY_TO_TRAIN)
    result = assess(answers)
    assert (result.decision, result.primary) == ("recommend_lora", "qlora")
    plan = result.compute.plans["qlora"]
    assert plan.headroom in ("comfortable", "tight") and plan.changes
    assert plan.changes == [next(c for c in plan.changes if c.startswith("grad_checkpointing False -> True"))]
    assert (plan.settings["seq"], plan.settings["loss"]) == (1024, "trl_chunked")
    line = next(line for line in result.compute.details if line.startswith("QLoRA ("))
    assert "changed from the starting recipe: grad_checkpointing False -> True" in line
    if plan.headroom == "tight":
        assert "training_recipe_is_tight" in [c.id for c in result.cautions]


def test_a_named_gpu_brings_its_memory_time_and_cost():
    compute = assess_compute(
        Answers(base_model="llama-3.1-8b", gpu="a100-80gb", dataset_tokens=2_000_000, seq_len=2048)
    )
    assert compute.status == "assessed" and compute.gpu == "a100-80gb"
    assert compute.options["lora"] == "fits"
    plan = compute.plans["lora"]
    assert plan.budget_bytes == 80 << 30
    assert plan.hours_low < plan.hours < plan.hours_high and plan.cost_usd > 0


def test_cpu_only_is_describable_and_nothing_fits():
    for answers in (
        Answers(base_model="qwen2.5-0.5b", gpu="cpu"),
        Answers(base_model="qwen2.5-0.5b", gpu_memory_gib=0),
    ):
        compute = assess_compute(answers)
        assert compute.status == "assessed"
        assert set(compute.options.values()) == {"does_not_fit"}
        assert any("CPU only" in line for line in compute.details)


def test_an_unknown_gpu_is_a_field_error():
    with pytest.raises(InvalidInput) as err:
        parse_answers({"base_model": "qwen2.5-0.5b", "gpu": "b9000"})
    assert err.value.fields[0].field == "gpu" and "h100-sxm" in err.value.fields[0].message
    assert parse_answers({"gpu": "H100"}).gpu == "h100-sxm"  # aliases, any case, stored as the catalog id


def test_sharding_lets_full_fine_tuning_fit_many_gpus():
    compute = assess_compute(Answers(base_model="qwen2.5-7b", gpu_memory_gib=80, gpus=8, batch_size=4, seq_len=2048))
    assert compute.options["full_finetune"] == "fits"
    assert compute.plans["full_finetune"].settings["gpus"] == 8


def test_70b_lora_on_8_gpus_of_80_gib_fits_with_fsdp():
    compute = assess_compute(Answers(base_model="llama-3.1-70b", gpu_memory_gib=80, gpus=8, seq_len=1024))
    assert compute.options["lora"] == "fits"
    assert compute.plans["lora"].settings["sharding"] == "fsdp"


def test_unknown_base_model_is_a_field_error():
    with pytest.raises(InvalidInput) as err:
        assess_compute(Answers(base_model="no-such-model", gpu_memory_gib=24))
    assert err.value.fields[0].field == "base_model"


@pytest.mark.parametrize(
    ("values", "field"),
    [({"gpus": 100_000}, "gpus"), ({"batch_size": 10**7}, "batch_size"), ({"seq_len": 10**8}, "seq_len")],
    ids=["gpus", "batch_size", "seq_len"],
)
def test_compute_answers_beyond_the_estimator_are_refused_by_the_contract(values, field):
    """The contract bounds GPUs, batch and sequence as the estimator does: refused with the answer to change."""
    with pytest.raises(InvalidInput) as err:
        parse_answers({"base_model": "qwen2.5-0.5b", "gpu_memory_gib": 80, **values})
    assert [issue.field for issue in err.value.fields] == [field]


def test_recipes_in_the_details_replay_with_the_estimator():
    """Each fitting option's line names the recipe the estimator gives those figures for."""
    answers = Answers(base_model="llama-3.1-8b", gpu_memory_gib=48, batch_size=4, seq_len=2048)
    compute = assess_compute(answers)
    for option, plan in compute.plans.items():
        if compute.options[option] != "fits":
            continue
        est = estimate_training_memory("llama-3.1-8b", training_settings(**plan.settings))
        assert est.total_needed_bytes() == plan.needed_bytes <= 48 << 30
        label = METHOD_LABELS[plan.settings["method"]]
        line = next(line for line in compute.details if line.startswith(f"{label} ("))
        assert f"needs {fmt_bytes(plan.needed_bytes)} per GPU (peak tensors {fmt_bytes(est.peak_bytes)} " in line
        assert f"batch {plan.settings['batch']} x {plan.settings['seq']}" in line


def test_what_would_change_names_the_compute_answers_that_would_make_lora_fit():
    answers = {
        "base_model": "llama-3.1-8b",
        "gpu_memory_gib": 12,
        "seq_len": 1024,
        "change_kind": "format",
        "stability": "stable",
        "context_tried": "partly_works",
        "dataset_examples": 2000,
        "dataset_quality": "curated",
        "data_provenance": "human_written",
        "dataset_license": "LicenseRef-Proprietary",
        "commercial_use": True,
        "privacy": "no_personal_data",
        "serving_mode": "merged",
        "eval_set": "production_like",
        "baseline_measured": True,
    }
    result = assess(answers)
    changes = {c.question: c for c in result.what_would_change}
    assert {"gpus", "gpu_memory_gib"} <= set(changes)
    assert all(o.primary == "lora" for o in changes["gpu_memory_gib"].outcomes)
    assert changes["gpus"].current == "1" and changes["gpu_memory_gib"].current == "12"
