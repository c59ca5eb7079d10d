"""The public API behind every door: `assess(answers) -> Assessment`.

This layer gathers what the pure engine needs (the rubric, compute feasibility,
installed versions) and hands it over; the engine itself does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from .engine import evaluate
from .errors import FieldIssue, InvalidInput, invalid_input
from .feasibility import assess_compute
from .models import Answers, Assessment, Band, Choice, QuestionInfo, Questionnaire, SourceRef, Versions
from .rubric import Rubric, load_rubric
from .versions import installed_version


def parse_answers(data: Answers | Mapping[str, Any]) -> Answers:
    """Validate answers from a mapping (a parsed YAML/JSON file, an agent's call); raises InvalidInput naming each bad field."""
    if isinstance(data, Answers):
        return data
    if not isinstance(data, Mapping):
        raise InvalidInput("answers must be a mapping of field: value", fields=[FieldIssue(field="(input)", message=f"got {type(data).__name__}")])
    try:
        return Answers.model_validate(dict(data))
    except ValidationError as exc:
        raise invalid_input(exc, what="answers") from None


def assess(answers: Answers | Mapping[str, Any], *, rubric: Rubric | None = None) -> Assessment:
    """Assess a team's answers: the decision, the option to pursue, and why."""
    parsed = parse_answers(answers)
    rubric = rubric or load_rubric()
    return evaluate(parsed, rubric, compute=assess_compute(parsed), versions=installed_versions(rubric))


def questionnaire(*, rubric: Rubric | None = None) -> Questionnaire:
    """Every question with its help, allowed answers and sources, plus the Answers JSON Schema."""
    rubric = rubric or load_rubric()
    questions = []
    for q in rubric.questions:
        lows = [None, *(band.max for band in q.bands[:-1])]
        questions.append(QuestionInfo(
            id=q.id, text=q.text, help=q.help, type=q.type, role=q.role, criterion=q.criterion, unit=q.unit,
            choices=[Choice(value=value, label=label) for value, label in q.choices.items()],
            bands=[Band(level=band.level, above=low, max=band.max) for band, low in zip(q.bands, lows)],
            sources=q.sources,
        ))
    cited = {s for q in rubric.questions for s in q.sources}
    return Questionnaire(
        rubric=rubric.version_label,
        title=rubric.title,
        questions=questions,
        answers_schema=Answers.model_json_schema(),
        sources=[SourceRef(id=sid, **source.model_dump()) for sid, source in rubric.sources.items() if sid in cited],
    )


def installed_versions(rubric: Rubric) -> Versions:
    """The advisor and rubric versions, and torch/transformers/peft as installed (read from metadata, never imported)."""
    return Versions(
        advisor=installed_version("advisor") or "0.0.0+source",
        rubric=rubric.version_label,
        license_table=rubric.licenses.version,
        torch=installed_version("torch"),
        transformers=installed_version("transformers"),
        peft=installed_version("peft"),
    )


