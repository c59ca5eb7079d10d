"""The rubric as data: its schema, its loader, and the validator that keeps data and engine in step.

`load_rubric()` reads `rubrics/lora_fit.yaml` (and the license table it names),
checks its shape with pydantic and its meaning with `rubric_problems`, and refuses
a rubric that disagrees with the engine or the `Answers` contract in either
direction (`advisor rubric validate` prints the same findings).
"""

# Written for start-up like the contract's models: see the docstring of advisor/assessment/contract.py.

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from ..errors import FieldIssue, InvalidFile, invalid_input
from ..files import dumps_json, load_mapping, write_atomic
from ..package_data import data_dir
from .contract import (
    TRAINING_OPTIONS,
    ComputeStatus,
)
from .licenses import UNKNOWN, LicenseTable, load_license_table

RUBRIC_FILE = "lora_fit.yaml"
COMPILED_SUFFIX = ".compiled.json"
LICENSE_FIELDS = ("dataset_license", "base_model_license")
COMPUTE_FACT = "compute.{}"
# The fit search's headroom per training option (comfortable, tight, does_not_fit, not_assessed), for cautions.
HEADROOM_FACT = "compute_headroom.{}"
HEADROOM_LEVELS = ("comfortable", "tight", "does_not_fit", "not_assessed")
BASE_MODEL_NAMED = "base_model.named"
PAYBACK_FACT = "economics.payback"
NOT_ASSESSED = "not_assessed"
# Facts the engine derives from answers, and the answers each is derived from.
DERIVED_FROM = {
    BASE_MODEL_NAMED: ("base_model",),
    PAYBACK_FACT: ("prompt_tokens", "requests_per_month", "dataset_tokens", "dataset_examples"),
}
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
        {
            fact: [_level_text(v) for v in levels] if isinstance(levels, list) else levels
            for fact, levels in item.items()
        }
        if isinstance(item, dict)
        else item
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
    checked: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="Last checked (YYYY-MM-DD).")


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
    choices: Levels = Field(default={}, description="Choice value -> short description.")
    bands: list[Band] = Field(default=[])
    readiness: Scores = Field(default={}, description="Answer level -> readiness grade 0-10 (not a decision input).")
    remediation: Levels = Field(default={})


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
    min_margin: float = Field(ge=0, le=10, description="The decision must be at least this far (in fit) from flipping.")
    min_coverage: float = Field(ge=0, le=1)
    max_open_changes: int = Field(ge=0)
    max_conflicts: int = Field(ge=0)


class ConfidenceParams(_Data):
    levels: list[ConfidenceRule]
    otherwise: str
    stated_data_caps_at: str = Field(
        description="The highest level of a decision to train while these data answers are stated, not measured."
    )
    data_answers: list[str] = Field(description="The answers a dataset inspection can measure.")


class ConflictDef(_Data):
    id: str
    when: When
    text: str
    resolution: str
    sources: SourceIds


class EconomicsParams(_Data):
    """The payback of training against the prompt tokens a tuned model no longer sends (a cost motive)."""

    training_to_prompt_token_cost: float = Field(
        gt=0, description="Compute of training on one token over prefilling one prompt token (6N / 2N FLOPs)."
    )
    epochs: float = Field(gt=0, description="Passes over the training set assumed.")
    tokens_per_example: int = Field(gt=0, description="Tokens per example assumed when dataset_tokens is not given.")
    payback_days: list[Band] = Field(min_length=2, description="Levels of `economics.payback` by days to pay back.")
    sources: SourceIds


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
    conflicts: list[ConflictDef]
    economics: EconomicsParams
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
        """Everything a `when` may name, with its levels (`unknown` included): every question with levels, each
        term of a licence question (`dataset_license.share_alike`: true, false or unknown), whether a base model
        is named, the payback of a cost motive, and compute feasibility per training option."""
        facts = {q.id: [*self.levels(q), UNKNOWN] for q in self.questions if self.levels(q)}
        for q in self.questions:
            if q.type == "license":
                facts.update({f"{q.id}.{term}": ["true", "false", UNKNOWN] for term in self.licenses.terms})
        facts[BASE_MODEL_NAMED] = ["true", "false"]
        facts[PAYBACK_FACT] = [*(band.level for band in self.economics.payback_days), NOT_ASSESSED]
        for option in TRAINING_OPTIONS:
            facts[COMPUTE_FACT.format(option)] = list(get_args(ComputeStatus))
            facts[HEADROOM_FACT.format(option)] = list(HEADROOM_LEVELS)
        return facts

    @staticmethod
    def questions_of(fact: str) -> tuple[str, ...]:
        """The questions a fact reads: `dataset_license.share_alike` reads dataset_license; a derived fact reads
        the answers it is derived from."""
        return DERIVED_FROM.get(fact, (fact.split(".")[0],))

    @property
    def version_label(self) -> str:
        return f"{self.id} {self.version}"


def default_rubric_path() -> Path:
    return data_dir("rubrics") / RUBRIC_FILE


def compiled_path(path: Path) -> Path:
    """Where a rubric's compiled form sits: `lora_fit.yaml` -> `lora_fit.compiled.json`, beside it."""
    return path.with_name(f"{path.stem}{COMPILED_SUFFIX}")


def load_rubric(path: str | Path | None = None) -> Rubric:
    """The rubric at `path` (default: the shipped one), validated; raises InvalidFile naming every problem."""
    resolved = Path(path).resolve() if path is not None else default_rubric_path()
    return _load_rubric(resolved)


def compile_rubric(path: str | Path | None = None) -> Path:
    """Validate the rubric at `path` and write its compiled form beside it (what `advisor rubric compile` runs).

    The compiled form is the validated rubric as JSON with the SHA-256 of each file it was read from.
    `load_rubric` uses it while those files are unchanged: parsing the YAML costs more than the whole rest of
    an assessment (`bench/cold_start.py`), reading JSON almost nothing. It is checked against the engine at
    every load all the same, so an engine that changed since it was compiled still refuses what it must."""
    resolved = Path(path).resolve() if path is not None else default_rubric_path()
    rubric = _from_yaml(resolved)
    inputs = {name: _digest(resolved.parent / name) for name in (resolved.name, rubric.license_table)}
    compiled = {"inputs": inputs, "rubric": rubric.model_dump(mode="json")}
    return write_atomic(compiled_path(resolved), dumps_json(compiled), force=True, field="rubric")


@cache
def _load_rubric(path: Path) -> Rubric:
    rubric = _from_compiled(path) or _from_yaml(path)
    from .rubric_check import rubric_problems

    problems = rubric_problems(rubric)
    if problems:
        raise InvalidFile(
            f"rubric {path} disagrees with the engine ({len(problems)} problem{'s' * (len(problems) > 1)})",
            fields=problems,
        )
    return rubric


def _from_yaml(path: Path) -> Rubric:
    data = load_mapping(path, field="rubric", limit=MAX_RUBRIC_BYTES)
    table_name = data.get("license_table")
    if not isinstance(table_name, str):
        raise InvalidFile(
            f"{path}: license_table must name the license table file",
            fields=[
                FieldIssue(
                    field="rubric.license_table", message="required: a file name next to the rubric, e.g. licenses.yaml"
                )
            ],
        )
    table = load_license_table((path.parent / table_name).resolve())
    try:
        return Rubric.model_validate({**data, "licenses": table})
    except ValidationError as exc:
        err = invalid_input(exc, what=f"rubric {path}", prefix="rubric")
        raise InvalidFile(err.message, fields=err.fields) from None


def _from_compiled(path: Path) -> Rubric | None:
    """The rubric from its compiled form, when that was compiled from the files as they are now; else None
    (and the YAML is read, and its problems reported, as if there were no compiled form)."""
    try:
        compiled = json.loads(compiled_path(path).read_bytes())
        inputs = compiled["inputs"]
        if path.name not in inputs or any(_digest(path.parent / name) != digest for name, digest in inputs.items()):
            return None
        return Rubric.model_validate(compiled["rubric"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError):  # ValidationError is a ValueError
        return None


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
