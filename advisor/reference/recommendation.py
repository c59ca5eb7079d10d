"""Measure a recommendation: the reference run for an assessment that says to train.

The assessment decides; this runs the adapter it recommends on the answers'
`base_model`, with the recipe compute feasibility estimated (`STARTING_RECIPE`: LoRA
on all linear layers, rank 16), and returns the assessment with the run attached.
"""

from __future__ import annotations

from pydantic import Field

from ..assessment.contract import TRAIN_DECISIONS, Assessment
from ..errors import FieldIssue, InvalidInput
from ..estimate.settings import STARTING_RECIPE
from .result import ReferenceRun


class MeasuredAssessment(Assessment):
    """An assessment with the reference run that measured its recommendation."""

    reference_run: ReferenceRun | None = Field(
        default=None,
        description="Full fine-tuning and LoRA measured side by side on the base model; null when skipped.",
    )
    reference_run_skipped: str | None = Field(default=None, description="Why no reference run was made, when none was.")


def measure_recommendation(
    assessment: Assessment,
    *,
    steps: int | None = None,
    max_seconds: float | None = None,
    device: str = "auto",
    seed: int = 0,
    dataset: str | None = None,
    progress=None,
) -> MeasuredAssessment:
    """Run the reference run when the assessment recommends training; say why not otherwise."""
    base = assessment.model_dump()
    if assessment.decision not in TRAIN_DECISIONS:
        return MeasuredAssessment(
            **base, reference_run_skipped=f"the decision is {assessment.decision}: there is no training to measure"
        )
    model = assessment.answers.base_model
    if model is None:
        raise InvalidInput(
            "the reference run needs the base model to train",
            fields=[FieldIssue(field="base_model", message="give a catalog id, a config.json or a model folder")],
        )
    from .run import DEFAULT_STEPS, default_settings, reference_run

    run = reference_run(
        model,
        default_settings(**STARTING_RECIPE),
        steps=steps or DEFAULT_STEPS,
        dataset=dataset,
        device=device,
        max_seconds=max_seconds,
        seed=seed,
        progress=progress,
    )
    if assessment.primary == "qlora":
        run.notes.append(
            "the recommendation is qlora; the run measures LoRA on the same base, whose adapter it shares "
            "(QLoRA differs in the base's storage; it needs CUDA and bitsandbytes)"
        )
    elif assessment.primary == "full_finetune":
        run.notes.append(
            "the recommendation is full fine-tuning; the run measures it beside LoRA on the same base, so the table "
            "shows what the choice of every weight costs over an adapter"
        )
    return MeasuredAssessment(**base, reference_run=run)
