"""Monotonic properties of the assessment: a better answer never lowers its criterion's score, and an answer
that fires a gate never makes training the recommendation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from advisor.assessment.contract import TRAIN_DECISIONS, ComputeAssessment
from advisor.assessment.engine import evaluate
from advisor.assessment.service import installed_versions, looked_up, parse_answers
from tests.strategies import FUZZ, RUBRIC, answer_at_level, computes, valid_answers

pytestmark = pytest.mark.fuzz
VERSIONS = installed_versions(RUBRIC)
SCORED = [q for q in RUBRIC.questions if q.role == "scored"]


def run(data: dict, compute: ComputeAssessment):
    answers, evidence = looked_up(parse_answers(data, rubric=RUBRIC), RUBRIC)
    return evaluate(answers, RUBRIC, compute=compute, versions=VERSIONS, evidence=evidence)


@st.composite
def improvements(draw):
    """Answers, a scored question, and two of its levels, the second scored at least as high as the first."""
    data = draw(valid_answers())
    question = draw(st.sampled_from(SCORED))
    worse, better = sorted(
        draw(st.lists(st.sampled_from(sorted(question.readiness)), min_size=2, max_size=2)),
        key=question.readiness.__getitem__,
    )
    before = {**data, **draw(answer_at_level(question.id, worse))}
    after = {**data, **draw(answer_at_level(question.id, better))}
    return question, before, after


@FUZZ
@given(improvements(), computes())
def test_improving_one_answer_never_lowers_its_criterion(case, compute):
    question, before, after = case
    old, new = run(before, compute), run(after, compute)
    old_scores = {c.id: c.score for c in old.criteria}
    new_scores = {c.id: c.score for c in new.criteria}
    assert new_scores[question.criterion] >= old_scores[question.criterion]
    assert {k: v for k, v in new_scores.items() if k != question.criterion} == {
        k: v for k, v in old_scores.items() if k != question.criterion
    }


GATE_FACTS = {fact for gate in RUBRIC.gates for condition in gate.when for fact in condition}
# For each fact a gate reads, the levels at which no gate's condition on it holds (none for a fact such as
# change_kind that every condition of a gate names: the other facts of those conditions keep it clear).
CLEAR = {
    fact: [
        level
        for level in RUBRIC.facts()[fact]
        if not any(level in condition.get(fact, []) for gate in RUBRIC.gates for condition in gate.when)
    ]
    for fact in GATE_FACTS
}


@st.composite
def gate_firings(draw):
    """Answers and compute facts in which one gate does not fire, and the same with one answer (or one compute
    fact) changed so that it does: the rest of the gate's condition already holds. Half the time every other
    gate is clear, so that the change is the only thing that blocks training."""
    answers, options = draw(valid_answers()), dict(draw(computes()).options)
    gate = draw(st.sampled_from(RUBRIC.gates))
    condition = draw(st.sampled_from(gate.when))
    trigger = draw(st.sampled_from(sorted(condition)))
    fields = {question for fact in condition for question in RUBRIC.questions_of(fact)}

    def put(into_answers: dict, into_options: dict, fact: str, level: str) -> None:
        if fact.startswith("compute."):
            into_options[fact.split(".", 1)[1]] = level
        else:
            into_answers.update(draw(answer_at_level(fact, level)))

    if draw(st.booleans()):  # every other gate clear, leaving the answers the condition reads alone
        for fact in sorted(GATE_FACTS - set(condition)):
            if CLEAR[fact] and not fields & set(RUBRIC.questions_of(fact)):
                put(answers, options, fact, draw(st.sampled_from(CLEAR[fact])))
    for fact, levels in condition.items():
        if fact != trigger:
            put(answers, options, fact, draw(st.sampled_from(levels)))
    off = [level for level in RUBRIC.facts()[trigger] if level not in condition[trigger]]

    def with_trigger(level: str):
        changed_answers, changed_options = dict(answers), dict(options)
        put(changed_answers, changed_options, trigger, level)
        return changed_answers, ComputeAssessment(status="assessed", reason="fuzzed", options=changed_options)

    return gate, with_trigger(draw(st.sampled_from(off))), with_trigger(draw(st.sampled_from(condition[trigger])))


@FUZZ
@given(gate_firings())
def test_firing_a_gate_never_makes_training_the_recommendation(case):
    gate, (answers_before, compute_before), (answers_after, compute_after) = case
    before, after = run(answers_before, compute_before), run(answers_after, compute_after)
    assert gate.id in {g.id for g in after.gates}
    if after.decision in TRAIN_DECISIONS:
        assert before.decision in TRAIN_DECISIONS, (before.primary, after.primary)
        assert after.primary not in gate.blocks
    if before.decision == "not_ready":
        assert after.decision not in TRAIN_DECISIONS


COMPUTE_GATES = [gate for gate in RUBRIC.gates if all(fact.startswith("compute.") for c in gate.when for fact in c)]


@FUZZ
@given(valid_answers(), computes(), st.sampled_from(COMPUTE_GATES), st.data())
def test_less_hardware_never_makes_training_the_recommendation(drawn, compute, gate, data):
    """A training option that stops fitting the GPU (a smaller GPU, a longer sequence) can only block training."""
    answers = drawn
    for fact in sorted(GATE_FACTS):  # every other gate clear: the hardware alone decides
        if not fact.startswith("compute.") and CLEAR[fact]:
            answers.update(data.draw(answer_at_level(fact, data.draw(st.sampled_from(CLEAR[fact])))))
    (fact,) = gate.when[0]
    option = fact.split(".", 1)[1]
    fitting = compute.model_copy(update={"options": {**compute.options, option: "fits"}, "status": "assessed"})
    not_fitting = compute.model_copy(
        update={"options": {**compute.options, option: "does_not_fit"}, "status": "assessed"}
    )
    before, after = run(answers, fitting), run(answers, not_fitting)
    assert gate.id in {g.id for g in after.gates}
    if after.decision in TRAIN_DECISIONS:
        assert before.decision in TRAIN_DECISIONS, (before.primary, after.primary)
