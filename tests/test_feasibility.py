"""Compute feasibility: the estimator decides between LoRA, QLoRA and full fine-tuning for the answers' hardware."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from advisor import assess, parse_answers  # noqa: E402
from advisor.assessment.compute import assess_compute  # noqa: E402
from advisor.assessment.contract import Answers  # noqa: E402
from advisor.errors import InvalidInput  # noqa: E402
from advisor.estimate import estimate_training_memory, training_settings  # noqa: E402
from advisor.estimate.settings import METHOD_LABELS, STARTING_RECIPE  # noqa: E402
from advisor.fmt import fmt_bytes  # noqa: E402


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
    assert sorted(line.split(" (")[0] for line in compute.details) == sorted(METHOD_LABELS.values())
    assert all("GiB per GPU" in line for line in compute.details)


def test_qlora_when_lora_does_not_fit():
    answers = Answers(
        base_model="meta-llama/Llama-3.1-8B-Instruct",
        gpu_memory_gib=24,
        batch_size=4,
        seq_len=1024,
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
    result = assess(answers)
    assert (result.decision, result.primary) == ("recommend_lora", "qlora")
    assert result.compute.options["lora"] == "does_not_fit"
    # the reason carries the estimator's figures
    reason = next(r for r in result.reasons if r.id == "lora_does_not_fit_but_qlora_does")
    assert "GiB per GPU of 24 GiB" in reason.text and "advisor-estimator" in reason.sources


def test_sharding_lets_full_fine_tuning_fit_many_gpus():
    compute = assess_compute(Answers(base_model="qwen2.5-7b", gpu_memory_gib=80, gpus=8, batch_size=4, seq_len=2048))
    assert compute.options["full_finetune"] == "fits"
    assert any("fsdp" in line for line in compute.details)


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


def test_compute_answers_beyond_the_estimator_name_their_own_field():
    """Valid by the contract, beyond what the estimator accepts (8,192 x 100,000 tokens is over its 67M tokens per
    GPU): the error names the answer to change."""
    with pytest.raises(InvalidInput) as err:
        assess_compute(Answers(base_model="qwen2.5-0.5b", gpu_memory_gib=80, batch_size=8192, seq_len=100_000))
    assert [issue.field for issue in err.value.fields] == ["seq_len"]


def test_lora_that_fits_only_with_gradient_checkpointing_is_estimated_with_it():
    """An option that does not fit as is is estimated again with gradient checkpointing, and its line says so."""
    model, batch, seq = "llama-3.1-8b", 4, 2048
    recipe = dict(STARTING_RECIPE, method="lora", batch=batch, seq=seq)
    as_is = estimate_training_memory(model, training_settings(**recipe)).total_needed_bytes()
    checkpointed = estimate_training_memory(model, training_settings(**recipe, grad_checkpointing=True))
    needed = checkpointed.total_needed_bytes()
    # 48 GiB (an L40S, an A6000): LoRA fits only with checkpointing; 141 GiB (an H200): it fits as is
    tight, roomy = 48, 141
    assert needed <= tight << 30 < as_is <= roomy << 30, (fmt_bytes(needed), fmt_bytes(as_is))

    def lora_line(gpu_memory_gib):
        answers = Answers(base_model=model, gpu_memory_gib=gpu_memory_gib, batch_size=batch, seq_len=seq)
        compute = assess_compute(answers)
        return compute.options["lora"], next(line for line in compute.details if line.startswith("LoRA ("))

    targets, rank, precision = (STARTING_RECIPE[key] for key in ("targets", "rank", "precision"))
    verdict, line = lora_line(tight)
    assert verdict == "fits"
    assert line.startswith(
        f"LoRA ({targets}, r={rank}, {precision}, batch {batch} x {seq}, gradient checkpointing): "
        f"needs {fmt_bytes(needed)} per GPU (peak tensors {fmt_bytes(checkpointed.peak_bytes)} "
    )
    assert f"of {tight} GiB: fits;" in line
    verdict, line = lora_line(roomy)
    assert verdict == "fits"
    assert line.startswith(f"LoRA ({targets}, r={rank}, {precision}, batch {batch} x {seq}): needs {fmt_bytes(as_is)} ")
