"""advisor: decide whether to adapt a model with LoRA, or use something cheaper first.

The public API. Every door (the CLI, the MCP server, the reports) calls these
functions and returns the same pydantic models.
"""

from __future__ import annotations

from .assessment.contract import Answers, Assessment, ComputeAssessment, Questionnaire
from .assessment.rubric import Rubric, load_rubric
from .assessment.service import assess, parse_answers, questionnaire
from .versions import installed_version

__version__ = installed_version("advisor") or "0.0.0+source"  # "+source": a tree that was never installed

# The estimator and the reference run load on first use: `import advisor` stays light.
_LAZY = {
    "Estimate": "advisor.estimate",
    "TrainingSettings": "advisor.estimate",
    "estimate_training_memory": "advisor.estimate",
    "compare_methods": "advisor.estimate",
    "ReferenceRun": "advisor.reference",
    "reference_run": "advisor.reference",
    "MeasuredAssessment": "advisor.reference",
    "measure_recommendation": "advisor.reference",
}

__all__ = [
    "Answers",
    "Assessment",
    "ComputeAssessment",
    "Questionnaire",
    "Rubric",
    "__version__",
    "assess",
    "load_rubric",
    "parse_answers",
    "questionnaire",
    *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'advisor' has no attribute {name!r}")
