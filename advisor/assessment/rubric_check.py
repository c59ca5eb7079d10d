"""The rubric's validator: every way rubric data and the engine (or the Answers contract) can disagree.

`load_rubric` refuses a rubric with any of these problems; `validate_rubric` (what
`advisor rubric validate` runs) adds what is too slow for every start: the license
table checked against SPDX, the per-rule cases of `rubrics/cases/`, and the worked
examples' expected decisions.
"""

from __future__ import annotations

import string
import types
import typing
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args, get_origin

from ..errors import FieldIssue, InvalidFile
from .contract import TRAINING_OPTIONS, Answers, ConfidenceLevel, Decision, OptionId
from .licenses import UNKNOWN, license_table_problems
from .rubric import (
    COMPUTE_FACT,
    LICENSE_FIELDS,
    NOT_ASSESSED,
    SUMMARY_FIELDS,
    GateDef,
    Question,
    Rubric,
    default_rubric_path,
    load_rubric,
)


class Validated(NamedTuple):
    """What `advisor rubric validate` checked and found sound."""

    rubric: Rubric
    path: Path
    cases: int  # rule cases run
    examples: int  # worked examples run


def validate_rubric(path: str | Path | None = None, *, examples: bool = True) -> Validated:
    """Load the rubric, then check what `load_rubric` leaves out to keep start-up fast: its license table
    against SPDX (license-expression's whole index), the rule cases in the `cases/` folder beside it, and
    the worked examples' expected decisions. Raises InvalidFile naming every problem."""
    where = Path(path).resolve() if path is not None else default_rubric_path()
    from .rule_cases import case_problems, cases_folder, load_cases

    rubric = load_rubric(where)
    problems = license_table_problems(rubric.licenses)
    folder = cases_folder(where)
    cases = load_cases(folder) if folder.is_dir() else []
    if not cases:
        problems.append(FieldIssue(field="rubric.cases", message=f"no rule cases in {folder}"))
    problems += case_problems(rubric, cases)
    checked = 0
    if examples:
        from .worked_examples import example_problems, expected_outcomes

        problems += example_problems(rubric)
        checked = len(expected_outcomes())
    if problems:
        raise InvalidFile(
            f"rubric {rubric.version_label} ({where}) fails validation "
            f"({len(problems)} problem{'s' * (len(problems) > 1)})",
            fields=problems,
        )
    return Validated(rubric=rubric, path=where, cases=len(cases), examples=checked)


def rubric_problems(rubric: Rubric) -> list[FieldIssue]:
    """Every way the rubric and the engine (or the Answers contract) disagree; empty when sound."""
    problems: list[FieldIssue] = []

    def problem(field: str, message: str, allowed: list[str] | None = None) -> None:
        problems.append(
            FieldIssue(field=f"rubric.{field}", message=message, allowed=sorted(allowed) if allowed else None)
        )

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
    kinds = (
        ("rules", rubric.rules),
        ("gates", rubric.gates),
        ("cautions", rubric.cautions),
        ("conflicts", rubric.conflicts),
    )
    for kind, items in kinds:
        for item in items:
            where = f"{kind}.{item.id}"
            if item.id in seen_ids:
                problem(where, "id used twice (rule, gate, caution and conflict ids share one namespace)")
            seen_ids.add(item.id)
            conditioned |= _check_when(item.when, facts, f"{where}.when", problem)
    read = {q for fact in conditioned for q in rubric.questions_of(fact)}
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
        if question.role == "input" and question.id not in read:
            problem(f"questions.{question.id}", "an input question must be read by a rule, gate, caution or conflict")
        if question.role in ("context", "compute") and question.id in conditioned:
            problem(
                f"questions.{question.id}",
                f"a {question.role} question cannot be read by rules; make it scored or input",
            )

    _check_decision(rubric, problem)
    _check_economics(rubric, problem)
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
    args = (
        [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) in (typing.Union, types.UnionType)
        else [annotation]
    )
    args = [a for a in args if not (get_origin(a) is Literal and set(get_args(a)) == {UNKNOWN})]  # `or unknown`
    inner = args[0]
    while get_origin(inner) is typing.Annotated:  # a number with its bounds
        inner = get_args(inner)[0]
    if get_origin(inner) is Literal:
        return "choice", set(get_args(inner)) - {UNKNOWN}
    if inner is str:
        return ("license" if name in LICENSE_FIELDS else "text"), set()
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
                problem(
                    f"{where}.criterion",
                    f"a scored question needs a known criterion, not {question.criterion!r}",
                    list(rubric.criteria),
                )
            scored_criteria.add(question.criterion or "")
            if question.weight <= 0:
                problem(f"{where}.weight", "a scored question needs a weight above 0")
            if not levels:
                problem(f"{where}.type", f"a {question.type} question without bands has no levels to score")
            if UNKNOWN in question.readiness:
                problem(f"{where}.readiness.{UNKNOWN}", "unknown is never graded (its grade is null, never 0)")
            for level in levels:
                if level not in question.readiness:
                    problem(f"{where}.readiness", f"answer {level!r} has no readiness grade")
            weak = [level for level in levels if question.readiness.get(level, 10) < weak_below] + [UNKNOWN]
            for level in weak:
                if level not in question.remediation:
                    problem(f"{where}.remediation", f"answer {level!r} is weak or open and needs remediation")
        else:
            for attribute in ("criterion", "readiness", "remediation"):
                if getattr(question, attribute):
                    problem(
                        f"{where}.{attribute}", f"only scored questions have {attribute} (this one is {question.role})"
                    )
            if question.weight:
                problem(f"{where}.weight", f"only scored questions have a weight (this one is {question.role})")
            if question.role == "input" and not levels:
                problem(f"{where}.type", "an input question needs levels (choices, bands or a boolean)")
        for kind, mapping in (("readiness", question.readiness), ("remediation", question.remediation)):
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
            problem(
                f"{where}.bands", f"a {question.role} {question.type} question needs bands to turn numbers into levels"
            )
        return
    names = [band.level for band in question.bands]
    if len(set(names)) != len(names) or UNKNOWN in names:
        problem(f"{where}.bands", "band levels must be unique and not 'unknown'")
    limits = [band.max for band in question.bands[:-1]]
    if any(limit is None for limit in limits) or question.bands[-1].max is not None:
        problem(f"{where}.bands", "every band but the last needs a max; the last has none (it is open-ended)")
    elif any(b <= a for a, b in zip(limits, limits[1:], strict=False)):
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
                problem(
                    f"{where}.{fact}",
                    "unknown question or fact (text and compute questions cannot be conditions)",
                    list(facts),
                )
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
    facts = {fact for condition in gate.when for fact in condition}
    if facts <= {COMPUTE_FACT.format(o) for o in TRAINING_OPTIONS}:
        if questions[gate.question].role != "compute":
            problem(f"{where}.question", "a gate on compute facts must name a compute question")
    elif gate.question not in {q for fact in facts for q in rubric.questions_of(fact)}:
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
    if rubric.confidence.stated_data_caps_at not in levels:
        problem("confidence.stated_data_caps_at", "unknown confidence level", list(levels))
    for name in rubric.confidence.data_answers:
        if name not in Answers.model_fields:
            problem("confidence.data_answers", f"{name!r} is not an Answers field", list(Answers.model_fields))


def _check_economics(rubric: Rubric, problem) -> None:
    bands = rubric.economics.payback_days
    names = [band.level for band in bands]
    if len(set(names)) != len(names) or NOT_ASSESSED in names or UNKNOWN in names:
        problem("economics.payback_days", f"levels must be unique and not {NOT_ASSESSED!r} or 'unknown'")
    limits = [band.max for band in bands[:-1]]
    if any(limit is None for limit in limits) or bands[-1].max is not None:
        problem("economics.payback_days", "every level but the last needs a max; the last has none")
    elif any(b <= a for a, b in zip(limits, limits[1:], strict=False)):
        problem("economics.payback_days", "maxima must increase")


def _check_sources(rubric: Rubric, problem) -> None:
    cited: dict[str, list[str]] = {}
    groups: list[tuple[str, Any]] = [
        ("criteria", rubric.criteria.items()),
        ("questions", ((q.id, q) for q in rubric.questions)),
        ("options", rubric.options.items()),
        ("rules", ((r.id, r) for r in rubric.rules)),
        ("gates", ((g.id, g) for g in rubric.gates)),
        ("cautions", ((c.id, c) for c in rubric.cautions)),
        ("conflicts", ((c.id, c) for c in rubric.conflicts)),
        ("limits", ((lim.id, lim) for lim in rubric.limits)),
        ("license_table.terms", rubric.licenses.terms.items()),
        ("economics", [("payback", rubric.economics)]),
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
