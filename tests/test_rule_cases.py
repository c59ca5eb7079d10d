"""The rule cases of rubrics/cases/: each one holds against the engine, every rule, gate and caution has a case
where it fires and one where it does not, and a case that misstates a rule is caught, by name."""

from __future__ import annotations

import pytest

from advisor.assessment.rubric import load_rubric
from advisor.assessment.rule_cases import RuleCase, case_problems, check_case, load_cases
from tests.conftest import ROOT

RUBRIC = load_rubric()
CASES = load_cases(ROOT / "rubrics" / "cases")


@pytest.mark.parametrize("loaded", CASES, ids=[c.name for c in CASES])
def test_rule_case_holds(loaded):
    assert check_case(RUBRIC, loaded.case) == []


def test_every_rule_gate_and_caution_fires_and_stays_quiet_in_some_case():
    assert case_problems(RUBRIC, CASES) == []
    covered = {c.case.rule for c in CASES}
    assert {r.id for r in (*RUBRIC.rules, *RUBRIC.gates, *RUBRIC.cautions)} <= covered


def test_a_case_with_the_wrong_effect_is_caught():
    case = RuleCase(
        rule="knowledge_belongs_in_retrieval",
        why="misstated",
        answers={"change_kind": "knowledge"},
        fires=True,
        raises=["prompting"],
    )
    (problem,) = check_case(RUBRIC, case)
    assert "raises ['retrieval']" in problem and "the case says raises ['prompting']" in problem


def test_a_case_that_misreads_when_a_rule_fires_is_caught():
    case = RuleCase(
        rule="stable_behavior_justifies_training",
        why="misread",
        answers={"stability": "evolving"},
        fires=True,
        raises=["lora"],
    )
    assert check_case(RUBRIC, case) == ["stable_behavior_justifies_training does not fire, but the case says it fires"]


def test_a_changed_rule_fails_its_cases():
    """Editing a rule's deltas in the data without updating its cases is reported, naming the case."""
    rules = [
        r.model_copy(update={"fit": {"prompting": 1.0}}) if r.id == "knowledge_belongs_in_retrieval" else r
        for r in RUBRIC.rules
    ]
    edited = RUBRIC.model_copy(update={"rules": rules})
    problems = case_problems(edited, CASES)
    assert problems and all(p.field.startswith("cases.change.yaml.") for p in problems)


def test_a_rule_without_cases_is_reported():
    cases = [c for c in CASES if c.case.rule != "raw_data"]
    fields = {(p.field, p.message) for p in case_problems(RUBRIC, cases)}
    assert ("rules.raw_data", "no rule case where it fires") in fields
    assert ("rules.raw_data", "no rule case where it does not fire") in fields


def test_a_case_naming_an_unknown_rule_or_bad_answers_is_reported():
    assert check_case(RUBRIC, RuleCase(rule="nope", why="x", fires=True)) == [
        "no rule, gate, caution or conflict 'nope' in the rubric"
    ]
    (problem,) = check_case(RUBRIC, RuleCase(rule="raw_data", why="x", answers={"stability": "sometimes"}, fires=False))
    assert problem.startswith("invalid answers") and "stability" in problem
