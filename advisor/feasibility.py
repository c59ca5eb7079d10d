"""Compute feasibility: does each training option fit the hardware in the answers?

This is the one hook between the assessment and the estimator. The engine reads
its result as the facts `compute.lora`, `compute.qlora` and `compute.full_finetune`
(see the rubric's rules and gates); replacing this function is all it takes to
wire the estimator in.
"""

from __future__ import annotations

from .models import TRAINING_OPTIONS, Answers, ComputeAssessment

COMPUTE_FIELDS = ("base_model", "gpu_memory_gib", "gpus", "batch_size", "seq_len")


def assess_compute(answers: Answers) -> ComputeAssessment:
    """Not assessed yet: the estimator that would answer it is built separately."""
    given = [name for name in COMPUTE_FIELDS if getattr(answers, name) is not None]
    reason = "the memory estimator is not wired into the assessment yet"
    if given:
        reason += f"; {', '.join(given)} {'was' if len(given) == 1 else 'were'} recorded but not checked"
    return ComputeAssessment(status="not_assessed", reason=reason, options={option: "not_assessed" for option in TRAINING_OPTIONS})
