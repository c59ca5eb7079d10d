"""The tools agents call: one contract behind the MCP server, `advisor schema --format openai` and `call_tool`.

A tool is a name, a description written for the model that reads it (what it is
for, when to call it, what it costs), an input model, an output model and a thin
function over the public API. The MCP server registers `TOOLS` as they are;
`advisor schema --format openai` publishes the same inputs as strict OpenAI tool
definitions; `call_tool(name, arguments)` runs one from Python, which is what an
OpenAI tool-calling loop dispatches to. Nothing is decided here that the CLI
does not decide the same way.

Two rules hold for every tool's arguments: unknown keys are refused (the input
models forbid extras), and a null argument means the same as leaving it out, so
the strict-mode convention of sending every key with null for "not given" works
unchanged.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..assessment.contract import Answers, Assessment, Questionnaire
from ..assessment.service import assess, questionnaire
from ..errors import FieldIssue, InvalidInput, Refused, invalid_input
from ..estimate.settings import Estimate, TrainingSettings
from ..files import check_name_length, ensure_writable, write_atomic
from ..plan.fit import FitResult
from ..plan.recipe import RecipeFormat
from ..reference import REFERENCE_RUN_COST
from ..reference.result import ReferenceRun


@dataclass(frozen=True)
class ToolContext:
    """What the process serving the tools was configured with (not something the caller chooses)."""

    reports_dir: Path | None = None  # render_report writes here and nowhere else; None: it writes nothing
    data_dir: Path | None = None  # inspect_dataset and assess_lora_fit read datasets here and nowhere else


@dataclass(frozen=True)
class CallControl:
    """What one call of a long tool gets from its door: where to report progress, and a cancellation flag."""

    progress: Callable[[str, int, int], None] | None = None  # (what is under way, units done, units in all)
    cancel: threading.Event | None = None  # set by the door when the caller gives up


class ToolInput(BaseModel):
    """Arguments of a tool: unknown keys are an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class ListQuestionsInput(ToolInput):
    """list_questions takes no arguments."""


class AssessInput(ToolInput):
    """The team's answers, as far as they are known."""

    answers: Answers = Field(
        default_factory=Answers,
        description=(
            "What is known about the team's situation; every field is optional and `unknown` is a valid answer."
        ),
    )


_DATA_PATH = "a path relative to the server's data folder (`advisor mcp --data-dir DIR`): no absolute paths, no `..`"


class AssessDataInput(AssessInput):
    """The team's answers, and optionally its dataset to measure them against."""

    data: str | None = Field(
        default=None,
        max_length=1000,
        description=(
            "The training data (a JSONL, JSON, CSV or Parquet file, or a dataset folder), "
            + _DATA_PATH
            + ". Its measured answers (examples, personal data, card licence, length, quality bound) replace "
            "the stated ones where they disagree, and each disagreement is listed in conflicts."
        ),
    )
    eval_data: str | None = Field(
        default=None,
        max_length=1000,
        description="With data: the evaluation set, checked for overlap with the training data; " + _DATA_PATH + ".",
    )


class InspectDatasetInput(ToolInput):
    """The dataset to inspect, in the server's data folder."""

    path: str = Field(
        max_length=1000,
        description="The training data: a JSONL, JSON, CSV or Parquet file, a `datasets` save_to_disk folder or a "
        "folder of data files with its README.md card; " + _DATA_PATH + ".",
    )
    eval_path: str | None = Field(
        default=None, max_length=1000, description="An evaluation set to check for overlap; " + _DATA_PATH + "."
    )
    card: str | None = Field(
        default=None,
        max_length=1000,
        description="The dataset card (README.md) to read the licence from, when it is not beside the data; "
        + _DATA_PATH
        + ".",
    )


class EstimateInput(TrainingSettings):
    """The model to estimate and how it would be trained (the estimator's `TrainingSettings`, flattened)."""

    model: str = Field(
        max_length=500,
        description=(
            "The model: a catalog id such as qwen2.5-0.5b, llama-3.1-8b or mistral-7b (`advisor models` lists them), "
            "or a path to a config.json or a model folder on the machine running advisor."
        ),
    )


DEFAULT_MAX_SECONDS = 40  # the run, and the ~5-10 s of loading torch before it, inside a 60 s client timeout


class ReferenceRunInput(EstimateInput):
    """The model and LoRA settings to measure, and how long the run may take."""

    steps: int = Field(
        default=4,
        ge=2,
        le=50,
        description="Training steps per run (full and LoRA); the first warms up and is not timed.",
    )
    dataset: str | None = Field(
        default=None,
        max_length=500,
        description=(
            "A JSONL (`text`, or `prompt` and `completion`) or text file on the machine running advisor; "
            "default: a built-in corpus."
        ),
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="Where to run; auto picks CUDA when there is a GPU."
    )
    max_seconds: float = Field(
        default=DEFAULT_MAX_SECONDS,
        gt=0,
        le=1800,
        description=(
            f"Stop after this long and return what was measured (complete: false). The default, "
            f"{DEFAULT_MAX_SECONDS:g} s, answers within the 60 s request timeout many clients use; for a large model "
            "measured whole, or more steps, pass more (up to 1800) and raise your client's request timeout to match."
        ),
    )
    seed: int = Field(default=0, ge=0, description="Seed of the random starting weights and data order.")


class RenderReportInput(ToolInput):
    """The answers to report on, and where to write the report."""

    answers: Answers = Field(
        default_factory=Answers,
        description="The same answers you passed to assess_lora_fit; the report is of their assessment.",
    )
    filename: str | None = Field(
        default=None,
        max_length=255,
        description=(
            "Also write the report to this file in the server's reports folder: a relative path ending in .md, "
            "in a folder that exists there (no absolute paths, no `..`). Leave out to get the markdown only."
        ),
    )
    overwrite: bool = Field(
        default=False, description="Replace the file if it exists; otherwise an existing file is an error."
    )


class RenderedReport(BaseModel):
    """A markdown report, and where it was written."""

    markdown: str = Field(
        description=(
            "The report: decision first, then blockers, criteria, options, what would change it, limits, sources."
        )
    )
    path: str | None = Field(description="Absolute path of the file written, or null when no filename was given.")


class FitInput(ToolInput):
    """The model, the GPUs, and the shape to start the fit search from."""

    model: str = Field(
        max_length=500,
        description="Catalog id (llama-3.1-8b, qwen2.5-7b, ...; `advisor models`), a config.json or a model folder.",
    )
    gpu: str | None = Field(
        default=None,
        max_length=100,
        description="A GPU from the hardware catalog (h100-sxm, a100-80gb, rtx-4090, l4, t4, cpu; `advisor gpus`).",
    )
    gpu_memory_gib: float | None = Field(
        default=None, ge=0, le=4096, description="Memory per GPU in GiB instead of gpu (0: CPU only)."
    )
    gpus: int = Field(default=1, ge=1, le=65536, description="Number of GPUs.")
    seq: int | None = Field(default=None, ge=1, description="Sequence length in tokens (default 1,024).")
    batch: int | None = Field(default=None, ge=1, description="Micro-batch per GPU to start from (default 1).")
    effective_batch: int | None = Field(
        default=None, ge=1, description="Sequences per optimizer step to reach with gradient accumulation."
    )
    method: Literal["full", "lora", "qlora"] | None = Field(default=None, description="Search one method only.")


class FitTrainingInput(FitInput):
    """The fit search's input, and the data size for time and cost."""

    examples: int | None = Field(default=None, ge=1, description="Training examples, for time and cost.")
    mean_tokens: int | None = Field(default=None, ge=1, description="Mean tokens per example, for time and cost.")
    epochs: float | None = Field(default=None, gt=0, le=1000, description="Epochs (default 3).")
    price_per_hour: float | None = Field(
        default=None, ge=0, le=10000, description="USD per GPU-hour, instead of the catalog's indicative price."
    )
    format: RecipeFormat | None = Field(
        default=None,
        description="Plan for this framework's loss, as write_training_recipe does: trl plans with TRL's fused LM "
        "head, which its SFTTrainer always runs; leave out to search the standard and the fused loss.",
    )


class RecipeInput(FitInput):
    """What to plan, the file format, and where to write it."""

    format: RecipeFormat = Field(
        description="trl: a TRL SFTTrainer + PEFT Python script; axolotl or llama-factory: their YAML config."
    )
    filename: str | None = Field(
        default=None,
        max_length=255,
        description=(
            "Also write the file in the server's reports folder: a relative path ending in .py (trl) or .yaml, in a "
            "folder that exists there (no absolute paths, no `..`). Leave out to get the content only."
        ),
    )
    overwrite: bool = Field(default=False, description="Replace the file if it exists.")


class WrittenRecipe(BaseModel):
    """A recipe file's content, how to launch it, and where it was written."""

    format: str = Field(description="trl, axolotl or llama-factory.")
    filename: str = Field(description="A suggested file name.")
    content: str = Field(description="The file's text.")
    launch: str = Field(description="The command that runs it.")
    settings: TrainingSettings = Field(description="The recipe the fit search chose.")
    grad_accumulation: int = Field(description="Micro-steps per optimizer step.")
    notes: list[str] = Field(description="What the file needs or cannot express.")
    path: str | None = Field(description="Absolute path of the file written, or null when no filename was given.")


@dataclass(frozen=True)
class Tool:
    """One tool: its contract (name, description, input and output models) and the call it makes."""

    name: str
    title: str
    description: str
    input: type[BaseModel]  # forbids unknown keys
    output: type[BaseModel]
    run: Callable[..., BaseModel]  # (input, context), and control= when `controlled`
    read_only: bool = True
    controlled: bool = False  # takes a CallControl: reports progress, stops when cancelled
    open_world: bool = False  # may reach outside this machine (a hub download)

    def parse(self, arguments: Mapping[str, Any]) -> BaseModel:
        """Validate `arguments`; raises InvalidInput naming every bad field and what it accepts."""
        if not isinstance(arguments, Mapping):
            raise InvalidInput(
                f"{self.name} arguments must be an object",
                fields=[FieldIssue(field="(input)", message=f"got {type(arguments).__name__}")],
            )
        given = {key: value for key, value in arguments.items() if value is not None}
        try:
            return self.input.model_validate(given)
        except ValidationError as exc:
            raise invalid_input(exc, what=f"{self.name} arguments") from None


def call_tool(
    name: str,
    arguments: Mapping[str, Any] | None = None,
    *,
    context: ToolContext = ToolContext(),
    control: CallControl | None = None,
) -> BaseModel:
    """Run tool `name` with `arguments` (a JSON object's worth); raises the errors the CLI reports.
    `control` reaches the tools that report progress and can be cancelled (run_reference_lora)."""
    tool = TOOLS.get(name)
    if tool is None:
        raise InvalidInput(
            f"no tool named {name!r}",
            fields=[FieldIssue(field="name", message=f"unknown tool {name!r}", allowed=list(TOOLS))],
        )
    parsed = tool.parse(arguments or {})
    if tool.controlled:
        return tool.run(parsed, context, control=control or CallControl())
    return tool.run(parsed, context)


def report_path(
    reports_dir: Path | None, filename: str, *, overwrite: bool, suffixes: tuple[str, ...] = (".md",)
) -> Path:
    """Where `filename` lands in `reports_dir`, refusing anything that would land outside it."""
    if reports_dir is None:
        raise Refused(
            "this server has no reports folder, so it writes no files",
            fields=[
                FieldIssue(
                    field="filename",
                    message="leave it out to get the markdown only; "
                    "the server must be started with `advisor mcp --reports-dir DIR` to write reports",
                )
            ],
        )
    target = inside(reports_dir, filename, field="filename", folder="reports folder", suffixes=suffixes)
    if target.exists() and not overwrite:
        message = "exists in the reports folder; pass overwrite: true to replace it"
        raise InvalidInput(f"filename {filename!r}: {message}", fields=[FieldIssue(field="filename", message=message)])
    return ensure_writable(target, force=overwrite, field="filename")


def data_path(data_dir: Path | None, name: str, *, field: str) -> Path:
    """Where `name` lies in the server's data folder, refusing anything outside it (as `report_path` does)."""
    if data_dir is None:
        raise Refused(
            "this server has no data folder, so it reads no datasets",
            fields=[
                FieldIssue(
                    field=field, message="the server must be started with `advisor mcp --data-dir DIR` to read data"
                )
            ],
        )
    target = inside(data_dir, name, field=field, folder="data folder")
    if not target.exists():
        message = "no such file or folder in the data folder"
        raise InvalidInput(f"{field} {name!r}: {message}", fields=[FieldIssue(field=field, message=message)])
    return target


def inside(root: Path, name: str, *, field: str, folder: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """`name` resolved under `root`, the one folder a server reads or writes: a relative path with no `..`, no
    NUL, and no symbolic link leading out; anything else is invalid input naming `field`. With `suffixes`, a
    file to write: it must end in one of them and its name must fit the file system."""

    def bad(message: str) -> InvalidInput:
        return InvalidInput(f"{field} {name!r}: {message}", fields=[FieldIssue(field=field, message=message)])

    if "\x00" in name:
        raise bad("contains a NUL character")
    relative = Path(name)
    if relative.is_absolute():
        raise bad(f"must be relative to the {folder}")
    if ".." in relative.parts:
        raise bad("must not contain `..`")
    if suffixes is not None:
        if relative.suffix not in suffixes:
            raise bad(f"must end in {' or '.join(suffixes)}")
        check_name_length(root / relative, field=field)
    resolved_root = root.resolve()
    try:
        target = (resolved_root / relative).resolve()  # follows symbolic links: one pointing outside is caught
    except (OSError, RuntimeError) as exc:  # a symbolic link loop
        raise bad(f"cannot be resolved ({exc})") from None
    if not target.is_relative_to(resolved_root):
        raise bad(f"resolves outside the {folder} (through a symbolic link)")
    return target


def _inspect_dataset(inp: InspectDatasetInput, context: ToolContext):
    from ..dataset.inspect import inspect_dataset

    return inspect_dataset(
        data_path(context.data_dir, inp.path, field="path"),
        eval_path=data_path(context.data_dir, inp.eval_path, field="eval_path") if inp.eval_path else None,
        card=data_path(context.data_dir, inp.card, field="card") if inp.card else None,
        field="path",
        eval_field="eval_path",
    )


def _list_questions(_: ListQuestionsInput, context: ToolContext) -> Questionnaire:
    return questionnaire()


def _assess(inp: AssessDataInput, context: ToolContext) -> Assessment:
    if inp.eval_data is not None and inp.data is None:
        raise InvalidInput(
            "eval_data needs data", fields=[FieldIssue(field="eval_data", message="give the training data too")]
        )
    data = None
    if inp.data is not None:
        from ..dataset.inspect import inspect_dataset

        data = inspect_dataset(
            data_path(context.data_dir, inp.data, field="data"),
            eval_path=data_path(context.data_dir, inp.eval_data, field="eval_data") if inp.eval_data else None,
            field="data",
            eval_field="eval_data",
        )
    return _assessment(inp.answers, data=data)


def _assessment(answers: Answers, data=None) -> Assessment:
    """`assess(answers)`, with errors naming the tool's argument (`answers.dataset_license`)."""
    try:
        return assess(answers, data=data)
    except InvalidInput as exc:
        raise exc.within("answers") from None


def _estimate(inp: EstimateInput, context: ToolContext) -> Estimate:
    from ..estimate import estimate_training_memory, training_settings  # torch, transformers and peft load here

    settings = training_settings(**inp.model_dump(exclude={"model"}, exclude_unset=True))
    return estimate_training_memory(inp.model, settings)


def _reference_run(inp: ReferenceRunInput, context: ToolContext, control: CallControl = CallControl()) -> ReferenceRun:
    from ..reference import default_settings, reference_run  # torch, transformers and peft load in the run

    run_options = {"model", *ReferenceRunInput.model_fields.keys() - EstimateInput.model_fields.keys()}
    settings = default_settings(**inp.model_dump(exclude=run_options, exclude_unset=True))  # batch 1 x 64 unless given
    return reference_run(
        inp.model,
        settings,
        steps=inp.steps,
        dataset=inp.dataset,
        device=inp.device,
        max_seconds=inp.max_seconds,
        seed=inp.seed,
        progress=control.progress,
        cancel=control.cancel,
    )


def _render_report(inp: RenderReportInput, context: ToolContext) -> RenderedReport:
    from ..report.render import render_report

    target = report_path(context.reports_dir, inp.filename, overwrite=inp.overwrite) if inp.filename else None
    markdown = render_report(_assessment(inp.answers))
    if target is not None:
        write_atomic(target, markdown, force=inp.overwrite, field="filename")
    return RenderedReport(markdown=markdown, path=os.fspath(target) if target else None)


def _dataset_report_model():
    from ..dataset.contract import DatasetReport

    return DatasetReport


def _fit_training(inp: FitTrainingInput, context: ToolContext):
    from ..plan.fit import fit_training
    from ..plan.timing import tokens_to_train

    return fit_training(
        inp.model,
        **_search(inp),
        tokens=tokens_to_train(inp.examples, inp.mean_tokens, inp.epochs),
        price_usd_per_hour=inp.price_per_hour,
        recipe_format=inp.format,
    )


def _search(inp: "FitTrainingInput | RecipeInput") -> dict:
    """The fit search's hardware and recipe arguments, as both plan tools take them."""
    return dict(
        gpu=inp.gpu,
        gpu_memory_gib=inp.gpu_memory_gib,
        gpus=inp.gpus,
        seq=inp.seq,
        batch=inp.batch,
        effective_batch=inp.effective_batch,
        methods=[inp.method] if inp.method else None,
    )


def _write_training_recipe(inp: RecipeInput, context: ToolContext) -> WrittenRecipe:
    from ..model_specs import resolve_model_spec
    from ..plan.fit import fit_training
    from ..plan.recipe import model_reference, write_recipe

    suffixes = (".py",) if inp.format == "trl" else (".yaml", ".yml")
    target = (
        report_path(context.reports_dir, inp.filename, overwrite=inp.overwrite, suffixes=suffixes)
        if inp.filename
        else None
    )
    spec = resolve_model_spec(inp.model)
    fit = fit_training(spec, **_search(inp), recipe_format=inp.format)
    chosen = fit.to_write(inp.method)
    if chosen is None:
        raise Refused(
            "no recipe fits these GPUs; fit_training with the same format shows what each method needs",
            fields=[FieldIssue(field="gpu", message="nothing fits: more or larger GPUs, or a shorter sequence")],
        )
    recipe = write_recipe(
        model_reference(spec), chosen.settings, grad_accumulation=chosen.grad_accumulation, fmt=inp.format
    )
    if target is not None:
        write_atomic(target, recipe.content, force=inp.overwrite, field="filename")
    return WrittenRecipe(**recipe.model_dump(), path=os.fspath(target) if target else None)


TOOLS: dict[str, Tool] = {
    tool.name: tool
    for tool in (
        Tool(
            name="list_questions",
            title="List the advisor's questions",
            description=(
                "The questionnaire behind assess_lora_fit: every question id (the answers' field names), the "
                "question, why it matters, its allowed values or numeric bands, and the sources behind it, plus the "
                "answers' JSON Schema. Call it once before assess_lora_fit when you do not know which answers exist "
                "or what they mean. Cost: milliseconds; reads nothing but the shipped rubric, no side effects."
            ),
            input=ListQuestionsInput,
            output=Questionnaire,
            run=_list_questions,
        ),
        Tool(
            name="assess_lora_fit",
            title="Decide: LoRA, a cheaper alternative, or not ready",
            description=(
                "Decide whether a team should adapt a model with LoRA or QLoRA now (recommend_lora), fine-tune all "
                "weights (recommend_full_finetune: continued-pretraining scale), use something cheaper first such "
                "as retrieval, better prompts, tool access or targeted evals (use_alternative), or fix blockers such "
                "as data licensing, provenance, privacy, the base model's licence or missing evals first "
                "(not_ready). Act on `decision` and `primary`. Pass what you know, including why the team wants to "
                "train (motive: behavior, cost or latency, with prompt_tokens and requests_per_month for cost); "
                "every answer is optional and unknown lowers confidence instead of failing. The result gives the "
                "primary option, blockers with remediation, training_blockers (gates on the training options, "
                "whatever the decision), conflicts between answers (confidence is never high while one is open), "
                "0-10 criterion readiness grades, every option's fit with reasons and sources, the confidence with "
                "its basis, and what_would_change: the single answers that would flip the decision, which are the "
                "questions worth asking the user next. Call it again with more answers as you learn them. With data "
                "(a dataset in the server's data folder), the dataset is inspected first and its measured answers "
                "replace stated ones that disagree, each disagreement listed in conflicts (measured.<field>). Cost: "
                "milliseconds; with data, about as long as inspect_dataset; deterministic, no side effects."
            ),
            input=AssessDataInput,
            output=Assessment,
            run=_assess,
        ),
        Tool(
            name="inspect_dataset",
            title="Measure a dataset: validity, tokens, duplicates, personal data, licence",
            description=(
                "Read the team's training data from the server's data folder and measure it: the format (chat, "
                "prompt_completion, text), valid and invalid records with line numbers, tokens per example, exact and "
                "near duplicates, overlap with an evaluation set, personal data and secrets (counts per kind, "
                "locations, values masked), the dataset card's licence, quality signals, and the answers of "
                "assess_lora_fit these settle (dataset_examples, privacy, dataset_license, seq_len, "
                "dataset_quality). Call it before assess_lora_fit when the team has its data at hand, or pass the "
                "data to assess_lora_fit directly. Cost: streams the files, about 10 MB/s on a small machine; reads "
                "only inside the data folder, writes nothing."
            ),
            input=InspectDatasetInput,
            output=_dataset_report_model(),
            run=_inspect_dataset,
        ),
        Tool(
            name="estimate_training_memory",
            title="Estimate training memory and trainable parameters",
            description=(
                "Per-GPU peak training memory and exact trainable parameter counts for one model under full "
                "fine-tuning, LoRA or QLoRA, with the memory broken into weights, gradients, optimizer states, "
                "activations and logits. Use it to check whether training fits a GPU, to compare methods (call once "
                "per method), or to size batch and sequence length. Counts are exact (the real architecture built "
                "without weights); memory follows the step's mechanisms, checked against measured GPU peaks "
                "(QLoRA is not yet validated against a measurement). Cost: the first call in a server loads torch, "
                "transformers and peft (seconds); later calls take milliseconds. A hub id is fetched only when the "
                "Hugging Face Hub is reachable."
            ),
            input=EstimateInput,
            output=Estimate,
            run=_estimate,
            open_world=True,
        ),
        Tool(
            name="run_reference_lora",
            title="Measure LoRA against full fine-tuning with a real run",
            description=(
                "Prove a LoRA recommendation on the model's own architecture: trains full fine-tuning and LoRA side "
                "by side for a few steps on this machine (same weights, data and seed) and measures trainable "
                "parameters, weights, gradients, optimizer states, activations, peak memory, step time, the adapter "
                "checkpoint's size against the full model's, and serving latency merged vs unmerged, each beside the "
                "estimator's prediction. Large models run as layer-cut proxies at two depths and are extrapolated "
                "(the result says so). Call it after assess_lora_fit recommends training, when the user wants "
                "evidence. A run that would not fit in free memory is refused with the numbers. Cost: seconds for "
                f"small models, {REFERENCE_RUN_COST}; bounded by max_seconds (default {DEFAULT_MAX_SECONDS:g} s, "
                "to fit a 60 s client timeout: pass more, and raise your timeout, to let a large model run whole). "
                "Sends progress notifications (phase and step) when you pass a progress token, and stops within a "
                "training step when you cancel. One run at a time per server: a call made while another is under "
                "way is refused with error code busy; call again when it has finished. Writes only temporary files "
                "it removes."
            ),
            input=ReferenceRunInput,
            output=ReferenceRun,
            run=_reference_run,
            controlled=True,
        ),
        Tool(
            name="render_report",
            title="Write the assessment as a markdown report",
            description=(
                "The assessment of the given answers as a markdown report for people: the decision and primary option "
                "first, then blockers with remediation, criteria, all options compared, what would change the "
                "decision, limits and sources, with user text escaped. Call it when the user wants a document to "
                "share or keep. With filename, the report is also written to the server's reports folder (and nowhere "
                "else). Cost: milliseconds; writes one file only when filename is given."
            ),
            input=RenderReportInput,
            output=RenderedReport,
            run=_render_report,
            read_only=False,
        ),
        Tool(
            name="fit_training",
            title="Find the training recipe that fits the GPUs, with time and cost",
            description=(
                "For full fine-tuning, LoRA and QLoRA, the recipe that fits the named GPUs with the most throughput: "
                "it searches micro-batch, gradient checkpointing, optimizer (AdamW, 8-bit AdamW), sharding (DDP, "
                "ZeRO-2, FSDP; adapters too) and, last, sequence length. Each option says whether it fits, its "
                "headroom (comfortable, tight, does_not_fit), the recipe as TrainingSettings (estimate_training_memory "
                "replays it), the largest micro-batch and longest sequence that fit, gradient accumulation for the "
                "effective batch, and what was changed and why; best is the method recommended (null: nothing fits). "
                "With examples and mean_tokens it adds training hours (with a range) and cost. Call it when a user asks"
                " what will fit, how long and how much. Cost: the first call loads torch, transformers and peft "
                "(seconds); later calls take well under a second."
            ),
            input=FitTrainingInput,
            output=FitResult,
            run=_fit_training,
        ),
        Tool(
            name="write_training_recipe",
            title="Write the chosen plan as a TRL script or an axolotl / LLaMA-Factory config",
            description=(
                "The fit search's recipe for the model and GPUs as a file a team can launch: a TRL SFTTrainer + PEFT "
                "script (trl), an axolotl YAML or a LLaMA-Factory YAML, with the launch command. Returns the content; "
                "with filename it is also written to the server's reports folder (and nowhere else). A plan that fits "
                "nothing is refused. Cost: as fit_training; writes one file only when filename is given."
            ),
            input=RecipeInput,
            output=WrittenRecipe,
            run=_write_training_recipe,
            read_only=False,
        ),
    )
}
