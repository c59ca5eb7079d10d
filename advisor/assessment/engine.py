"""Answers + rubric -> Assessment. Pure: no I/O, no heavy imports, no judgement of its own.

The mechanism, in the order it runs:

1. Facts. Each answer becomes a level (a choice, a band of a number, a licence's class,
   true/false, or `unknown`). The engine derives a few facts from the answers: each term
   a licence carries for the intended use (`dataset_license.share_alike`), whether a base
   model is named, and the payback of training against the prompt tokens it saves
   (`economics.payback`); compute feasibility adds `compute.<option>`.
2. Every option starts at its base fit; each rule whose `when` matches adds its deltas.
3. Gates whose `when` matches block training options.
4. The decision: the best alternative sets the bar; a training option wins on the
   merits only if it beats the bar by the rubric's `training_margin`. If an unblocked
   training option wins, train it (`recommend_lora` for an adapter, `recommend_full_finetune`
   for every weight); if every winner is blocked, fix the blockers first (`not_ready`);
   otherwise use the alternative (`use_alternative`).
5. Around the decision: the conflicts the answers hold, what single answer would change
   the decision or lift a blocker (the same steps re-run), and a confidence read from the
   decision's margin, the answers' coverage and consistency, and whether the data was
   measured or only stated.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..fmt import fmt_count
from .contract import (
    TRAIN_DECISIONS,
    TRAINING_OPTIONS,
    Answers,
    Assessment,
    ComputeAssessment,
    Confidence,
    Conflict,
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
from .licenses import UNKNOWN, LicenseFinding, classify_license
from .next_steps import next_steps
from .rubric import (
    BASE_MODEL_NAMED,
    COMPUTE_FACT,
    HEADROOM_FACT,
    NOT_ASSESSED,
    PAYBACK_FACT,
    EconomicsParams,
    GateDef,
    Question,
    Rubric,
    Rule,
)

CONFIDENCE_ORDER = ("low", "medium", "high")
DAYS_PER_MONTH = 30.44


class Payback(NamedTuple):
    """Training compute against the prompt tokens a tuned model no longer sends (a cost motive)."""

    level: str
    days: float | None = None
    text: str | None = None


class Verdict(NamedTuple):
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
    training_blockers: list[str]
    licenses: dict[str, LicenseFinding]  # question id -> finding, for licence questions answered
    payback: Payback


def decide(answers: Answers, rubric: Rubric, compute: ComputeAssessment) -> Verdict:
    """Steps 1-4: facts, fits, gates and the decision."""
    licenses = {
        q.id: classify_license(getattr(answers, q.id), rubric.licenses, commercial_use=answers.commercial_use)
        for q in rubric.questions
        if q.type == "license" and getattr(answers, q.id) is not None
    }
    payback = economics(answers, rubric.economics)
    levels = answer_levels(answers, rubric, compute, licenses, payback)
    fits = {option: definition.base for option, definition in rubric.options.items()}
    rules = [rule for rule in rubric.rules if matches(rule.when, levels)]
    for rule in rules:
        for option, delta in rule.fit.items():
            fits[option] += delta
    fits = {option: min(10.0, max(0.0, fit)) for option, fit in fits.items()}
    gates = [gate for gate in rubric.gates if matches(gate.when, levels)]
    blocking = {option: {g.question for g in gates if option in g.blocks} for option in rubric.options}
    blocked_by = {option: [q.id for q in rubric.questions if q.id in blocking[option]] for option in rubric.options}
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
    # What blocks training whatever the decision: the gates on the training option that would be pursued
    # (the primary when it trains, else the best training option on the merits).
    target = primary if primary in TRAINING_OPTIONS else next(o for o in ranking if o in TRAINING_OPTIONS)
    training_blockers = [q.id for q in rubric.questions if q.id in blocked_by[target]]
    return Verdict(
        levels,
        fits,
        rules,
        gates,
        blocked_by,
        ranking,
        decision,
        primary,
        blockers,
        training_blockers,
        licenses,
        payback,
    )


def answer_levels(
    answers: Answers,
    rubric: Rubric,
    compute: ComputeAssessment,
    licenses: dict[str, LicenseFinding],
    payback: Payback,
) -> dict[str, str]:
    """The level of every question that has levels, and every derived fact."""
    levels = {q.id: level_of(q, getattr(answers, q.id), rubric, licenses) for q in rubric.questions if rubric.levels(q)}
    for q in rubric.questions:
        if q.type != "license":
            continue
        finding = licenses.get(q.id)
        for term in rubric.licenses.terms:
            if finding is None or finding.license_class == UNKNOWN:
                levels[f"{q.id}.{term}"] = UNKNOWN
            else:
                levels[f"{q.id}.{term}"] = "true" if term in finding.terms else "false"
    levels[BASE_MODEL_NAMED] = "true" if answers.base_model else "false"
    levels[PAYBACK_FACT] = payback.level
    for option in TRAINING_OPTIONS:
        levels[COMPUTE_FACT.format(option)] = compute.options.get(option, "not_assessed")
        plan = compute.plans.get(option)
        levels[HEADROOM_FACT.format(option)] = plan.headroom if plan else "not_assessed"
    return levels


def level_of(question: Question, value: Any, rubric: Rubric, licenses: dict[str, LicenseFinding] | None = None) -> str:
    if value is None or value == UNKNOWN:
        return UNKNOWN
    if question.type == "boolean":
        return "true" if value else "false"
    if question.type in ("integer", "number"):
        return _band(question.bands, value)
    if question.type == "license":
        finding = (licenses or {}).get(question.id) or classify_license(value, rubric.licenses)
        return finding.license_class
    return str(value)


def _band(bands, value: float) -> str:
    return next(band.level for band in bands if band.max is None or value <= band.max)


def economics(answers: Answers, params: EconomicsParams) -> Payback:
    """How many days of saved prompt tokens pay for training, by compute: a trained token costs
    `training_to_prompt_token_cost` prompt tokens (6N against 2N FLOPs per token on the same model)."""
    prompt, requests = answers.prompt_tokens, answers.requests_per_month
    if not prompt or not requests:
        return Payback(NOT_ASSESSED)
    if answers.dataset_tokens:
        tokens, basis = answers.dataset_tokens, f"{fmt_count(answers.dataset_tokens)} training tokens"
    elif answers.dataset_examples:
        tokens = answers.dataset_examples * params.tokens_per_example
        basis = (
            f"{fmt_count(tokens)} training tokens ({answers.dataset_examples:,} examples x an assumed "
            f"{params.tokens_per_example} tokens each)"
        )
    else:
        return Payback(NOT_ASSESSED)
    training = tokens * params.epochs * params.training_to_prompt_token_cost
    saved_per_month = prompt * requests
    days = training / saved_per_month * DAYS_PER_MONTH
    text = (
        f"training on {basis} for {params.epochs:g} epochs costs the compute of {fmt_count(training)} prompt tokens; "
        f"the tuned model no longer sends {prompt:,} prompt tokens on each of {requests:,} requests a month "
        f"({fmt_count(saved_per_month)} tokens), so training pays back its compute in {_days(days)} "
        "(compute only: building the data, evaluating and hosting the tuned model come on top)"
    )
    return Payback(_band(params.payback_days, days), days, text)


def _days(days: float) -> str:
    if days < 1:
        return f"{24 * days:.1f} hours"
    return f"{days:,.0f} days" if days < 3650 else f"{days / 365:,.0f} years"


def matches(when: list[dict[str, list[str]]], levels: dict[str, str]) -> bool:
    """Any of the conditions holds; a condition holds when every fact it names is at a listed level."""
    return any(all(levels[fact] in allowed for fact, allowed in condition.items()) for condition in when)


def evaluate(
    answers: Answers,
    rubric: Rubric,
    *,
    compute: ComputeAssessment,
    versions: Versions,
    evidence: dict[str, str] | None = None,
    measured_conflicts: list[Conflict] | None = None,
    compute_alternatives: list[tuple[str, Any, ComputeAssessment]] | None = None,
) -> Assessment:
    """The full assessment: the verdict, its reasons, grades, remediation, conflicts, what would change it.

    `evidence` says which answers were measured (or looked up) rather than stated; `measured_conflicts`
    are the answers an inspection of the data contradicted (see `advisor.assessment.evidence`)."""
    verdict = decide(answers, rubric, compute)
    evidence = evidence if evidence is not None else dict.fromkeys(answers.stated(), "stated")
    criteria = _criteria(answers, rubric, verdict.levels)
    changes = what_would_change(answers, rubric, compute, verdict) + _compute_changes(
        answers, rubric, verdict, compute_alternatives or []
    )
    weak_or_open = [q for q in rubric.questions if q.id in _weak_or_open(rubric, verdict.levels)]
    rule_reasons = {
        rule.id: Reason(
            id=rule.id,
            text=_with_figures(rule.reason, rule.when, compute, verdict),
            sources=rule.sources,
            effects=rule.fit,
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
    gates = [_gate(rubric, gate, verdict, compute) for gate in verdict.gates]
    reasons = _decision_reasons(rubric, verdict, rule_reasons, gates)
    cautions = [
        Reason(id=c.id, text=_with_figures(c.text, c.when, compute, verdict), sources=c.sources)
        for c in rubric.cautions
        if matches(c.when, verdict.levels) and (c.decisions is None or verdict.decision in c.decisions)
    ]
    conflicts = [
        Conflict(
            id=c.id, fields=_questions_read(rubric, c.when), text=c.text, resolution=c.resolution, sources=c.sources
        )
        for c in rubric.conflicts
        if matches(c.when, verdict.levels)
    ] + list(measured_conflicts or [])
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
    steps = next_steps(answers, verdict.decision, verdict.primary, verdict.levels, gates, compute)
    cited = [*reasons, *cautions, *limits, *conflicts, *(r for o in options for r in o.reasons)]
    cited_ids = {s for item in [*cited, *gates, *remediation, *steps] for s in item.sources} | set(compute.sources)
    open_questions = [q.id for q in weak_or_open if verdict.levels[q.id] == UNKNOWN]
    return Assessment(
        decision=verdict.decision,
        primary=verdict.primary,
        summary=_summary(rubric, verdict),
        blockers=verdict.blockers,
        training_blockers=verdict.training_blockers,
        gates=gates,
        criteria=criteria,
        options=options,
        reasons=reasons,
        cautions=cautions,
        remediation=remediation,
        what_would_change=changes,
        next_steps=steps,
        confidence=confidence(rubric, verdict, open_questions, changes, conflicts, evidence),
        limits=limits,
        license=verdict.licenses.get("dataset_license"),
        base_model_license=verdict.licenses.get("base_model_license"),
        compute=compute,
        answers=answers,
        evidence=evidence,
        conflicts=conflicts,
        sources=[
            SourceRef(id=sid, **source.model_dump()) for sid, source in rubric.sources.items() if sid in cited_ids
        ],
        versions=versions,
    )


def what_would_change(
    answers: Answers, rubric: Rubric, compute: ComputeAssessment, verdict: Verdict
) -> list[WhatWouldChange]:
    """For every open, weak or gate-firing answer, each single alternative answer that changes the decision
    or the primary option, or lifts a training blocker without adding one."""
    changes = []
    blocking = set(verdict.training_blockers)
    for question in _to_revisit(rubric, verdict):
        current = verdict.levels[question.id]
        outcomes = []
        for level in rubric.levels(question):
            if level == current:
                continue
            value = representative_answer(question, level, rubric)
            other = decide(answers.model_copy(update={question.id: value}), rubric, compute)
            moved = (other.decision, other.primary) != (verdict.decision, verdict.primary)
            lifts = set(other.training_blockers) < blocking
            if moved or lifts:
                outcomes.append(
                    Outcome(
                        answer=value,
                        level=level,
                        decision=other.decision,
                        primary=other.primary,
                        training_blockers=other.training_blockers,
                    )
                )
        if outcomes:
            changes.append(
                WhatWouldChange(question=question.id, current=current, open=current == UNKNOWN, outcomes=outcomes)
            )
    return changes


def _compute_changes(
    answers: Answers, rubric: Rubric, verdict: Verdict, alternatives: list[tuple[str, Any, ComputeAssessment]]
) -> list[WhatWouldChange]:
    """What other hardware or a shorter sequence would change: each alternative compute answer, assessed again by
    the fit search (`compute_alternatives`), that moves the decision or the primary option or lifts a blocker."""
    blocking = set(verdict.training_blockers)
    found: dict[str, list[Outcome]] = {}
    for question, value, alternative in alternatives:
        other = decide(answers.model_copy(update={question: value}), rubric, alternative)
        if (other.decision, other.primary) != (verdict.decision, verdict.primary) or set(
            other.training_blockers
        ) < blocking:
            found.setdefault(question, []).append(
                Outcome(
                    answer=value,
                    level=f"{value:g}",
                    decision=other.decision,
                    primary=other.primary,
                    training_blockers=other.training_blockers,
                )
            )
    budget = next((p.budget_bytes for p in _same_memory_plans(alternatives)), None)
    defaults = {"gpus": 1, "seq_len": 1024, "gpu_memory_gib": budget / (1 << 30) if budget is not None else 0}
    # Another GPU is a choice, not an unanswered question: these never count as open answers.
    return [
        WhatWouldChange(
            question=question,
            current=f"{getattr(answers, question) or defaults[question]:g}",
            open=False,
            outcomes=outcomes,
        )
        for question, outcomes in found.items()
    ]


def _same_memory_plans(alternatives: list[tuple[str, Any, ComputeAssessment]]):
    """The plans of the alternatives that kept the GPU's memory (more GPUs or a shorter sequence)."""
    for question, _, alternative in alternatives:
        if question != "gpu_memory_gib":
            yield from alternative.plans.values()


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
    """Scored and input questions left unknown, and scored answers graded below the weak threshold."""
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
    revisit |= {q for gate in verdict.gates for q in _questions_read(rubric, gate.when)}
    return [q for q in rubric.questions if q.id in revisit and q.role in ("scored", "input") and rubric.levels(q)]


def _questions_read(rubric: Rubric, when: list[dict[str, list[str]]]) -> list[str]:
    """The questions a condition reads, in questionnaire order (a licence term reads its licence question)."""
    named = {q for condition in when for fact in condition for q in rubric.questions_of(fact)}
    return [q.id for q in rubric.questions if q.id in named]


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


def _gate(rubric: Rubric, gate: GateDef, verdict: Verdict, compute: ComputeAssessment) -> Gate:
    level = verdict.levels.get(gate.question) or next(verdict.levels[f] for c in gate.when for f in c)
    return Gate(
        id=gate.id,
        question=gate.question,
        level=level,
        blocks=gate.blocks,
        reason=_with_figures(gate.reason, gate.when, compute, verdict),
        remediation=gate.remediation,
        sources=gate.sources,
    )


def _with_figures(text: str, when: list[dict[str, list[str]]], compute: ComputeAssessment, verdict: Verdict) -> str:
    """A reason with the figures behind the facts it reads: the estimator's for compute facts, the payback
    of a cost motive, and how a licence's terms were read."""
    facts = dict.fromkeys(fact for condition in when for fact in condition)
    options = [fact.split(".", 1)[1] for fact in facts if fact.startswith(COMPUTE_FACT.format(""))]
    figures = [compute.option_details[option] for option in options if option in compute.option_details]
    if PAYBACK_FACT in facts and verdict.payback.text:
        figures.append(verdict.payback.text)
    read = dict.fromkeys(fact.split(".")[0] for fact in facts if "." in fact and fact.split(".")[0] in verdict.licenses)
    figures += [verdict.licenses[question].explanation for question in read]
    return f"{text} Estimated: {'; '.join(figures)}." if figures else text


def _summary(rubric: Rubric, verdict: Verdict) -> str:
    template = rubric.decision.summaries[verdict.decision]
    return template.format(
        primary=verdict.primary,
        primary_label=rubric.options[verdict.primary].label,
        blockers=", ".join(verdict.blockers) or "none",
    )


def decision_margin(rubric: Rubric, verdict: Verdict) -> float:
    """How far the decision is from flipping, in fit points (see `Confidence.margin`)."""
    best_alternative = max(fit for option, fit in verdict.fits.items() if option not in TRAINING_OPTIONS)
    bar = best_alternative + rubric.decision.training_margin
    if verdict.decision == "use_alternative":
        return round(bar - max(verdict.fits[option] for option in TRAINING_OPTIONS), 2)
    return round(verdict.fits[verdict.primary] - bar, 2)


def confidence(
    rubric: Rubric,
    verdict: Verdict,
    open_questions: list[str],
    changes: list[WhatWouldChange],
    conflicts: list[Conflict],
    evidence: dict[str, str],
) -> Confidence:
    """The first confidence level whose thresholds the assessment meets, capped when a decision to train
    rests on data answers the team stated but nobody measured."""
    scored = [q for q in rubric.questions if q.role == "scored"]
    total = sum(q.weight for q in scored)
    answered = [q for q in scored if verdict.levels[q.id] != UNKNOWN]
    coverage = round(sum(q.weight for q in answered) / total, 2)
    margin = decision_margin(rubric, verdict)
    open_changes = [change.question for change in changes if change.open and _moves(change, verdict)]
    params = rubric.confidence
    level = next(
        (
            rule.level
            for rule in params.levels
            if margin >= rule.min_margin
            and coverage >= rule.min_coverage
            and len(open_changes) <= rule.max_open_changes
            and len(conflicts) <= rule.max_conflicts
        ),
        params.otherwise,
    )
    measured = [name for name, kind in evidence.items() if kind == "measured"]
    stated_data = [name for name in params.data_answers if evidence.get(name, "stated") != "measured"]
    capped = verdict.decision in TRAIN_DECISIONS and stated_data and _rank(level) > _rank(params.stated_data_caps_at)
    if capped:
        level = params.stated_data_caps_at
    parts = [
        f"the decision is {margin:g} fit points from flipping",
        f"{len(answered)} of {len(scored)} scored questions answered ({coverage:.0%} of the weight)",
        (
            f"open answers that alone could change the decision: {', '.join(open_changes)}"
            if open_changes
            else "no open answer alone could change the decision"
        ),
    ]
    if conflicts:
        parts.append(
            f"{len(conflicts)} conflict{'s' * (len(conflicts) > 1)} between answers: "
            + ", ".join(c.id for c in conflicts)
        )
    if capped:
        parts.append(
            f"capped at {level}: the data answers ({', '.join(stated_data)}) are stated, not measured; "
            + (
                "the inspected data does not settle them (a scan cannot see clearance or consent, and a card "
                "without a licence proves none): keep the evidence for them on file"
                if measured
                else "run advisor inspect-data on the dataset"
            )
        )
    elif measured:
        parts.append(f"measured from the data: {', '.join(measured)}")
    return Confidence(
        level=level,
        margin=margin,
        coverage=coverage,
        open_questions=open_questions,
        open_changes=open_changes,
        conflicts=len(conflicts),
        measured=measured,
        basis="; ".join(parts),
    )


def _moves(change: WhatWouldChange, verdict: Verdict) -> bool:
    return any((o.decision, o.primary) != (verdict.decision, verdict.primary) for o in change.outcomes)


def _rank(level: str) -> int:
    return CONFIDENCE_ORDER.index(level)
