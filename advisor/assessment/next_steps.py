"""Next steps for every decision, built from `next_steps.json`: concrete, ordered, with sources.

To train: the data preparation the answers call for, an evaluation plan sized to the
dataset (metric by kind of change, acceptance against the measured baseline, a
regression check, slices), the recipe to launch (from the fit search) and the serving
configuration. To use an alternative: its first steps. Not ready: clearing each
blocker, the evaluation first when it is missing.
"""

from __future__ import annotations

import json
import math
import shlex
from functools import cache
from pathlib import Path

from ..estimate.settings import LOSS_LABELS
from .contract import OPTION_METHOD, TRAIN_DECISIONS, Answers, ComputeAssessment, NextStep

DATA_FILE = Path(__file__).with_name("next_steps.json")


@cache
def load_next_steps() -> dict:
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def eval_items(examples: int | None) -> int:
    """Items for the held-out split: the size that measures a rate within the margin, capped at a share of the
    dataset, never under the minimum."""
    e = load_next_steps()["eval"]
    target = math.ceil(e["z"] ** 2 * 0.25 / e["margin_of_error"] ** 2)
    if examples:
        target = min(target, int(examples * e["max_share_of_dataset"]))
    return max(target, e["min_items"])


def margin(n: int) -> float:
    return load_next_steps()["eval"]["z"] * math.sqrt(0.25 / n)


def next_steps(answers: Answers, decision: str, primary: str, levels: dict, gates, compute: ComputeAssessment):
    from .engine import matches

    data = load_next_steps()
    n = eval_items(answers.dataset_examples)
    steps: list[NextStep] = []

    def add(kind: str, text: str, sources: list[str], command: str | None = None) -> None:
        steps.append(NextStep(kind=kind, text=text, sources=sources, command=command))

    if decision in TRAIN_DECISIONS:
        for item in data["data_prep"]:
            if matches([item["when"]], levels):
                add("data", item["text"], item["sources"])
        _eval_plan(add, data["eval"], answers, n)
        _recipe(add, answers, primary, compute)
        _serving(add, data["serving"], answers, compute, primary)
    elif decision == "use_alternative":
        for item in data["alternatives"].get(primary, []):
            add("alternative", item["text"].format(n=n), item["sources"])
    else:
        first = data["blocked_first"]
        questions = [g.question for g in gates]
        for question, item in first.items():
            if question in questions:
                add("blocker", item["text"].format(n=n), item["sources"])
        for gate in gates:
            if gate.question in first:
                continue
            add("blocker", f"Clear {gate.question}: {gate.remediation}", gate.sources)
    return steps


def _eval_plan(add, e: dict, answers: Answers, n: int) -> None:
    metric = e["metrics"].get(answers.change_kind or "unknown", e["metrics"]["unknown"])
    of = f" of the {answers.dataset_examples:,} examples" if answers.dataset_examples else ""
    baseline = (
        "the baseline already measured"
        if answers.baseline_measured
        else "the base model with your best prompt, measured on the same split first"
    )
    add(
        "eval",
        f"Hold out {n:,}{of} as a test split (it measures a rate within +/-{100 * margin(n):.0f} points at 95%); "
        f"metric: {metric['text']}; accept the adapter only if it beats {baseline} by more than that margin.",
        metric["sources"],
    )
    add("eval", e["regression"]["text"], e["regression"]["sources"])
    add("eval", e["slices"]["text"], e["slices"]["sources"])


def _recipe(add, answers: Answers, primary: str, compute: ComputeAssessment) -> None:
    method = OPTION_METHOD.get(primary, "lora")
    plan = compute.plans.get(primary)
    where = (
        f"--gpu {compute.gpu}"
        if compute.gpu
        else f"--gpu-memory-gib {answers.gpu_memory_gib:g}"
        if (answers.gpu_memory_gib is not None)
        else "--gpu NAME"
    )
    gpus = f" --gpus {answers.gpus}" if answers.gpus and answers.gpus > 1 else ""
    shape = f" --seq {answers.seq_len}" if answers.seq_len else ""
    shape += f" --batch {answers.batch_size}" if answers.batch_size and answers.batch_size > 1 else ""
    model = shlex.quote(answers.base_model) if answers.base_model else "BASE_MODEL"  # the team's text, quoted
    command = f"advisor recipe --model {model} {where}{gpus}{shape} --method {method} --format trl --output train.py"
    if plan is None or plan.headroom not in ("comfortable", "tight"):
        add(
            "recipe",
            "Pick the recipe with the command below (it searches micro-batch, checkpointing, optimizer and "
            "sharding for each method, planned for TRL's loss), then write it with advisor recipe and the same "
            "options (--format trl; axolotl or llama-factory plan again for the losses their frameworks run).",
            ["advisor-estimator"],
            command=f"advisor fit --model {model} {where}{gpus}{shape} --format trl",
        )
        return
    s = plan.settings
    summary = (
        f"micro-batch {s['batch']} x {s['seq']} tokens, {plan.grad_accumulation} accumulation step(s), "
        f"{s['optimizer']}{', gradient checkpointing' if s['grad_checkpointing'] else ''}"
        f"{', ' + LOSS_LABELS[s['loss']] if LOSS_LABELS.get(s.get('loss', 'standard')) else ''}"
        f"{'' if s['sharding'] == 'none' else ', ' + s['sharding']} ({plan.headroom} headroom)"
    )
    timing = ""
    if plan.hours is not None:
        timing = f"; about {plan.hours:.1f} h ({plan.hours_low:.1f}-{plan.hours_high:.1f})"
        if plan.cost_usd is not None:
            timing += f", about ${plan.cost_usd:,.2f} at the indicative price"
    # The plan is TRL's (compute.assess_compute plans for the script handed over here); the other formats are planned
    # again by `advisor recipe` for the losses their frameworks run.
    others = "--format axolotl or llama-factory writes those frameworks' files instead, planned for their losses"
    add(
        "recipe",
        f"Launch the planned recipe ({summary}{timing}): write it with the command below, run it first with "
        f"--max-steps 20 on the longest examples, then in full ({others}).",
        ["advisor-estimator", "peft-lora-docs"],
        command=command,
    )


def _serving(add, serving: dict, answers: Answers, compute: ComputeAssessment, primary: str) -> None:
    if primary == "full_finetune":
        return
    plan = compute.plans.get(primary)
    rank = max(16, int(plan.settings.get("rank", 16))) if plan and plan.settings else 16
    if answers.serving_mode == "merged":
        item = serving["merged"]
        add("serving", item["text"], item["sources"])
    elif answers.adapters and answers.adapters > 1:
        item = serving["many_adapters"]
        max_loras = min(answers.adapters, 8)
        add(
            "serving",
            item["text"].format(adapters=answers.adapters, max_loras=max_loras, rank=rank),
            item["sources"],
        )
    else:
        item = serving["one_adapter"]
        add("serving", item["text"].format(rank=rank), item["sources"])
