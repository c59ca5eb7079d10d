"""The rubric as data: its schema, its loader, and the validator that keeps data and engine in step.

`load_rubric()` reads `rubrics/lora_fit.yaml` (and the license table it names),
checks its shape with pydantic and its meaning with `rubric_problems`, and refuses
a rubric that disagrees with the engine or the `Answers` contract in either
direction (`advisor rubric validate` prints the same findings).
"""

from __future__ import annotations

import string
import types
import typing
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .data import data_dir
from .errors import FieldIssue, InvalidFile, invalid_input
from .files import load_mapping
from .licenses import UNKNOWN, LicenseTable, license_table_problems, load_license_table
from .models import (
    TRAINING_OPTIONS,
    Answers,
    ComputeStatus,
    ConfidenceLevel,
    Decision,
    OptionId,
)

RUBRIC_FILE = "lora_fit.yaml"
LICENSE_FIELD = "dataset_license"
COMPUTE_FACT = "compute.{}"
MAX_RUBRIC_BYTES = 512 * 1024
SUMMARY_FIELDS = frozenset({"primary", "primary_label", "blockers"})


def _level_text(value: Any) -> Any:
    """YAML reads `true`/`false` as booleans; levels are strings."""
    return str(value).lower() if isinstance(value, bool) else value


def _level_keys(value: Any) -> Any:
    return {_level_text(k): v for k, v in value.items()} if isinstance(value, dict) else value


def _conditions(value: Any) -> Any:
    """`when` is one mapping or a list of them (any of); normalized to a list."""
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        return items
    return [
        {fact: [_level_text(v) for v in levels] if isinstance(levels, list) else levels for fact, levels in item.items()}
        if isinstance(item, dict) else item
        for item in items
    ]


Score = Annotated[float, Field(ge=0, le=10)]
Delta = Annotated[float, Field(ge=-10, le=10)]
Levels = Annotated[dict[str, str], BeforeValidator(_level_keys)]
Scores = Annotated[dict[str, Score], BeforeValidator(_level_keys)]
Condition = dict[str, Annotated[list[str], Field(min_length=1)]]
When = Annotated[list[Condition], BeforeValidator(_conditions), Field(min_length=1)]
SourceIds = list[str]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceDef(_Data):
    title: str
    kind: Literal["article", "article_fact", "paper", "vendor", "documentation", "standard", "measurement"]
    url: str | None = Field(default=None, pattern=r"^https://")
    arxiv: str | None = Field(default=None, pattern=r"^\d{4}\.\d{4,5}$")
    secondary: bool = False


class Criterion(_Data):
    title: str
    help: str
    sources: SourceIds


class Band(_Data):
    level: str
    max: float | None = Field(default=None, description="Inclusive upper bound; the last band has none.")


class Question(_Data):
    id: str
    role: Literal["scored", "input", "context", "compute"]
    type: Literal["choice", "integer", "number", "boolean", "license", "text"]
    text: str
    help: str
    sources: SourceIds
    criterion: str | None = None
    weight: float = Field(default=0, ge=0)
    unit: str | None = None
    choices: Levels = Field(default_factory=dict, description="Choice value -> short description.")
    bands: list[Band] = Field(default_factory=list)
    scores: Scores = Field(default_factory=dict)
    remediation: Levels = Field(default_factory=dict)


class OptionDef(_Data):
    label: str
    base: Score
    description: str
    sources: SourceIds


class Rule(_Data):
    id: str
    when: When
    fit: dict[str, Delta] = Field(min_length=1)
    reason: str
    sources: SourceIds


class GateDef(_Data):
    id: str
    question: str
    when: When
    blocks: list[str] = Field(min_length=1)
    reason: str
    remediation: str
    sources: SourceIds


class Caution(_Data):
    id: str
    when: When
    text: str
    sources: SourceIds
    decisions: list[str] | None = Field(default=None, description="Show only for these decisions; all when absent.")


class DecisionParams(_Data):
    training_margin: float = Field(ge=0, le=10)
    weak_below: Score
    summaries: dict[str, str]


class ConfidenceRule(_Data):
    level: str
    min_coverage: float = Field(ge=0, le=1)
    max_open_changes: int = Field(ge=0)


class ConfidenceParams(_Data):
    levels: list[ConfidenceRule]
    otherwise: str


class Limit(_Data):
    id: str
    text: str
    sources: SourceIds


class Rubric(_Data):
    id: str
    version: str
    title: str
    license_table: str
    licenses: LicenseTable
    sources: dict[str, SourceDef]
    criteria: dict[str, Criterion]
    questions: list[Question]
    options: dict[str, OptionDef]
    rules: list[Rule]
    gates: list[GateDef]
    cautions: list[Caution]
    decision: DecisionParams
    confidence: ConfidenceParams
    limits: list[Limit]

    def question(self, question_id: str) -> Question:
        return next(q for q in self.questions if q.id == question_id)

    def levels(self, question: Question) -> list[str]:
        """The levels a question's answers fall into, without `unknown` (always possible)."""
        if question.type == "choice":
            return list(question.choices)
        if question.type in ("integer", "number"):
            return [band.level for band in question.bands]
        if question.type == "boolean":
            return ["true", "false"]
        if question.type == "license":
            return [c for c in self.licenses.class_ids if c != UNKNOWN]
        return []

    def facts(self) -> dict[str, list[str]]:
        """Everything a `when` may name, with its levels (`unknown` included)."""
        facts = {q.id: [*self.levels(q), UNKNOWN] for q in self.questions if self.levels(q)}
        for option in TRAINING_OPTIONS:
            facts[COMPUTE_FACT.format(option)] = list(get_args(ComputeStatus))
        return facts

    @property
    def version_label(self) -> str:
        return f"{self.id} {self.version}"


def default_rubric_path() -> Path:
    return data_dir("rubrics") / RUBRIC_FILE


def load_rubric(path: str | Path | None = None) -> Rubric:
    """The rubric at `path` (default: the shipped one), validated; raises InvalidFile naming every problem."""
    resolved = Path(path).resolve() if path is not None else default_rubric_path()
    return _load_rubric(resolved)


@cache
def _load_rubric(path: Path) -> Rubric:
    data = load_mapping(path, field="rubric", limit=MAX_RUBRIC_BYTES)
    table_name = data.get("license_table")
    if not isinstance(table_name, str):
        raise InvalidFile(f"{path}: license_table must name the license table file", fields=[FieldIssue(field="rubric.license_table", message="required: a file name next to the rubric, e.g. licenses.yaml")])
    table = load_license_table((path.parent / table_name).resolve())
    try:
        rubric = Rubric.model_validate({**data, "licenses": table})
    except ValidationError as exc:
        err = invalid_input(exc, what=f"rubric {path}", prefix="rubric")
        raise InvalidFile(err.message, fields=err.fields) from None
    problems = rubric_problems(rubric)
    if problems:
        raise InvalidFile(f"rubric {path} disagrees with the engine ({len(problems)} problem{'s' * (len(problems) > 1)})", fields=problems)
    return rubric


def validate_rubric(path: str | Path | None = None) -> Rubric:
    """Load the rubric and also check its license table against SPDX (`advisor rubric validate`).

    `load_rubric` skips the SPDX check to keep start-up fast: it needs license-expression's
    whole index, and a bad id in the table can only make a license classify as unknown.
    """
    rubric = load_rubric(path)
    problems = license_table_problems(rubric.licenses)
    if problems:
        raise InvalidFile(f"license table of rubric {rubric.version_label} is invalid ({len(problems)} problem{'s' * (len(problems) > 1)})", fields=problems)
    return rubric


def rubric_problems(rubric: Rubric) -> list[FieldIssue]:
    """Every way the rubric and the engine (or the Answers contract) disagree; empty when sound."""
    problems: list[FieldIssue] = []

    def problem(field: str, message: str, allowed: list[str] | None = None) -> None:
        problems.append(FieldIssue(field=f"rubric.{field}", message=message, allowed=sorted(allowed) if allowed else None))

    _check_contract(rubric, problem)
    _check_questions(rubric, problem)
    facts = rubric.facts()
    options = set(get_args(OptionId))
    if set(rubric.options) != options:
        for extra in sorted(set(rubric.options) - options):
            problem(f"options.{extra}", "the engine does not know this option", list(options))
        for missing in sorted(options - set(rubric.options)):
            problem("options", f"option {missing!r} is missing")

    seen_ids: set[str] = set()
    conditioned: set[str] = set()
    for kind, items in (("rules", rubric.rules), ("gates", rubric.gates), ("cautions", rubric.cautions)):
        for item in items:
            where = f"{kind}.{item.id}"
            if item.id in seen_ids:
                problem(where, "id used twice (rule, gate and caution ids share one namespace)")
            seen_ids.add(item.id)
            conditioned |= _check_when(item.when, facts, f"{where}.when", problem)
    for rule in rubric.rules:
        for option in rule.fit:
            if option not in options:
                problem(f"rules.{rule.id}.fit.{option}", "unknown option", list(options))
    for gate in rubric.gates:
        _check_gate(rubric, gate, problem)
    decisions = set(get_args(Decision))
    for caution in rubric.cautions:
        for decision in caution.decisions or []:
            if decision not in decisions:
                problem(f"cautions.{caution.id}.decisions", f"unknown decision {decision!r}", list(decisions))
    for question in rubric.questions:
        if question.role == "input" and question.id not in conditioned:
            problem(f"questions.{question.id}", "an input question must be read by a rule, gate or caution")
        if question.role in ("context", "compute") and question.id in conditioned:
            problem(f"questions.{question.id}", f"a {question.role} question cannot be read by rules; make it scored or input")

    _check_decision(rubric, problem)
    _check_sources(rubric, problem)
    return problems


def _check_contract(rubric: Rubric, problem) -> None:
    """Questions and Answers fields match one to one, with matching types and values."""
    fields = Answers.model_fields
    ids = [q.id for q in rubric.questions]
    for duplicate in sorted({i for i in ids if ids.count(i) > 1}):
        problem(f"questions.{duplicate}", "question id used twice")
    for missing in [name for name in fields if name not in ids]:
        problem("questions", f"the Answers contract has field {missing!r} but no question asks it")
    for question in rubric.questions:
        where = f"questions.{question.id}"
        if question.id not in fields:
            problem(where, "no such field in the Answers contract", list(fields))
            continue
        expected, values = _contract_type(question.id)
        if question.type != expected:
            problem(f"{where}.type", f"the contract field is {expected}, not {question.type}")
        if expected == "choice":
            choices = set(question.choices)
            for extra in sorted(choices - values):
                problem(f"{where}.choices.{extra}", "the Answers contract does not allow this value", list(values))
            for missing in sorted(values - choices):
                problem(f"{where}.choices", f"the Answers contract allows {missing!r} but the rubric does not list it")


def _contract_type(name: str) -> tuple[str, set[str]]:
    """The rubric type a contract field needs, and its allowed values (for choices, without unknown)."""
    annotation = Answers.model_fields[name].annotation
    args = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (typing.Union, types.UnionType) else [annotation]
    inner = args[0]
    if get_origin(inner) is Literal:
        return "choice", set(get_args(inner)) - {UNKNOWN}
    if inner is str:
        return ("license" if name == LICENSE_FIELD else "text"), set()
    return {bool: "boolean", int: "integer", float: "number"}[inner], set()


def _check_questions(rubric: Rubric, problem) -> None:
    weak_below = rubric.decision.weak_below
    scored_criteria: set[str] = set()
    for question in rubric.questions:
        where = f"questions.{question.id}"
        levels = rubric.levels(question)
        if UNKNOWN in question.choices:
            problem(f"{where}.choices.{UNKNOWN}", "unknown is always allowed; do not list it")
        if question.type in ("integer", "number"):
            _check_bands(question, where, problem)
        elif question.bands:
            problem(f"{where}.bands", f"only integer and number questions have bands, not {question.type}")
        if question.role == "scored":
            if question.criterion not in rubric.criteria:
                problem(f"{where}.criterion", f"a scored question needs a known criterion, not {question.criterion!r}", list(rubric.criteria))
            scored_criteria.add(question.criterion or "")
            if question.weight <= 0:
                problem(f"{where}.weight", "a scored question needs a weight above 0")
            if not levels:
                problem(f"{where}.type", f"a {question.type} question without bands has no levels to score")
            if UNKNOWN in question.scores:
                problem(f"{where}.scores.{UNKNOWN}", "unknown is never scored (its score is null, never 0)")
            for level in levels:
                if level not in question.scores:
                    problem(f"{where}.scores", f"answer {level!r} has no score")
            weak = [level for level in levels if question.scores.get(level, 10) < weak_below] + [UNKNOWN]
            for level in weak:
                if level not in question.remediation:
                    problem(f"{where}.remediation", f"answer {level!r} is weak or open and needs remediation")
        else:
            for attribute in ("criterion", "scores", "remediation"):
                if getattr(question, attribute):
                    problem(f"{where}.{attribute}", f"only scored questions have {attribute} (this one is {question.role})")
            if question.weight:
                problem(f"{where}.weight", f"only scored questions have a weight (this one is {question.role})")
            if question.role == "input" and not levels:
                problem(f"{where}.type", "an input question needs levels (choices, bands or a boolean)")
        for kind, mapping in (("scores", question.scores), ("remediation", question.remediation)):
            for level in mapping:
                if level not in levels and not (kind == "remediation" and level == UNKNOWN):
                    problem(f"{where}.{kind}.{level}", "not an answer of this question", levels)
        if question.type == "choice" and not question.choices:
            problem(f"{where}.choices", "a choice question needs choices")
        if question.type != "choice" and question.choices:
            problem(f"{where}.choices", f"only choice questions have choices, not {question.type}")
    for criterion in rubric.criteria:
        if criterion not in scored_criteria:
            problem(f"criteria.{criterion}", "no scored question belongs to this criterion")


def _check_bands(question: Question, where: str, problem) -> None:
    if not question.bands:
        if question.role in ("scored", "input"):
            problem(f"{where}.bands", f"a {question.role} {question.type} question needs bands to turn numbers into levels")
        return
    names = [band.level for band in question.bands]
    if len(set(names)) != len(names) or UNKNOWN in names:
        problem(f"{where}.bands", "band levels must be unique and not 'unknown'")
    limits = [band.max for band in question.bands[:-1]]
    if any(limit is None for limit in limits) or question.bands[-1].max is not None:
        problem(f"{where}.bands", "every band but the last needs a max; the last has none (it is open-ended)")
    elif any(b <= a for a, b in zip(limits, limits[1:])):
        problem(f"{where}.bands", "band maxima must increase")
    if question.type == "integer" and any(limit is not None and limit != int(limit) for limit in limits):
        problem(f"{where}.bands", "an integer question's band maxima must be whole numbers")


def _check_when(when: list[dict[str, list[str]]], facts: dict[str, list[str]], where: str, problem) -> set[str]:
    named: set[str] = set()
    for condition in when:
        if not condition:
            problem(where, "an empty condition matches everything; name at least one question")
        for fact, levels in condition.items():
            if fact not in facts:
                problem(f"{where}.{fact}", "unknown question or fact (text and compute questions cannot be conditions)", list(facts))
                continue
            named.add(fact)
            for level in levels:
                if level not in facts[fact]:
                    problem(f"{where}.{fact}", f"{level!r} is not an answer of {fact}", facts[fact])
    return named


def _check_gate(rubric: Rubric, gate: GateDef, problem) -> None:
    where = f"gates.{gate.id}"
    questions = {q.id: q for q in rubric.questions}
    for option in gate.blocks:
        if option not in TRAINING_OPTIONS:
            problem(f"{where}.blocks", f"gates block training options only, not {option!r}", list(TRAINING_OPTIONS))
    if gate.question not in questions:
        problem(f"{where}.question", f"unknown question {gate.question!r}", list(questions))
        return
    named = {fact for condition in gate.when for fact in condition}
    if named <= {COMPUTE_FACT.format(o) for o in TRAINING_OPTIONS}:
        if questions[gate.question].role != "compute":
            problem(f"{where}.question", "a gate on compute facts must name a compute question")
    elif gate.question not in named:
        problem(f"{where}.question", f"the gate's question {gate.question!r} must appear in its condition")


def _check_decision(rubric: Rubric, problem) -> None:
    decisions = set(get_args(Decision))
    summaries = rubric.decision.summaries
    for missing in sorted(decisions - set(summaries)):
        problem("decision.summaries", f"no summary for decision {missing!r}")
    for name, text in summaries.items():
        if name not in decisions:
            problem(f"decision.summaries.{name}", "unknown decision", list(decisions))
        try:
            fields = {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}
        except ValueError as exc:
            problem(f"decision.summaries.{name}", f"bad template: {exc}")
            continue
        for field in sorted(fields - SUMMARY_FIELDS):
            problem(f"decision.summaries.{name}", f"unknown placeholder {{{field}}}", list(SUMMARY_FIELDS))
    levels = set(get_args(ConfidenceLevel))
    for i, rule in enumerate(rubric.confidence.levels):
        if rule.level not in levels:
            problem(f"confidence.levels.{i}.level", f"unknown confidence level {rule.level!r}", list(levels))
    if rubric.confidence.otherwise not in levels:
        problem("confidence.otherwise", f"unknown confidence level {rubric.confidence.otherwise!r}", list(levels))


def _check_sources(rubric: Rubric, problem) -> None:
    cited: dict[str, list[str]] = {}
    groups: list[tuple[str, Any]] = [
        ("criteria", rubric.criteria.items()),
        ("questions", ((q.id, q) for q in rubric.questions)),
        ("options", rubric.options.items()),
        ("rules", ((r.id, r) for r in rubric.rules)),
        ("gates", ((g.id, g) for g in rubric.gates)),
        ("cautions", ((c.id, c) for c in rubric.cautions)),
        ("limits", ((lim.id, lim) for lim in rubric.limits)),
    ]
    for kind, items in groups:
        for key, item in items:
            if not item.sources:
                problem(f"{kind}.{key}.sources", "cite at least one source")
            for source in item.sources:
                cited.setdefault(source, []).append(f"{kind}.{key}")
    for source, places in cited.items():
        if source not in rubric.sources:
            for place in places:
                problem(f"{place}.sources", f"unknown source id {source!r}")
    for source, definition in rubric.sources.items():
        if source not in cited:
            problem(f"sources.{source}", "defined but never cited")
        if definition.url is None and definition.arxiv is None and definition.kind not in ("article", "measurement"):
            problem(f"sources.{source}", "a source needs a url or an arXiv id")
