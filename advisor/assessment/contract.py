"""The contracts every door shares: what a team tells the advisor (`Answers`) and
what it gets back (`Assessment`).

Field names and enumerations here are the stable, agent-facing contract; the
descriptions become the JSON Schema that agents read (`advisor questions --json`).
Judgement (scores, weights, thresholds, wording) lives in `rubrics/`, not here.

Every `advisor assess` builds these models at start-up, so the model modules of the
assessment are written for it (bench/cold_start.py): no `from __future__ import
annotations` (pydantic would evaluate each annotation from its string), and empty
defaults written as `[]` or `{}` (pydantic copies them for each instance), as a
`default_factory=list` costs an `inspect.signature` call per field.
"""

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..dataset.contract import DatasetReport
from ..estimate.settings import MAX_BATCH, MAX_GPUS, MAX_SEQ
from .licenses import LicenseFinding

ChangeKind = Literal["style", "format", "behavior", "skill", "knowledge", "actions", "unknown"]
Imitates = Literal["person", "character", "brand_or_asset", "none", "unknown"]
Stability = Literal["stable", "evolving", "volatile", "unknown"]
ContextTried = Literal["not_tried", "works", "partly_works", "fails", "unknown"]
DatasetQuality = Literal["curated", "mixed", "raw", "unknown"]
Privacy = Literal["no_personal_data", "personal_data_cleared", "personal_data_uncleared", "unknown"]
ServingMode = Literal["merged", "separate_adapters", "runtime_switching", "unknown"]
EvalSet = Literal["none", "generic", "production_like", "unknown"]
Motive = Literal["behavior", "cost", "latency", "unknown"]
DataProvenance = Literal[
    "human_written",
    "production_logs",
    "licensed_third_party",
    "web_scraped",
    "closed_model_outputs",
    "open_model_outputs",
    "mixed",
    "unknown",
]


def _unknown_is_none(value):
    """`unknown` is a valid answer to every question; a number or yes/no that is unknown is stored as null."""
    return None if value == "unknown" else value


# Upper bounds no real team reaches, so every door refuses a typo or an absurd size with the field's name:
# a trillion training examples is past any set a team can review or train on; a million adapters from one base
# model is past any published serving system (S-LoRA serves thousands per GPU); a latency budget over a day is
# not a latency budget; 4 TiB per GPU is over ten times the largest GPU memory shipping (H200 141 GB, B200
# 192 GB), so a bigger figure is a cluster's total or a typo. GPUs, batch and sequence length are bounded as the
# estimator bounds them (`TrainingSettings`), so compute feasibility never refuses what the contract accepted.
MAX_DATASET_EXAMPLES = 10**12
MAX_ADAPTERS = 10**6
MAX_LATENCY_BUDGET_MS = 24 * 3600 * 1000
MAX_GPU_MEMORY_GIB = 4096
# Prompts, traffic and training sets past any context window, service or corpus in use (10M tokens per request,
# ten trillion requests or a hundred trillion tokens).
MAX_PROMPT_TOKENS = 10**7
MAX_REQUESTS_PER_MONTH = 10**13
MAX_DATASET_TOKENS = 10**14

# Numbers and yes/no answers accept the string `unknown` too (the schema says so), stored as null; a number's
# bounds apply to the number itself.
Unknown = Literal["unknown"]


def _count(low: int, high: int):
    return Annotated[Annotated[int, Field(ge=low, le=high)] | Unknown | None, AfterValidator(_unknown_is_none)]


def _amount(high: float):
    number = Annotated[float, Field(gt=0, le=high, allow_inf_nan=False)]
    return Annotated[number | Unknown | None, AfterValidator(_unknown_is_none)]


def _catalog_gpu(value):
    """A GPU named in the hardware catalog (id or alias, any case), stored as its id; read only when one is given."""
    if value is None or value == "unknown":
        return None
    from ..plan.hardware import load_hardware, resolve_gpu

    try:
        return resolve_gpu(value).id
    except Exception:
        raise ValueError(f"not in the hardware catalog; one of: {', '.join(load_hardware())}") from None


ExampleCount = _count(0, MAX_DATASET_EXAMPLES)
PromptTokens = _count(0, MAX_PROMPT_TOKENS)
RequestCount = _count(0, MAX_REQUESTS_PER_MONTH)
TokenCount = _count(0, MAX_DATASET_TOKENS)
AdapterCount = _count(1, MAX_ADAPTERS)
GpuCount = _count(1, MAX_GPUS)
BatchSize = _count(1, MAX_BATCH)
SeqLen = _count(1, MAX_SEQ)
LatencyMs = _amount(MAX_LATENCY_BUDGET_MS)
# 0 GiB describes a machine with no accelerator (CPU only): nothing is planned on it, and it says so.
GpuMemoryGiB = Annotated[
    Annotated[float, Field(ge=0, le=MAX_GPU_MEMORY_GIB, allow_inf_nan=False)] | Unknown | None,
    AfterValidator(_unknown_is_none),
]
YesNo = Annotated[bool | Unknown | None, AfterValidator(_unknown_is_none)]

Decision = Literal["recommend_lora", "recommend_full_finetune", "use_alternative", "not_ready"]
OptionId = Literal["lora", "qlora", "full_finetune", "retrieval", "prompting", "tool_access", "targeted_evals"]
TrainingOption = Literal["lora", "qlora", "full_finetune"]
ComputeStatus = Literal["fits", "does_not_fit", "not_assessed"]
ConfidenceLevel = Literal["high", "medium", "low"]

TRAINING_OPTIONS: tuple[str, ...] = TrainingOption.__args__
# The decisions that say to train now: an adapter (LoRA or QLoRA is primary) or every weight (full fine-tuning).
TRAIN_DECISIONS: tuple[str, ...] = ("recommend_lora", "recommend_full_finetune")
# Each training option is one of the estimator's methods (`TrainingSettings.method`).
OPTION_METHOD: dict[str, str] = {"lora": "lora", "qlora": "qlora", "full_finetune": "full"}


class Answers(BaseModel):
    """A team's situation. Every field is optional: a missing field (or `unknown`) means
    "not known yet", which lowers confidence and never fails the assessment."""

    model_config = ConfigDict(extra="forbid", title="Answers")

    goal: str | None = Field(
        default=None,
        max_length=2000,
        description=(
            "Free text: what the adapted model should do better, in a sentence or two. Echoed in reports, never scored."
        ),
    )
    change_kind: ChangeKind | None = Field(
        default=None,
        description=(
            "What must change: style (tone or voice), format (output structure), behavior (policies and "
            "instruction patterns), skill (a new task capability), knowledge (facts and documents the model must "
            "know), actions (fetching live data or acting on systems)."
        ),
    )
    motive: Motive | None = Field(
        default=None,
        description=(
            "Why train: behavior (the model must do something it does not do reliably), cost (a prompt that works "
            "costs too many tokens per request), latency (a smaller or faster model must do what a larger one does)."
        ),
    )
    imitates: Imitates | None = Field(
        default=None,
        description=(
            "Whether the adapted model is meant to reproduce a specific person's voice or style, a character, or a "
            "brand or other asset (none if not). Such claims need their own dataset, licensing and model-card evidence."
        ),
    )
    person_consent: YesNo = Field(
        default=None,
        description=(
            "When the model imitates a specific person: whether that person's consent to training on their voice or "
            "style is documented (scope, duration, how to withdraw it)."
        ),
    )
    stability: Stability | None = Field(
        default=None,
        description=(
            "How long the target behavior holds: stable (months), evolving (changes every few weeks), "
            "volatile (changes daily or per request)."
        ),
    )
    context_tried: ContextTried | None = Field(
        default=None,
        description=(
            "What happened when the behavior was supplied in context (prompts, few-shot examples, retrieval): "
            "not_tried, works, partly_works, fails."
        ),
    )
    prompt_tokens: PromptTokens = Field(
        default=None,
        description=(
            "Tokens of instructions and examples sent with every request today (what a tuned model would no longer "
            "need), for a cost motive."
        ),
    )
    requests_per_month: RequestCount = Field(
        default=None, description="Requests the model serves a month, for a cost motive."
    )
    tools_available: YesNo = Field(
        default=None,
        description=(
            "For actions: whether the model already has the tools (function calling) it needs, so what fails is "
            "calling them, not having them."
        ),
    )
    dataset_examples: ExampleCount = Field(
        default=None,
        description="How many training examples of the target behavior exist (input and desired output pairs).",
    )
    dataset_tokens: TokenCount = Field(
        default=None,
        description=(
            "Tokens in the training set, all examples together (advisor inspect-data measures it). Full fine-tuning "
            "pays off at continued-pretraining scale, hundreds of millions of tokens and more."
        ),
    )
    dataset_quality: DatasetQuality | None = Field(
        default=None,
        description=(
            "curated (reviewed, consistent, representative), mixed (partly reviewed), raw (logs or scraped, "
            "unreviewed)."
        ),
    )
    data_provenance: DataProvenance | None = Field(
        default=None,
        description=(
            "Where the training data comes from: human_written, production_logs, licensed_third_party, web_scraped, "
            "closed_model_outputs (generated by a vendor's model such as GPT or Claude), open_model_outputs "
            "(generated by an open-weight model), mixed."
        ),
    )
    dataset_license: str | None = Field(
        default=None,
        max_length=500,
        description=(
            "The training data's license: an SPDX expression (Apache-2.0, MIT OR CC-BY-4.0), a LicenseRef-... "
            "(LicenseRef-Proprietary for your own data, LicenseRef-Contract for data licensed under a contract), a "
            "Hugging Face card id (cc-by-nc-4.0, llama3.1, openrail), or unknown. Normalized to canonical SPDX on "
            "input."
        ),
    )
    commercial_use: YesNo = Field(
        default=None,
        description=(
            "Whether the adapted model will be used commercially (a product, a paid service, internal business use)."
        ),
    )
    privacy: Privacy | None = Field(
        default=None,
        description=(
            "Personal data in the training set: no_personal_data, personal_data_cleared (consent or legal "
            "basis documented), personal_data_uncleared."
        ),
    )
    serving_mode: ServingMode | None = Field(
        default=None,
        description=(
            "How the adapter will be served: merged (weights merged into the base), separate_adapters (base plus "
            "adapter loaded side by side), runtime_switching (many adapters swapped or mixed per request)."
        ),
    )
    adapters: AdapterCount = Field(default=None, description="How many adapters will be served from one base model.")
    latency_budget_ms: LatencyMs = Field(
        default=None,
        description="End-to-end latency budget per request, in milliseconds.",
    )
    eval_set: EvalSet | None = Field(
        default=None,
        description=(
            "The evaluation set: none, generic (public benchmarks or ad hoc checks), production_like "
            "(measures the actual production task)."
        ),
    )
    baseline_measured: YesNo = Field(
        default=None,
        description=(
            "Whether the current system (base model with the best prompt) has been measured on that evaluation set."
        ),
    )
    base_model: str | None = Field(
        default=None,
        max_length=500,
        description=(
            "The model to adapt: a catalog id, a config.json path or a model folder. Used by compute feasibility."
        ),
    )
    base_model_license: str | None = Field(
        default=None,
        max_length=500,
        description=(
            "The base model's own licence, as for dataset_license (Apache-2.0, llama3.1, gemma, qwen-research, ...). "
            "Filled from advisor's model catalog for a catalog base_model when not given."
        ),
    )
    gpu: Annotated[str | None, AfterValidator(_catalog_gpu)] = Field(
        default=None,
        max_length=100,
        description=(
            "The GPU by name from advisor's hardware catalog (h100-sxm, a100-80gb, rtx-4090, l4, t4, mi300x, "
            "apple-m3-max, cpu, ...; `advisor gpus` lists them): its memory, throughput and indicative price. Used by "
            "compute feasibility; gpu_memory_gib, when given too, overrides its memory."
        ),
    )
    gpu_memory_gib: GpuMemoryGiB = Field(
        default=None,
        description="Memory per GPU in GiB (0: CPU only, no accelerator). Used by compute feasibility.",
    )
    gpus: GpuCount = Field(
        default=None, description="Number of GPUs available for training. Used by compute feasibility."
    )
    batch_size: BatchSize = Field(
        default=None, description="Training micro-batch size per GPU. Used by compute feasibility."
    )
    seq_len: SeqLen = Field(
        default=None, description="Training sequence length in tokens. Used by compute feasibility."
    )

    def stated(self) -> list[str]:
        """The fields the team gave a value, in the contract's order (`model_fields_set` is a set: its order
        changes from one process to the next, and JSON output must not)."""
        return [
            name
            for name in type(self).model_fields
            if name in self.model_fields_set and getattr(self, name) is not None
        ]


class ComputePlan(BaseModel):
    """One training option's recipe from the fit search, with its headroom, time and cost."""

    headroom: Literal["comfortable", "tight", "does_not_fit", "not_assessed"] = Field(
        description="comfortable (up to 90% of memory), tight (90-100%) or does_not_fit."
    )
    settings: dict[str, Any] = Field(description="The recipe as TrainingSettings fields (advisor estimate replays it).")
    changes: list[str] = Field(default=[], description="What the search changed from the starting recipe, and why.")
    needed_bytes: int | None = Field(default=None, description="Peak tensors + CUDA context + allocator slack per GPU.")
    budget_bytes: int = Field(description="Memory per GPU planned against.")
    max_micro_batch: int = Field(description="Largest micro-batch that fits (0: none).")
    max_seq: int = Field(description="Longest sequence that fits at the recipe's micro-batch (0: none).")
    grad_accumulation: int = Field(description="Micro-steps per optimizer step.")
    hours: float | None = Field(default=None, description="Predicted wall-clock hours, when the data size is known.")
    hours_low: float | None = Field(default=None, description="Low end of the time range (calibration's best case).")
    hours_high: float | None = Field(default=None, description="High end of the time range (its worst case).")
    gpu_hours: float | None = Field(default=None, description="Hours x GPUs.")
    cost_usd: float | None = Field(default=None, description="GPU hours x the GPU's indicative price, when known.")


class ComputeAssessment(BaseModel):
    """Whether the training options fit the hardware described in the answers.

    Produced by `advisor.assessment.compute.assess_compute`; the rubric's rules and gates read
    `options` as the facts `compute.lora`, `compute.qlora` and `compute.full_finetune`.
    """

    status: Literal["assessed", "not_assessed"] = Field(
        description="assessed when base_model and gpu_memory_gib were given and the estimator ran; else not_assessed."
    )
    reason: str = Field(description="Why it was or was not assessed, in one sentence.")
    options: dict[TrainingOption, ComputeStatus] = Field(
        description="Per training option: fits, does_not_fit or not_assessed."
    )
    details: list[str] = Field(
        default=[], description="Readable lines behind the verdict (memory needed vs. available, ...)."
    )
    option_details: dict[TrainingOption, str] = Field(
        default={},
        description="Per training option, the estimate in a few words (memory needed of memory available).",
    )
    sources: list[str] = Field(default=[], description="Source ids behind the figures.")
    gpu: str | None = Field(default=None, description="The hardware catalog id planned on, when the GPU was named.")
    plans: dict[TrainingOption, ComputePlan] = Field(
        default={}, description="Per training option, the recipe the fit search found (advisor fit), when assessed."
    )


class NextStep(BaseModel):
    """One concrete thing to do next."""

    kind: Literal["data", "eval", "recipe", "serving", "alternative", "blocker"] = Field(
        description="data preparation, evaluation plan, recipe to launch, serving, an alternative's step, a blocker."
    )
    text: str = Field(description="The step, ready to hand to an engineer.")
    command: str | None = Field(
        default=None, description="The command line the step runs (arguments shell-quoted), when it has one."
    )
    sources: list[str] = Field(description="Source ids; see `Assessment.sources`.")


class Reason(BaseModel):
    """One piece of the argument, with the sources it stands on."""

    id: str = Field(description="The rule, gate or caution id in the rubric.")
    text: str = Field(description="The reason in one sentence.")
    sources: list[str] = Field(description="Source ids; see `Assessment.sources`.")
    effects: dict[OptionId, float] = Field(default={}, description="How this rule moved each option's fit.")


class QuestionScore(BaseModel):
    question: str = Field(description="The question id (an Answers field).")
    answer: str | int | float | bool | None = Field(
        description="The answer as given (canonical), or null when unknown."
    )
    level: str = Field(description="The answer's level in the rubric (a band for numbers); `unknown` when unanswered.")
    score: float | None = Field(description="Readiness grade 0-10, or null when unanswered (never 0 for unknown).")
    weak: bool = Field(description="Graded below the rubric's weak threshold: its remediation is listed.")


class CriterionScore(BaseModel):
    """One of the article's criteria and how ready the answers make it. Readiness informs; rules and gates decide."""

    id: str = Field(description="The criterion id in the rubric.")
    title: str = Field(description="The criterion, as the article asks it.")
    score: float | None = Field(
        description="Readiness 0-10: the weighted mean of its answered questions' grades; null when none is answered."
    )
    questions: list[QuestionScore] = Field(description="The scored questions of this criterion.")


class OptionFit(BaseModel):
    option: OptionId = Field(description="The option id.")
    label: str = Field(description="The option's readable name.")
    training: bool = Field(description="A training option (gates apply to these only).")
    fit: float = Field(description="0-10: the option's base plus the effects of every rule that matched.")
    blocked_by: list[str] = Field(description="Question ids of the gates that block this option.")
    reasons: list[Reason] = Field(description="The rules that moved this option's fit, with their effects.")


class Gate(BaseModel):
    """A gate that fired: an answer that blocks training until it is fixed."""

    id: str = Field(description="The gate id in the rubric.")
    question: str = Field(description="The question to fix (an Answers field).")
    level: str = Field(description="The answer level that triggered the gate.")
    blocks: list[TrainingOption] = Field(description="The training options it blocks.")
    reason: str = Field(description="Why it blocks training.")
    remediation: str = Field(description="What to do to lift it.")
    sources: list[str] = Field(description="Source ids; see `Assessment.sources`.")


class Remediation(BaseModel):
    """What to do about one open or weak answer."""

    question: str = Field(description="The question (an Answers field).")
    level: str = Field(description="The current answer level (`unknown` when open).")
    score: float | None = Field(description="Its 0-10 score; null when open.")
    text: str = Field(description="What to do about it.")
    sources: list[str] = Field(description="Source ids behind the question.")


class Outcome(BaseModel):
    """Where a different answer would lead."""

    answer: str | int | float | bool = Field(description="The alternative answer (a representative value for a band).")
    level: str = Field(description="The level of that answer.")
    decision: Decision = Field(description="The decision it would give.")
    primary: OptionId = Field(description="The primary option it would give.")
    training_blockers: list[str] = Field(
        default=[], description="The questions that would still block training after this change."
    )


class WhatWouldChange(BaseModel):
    question: str = Field(description="An open, weak or blocking question.")
    current: str = Field(description="The current level (`unknown` for an open question).")
    open: bool = Field(description="True when the question is unanswered.")
    outcomes: list[Outcome] = Field(
        description=(
            "Each single change of this answer that changes the decision or the primary option, or lifts a "
            "training blocker without adding one."
        )
    )

    def grouped(self) -> list[tuple[list[str], Outcome]]:
        """The outcomes with the same decision, primary and blockers together: (their levels, one of them)."""
        groups: dict[tuple, tuple[list[str], Outcome]] = {}
        for o in self.outcomes:
            key = (o.decision, o.primary, tuple(o.training_blockers))
            groups.setdefault(key, ([], o))[0].append(o.level)
        return list(groups.values())


class Confidence(BaseModel):
    level: ConfidenceLevel = Field(description="high, medium or low, by the rubric's confidence thresholds.")
    margin: float = Field(
        description=(
            "How far the decision is from flipping, in fit points: the primary training option's fit above the bar "
            "the best alternative sets (training margin included), or for use_alternative, the bar above the best "
            "training option's fit."
        )
    )
    coverage: float = Field(description="Share of the scored questions' weight that is answered, 0-1.")
    open_questions: list[str] = Field(description="Scored or rule-input questions still unknown.")
    open_changes: list[str] = Field(description="Open questions whose answer alone could change the decision.")
    conflicts: int = Field(description="How many conflicts the answers hold (see `Assessment.conflicts`).")
    measured: list[str] = Field(
        description="The answers measured (from an inspection of the dataset) rather than stated by the team."
    )
    basis: str = Field(
        description="The confidence in words: the margin, coverage, open questions that matter, conflicts, evidence."
    )


class SourceRef(BaseModel):
    id: str = Field(description="The source id reasons cite.")
    title: str = Field(description="What the source is and what it says that the advisor uses.")
    kind: str = Field(description="article, article_fact, paper, vendor, documentation, standard or measurement.")
    url: str | None = Field(default=None, description="An https link, when the source is on the web.")
    arxiv: str | None = Field(default=None, description="The arXiv id of a paper.")
    secondary: bool = Field(description="Reported second-hand; say so when citing it.")
    checked: str | None = Field(default=None, description="When the source was last checked (YYYY-MM-DD).")


class Versions(BaseModel):
    advisor: str = Field(description="The advisor package version.")
    rubric: str = Field(description="`<rubric id> <rubric version>`.")
    license_table: str = Field(description="The license table version.")
    torch: str | None = Field(description="Installed version, or null when not installed (read without importing it).")
    transformers: str | None = Field(description="Installed version, or null.")
    peft: str | None = Field(description="Installed version, or null.")


Evidence = Literal["stated", "measured", "catalog"]


class Conflict(BaseModel):
    """Two things the advisor was told, or told and measured, that cannot both be true."""

    id: str = Field(
        description="A stable id: the rubric's conflict id, or `measured.<field>` where the data contradicts an answer."
    )
    fields: list[str] = Field(description="The answer fields involved.")
    text: str = Field(description="What disagrees, in one sentence, with the figures.")
    resolution: str = Field(description="What the advisor did about it (which answer it assessed) and what to check.")
    sources: list[str] = Field(default=[], description="Source ids; see `Assessment.sources`.")


class Assessment(BaseModel):
    """The advisor's answer: a decision, the option to pursue, and why."""

    def training_target(self) -> str:
        """The training option the training blockers are about: the primary when it trains, else the best
        training option on the merits."""
        training = [option.option for option in self.options if option.training]  # best fit first
        return self.primary if self.primary in training else training[0]

    decision: Decision = Field(
        description=(
            "recommend_lora: train an adapter now (primary lora or qlora); recommend_full_finetune: train every "
            "weight now (primary full_finetune); use_alternative: a cheaper option fits better; not_ready: "
            "training fits but gates block it."
        )
    )
    primary: OptionId = Field(
        description=(
            "The option that fits best on the merits (for not_ready, the training option to pursue once unblocked)."
        )
    )
    summary: str = Field(description="The decision in one or two sentences.")
    blockers: list[str] = Field(description="Question ids that block the primary training option (not_ready only).")
    training_blockers: list[str] = Field(
        default=[],
        description=(
            "Question ids of the gates that block the training option to pursue (the primary when it trains, else "
            "the best training option on the merits), whatever the decision: what must be fixed before training, "
            "even when an alternative is primary."
        ),
    )
    gates: list[Gate] = Field(
        description=(
            "Every gate that fired, with remediation, including those that would block training when an "
            "alternative is primary."
        )
    )
    criteria: list[CriterionScore] = Field(description="Per-criterion scores, 0-10 or null when unanswered.")
    options: list[OptionFit] = Field(description="Every option, best fit first.")
    reasons: list[Reason] = Field(description="The rules and gates behind the decision, each citing sources.")
    cautions: list[Reason] = Field(description="Cautions that apply to these answers.")
    remediation: list[Remediation] = Field(description="What to do about each open or weak answer.")
    what_would_change: list[WhatWouldChange] = Field(
        description="Computed by re-running the assessment with each alternative answer."
    )
    next_steps: list[NextStep] = Field(
        default=[],
        description=(
            "What to do next, in order: to train, data preparation, the evaluation plan, the recipe and serving; "
            "otherwise the alternative's first steps or clearing each blocker."
        ),
    )
    confidence: Confidence = Field(description="How far to trust the decision, and why.")
    limits: list[Reason] = Field(description="The limits of this advice: what the rubric and its sources do not cover.")
    license: LicenseFinding | None = Field(
        description="The dataset licence's terms and class for the intended use, when a licence was given."
    )
    base_model_license: LicenseFinding | None = Field(
        default=None, description="The base model's licence terms and class, when known (stated or from the catalog)."
    )
    compute: ComputeAssessment = Field(description="Compute feasibility of the training options.")
    answers: Answers = Field(description="The answers assessed, echoed (license in canonical SPDX).")
    evidence: dict[str, Evidence] = Field(
        default={},
        description=(
            "For each answer given: stated by the team, measured (from an inspection of its dataset), or catalog "
            "(looked up in advisor's model catalog, e.g. a catalog base model's licence)."
        ),
    )
    conflicts: list[Conflict] = Field(
        default=[], description="Answers that contradict each other or the measured data; never hidden."
    )
    sources: list[SourceRef] = Field(description="Every source cited above.")
    versions: Versions = Field(description="Versions of advisor, the rubric and the ML libraries installed.")
    dataset: DatasetReport | None = Field(
        default=None,
        description="The inspection of the team's dataset (`assess --data`) whose measured answers were merged in; "
        "null when no data was given.",
    )


class _OnDemand(BaseModel):
    """Models only `advisor questions` needs: their schemas are built on first use, not at every start."""

    model_config = ConfigDict(defer_build=True)


class Choice(_OnDemand):
    value: str = Field(description="The value to answer with.")
    label: str = Field(description="What it means.")


class Band(_OnDemand):
    """A level of a numeric question: values above `above` and up to `max`."""

    level: str = Field(description="The level name rules and scores use.")
    above: float | None = Field(description="The band holds values greater than this; null: no lower bound.")
    max: float | None = Field(description="The highest value in the band (inclusive); null: open-ended.")


class QuestionInfo(_OnDemand):
    """One question as an agent or a form needs it."""

    id: str = Field(description="The Answers field this question fills.")
    text: str = Field(description="The question as asked.")
    help: str = Field(description="Why it matters, with the sources it rests on.")
    type: Literal["choice", "integer", "number", "boolean", "license", "text"] = Field(description="The answer type.")
    role: Literal["scored", "input", "context", "compute"] = Field(
        description=(
            "scored: counts in a criterion; input: read by rules; context: echoed; compute: for compute feasibility."
        )
    )
    criterion: str | None = Field(description="The criterion a scored question counts in.")
    unit: str | None = Field(description="The unit of a numeric answer.")
    choices: list[Choice] = Field(description="For choice questions; `unknown` is always accepted too.")
    bands: list[Band] = Field(description="For scored or input numbers: how values are grouped into levels.")
    sources: list[str] = Field(description="Source ids behind the help text.")


class Questionnaire(_OnDemand):
    """The questionnaire as data (`advisor questions --json`)."""

    rubric: str = Field(description="`<rubric id> <rubric version>`.")
    title: str = Field(description="The rubric's title.")
    questions: list[QuestionInfo] = Field(description="Every question, in the order the questionnaire asks them.")
    answers_schema: dict = Field(description="JSON Schema of the Answers contract.")
    sources: list[SourceRef] = Field(description="Every source the questions cite.")
