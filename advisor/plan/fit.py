"""The fit search: for each method, the recipe that fits the GPUs with the most throughput.

For full fine-tuning, LoRA and QLoRA the search starts from the recipe a team would
start from (`STARTING_RECIPE` at the asked micro-batch and sequence length) and tries,
at that shape, every combination of sharding (DDP, ZeRO-2, FSDP on several GPUs),
gradient checkpointing, optimizer (AdamW, 8-bit AdamW) and loss (the standard one, or
Liger-Kernel's fused linear cross-entropy, which keeps no full logits; for a TRL recipe only
TRL's own fused LM head, the one loss its SFTTrainer runs) the estimator models. Among
the combinations that fit it keeps the fastest, by the step-time model of
`timing.py` (seconds per token, so checkpointing's recomputation counts) times the
ranking factors in `fit_policy.json`. It prefers a comfortable headroom to a tight
one, then a smaller micro-batch (gradient accumulation keeps the effective batch), and
only then, as the last resort, a shorter sequence. Every estimate is the estimator's
own, so `advisor estimate` replays each recipe to the byte.
"""

from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import FieldIssue, InvalidInput
from ..estimate.settings import MAX_BATCH, MAX_GPUS, MAX_SEQ, METHOD_LABELS, STARTING_RECIPE, Method, TrainingSettings
from ..fmt import fmt_bytes
from .hardware import Device, resolve_gpu
from .timing import MethodCost

POLICY_FILE = Path(__file__).with_name("fit_policy.json")
GIB = 1 << 30
METHODS: tuple[Method, ...] = ("full", "lora", "qlora")
Headroom = Literal["comfortable", "tight", "does_not_fit", "not_assessed"]
MAX_TOKENS_PER_GPU = 1 << 26  # the estimator's bound on batch x seq


@cache
def load_policy() -> dict:
    return json.loads(POLICY_FILE.read_text(encoding="utf-8"))


class FitChange(BaseModel):
    """One setting the search changed from the asked recipe, and why."""

    field: str = Field(description="The TrainingSettings field.")
    asked: str | int | bool = Field(description="Its value in the asked recipe.")
    chosen: str | int | bool = Field(description="Its value in the recipe that fits.")
    why: str


class FitOption(BaseModel):
    """The best recipe for one method."""

    method: Method
    fits: bool
    headroom: Headroom = Field(description="comfortable, tight or does_not_fit (thresholds in headroom_policy).")
    settings: TrainingSettings = Field(description="The recipe, replayable with `advisor estimate`.")
    peak_bytes: int | None = Field(description="Predicted peak tensor memory per GPU of the recipe.")
    needed_bytes: int | None = Field(description="peak_bytes plus CUDA context and allocator slack.")
    budget_bytes: int = Field(description="Memory per GPU planned against.")
    max_micro_batch: int = Field(
        description="Largest micro-batch that fits with the recipe's other settings (0: none)."
    )
    max_seq: int = Field(description="Longest sequence that fits at the recipe's micro-batch (0: none).")
    grad_accumulation: int = Field(description="Micro-steps per optimizer step to reach the effective batch.")
    effective_batch: int = Field(description="Sequences per optimizer step: micro-batch x GPUs x accumulation.")
    changes: list[FitChange] = Field(default=[], description="What was changed from the asked recipe, and why.")
    time: MethodCost | None = Field(None, description="Training time and cost, when the tokens to train are known.")
    notes: list[str] = Field(default=[])


class FitResult(BaseModel):
    """`advisor fit`'s answer: one option per method and the one recommended."""

    model: str
    gpu: str | None = Field(description="Hardware catalog id, when the GPU was named.")
    gpu_name: str | None
    gpu_memory_gib: float = Field(description="Memory per GPU planned against, GiB.")
    gpus: int
    options: list[FitOption]
    best: Method | None = Field(description="The method recommended: the first that fits in the policy's order.")
    headroom_policy: dict = Field(description="The headroom thresholds and why.")
    recipe_format: str | None = Field(
        None,
        description="The recipe format the search planned for: trl plans with TRL's fused LM head "
        "(loss trl_chunked), the only loss its SFTTrainer runs; null (advisor fit) or axolotl/llama-factory: the "
        "standard and the fused loss.",
    )
    tokens: int | None = Field(None, description="Tokens to train (examples x mean tokens x epochs), when given.")
    price_usd_per_hour: float | None = Field(None, description="Price per GPU-hour used for cost.")
    time_calibration: dict | None = Field(None, description="The step-time constants and their calibration error.")
    notes: list[str] = Field(default=[])

    def to_write(self, method: str | None = None) -> "FitOption | None":
        """The option a recipe is written for: `method`'s, else the recommended one; None when it does not fit."""
        return next((o for o in self.options if o.method == (method or self.best) and o.fits), None)


def resolve_budget(
    gpu: str | None,
    gpu_memory_gib: float | None,
    *,
    gpu_field="gpu",
    memory_field="gpu_memory_gib",
    memory_overrides: bool = False,
):
    """(Device or None, GiB to plan against) from a named GPU or a memory size: exactly one of them, or both when
    `memory_overrides` (the answers may name the GPU and state its memory; the stated memory wins)."""
    if gpu is not None and gpu_memory_gib is not None and memory_overrides:
        _check_memory(gpu_memory_gib, memory_field)
        return resolve_gpu(gpu, field=gpu_field), float(gpu_memory_gib)
    if gpu is not None and gpu_memory_gib is not None:
        raise InvalidInput(
            "give --gpu or --gpu-memory-gib, not both",
            fields=[FieldIssue(field=memory_field, message="give --gpu or --gpu-memory-gib, not both")],
        )
    if gpu is not None:
        device = resolve_gpu(gpu, field=gpu_field)
        return device, device.usable_gib
    if gpu_memory_gib is None:
        raise InvalidInput(
            "say what the GPUs are: --gpu NAME or --gpu-memory-gib N",
            fields=[FieldIssue(field=gpu_field, message="missing: --gpu NAME or --gpu-memory-gib N")],
        )
    _check_memory(gpu_memory_gib, memory_field)
    return None, float(gpu_memory_gib)


def _check_memory(gib: float, field: str) -> None:
    if not (0 <= gib <= 4096) or math.isnan(gib):
        raise InvalidInput(
            "gpu_memory_gib must be between 0 (CPU only) and 4096",
            fields=[FieldIssue(field=field, message="must be between 0 (CPU only) and 4096")],
        )


def fit_training(
    model,
    *,
    gpu: str | None = None,
    gpu_memory_gib: float | None = None,
    gpus: int = 1,
    seq: int | None = None,
    batch: int | None = None,
    effective_batch: int | None = None,
    methods: list[Method] | tuple[Method, ...] | None = None,
    rank: int | None = None,
    targets=None,
    tokens: int | None = None,
    price_usd_per_hour: float | None = None,
    memory_overrides: bool = False,
    recipe_format: str | None = None,
) -> FitResult:
    """The fit search over `methods` (all three by default) for `model` on `gpus` GPUs; `recipe_format` is the
    recipe it plans for (`advisor recipe --format`), which decides the losses it tries."""
    from ..estimate import training_settings
    from ..model_specs import ModelSpec, resolve_model_spec

    device, gib = resolve_budget(gpu, gpu_memory_gib, memory_overrides=memory_overrides)
    _check_counts(gpus=gpus, seq=seq, batch=batch, effective_batch=effective_batch)
    spec = model if isinstance(model, ModelSpec) else resolve_model_spec(model)
    policy = load_policy()
    budget = int(gib * GIB)
    precision = "bf16" if device is None or device.kind == "cpu" or device.bf16_dense_tflops else "fp16"
    asked_batch, asked_seq = batch or 1, seq or 1024
    effective = effective_batch or asked_batch * gpus
    losses = _losses(spec, recipe_format)
    options = []
    for method in methods or METHODS:
        asked = training_settings(
            **{
                **STARTING_RECIPE,
                **({"rank": rank} if rank else {}),
                **({"targets": targets} if targets else {}),
                "method": method,
                "batch": asked_batch,
                "seq": asked_seq,
                "gpus": gpus,
                "sharding": "none" if gpus == 1 else "ddp",
                "precision": precision,
                # a framework with one loss starts from it: not a change the search made
                **({"loss": losses[0]} if len(losses) == 1 else {}),
            }
        )
        grow_batch = batch is None and effective_batch is not None
        options.append(_search(spec, asked, budget, device, effective, grow_batch=grow_batch, losses=losses))
    price = price_usd_per_hour if price_usd_per_hour is not None else (device.price_usd_per_hour if device else None)
    calibration = None
    if tokens:
        from .timing import architecture_for, load_throughput, method_cost

        tflops = device.tensor_tflops if device else None
        for option in options:
            if option.fits:
                option.time = method_cost(
                    architecture_for(spec, option.settings), option.settings, tokens=tokens, tflops=tflops, price=price
                )
        calibration = {k: v for k, v in load_throughput().items() if not k.endswith("_note")}
    order = policy["method_preference"]
    fitting = [o for o in options if o.fits]
    best = None
    for cls in ("comfortable", "tight"):
        candidates = sorted((o for o in fitting if o.headroom == cls), key=lambda o: order.index(o.method))
        if candidates:
            best = candidates[0].method
            break
    notes = []
    if budget == 0:
        notes.append(
            "no accelerator memory (CPU only): no recipe is planned; a CPU can smoke-test a recipe on a tiny model"
        )
    elif device is not None and device.kind == "unified":
        notes.append(
            f"{device.name}: planned against {device.usable_fraction:.0%} of unified memory (the rest stays with the "
            "system); bitsandbytes' 4-bit and 8-bit kernels are CUDA-first, so QLoRA and 8-bit AdamW may not run"
        )
    if precision == "fp16":
        notes.append(f"{device.name} has no bf16 tensor cores: recipes use fp16")
    if recipe_format in policy["search"]["losses_by_format"]:
        notes.append(policy["search"]["losses_by_format_why"][recipe_format])
    return FitResult(
        model=spec.id,
        gpu=device.id if device else None,
        gpu_name=device.name if device else None,
        gpu_memory_gib=gib,
        gpus=gpus,
        options=options,
        best=best,
        headroom_policy=policy["headroom"],
        tokens=tokens,
        price_usd_per_hour=price,
        recipe_format=recipe_format,
        time_calibration=calibration,
        notes=notes,
    )


def _check_counts(**values) -> None:
    bounds = {"gpus": MAX_GPUS, "seq": MAX_SEQ, "batch": MAX_BATCH, "effective_batch": MAX_BATCH * MAX_GPUS}
    issues = [
        FieldIssue(field=name, message=f"must be a whole number from 1 to {bounds[name]:,}")
        for name, value in values.items()
        if value is not None
        and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= bounds[name])
    ]
    if issues:
        raise InvalidInput("invalid fit search input", fields=issues)


def headroom_of(needed: int | None, budget: int) -> Headroom:
    if needed is None:
        return "not_assessed"
    h = load_policy()["headroom"]
    if budget and needed <= h["comfortable_max"] * budget:
        return "comfortable"
    if budget and needed <= h["tight_max"] * budget:
        return "tight"
    return "does_not_fit"


class _Evaluator:
    """Estimates by settings, memoised: the search asks for the same recipe several times."""

    def __init__(self, spec, budget: int, device: Device | None):
        from ..estimate import estimate_training_memory

        self.spec, self.budget, self.device = spec, budget, device
        self._estimate = estimate_training_memory
        self._cache: dict[str, object] = {}

    def estimate(self, s: TrainingSettings):
        key = s.model_dump_json()
        if key not in self._cache:
            self._cache[key] = self._estimate(self.spec, s)
        return self._cache[key]

    def needed(self, s: TrainingSettings) -> int | None:
        return self.estimate(s).total_needed_bytes()

    def fits(self, s: TrainingSettings) -> bool:
        needed = self.needed(s)
        return needed is not None and headroom_of(needed, self.budget) in ("comfortable", "tight")

    def seconds_per_token(self, s: TrainingSettings) -> float:
        from .timing import architecture_for, step_seconds

        policy = load_policy()["slowdown"]
        tflops = (self.device.tensor_tflops if self.device else None) or 989.0
        seconds = step_seconds(architecture_for(self.spec, s), s, tflops)
        return seconds * policy[s.sharding] * policy[s.optimizer] * policy[s.loss] / (s.batch * s.seq)


def _search(
    spec, asked: TrainingSettings, budget: int, device, effective: int, grow_batch: bool, losses: list[str]
) -> FitOption:
    policy = load_policy()
    search = policy["search"]
    ev = _Evaluator(spec, budget, device)
    if ev.needed(asked) is None:
        est = ev.estimate(asked)
        return _option(ev, asked, asked, "not_assessed", effective, notes=est.notes[-1:])
    shardings = search["shardings_single_gpu"] if asked.gpus == 1 else search["shardings_multi_gpu"]
    combos = [
        {"sharding": sh, "grad_checkpointing": ckpt, "optimizer": opt, "loss": loss}
        for sh in shardings
        for ckpt in (False, True)
        for opt in search["optimizers"]
        for loss in losses
    ]
    seqs = [asked.seq]
    while seqs[-1] // 2 >= search["min_seq"]:
        seqs.append(seqs[-1] // 2)
    per_gpu = max(1, effective // asked.gpus)
    batches = [asked.batch]
    if grow_batch:
        while batches[0] * 2 <= min(per_gpu, search["max_micro_batch"]):
            batches.insert(0, batches[0] * 2)
    while batches[-1] > 1:
        batches.append(batches[-1] // 2)
    for seq in seqs:
        for wanted in ("comfortable", "tight"):
            found = []
            for b in batches:
                if b * seq > MAX_TOKENS_PER_GPU:
                    continue
                for combo in combos:
                    s = asked.model_copy(update={**combo, "batch": b, "seq": seq})
                    if headroom_of(ev.needed(s), budget) == wanted:
                        found.append(s)
            if found:
                best = min(found, key=lambda s: (round(ev.seconds_per_token(s), 12), len(_diff(asked, s)), -s.batch))
                return _option(ev, asked, best, wanted, effective)
    # Nothing fits: report the recipe that needs least, and what it would take.
    smallest = min(
        (asked.model_copy(update={**c, "batch": 1, "seq": seqs[-1]}) for c in combos), key=lambda s: ev.needed(s)
    )
    return _option(ev, asked, smallest, "does_not_fit", effective, notes=_what_it_would_take(ev, asked, losses))


def _losses(spec, recipe_format: str | None = None) -> list[str]:
    """The losses the search tries: the recipe format's only one (TRL's fused LM head), else the standard one and the
    fused one, the latter only for the model types Liger-Kernel patches."""
    search = load_policy()["search"]
    if recipe_format in search["losses_by_format"]:
        return list(search["losses_by_format"][recipe_format])
    return [x for x in search["losses"] if x == "standard" or spec.model_type in search["fused_loss_model_types"]]


def _option(ev: _Evaluator, asked, s: TrainingSettings, headroom, effective: int, notes=()) -> FitOption:
    est = ev.estimate(s)
    fits = headroom in ("comfortable", "tight")
    accumulation = max(1, math.ceil(effective / (s.batch * s.gpus)))
    all_notes = list(notes)
    asked_needed = ev.needed(asked)
    if asked_needed is not None and s != asked:
        all_notes.insert(
            0,
            f"the starting recipe needs {fmt_bytes(asked_needed)} per GPU of {fmt_bytes(ev.budget)}; "
            f"this one {fmt_bytes(est.total_needed_bytes())}",
        )
    if headroom == "tight":
        all_notes.append("tight: run a few steps on the longest batch before launching the full job")
    return FitOption(
        method=s.method,
        fits=fits,
        headroom=headroom,
        settings=s,
        peak_bytes=est.peak_bytes,
        needed_bytes=est.total_needed_bytes(),
        budget_bytes=ev.budget,
        max_micro_batch=_largest(ev, s, "batch") if fits else 0,
        max_seq=_largest(ev, s, "seq") if fits else 0,
        grad_accumulation=accumulation,
        effective_batch=s.batch * s.gpus * accumulation,
        changes=_diff(asked, s),
        notes=all_notes,
    )


def _largest(ev: _Evaluator, s: TrainingSettings, name: str) -> int:
    """The largest value of `name` (batch or seq) that still fits, the other settings fixed: doubling, then
    bisection (memory grows with both)."""
    other = s.seq if name == "batch" else s.batch
    cap = min(MAX_TOKENS_PER_GPU // other, load_policy()["search"]["max_micro_batch"] if name == "batch" else MAX_SEQ)

    def fits(v: int) -> bool:
        return ev.fits(s.model_copy(update={name: v}))

    low = getattr(s, name)
    if not fits(low):
        return 0
    high = low
    while high < cap:
        nxt = min(high * 2, cap)
        if not fits(nxt):
            high = nxt
            break
        low = high = nxt
    else:
        return low
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if fits(mid) else (low, mid)
    return low


def _diff(asked: TrainingSettings, s: TrainingSettings) -> list[FitChange]:
    why = load_policy()["changes_why"]
    out = []
    for name in ("sharding", "grad_checkpointing", "optimizer", "loss", "batch", "seq"):
        a, c = getattr(asked, name), getattr(s, name)
        if a != c:
            out.append(FitChange(field=name, asked=a, chosen=c, why=why[name]))
    return out


def _what_it_would_take(ev: _Evaluator, asked: TrainingSettings, losses: list[str]) -> list[str]:
    """How many GPUs of this size (FSDP, checkpointing, 8-bit AdamW, the fused loss) the asked shape would need."""
    if ev.budget == 0:
        return ["no GPU memory: training needs an accelerator"]
    gpus = 2
    while gpus <= 1024:
        s = asked.model_copy(
            update={
                "gpus": gpus,
                "sharding": "fsdp",
                "grad_checkpointing": True,
                "optimizer": "adamw8bit",
                "loss": losses[-1],
            }
        )
        if ev.fits(s):
            what = "FSDP, gradient checkpointing, 8-bit AdamW and the fused loss"
            if s.loss != "fused":
                what = "FSDP, gradient checkpointing and 8-bit AdamW"
            return [
                f"{METHOD_LABELS[asked.method]} fits on {gpus} such GPUs with {what} (batch {asked.batch} x "
                f"{asked.seq} per GPU)"
            ]
        gpus *= 2
    return [f"{METHOD_LABELS[asked.method]} does not fit on up to 1,024 such GPUs"]
