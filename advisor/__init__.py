"""advisor: decide whether to adapt a model with LoRA, or use something cheaper first.

The public API. Every door (the CLI, the MCP server, the reports) calls these
functions and returns the same pydantic models.
"""

from __future__ import annotations

from .versions import installed_version

__version__ = installed_version("advisor") or "0.0.0+source"  # "+source": a tree that was never installed

# Every name loads on first use: `import advisor.cli` builds no pydantic model until a command needs one,
# and `import advisor` never pays for the estimator's imports (torch, transformers, peft).
_LAZY = {
    "Answers": "advisor.assessment.contract",
    "Assessment": "advisor.assessment.contract",
    "ComputeAssessment": "advisor.assessment.contract",
    "Questionnaire": "advisor.assessment.contract",
    "Rubric": "advisor.assessment.rubric",
    "load_rubric": "advisor.assessment.rubric",
    "assess": "advisor.assessment.service",
    "parse_answers": "advisor.assessment.service",
    "questionnaire": "advisor.assessment.service",
    "Estimate": "advisor.estimate",
    "TrainingSettings": "advisor.estimate",
    "estimate_training_memory": "advisor.estimate",
    "compare_methods": "advisor.estimate",
    "ReferenceRun": "advisor.reference",
    "reference_run": "advisor.reference",
    "MeasuredAssessment": "advisor.reference",
    "measure_recommendation": "advisor.reference",
    "DatasetReport": "advisor.dataset.contract",
    "inspect_dataset": "advisor.dataset.inspect",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advisor' has no attribute {name!r}")
