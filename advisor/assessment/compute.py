"""Compute feasibility: does each training option fit the hardware in the answers?

The one hook between the assessment and the estimator. The engine reads the result
as the facts `compute.lora`, `compute.qlora` and `compute.full_finetune` (see the
rubric's rules and gates). Each option is estimated with the recipe a team would
start from (`STARTING_RECIPE`: LoRA on all linear layers, rank 16, bf16, AdamW), first as is, then with
gradient checkpointing; it fits when the peak tensor memory plus the CUDA context
and allocator slack fits in one GPU's memory.
"""

from __future__ import annotations

from ..errors import FieldIssue, InvalidInput, MissingDependency
from ..estimate.settings import METHOD_LABELS, STARTING_RECIPE
from ..fmt import fmt_bytes
from .contract import OPTION_METHOD, TRAINING_OPTIONS, Answers, ComputeAssessment

DEFAULT_BATCH, DEFAULT_SEQ = 1, 1024
# TrainingSettings field -> the Answers field it comes from
ANSWER_FIELD = {"batch": "batch_size", "seq": "seq_len", "gpus": "gpus"}
GIB = 1 << 30


def assess_compute(answers: Answers) -> ComputeAssessment:
    """Estimate every training option for `answers.base_model` against `answers.gpu_memory_gib`."""
    missing = [name for name in ("base_model", "gpu_memory_gib") if getattr(answers, name) is None]
    if missing:
        return _not_assessed(f"{' and '.join(missing)} {'was' if len(missing) == 1 else 'were'} not given")
    try:
        from ..estimate import estimate_training_memory, training_settings
        from ..model_specs import resolve_model_spec

        spec = resolve_model_spec(answers.base_model, field="base_model")
        estimates = {
            option: _fitting_estimate(spec, option, answers, estimate_training_memory, training_settings)
            for option in TRAINING_OPTIONS
        }
    except MissingDependency as exc:
        return _not_assessed(f"the estimator needs torch, transformers and peft: {exc.message}")
    except InvalidInput as exc:
        raise InvalidInput(exc.message, fields=_answer_fields(exc)) from None

    budget = answers.gpu_memory_gib * GIB
    gpus = answers.gpus or 1
    options, details, short = {}, [], {}
    for option, est in estimates.items():
        label = METHOD_LABELS[OPTION_METHOD[option]]
        needed = est.total_needed_bytes()
        if needed is None:
            options[option] = "not_assessed"
            details.append(f"{label}: memory not modelled for {est.model_type} ({'; '.join(est.notes[-1:])})")
            continue
        options[option] = "fits" if needed <= budget else "does_not_fit"
        s = est.settings
        recipe = (f"{s.targets}, r={s.rank}, " if option != "full_finetune" else "") + (
            f"{s.precision}, batch {s.batch} x {s.seq}{', gradient checkpointing' if s.grad_checkpointing else ''}"
            f"{f', {gpus} GPUs ({s.sharding})' if gpus > 1 else ''}"
        )
        short[option] = f"{label} needs {fmt_bytes(needed)} per GPU of {answers.gpu_memory_gib:g} GiB"
        details.append(
            f"{label} ({recipe}): needs {fmt_bytes(needed)} per GPU (peak tensors {fmt_bytes(est.peak_bytes)} "
            f"+ CUDA context + allocator slack) of {answers.gpu_memory_gib:g} GiB: "
            f"{'fits' if needed <= budget else 'does not fit'}; trains {est.trainable_params:,} of "
            f"{est.total_params:,} parameters"
        )
    shape = (
        ""
        if answers.batch_size and answers.seq_len
        else f" (batch {DEFAULT_BATCH} x {DEFAULT_SEQ} tokens assumed where not given)"
    )
    return ComputeAssessment(
        status="assessed",
        reason=(
            f"estimated for {spec.id} on {gpus} GPU{'s' if gpus > 1 else ''} of {answers.gpu_memory_gib:g} GiB{shape}"
        ),
        options=options,
        details=details,
        option_details=short,
        sources=["advisor-estimator", "hu2021-lora", "dettmers2023-qlora"],
    )


def _fitting_estimate(spec, option, answers: Answers, estimate, settings_of):
    """The option's estimate without, or if that does not fit, with gradient checkpointing."""
    gpus = answers.gpus or 1
    method = OPTION_METHOD[option]
    sharding = "none" if gpus == 1 else ("fsdp" if method == "full" else "ddp")
    values = dict(
        STARTING_RECIPE,
        method=method,
        batch=answers.batch_size or DEFAULT_BATCH,
        seq=answers.seq_len or DEFAULT_SEQ,
        gpus=gpus,
        sharding=sharding,
    )
    budget = answers.gpu_memory_gib * GIB
    first = estimate(spec, settings_of(**values))
    if first.peak_bytes is None or first.total_needed_bytes() <= budget:
        return first
    return estimate(spec, settings_of(**values, grad_checkpointing=True))


def _answer_fields(exc: InvalidInput) -> list[FieldIssue]:
    """The estimator's field errors, named as the answers that set them (`batch` is `batch_size`); the rest
    (the model's config, the recipe's targets) are the base model's."""
    issues = [
        FieldIssue(field=ANSWER_FIELD.get(issue.field, "base_model"), message=issue.message, allowed=issue.allowed)
        for issue in exc.fields
    ]
    return issues or [FieldIssue(field="base_model", message=exc.message)]


def _not_assessed(reason: str) -> ComputeAssessment:
    return ComputeAssessment(
        status="not_assessed", reason=reason, options={option: "not_assessed" for option in TRAINING_OPTIONS}
    )
