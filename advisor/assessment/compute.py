"""Compute feasibility: does each training option fit the hardware in the answers, and with which recipe?

The one hook between the assessment and the estimator. The engine reads the result
as the facts `compute.lora`, `compute.qlora` and `compute.full_finetune` (see the
rubric's rules and gates) and `compute_headroom.<option>` (its cautions). Each option
goes through the fit search (`advisor.plan.fit`, the same as `advisor fit`): from the
recipe a team would start from (`STARTING_RECIPE`: LoRA on all linear layers, rank 16,
bf16, AdamW) at the answers' batch and sequence, it tries gradient checkpointing,
8-bit AdamW, sharding over several GPUs (DDP, ZeRO-2, FSDP, adapters included),
smaller micro-batches and, last, shorter sequences. An option fits when a recipe's
peak tensor memory plus the CUDA context and allocator slack fits in one GPU's memory;
the recipe, what was changed and why, and (when the data size is known) the time and
cost come with it.
"""

from __future__ import annotations

from ..errors import FieldIssue, InvalidInput, MissingDependency
from ..estimate.settings import LOSS_LABELS, METHOD_LABELS
from ..fmt import fmt_bytes, fmt_number
from .contract import OPTION_METHOD, TRAINING_OPTIONS, Answers, ComputeAssessment, ComputePlan

DEFAULT_BATCH, DEFAULT_SEQ = 1, 1024
# TrainingSettings field -> the Answers field it comes from
ANSWER_FIELD = {"batch": "batch_size", "seq": "seq_len", "gpus": "gpus", "gpu_memory_gib": "gpu_memory_gib"}
METHOD_OPTION = {method: option for option, method in OPTION_METHOD.items()}
GIB = 1 << 30


def assess_compute(answers: Answers) -> ComputeAssessment:
    """Search a recipe for every training option for `answers.base_model` on the answers' GPUs."""
    missing = ["base_model"] if answers.base_model is None else []
    if answers.gpu_memory_gib is None and answers.gpu is None:
        missing.append("gpu_memory_gib")
    if missing:
        return _not_assessed(f"{' and '.join(missing)} {'was' if len(missing) == 1 else 'were'} not given")
    try:
        from ..model_specs import resolve_model_spec
        from ..plan.fit import fit_training
        from ..plan.timing import tokens_to_train

        spec = resolve_model_spec(answers.base_model, field="base_model")
        fit = fit_training(
            spec,
            gpu=answers.gpu,
            gpu_memory_gib=answers.gpu_memory_gib,
            gpus=answers.gpus or 1,
            seq=answers.seq_len or DEFAULT_SEQ,
            batch=answers.batch_size or DEFAULT_BATCH,
            tokens=_tokens(answers, tokens_to_train),
            memory_overrides=True,
            # The plan is the one the next steps hand over (`advisor recipe --format trl`), so it is planned as TRL's
            # SFTTrainer runs it, with its own fused LM head: the report's plan and the script it writes agree.
            recipe_format="trl",
        )
    except MissingDependency as exc:
        return _not_assessed(f"the estimator needs torch, transformers and peft: {exc.message}")
    except InvalidInput as exc:
        raise InvalidInput(exc.message, fields=_answer_fields(exc)) from None

    gib, gpus = fit.gpu_memory_gib, fit.gpus
    options, details, short, plans = {}, [], {}, {}
    for o in fit.options:
        option = METHOD_OPTION[o.method]
        label = METHOD_LABELS[o.method]
        if o.headroom == "not_assessed":
            options[option] = "not_assessed"
            details.append(f"{label}: memory not modelled for {spec.model_type} ({'; '.join(o.notes[-1:])})")
            continue
        options[option] = "fits" if o.fits else "does_not_fit"
        s = o.settings
        recipe = (f"{s.targets}, r={s.rank}, " if o.method != "full" else "") + (
            f"{s.precision}, batch {s.batch} x {s.seq}{', gradient checkpointing' if s.grad_checkpointing else ''}"
            f"{', 8-bit AdamW' if s.optimizer == 'adamw8bit' else ''}"
            f"{', ' + LOSS_LABELS[s.loss] if LOSS_LABELS[s.loss] else ''}"
            f"{f', {o.grad_accumulation} accumulation steps' if o.fits and o.grad_accumulation > 1 else ''}"
            f"{f', {gpus} GPUs ({s.sharding})' if gpus > 1 else ''}"
        )
        short[option] = f"{label} needs {fmt_bytes(o.needed_bytes)} per GPU of {gib:g} GiB"
        verdict = {"comfortable": "fits", "tight": "fits, tight", "does_not_fit": "does not fit"}[o.headroom]
        tried = "" if o.fits else "the smallest recipe tried: "
        line = (
            f"{label} ({tried}{recipe}): needs {fmt_bytes(o.needed_bytes)} per GPU (peak tensors "
            f"{fmt_bytes(o.peak_bytes)} + CUDA context + allocator slack) of {gib:g} GiB: {verdict}"
        )
        changes = [f"{c.field} {c.asked} -> {c.chosen} ({c.why})" for c in o.changes] if o.fits else []
        if changes:
            line += "; changed from the starting recipe: " + "; ".join(changes)
        if not o.fits:
            line += "; " + "; ".join(o.notes)
        t = o.time
        if t is not None and t.hours is not None:
            line += (
                f"; about {fmt_number(t.hours)} h ({fmt_number(t.hours_low)}-{fmt_number(t.hours_high)}) for "
                f"{t.tokens:,} tokens"
                + (f", {fmt_number(t.gpu_hours)} GPU-hours, about ${fmt_number(t.cost_usd)}" if t.cost_usd else "")
            )
        details.append(line.rstrip("; "))
        plans[option] = ComputePlan(
            headroom=o.headroom,
            settings=s.model_dump(mode="json"),
            changes=changes,
            needed_bytes=o.needed_bytes,
            budget_bytes=o.budget_bytes,
            max_micro_batch=o.max_micro_batch,
            max_seq=o.max_seq,
            grad_accumulation=o.grad_accumulation,
            hours=t.hours if t else None,
            hours_low=t.hours_low if t else None,
            hours_high=t.hours_high if t else None,
            gpu_hours=t.gpu_hours if t else None,
            cost_usd=t.cost_usd if t else None,
        )
    shape = (
        ""
        if answers.batch_size and answers.seq_len
        else f" (batch {DEFAULT_BATCH} x {DEFAULT_SEQ} tokens assumed where not given)"
    )
    where = fit.gpu_name or f"{gib:g} GiB"
    if fit.gpu_name and answers.gpu_memory_gib is not None:
        where += f" at {gib:g} GiB"
    details += [f"note: {n}" for n in fit.notes]
    return ComputeAssessment(
        status="assessed",
        reason=f"estimated for {spec.id} on {gpus} GPU{'s' if gpus > 1 else ''} ({where}){shape}",
        options=options,
        details=details,
        option_details=short,
        sources=["advisor-estimator", "hu2021-lora", "dettmers2023-qlora"],
        gpu=fit.gpu,
        plans=plans,
    )


def _tokens(answers: Answers, tokens_to_train) -> int | None:
    """Tokens to train: the dataset's tokens (or examples x an unknown mean: not estimated) x 3 epochs."""
    if answers.dataset_tokens:
        return tokens_to_train(1, answers.dataset_tokens)
    return None


def _answer_fields(exc: InvalidInput) -> list[FieldIssue]:
    """The estimator's field errors, named as the answers that set them (`batch` is `batch_size`); the rest
    (the model's config, the recipe's targets) are the base model's."""
    issues = [
        FieldIssue(
            field=issue.field if issue.field == "gpu" else ANSWER_FIELD.get(issue.field, "base_model"),
            message=issue.message,
            allowed=issue.allowed,
        )
        for issue in exc.fields
    ]
    return issues or [FieldIssue(field="base_model", message=exc.message)]


def _not_assessed(reason: str) -> ComputeAssessment:
    return ComputeAssessment(
        status="not_assessed", reason=reason, options={option: "not_assessed" for option in TRAINING_OPTIONS}
    )


def compute_alternatives(answers: Answers, compute: ComputeAssessment) -> list[tuple[str, float | int, object]]:
    """The compute answers worth trying when a training option does not fit or fits tightly: two, four and eight
    times the GPUs, the next larger GPU memories in the hardware catalog, and a half and a quarter of the sequence
    (not under 256 tokens); each with its compute assessment, for `what_would_change`."""
    if compute.status != "assessed" or not compute.plans:
        return []
    if all(plan.headroom == "comfortable" for plan in compute.plans.values()):
        return []
    from ..estimate.settings import MAX_GPUS
    from ..plan.hardware import load_hardware

    gpus = answers.gpus or 1
    current = next(iter(compute.plans.values())).budget_bytes / GIB
    larger = sorted({d.memory_gib for d in load_hardware().values() if d.kind == "gpu" and d.memory_gib > current})
    seq = answers.seq_len or DEFAULT_SEQ
    tries = [("gpus", n) for n in (2 * gpus, 4 * gpus, 8 * gpus) if n <= MAX_GPUS]
    tries += [("gpu_memory_gib", gib) for gib in larger[:3]]
    tries += [("seq_len", s) for s in (seq // 2, seq // 4) if s >= 256]
    out = []
    for question, value in tries:
        try:
            out.append((question, value, assess_compute(answers.model_copy(update={question: value}))))
        except InvalidInput:
            continue
    return out
