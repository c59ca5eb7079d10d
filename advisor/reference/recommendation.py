"""Measure a recommendation: the reference run for an assessment that says to train.

The assessment decides; this runs the adapter it recommends on the answers'
`base_model`, with the recipe compute feasibility estimated (LoRA on all linear
layers, rank 16), and returns the assessment with the run attached.
"""

from __future__ import annotations

from pydantic import Field

from ..errors import FieldIssue, InvalidInput
from ..models import Assessment
from .result import ReferenceRun

RECIPE = {"rank": 16, "targets": "all-linear"}  # as advisor.feasibility estimates it


class MeasuredAssessment(Assessment):
    """An assessment with the reference run that measured its recommendation."""

    reference_run: ReferenceRun | None = Field(
        default=None, description="Full fine-tuning and LoRA measured side by side on the base model; null when skipped."
    )
    reference_run_skipped: str | None = Field(default=None, description="Why no reference run was made, when none was.")


def measure_recommendation(assessment: Assessment, *, steps: int | None = None, max_seconds: float | None = None,
                           device: str = "auto", seed: int = 0, dataset: str | None = None, progress=None) -> MeasuredAssessment:
    """Run the reference run when the assessment recommends training; say why not otherwise."""
    base = assessment.model_dump()
    if assessment.decision != "recommend_lora":
        return MeasuredAssessment(**base, reference_run_skipped=f"the decision is {assessment.decision}: there is no adapter to measure")
    model = assessment.answers.base_model
    if model is None:
        raise InvalidInput("the reference run needs the base model to train",
                           fields=[FieldIssue(field="base_model", message="give a catalog id, a config.json or a model folder")])
    from .run import DEFAULT_STEPS, default_settings, reference_run

    run = reference_run(model, default_settings(**RECIPE), steps=steps or DEFAULT_STEPS, dataset=dataset, device=device,
                        max_seconds=max_seconds, seed=seed, progress=progress)
    if assessment.primary != "lora":
        run.notes.append(f"the recommendation is {assessment.primary}; the run measures LoRA on the same base, "
                         "whose adapter it shares (QLoRA differs in the base's storage; it needs CUDA and bitsandbytes)")
    return MeasuredAssessment(**base, reference_run=run)
