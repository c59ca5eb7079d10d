"""The public API behind every door: `assess(answers) -> Assessment`.

This layer gathers what the pure engine needs (the rubric, compute feasibility,
installed versions) and hands it over; the engine itself does no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import FieldIssue, InvalidInput, MissingDependency, field_issues
from ..versions import installed_version
from .compute import assess_compute, compute_alternatives
from .contract import Answers, Assessment, Band, Choice, QuestionInfo, Questionnaire, SourceRef, Versions
from .engine import evaluate
from .licenses import normalize_license
from .rubric import LICENSE_FIELDS, Rubric, load_rubric

if TYPE_CHECKING:
    from ..dataset.contract import DatasetReport

UNKNOWN = "unknown"  # the answer to any question that means "not known yet" (see `Answers`)


def parse_answers(data: Answers | Mapping[str, Any], *, rubric: Rubric | None = None) -> Answers:
    """Validate answers from a mapping (a parsed YAML/JSON file, an agent's call), write the licences
    (dataset and base model) in canonical SPDX with the rubric's licence table, and check that the base
    model resolves (`unknown` is no model); raises InvalidInput naming each bad field."""
    if not isinstance(data, (Answers, Mapping)):
        raise InvalidInput(
            "answers must be a mapping of field: value",
            fields=[FieldIssue(field="(input)", message=f"got {type(data).__name__}")],
        )
    issues: list[FieldIssue] = []
    try:
        answers = data if isinstance(data, Answers) else Answers.model_validate(dict(data))
    except ValidationError as exc:
        answers, issues = None, field_issues(exc)
    table = (rubric or load_rubric()).licenses
    canonical: dict[str, str] = {}
    for name in LICENSE_FIELDS:  # licences in canonical SPDX, every bad one named with the rest
        value = getattr(answers, name) if answers is not None else data.get(name)
        if not isinstance(value, str) or any(issue.field == name for issue in issues):
            continue
        try:
            canonical[name] = normalize_license(value, table)
        except ValueError as exc:
            issues.append(FieldIssue(field=name, message=str(exc)))
    base_model = answers.base_model if answers is not None else data.get("base_model")
    if isinstance(base_model, str) and not any(issue.field == "base_model" for issue in issues):
        issues.extend(base_model_issues(base_model))
    if issues:
        raise InvalidInput("invalid answers", fields=issues)
    update: dict[str, Any] = dict(canonical)
    if isinstance(base_model, str) and base_model.strip().lower() == UNKNOWN:
        update["base_model"] = None
    return answers.model_copy(update=update) if update else answers


def base_model_issues(base_model: str) -> list[FieldIssue]:
    """Why `base_model` cannot be resolved (with the catalog's close matches), or nothing when it can.

    Checked with the answers, by every door, so a wrong name is refused where it is given rather than when compute
    feasibility first needs it. A catalog id resolves without importing transformers; a config path or model folder
    reads transformers' table of model types; without transformers that check is left to compute feasibility,
    which says what to install."""
    if base_model.strip().lower() == UNKNOWN:
        return []
    from ..model_specs import resolve_model_spec

    try:
        resolve_model_spec(base_model, field="base_model")
    except InvalidInput as exc:
        return exc.fields or [FieldIssue(field="base_model", message=exc.message)]
    except MissingDependency:
        pass
    return []


def looked_up(answers: Answers, rubric: Rubric) -> tuple[Answers, dict[str, str]]:
    """The answers with what advisor's catalog knows filled in (a catalog base model's licence), and the
    evidence behind each answer: stated by the team, or from the catalog."""
    evidence = dict.fromkeys(answers.stated(), "stated")
    if answers.base_model and answers.base_model_license is None:
        from ..model_specs import catalog_entry

        entry = catalog_entry(answers.base_model)
        if entry is not None and entry.license:
            answers = answers.model_copy(
                update={"base_model_license": normalize_license(entry.license, rubric.licenses)}
            )
            evidence["base_model_license"] = "catalog"
    return answers, evidence


def assess(
    answers: Answers | Mapping[str, Any], *, rubric: Rubric | None = None, data: DatasetReport | None = None
) -> Assessment:
    """Assess a team's answers: the decision, the option to pursue, and why.

    With `data` (an inspection of the team's dataset, `advisor.dataset.inspect_dataset`), the measured answers
    are merged in (measured wins where they conflict; see `advisor.assessment.evidence`), every conflict is
    listed, and the assessment carries the inspection."""
    rubric = rubric or load_rubric()
    parsed, evidence = looked_up(parse_answers(answers, rubric=rubric), rubric)
    conflicts = []
    if data is not None:
        from .evidence import merge_measured

        parsed, evidence, conflicts = merge_measured(parsed, evidence, data)
    compute = assess_compute(parsed)
    result = evaluate(
        parsed,
        rubric,
        compute=compute,
        versions=installed_versions(rubric),
        evidence=evidence,
        measured_conflicts=conflicts,
        compute_alternatives=compute_alternatives(parsed, compute),
    )
    return result.model_copy(update={"dataset": data}) if data is not None else result


def questionnaire(*, rubric: Rubric | None = None) -> Questionnaire:
    """Every question with its help, allowed answers and sources, plus the Answers JSON Schema."""
    rubric = rubric or load_rubric()
    questions = []
    for q in rubric.questions:
        lows = [None, *(band.max for band in q.bands[:-1])]
        questions.append(
            QuestionInfo(
                id=q.id,
                text=q.text,
                help=q.help,
                type=q.type,
                role=q.role,
                criterion=q.criterion,
                unit=q.unit,
                choices=[Choice(value=value, label=label) for value, label in q.choices.items()],
                bands=[
                    Band(level=band.level, above=low, max=band.max) for band, low in zip(q.bands, lows, strict=False)
                ],
                sources=q.sources,
            )
        )
    cited = {s for q in rubric.questions for s in q.sources}
    return Questionnaire(
        rubric=rubric.version_label,
        title=rubric.title,
        questions=questions,
        answers_schema=Answers.model_json_schema(),
        sources=[SourceRef(id=sid, **source.model_dump()) for sid, source in rubric.sources.items() if sid in cited],
    )


def installed_versions(rubric: Rubric) -> Versions:
    """The advisor and rubric versions, and torch/transformers/peft as installed (from metadata, never imported)."""
    return Versions(
        advisor=installed_version("advisor") or "0.0.0+source",
        rubric=rubric.version_label,
        license_table=rubric.licenses.version,
        torch=installed_version("torch"),
        transformers=installed_version("transformers"),
        peft=installed_version("peft"),
    )
