"""advisor: decide whether to adapt a model with LoRA, or use something cheaper first.

The public API. Every door (the CLI, the MCP server, the reports) calls these
functions and returns the same pydantic models.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .api import assess, parse_answers, questionnaire
from .models import Answers, Assessment, ComputeAssessment, Questionnaire
from .rubric import Rubric, load_rubric

try:
    __version__ = version("advisor")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

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
]
