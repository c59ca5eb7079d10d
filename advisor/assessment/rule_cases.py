"""Per-rule cases as data, as sqlfluff keeps its rule fixtures: answers in, whether a rule fires, its effect.

`rubrics/cases/<family>.yaml` holds, for every rule, gate, caution and conflict of the rubric,
answers that make it fire and answers that do not, with the effect a firing must
have: the options a rule raises and lowers (measured by running the engine with and
without the rule), the training options a gate blocks, and optionally the decision
and primary option the answers lead to. The cases are the specification a domain
expert writes; the rubric is what implements it. `advisor rubric validate` and the
tests run them through one loader, and the worked examples in `examples/expected.yaml`
beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import FieldIssue, InvalidFile, InvalidInput, invalid_input
from ..files import load_mapping
from .contract import ComputeAssessment, ComputePlan, ComputeStatus, Decision, OptionId, TrainingOption
from .engine import decide, matches
from .rubric import Rubric

CASES_FOLDER = "cases"
MAX_CASE_FILE_BYTES = 256 * 1024


class RuleCase(BaseModel):
    """One application of one rule, gate or caution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str = Field(description="The id of a rule, gate, caution or conflict in the rubric.")
    why: str = Field(description="What the case shows, in a sentence.")
    answers: dict[str, Any] = Field(default_factory=dict, description="The answers (an Answers mapping).")
    compute: dict[TrainingOption, ComputeStatus] = Field(
        default_factory=dict, description="Compute feasibility facts; options left out are not_assessed."
    )
    headroom: dict[TrainingOption, Literal["comfortable", "tight", "does_not_fit", "not_assessed"]] = Field(
        default_factory=dict, description="The fit search's headroom per option (compute_headroom facts)."
    )
    fires: bool = Field(description="Whether the rule matches these answers (a caution: whether it is shown).")
    raises: list[OptionId] = Field(default_factory=list, description="Options whose fit the rule raises here.")
    lowers: list[OptionId] = Field(default_factory=list, description="Options whose fit the rule lowers here.")
    blocks: list[TrainingOption] = Field(default_factory=list, description="Training options a gate blocks here.")
    decision: Decision | None = Field(default=None, description="The decision these answers lead to, when stated.")
    primary: OptionId | None = Field(default=None, description="The primary option these answers lead to, when stated.")


class CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str = Field(description="The family of rules the file covers, in a few words.")
    cases: list[RuleCase] = Field(min_length=1)


@dataclass(frozen=True)
class LoadedCase:
    file: str  # the file's name, e.g. stability.yaml
    index: int  # position in the file, from 0
    case: RuleCase

    @property
    def where(self) -> str:
        return f"cases.{self.file}.{self.index}"

    @property
    def name(self) -> str:
        outcome = "fires" if self.case.fires else "quiet"
        return f"{self.file.removesuffix('.yaml')}[{self.index}] {self.case.rule}: {outcome}"


def cases_folder(rubric_path: Path) -> Path:
    return rubric_path.parent / CASES_FOLDER


def load_cases(folder: Path) -> list[LoadedCase]:
    """Every case of every `*.yaml` file in `folder`, in file order; raises InvalidFile naming a malformed one."""
    loaded = []
    for path in sorted(folder.glob("*.yaml")):
        data = load_mapping(path, field="rubric.cases", limit=MAX_CASE_FILE_BYTES)
        try:
            parsed = CaseFile.model_validate(data)
        except ValidationError as exc:
            err = invalid_input(exc, what=f"rule cases {path}", prefix=f"cases.{path.name}")
            raise InvalidFile(err.message, fields=err.fields) from None
        loaded += [LoadedCase(path.name, i, case) for i, case in enumerate(parsed.cases)]
    return loaded


def case_problems(rubric: Rubric, cases: list[LoadedCase]) -> list[FieldIssue]:
    """Every case that fails, and every rule, gate or caution without a case that fires and one that does not."""
    problems = [FieldIssue(field=c.where, message=message) for c in cases for message in check_case(rubric, c.case)]
    for kind, items in _items(rubric):
        for item in items:
            outcomes = {c.case.fires for c in cases if c.case.rule == item.id}
            for fires, word in ((True, "fires"), (False, "does not fire")):
                if fires not in outcomes:
                    problems.append(FieldIssue(field=f"{kind}.{item.id}", message=f"no rule case where it {word}"))
    return problems


def check_case(rubric: Rubric, case: RuleCase) -> list[str]:
    """What is wrong with one case against the rubric and the engine; empty when it holds."""
    from .service import looked_up, parse_answers

    kind = _kind(rubric, case.rule)
    if kind is None:
        return [f"no rule, gate, caution or conflict {case.rule!r} in the rubric"]
    try:
        answers, _ = looked_up(parse_answers(case.answers, rubric=rubric), rubric)
    except InvalidInput as exc:
        return [f"invalid answers: {exc}"]
    compute = ComputeAssessment(
        status="assessed" if case.compute else "not_assessed",
        reason="rule case",
        options={option: case.compute.get(option, "not_assessed") for option in ("lora", "qlora", "full_finetune")},
        plans={
            option: ComputePlan(
                headroom=level, settings={}, budget_bytes=0, max_micro_batch=0, max_seq=0, grad_accumulation=1
            )
            for option, level in case.headroom.items()
        },
    )
    verdict = decide(answers, rubric, compute)
    problems = []
    fired = _fired(rubric, kind, case.rule, verdict)
    if fired != case.fires:
        problems.append(f"{case.rule} {'fires' if fired else 'does not fire'}, but the case says it {_says(case)}")
    if kind == "rules" and case.fires and fired:
        others = [r for r in rubric.rules if r.id != case.rule]
        without = decide(answers, rubric.model_copy(update={"rules": others}), compute)
        moved = {option: verdict.fits[option] - without.fits[option] for option in verdict.fits}
        raised = sorted(o for o, d in moved.items() if d > 0)
        lowered = sorted(o for o, d in moved.items() if d < 0)
        if not case.raises and not case.lowers:
            problems.append("a case where a rule fires must say which options it raises or lowers")
        if sorted(case.raises) != raised or sorted(case.lowers) != lowered:
            problems.append(
                f"{case.rule} raises {raised or 'nothing'} and lowers {lowered or 'nothing'} here, "
                f"but the case says raises {sorted(case.raises) or 'nothing'}, "
                f"lowers {sorted(case.lowers) or 'nothing'}"
            )
    if kind == "gates" and case.fires and fired:
        gate = next(g for g in rubric.gates if g.id == case.rule)
        if sorted(gate.blocks) != sorted(case.blocks):
            problems.append(f"{case.rule} blocks {sorted(gate.blocks)}, but the case says {sorted(case.blocks)}")
    if (case.raises or case.lowers) and kind != "rules" or case.blocks and kind != "gates":
        problems.append(f"{case.rule} is a {kind[:-1]}: raises and lowers are for rules, blocks for gates")
    if case.decision is not None and verdict.decision != case.decision:
        problems.append(f"the decision is {verdict.decision}, but the case says {case.decision}")
    if case.primary is not None and verdict.primary != case.primary:
        problems.append(f"the primary option is {verdict.primary}, but the case says {case.primary}")
    return problems


def _items(rubric: Rubric):
    return (
        ("rules", rubric.rules),
        ("gates", rubric.gates),
        ("cautions", rubric.cautions),
        ("conflicts", rubric.conflicts),
    )


def _kind(rubric: Rubric, item_id: str) -> str | None:
    for kind, items in _items(rubric):
        if any(item.id == item_id for item in items):
            return kind
    return None


def _fired(rubric: Rubric, kind: str, item_id: str, verdict) -> bool:
    if kind == "rules":
        return any(rule.id == item_id for rule in verdict.rules)
    if kind == "gates":
        return any(gate.id == item_id for gate in verdict.gates)
    if kind == "conflicts":
        return matches(next(c for c in rubric.conflicts if c.id == item_id).when, verdict.levels)
    caution = next(c for c in rubric.cautions if c.id == item_id)
    shown_for = caution.decisions or [verdict.decision]
    return matches(caution.when, verdict.levels) and verdict.decision in shown_for


def _says(case: RuleCase) -> str:
    return "fires" if case.fires else "does not"
