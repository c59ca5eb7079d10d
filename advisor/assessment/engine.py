"""Answers + rubric -> Assessment. Pure: no I/O, no heavy imports, no judgement of its own.

The mechanism, in the order it runs:

1. Each answer becomes a level (a choice, a band of a number, a license class,
   true/false, or `unknown`); compute feasibility adds the facts `compute.<option>`.
2. Every option starts at its base fit; each rule whose `when` matches adds its deltas.
3. Gates whose `when` matches block training options.
4. The decision: the best alternative sets the bar; a training option wins on the
   merits only if it beats the bar by the rubric's `training_margin`. If an unblocked
   training option wins, train it (`recommend_lora` for an adapter, `recommend_full_finetune`
   for every weight); if every winner is blocked, fix
   the blockers first (`not_ready`); otherwise use the alternative (`use_alternative`).
5. What would change it: the same steps re-run with each alternative answer to every
   open or weak question.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .contract import (
    TRAINING_OPTIONS,
    Answers,
    Assessment,
    ComputeAssessment,
    Confidence,
    CriterionScore,
    Gate,
    OptionFit,
    Outcome,
    QuestionScore,
    Reason,
    Remediation,
    SourceRef,
    Versions,
    WhatWouldChange,
)
from .licenses import UNKNOWN, classify_license
from .rubric import COMPUTE_FACT, Caution, GateDef, Question, Rubric, Rule


@dataclass(frozen=True)
class Verdict:
    """One pass of the rules over one set of answers."""

    levels: dict[str, str]
    fits: dict[str, float]
    rules: list[Rule]
    gates: list[GateDef]
    blocked_by: dict[str, list[str]]
    ranking: list[str]
    decision: str
    primary: str
    blockers: list[str]


def decide(answers: Answers, rubric: Rubric, compute: ComputeAssessment) -> Verdict:
    """Steps 1-4: levels, fits, gates and the decision."""
    levels = answer_levels(answers, rubric, compute)
    fits = {option: definition.base for option, definition in rubric.options.items()}
    rules = [rule for rule in rubric.rules if matches(rule.when, levels)]
    for rule in rules:
        for option, delta in rule.fit.items():
            fits[option] += delta
    fits = {option: min(10.0, max(0.0, fit)) for option, fit in fits.items()}
    gates = [gate for gate in rubric.gates if matches(gate.when, levels)]
    blocked_by = {
        option: [q.id for q in rubric.questions if any(g.question == q.id and option in g.blocks for g in gates)]
        for option in rubric.options
    }

    order = list(rubric.options)
    ranking = sorted(order, key=lambda option: (-fits[option], order.index(option)))
    best_alternative = next(option for option in ranking if option not in TRAINING_OPTIONS)
    bar = fits[best_alternative] + rubric.decision.training_margin
    winners = [option for option in ranking if option in TRAINING_OPTIONS and fits[option] >= bar]
    unblocked = [option for option in winners if not blocked_by[option]]
    if unblocked:
        primary, blockers = unblocked[0], []
        decision = "recommend_full_finetune" if primary == "full_finetune" else "recommend_lora"
    elif winners:
        decision, primary = "not_ready", winners[0]
        blockers = [q.id for q in rubric.questions if q.id in blocked_by[primary]]
    else:
        decision, primary, blockers = "use_alternative", best_alternative, []
    return Verdict(levels, fits, rules, gates, blocked_by, ranking, decision, primary, blockers)


def answer_levels(answers: Answers, rubric: Rubric, compute: ComputeAssessment) -> dict[str, str]:
    """The level of every question that has levels, and the compute facts."""
    levels = {q.id: level_of(q, getattr(answers, q.id), rubric) for q in rubric.questions if rubric.levels(q)}
    for option in TRAINING_OPTIONS:
        levels[COMPUTE_FACT.format(option)] = compute.options.get(option, "not_assessed")
    return levels


def level_of(question: Question, value: Any, rubric: Rubric) -> str:
    if value is None or value == UNKNOWN:
        return UNKNOWN
    if question.type == "boolean":
        return "true" if value else "false"
    if question.type in ("integer", "number"):
        return next(band.level for band in question.bands if band.max is None or value <= band.max)
    if question.type == "license":
        return classify_license(value, rubric.licenses).license_class
    return str(value)


def matches(when: list[dict[str, list[str]]], levels: dict[str, str]) -> bool:
    """Any of the conditions holds; a condition holds when every fact it names is at a listed level."""
    return any(all(levels[fact] in allowed for fact, allowed in condition.items()) for condition in when)


def evaluate(answers: Answers, rubric: Rubric, *, compute: ComputeAssessment, versions: Versions) -> Assessment:
    """The full assessment: the verdict, its reasons, scores, remediation and what would change it."""
    verdict = decide(answers, rubric, compute)
    criteria = _criteria(answers, rubric, verdict.levels)
    changes = what_would_change(answers, rubric, compute, verdict)
    weak_or_open = [q for q in rubric.questions if q.id in _weak_or_open(rubric, verdict.levels)]
    rule_reasons = {
        rule.id: Reason(
            id=rule.id, text=_with_figures(rule.reason, rule.when, compute), sources=rule.sources, effects=rule.fit
        )
        for rule in verdict.rules
    }
    options = [
        OptionFit(
            option=option,
            label=rubric.options[option].label,
            training=option in TRAINING_OPTIONS,
            fit=verdict.fits[option],
            blocked_by=verdict.blocked_by[option],
            reasons=[rule_reasons[rule.id] for rule in verdict.rules if option in rule.fit],
        )
        for option in verdict.ranking
    ]
    gates = [_gate(gate, verdict.levels, compute) for gate in verdict.gates]
    reasons = _decision_reasons(rubric, verdict, rule_reasons, gates)
    cautions = [
        _caution(c)
        for c in rubric.cautions
        if matches(c.when, verdict.levels) and (c.decisions is None or verdict.decision in c.decisions)
    ]
    remediation = [
        Remediation(
            question=q.id,
            level=verdict.levels[q.id],
            score=q.readiness.get(verdict.levels[q.id]),
            text=q.remediation[verdict.levels[q.id]],
            sources=q.sources,
        )
        for q in weak_or_open
        if q.role == "scored"
    ]
    limits = [Reason(id=limit.id, text=limit.text, sources=limit.sources) for limit in rubric.limits]
    cited = [*reasons, *cautions, *limits, *(r for o in options for r in o.reasons)]
    cited_ids = {s for item in [*cited, *gates, *remediation] for s in item.sources} | set(compute.sources)
    return Assessment(
        decision=verdict.decision,
        primary=verdict.primary,
        summary=_summary(rubric, verdict),
        blockers=verdict.blockers,
        gates=gates,
        criteria=criteria,
        options=options,
        reasons=reasons,
        cautions=cautions,
        remediation=remediation,
        what_would_change=changes,
        confidence=_confidence(
            rubric, verdict.levels, [q for q in weak_or_open if verdict.levels[q.id] == UNKNOWN], changes
        ),
        limits=limits,
        license=classify_license(answers.dataset_license, rubric.licenses) if answers.dataset_license else None,
        compute=compute,
        answers=answers,
        sources=[
            SourceRef(id=sid, **source.model_dump()) for sid, source in rubric.sources.items() if sid in cited_ids
        ],
        versions=versions,
    )


def what_would_change(
    answers: Answers, rubric: Rubric, compute: ComputeAssessment, verdict: Verdict
) -> list[WhatWouldChange]:
    """For every open, weak or gate-firing answer, each single alternative answer that changes the decision
    or the primary option."""
    changes = []
    for question in _to_revisit(rubric, verdict):
        current = verdict.levels[question.id]
        outcomes = []
        for level in rubric.levels(question):
            if level == current:
                continue
            value = representative_answer(question, level, rubric)
            other = decide(answers.model_copy(update={question.id: value}), rubric, compute)
            if (other.decision, other.primary) != (verdict.decision, verdict.primary):
                outcomes.append(Outcome(answer=value, level=level, decision=other.decision, primary=other.primary))
        if outcomes:
            changes.append(
                WhatWouldChange(question=question.id, current=current, open=current == UNKNOWN, outcomes=outcomes)
            )
    return changes


def representative_answer(question: Question, level: str, rubric: Rubric) -> Any:
    """An answer that falls in `level`: the value itself, a class's example license, or the
    lowest value of a band (for a number band, one unit above the band below it)."""
    if question.type == "boolean":
        return level == "true"
    if question.type in ("integer", "number"):
        index = [band.level for band in question.bands].index(level)
        if index == 0:
            return question.bands[0].max
        lowest = question.bands[index - 1].max + 1
        return int(lowest) if question.type == "integer" else lowest
    if question.type == "license":
        return rubric.licenses.representatives[level]
    return level


def _weak_or_open(rubric: Rubric, levels: dict[str, str]) -> set[str]:
    """Scored and input questions left unknown, and scored answers below the weak threshold."""
    weak_below = rubric.decision.weak_below
    found = set()
    for question in rubric.questions:
        if question.role not in ("scored", "input"):
            continue
        level = levels[question.id]
        if level == UNKNOWN or (question.role == "scored" and question.readiness[level] < weak_below):
            found.add(question.id)
    return found


def _to_revisit(rubric: Rubric, verdict: Verdict) -> list[Question]:
    """Open and weak answers, and every answer a fired gate reads, in questionnaire order."""
    revisit = _weak_or_open(rubric, verdict.levels)
    revisit |= {fact for gate in verdict.gates for condition in gate.when for fact in condition}
    return [q for q in rubric.questions if q.id in revisit and q.role in ("scored", "input")]


def _criteria(answers: Answers, rubric: Rubric, levels: dict[str, str]) -> list[CriterionScore]:
    weak_below = rubric.decision.weak_below
    result = []
    for criterion_id, criterion in rubric.criteria.items():
        scores = []
        for q in rubric.questions:
            if q.criterion != criterion_id:
                continue
            score = q.readiness.get(levels[q.id])
            scores.append(
                (
                    q,
                    QuestionScore(
                        question=q.id,
                        answer=getattr(answers, q.id),
                        level=levels[q.id],
                        score=score,
                        weak=score is not None and score < weak_below,
                    ),
                )
            )
        answered = [(q.weight, s.score) for q, s in scores if s.score is not None]
        total = sum(weight for weight, _ in answered)
        mean = round(sum(weight * score for weight, score in answered) / total, 1) if answered else None
        result.append(
            CriterionScore(id=criterion_id, title=criterion.title, score=mean, questions=[s for _, s in scores])
        )
    return result


def _decision_reasons(
    rubric: Rubric, verdict: Verdict, rule_reasons: dict[str, Reason], gates: list[Gate]
) -> list[Reason]:
    """The argument for the decision: the gates blocking the primary, then the rules that
    raised the primary or lowered its strongest rival from the other side (the best
    alternative against training, the best training option against an alternative),
    strongest first. Rules pulling the other way show in each option's reasons."""
    training = verdict.decision != "use_alternative"
    rival = next(o for o in verdict.ranking if (o in TRAINING_OPTIONS) != training)

    def strength(rule: Rule) -> float:
        return max(rule.fit.get(verdict.primary, 0), -rule.fit.get(rival, 0))

    blocking = [Reason(id=g.id, text=g.reason, sources=g.sources) for g in gates if verdict.primary in g.blocks]
    supporting = sorted((rule for rule in verdict.rules if strength(rule) > 0), key=lambda rule: -strength(rule))
    reasons = blocking + [rule_reasons[rule.id] for rule in supporting]
    if not reasons:  # no rule moved anything: the primary won on its base fit
        option = rubric.options[verdict.primary]
        reasons.append(
            Reason(
                id=f"{verdict.primary}_base_fit", text=f"{option.label}: {option.description}", sources=option.sources
            )
        )
    return reasons


def _gate(gate: GateDef, levels: dict[str, str], compute: ComputeAssessment) -> Gate:
    level = levels.get(gate.question) or next(levels[fact] for condition in gate.when for fact in condition)
    return Gate(
        id=gate.id,
        question=gate.question,
        level=level,
        blocks=gate.blocks,
        reason=_with_figures(gate.reason, gate.when, compute),
        remediation=gate.remediation,
        sources=gate.sources,
    )


def _with_figures(text: str, when: list[dict[str, list[str]]], compute: ComputeAssessment) -> str:
    """A reason that rests on compute facts, with the estimator's figures for those options."""
    named = dict.fromkeys(
        fact.split(".", 1)[1] for condition in when for fact in condition if fact.startswith(COMPUTE_FACT.format(""))
    )
    figures = [compute.option_details[option] for option in named if option in compute.option_details]
    return f"{text} Estimated: {'; '.join(figures)}." if figures else text


def _caution(caution: Caution) -> Reason:
    return Reason(id=caution.id, text=caution.text, sources=caution.sources)


def _summary(rubric: Rubric, verdict: Verdict) -> str:
    template = rubric.decision.summaries[verdict.decision]
    return template.format(
        primary=verdict.primary,
        primary_label=rubric.options[verdict.primary].label,
        blockers=", ".join(verdict.blockers) or "none",
    )


def _confidence(
    rubric: Rubric, levels: dict[str, str], open_questions: list[Question], changes: list[WhatWouldChange]
) -> Confidence:
    scored = [q for q in rubric.questions if q.role == "scored"]
    total = sum(q.weight for q in scored)
    answered = [q for q in scored if levels[q.id] != UNKNOWN]
    coverage = round(sum(q.weight for q in answered) / total, 2)
    open_ids = [q.id for q in open_questions]
    open_changes = [change.question for change in changes if change.open]
    level = next(
        (
            rule.level
            for rule in rubric.confidence.levels
            if coverage >= rule.min_coverage and len(open_changes) <= rule.max_open_changes
        ),
        rubric.confidence.otherwise,
    )
    basis = f"{len(answered)} of {len(scored)} scored questions answered ({coverage:.0%} of the weight); "
    basis += (
        f"open answers that alone could change the decision: {', '.join(open_changes)}"
        if open_changes
        else "no open answer alone could change the decision"
    )
    return Confidence(level=level, coverage=coverage, open_questions=open_ids, open_changes=open_changes, basis=basis)
