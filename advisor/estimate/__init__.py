"""Exact parameter counts and a per-GPU training-memory estimate, for full fine-tuning, LoRA and QLoRA.

    >>> from advisor.estimate import estimate_training_memory, TrainingSettings
    >>> est = estimate_training_memory("llama-3.1-8b", TrainingSettings(method="lora", targets="all-linear"))
    >>> est.trainable_params, est.peak_bytes

Counts come from the real architecture built on the meta device with PEFT's own LoRA
injection; memory from `memory.step_memory`. torch, transformers and peft are imported
when these functions run, never when `advisor` is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import ValidationError

from ..errors import FieldIssue, InvalidInput, invalid_input
from ..versions import installed_versions
from .settings import TRL_TILES, Estimate, Method, ParamGroupOut, TrainingSettings

if TYPE_CHECKING:
    from ..model_specs import ModelSpec

__all__ = ["Estimate", "TrainingSettings", "estimate_training_memory", "compare_methods", "training_settings"]

METHODS: tuple[Method, ...] = ("full", "lora", "qlora")


def training_settings(**values) -> TrainingSettings:
    """`TrainingSettings(**values)`, with pydantic's errors turned into field errors (exit 2)."""
    try:
        return TrainingSettings(**values)
    except ValidationError as exc:
        raise invalid_input(exc, "training settings") from None


def estimate_training_memory(
    model: str | ModelSpec, settings: TrainingSettings | None = None, *, kernels: Literal["cuda", "cpu"] = "cuda"
) -> Estimate:
    """Parameters and per-GPU peak training memory of `model` under `settings`.

    `kernels`: whose attention kernels a traced family's trace emulates, CUDA's (an estimate for a GPU) or the
    CPU's (what a reference run on the CPU measures, to compare like with like)."""
    from ..hf import auto_class_name
    from ..model_specs import ModelSpec, resolve_model_spec
    from .architecture import describe
    from .memory import (
        CUDA_CONTEXT_BYTES,
        UnsupportedArchitecture,
        activation_basis,
        precision_of,
        step_memory,
        weight_bytes,
    )

    spec = model if isinstance(model, ModelSpec) else resolve_model_spec(model)
    settings = settings or TrainingSettings()
    _check(spec, settings)
    p = precision_of(settings)
    arch = describe(
        spec,
        method=settings.method,
        rank=settings.rank,
        alpha=settings.lora_alpha,
        targets=settings.targets,
        weights=p.weights,
        others=p.others,
    )
    notes = list(arch.notes)
    basis = None
    try:
        basis = activation_basis(arch, settings)
        act = _traced_activations(spec, arch, settings, kernels) if basis == "traced" else None
        mem = step_memory(arch, settings, act)
    except UnsupportedArchitecture as exc:
        mem, basis = None, None
        notes.append(
            f"model_type {exc.model_type!r}: {exc.reason}; parameter counts are exact, memory is not estimated"
        )
    else:
        notes += mem.notes

    if settings.method == "qlora" and any(g.module == "experts" for g in arch.params_by_module):
        notes.append(
            "QLoRA: the experts are fused 3-D parameters, which bitsandbytes does not quantise (it quantises "
            "nn.Linear); prepare_model_for_kbit_training casts them to fp32 with the other unquantised weights, as "
            "counted here (axolotl's quantize_moe_experts would quantise them; not modelled)"
        )
    full_ckpt = arch.total_params * (2 if settings.precision in ("bf16", "fp16") or settings.method == "qlora" else 4)
    ckpt = arch.adapter_params * 4 if settings.method != "full" else weight_bytes(arch, settings)
    return Estimate(
        model=spec.id,
        model_type=spec.model_type,
        auto_class=auto_class_name(spec),
        task_from=spec.task_from,
        method=settings.method,
        settings=settings,
        total_params=arch.total_params,
        trainable_params=arch.trainable_params,
        trainable_fraction=arch.trainable_params / arch.total_params if arch.total_params else 0.0,
        params_by_module=[ParamGroupOut(**vars(g)) for g in arch.params_by_module],
        lora_targets=arch.targets,
        activation_basis=basis,
        attention_kernels=kernels if basis == "traced" else None,
        peak_bytes=max(mem.phases.values()) if mem else None,
        peak_phase=mem.peak_phase if mem else None,
        components=mem.components if mem else {},
        sizes=mem.sizes if mem else {},
        phases=mem.phases if mem else {},
        cuda_context_bytes=CUDA_CONTEXT_BYTES,
        allocator_slack_bytes=_allocator_slack(mem) if mem else None,
        checkpoint_bytes=ckpt,
        full_checkpoint_bytes=full_ckpt,
        assumptions=_assumptions(settings),
        warnings=_warnings(arch, settings),
        notes=notes,
        versions=_versions(),
    )


def _traced_activations(spec, arch, settings: TrainingSettings, kernels: str = "cuda"):
    """Trace the real module on the meta device at the estimate's batch x seq (cached per process)."""
    from .memory import activations_from_trace, uses_cache
    from .trace import trace_activations

    traced = trace_activations(
        spec,
        method=settings.method,
        rank=settings.rank,
        alpha=settings.lora_alpha,
        # the targets as asked (None: the default), for PEFT to resolve as the training run's PEFT does: `all-linear`
        # reaches the experts' 3-D weights through target_parameters, which the resolved module names leave out
        targets=settings.targets if settings.method != "full" else None,
        precision=settings.precision,
        attention=settings.attention,
        batch=settings.batch,
        seq=settings.seq,
        use_cache=uses_cache(arch, settings),
        kernels=kernels,
    )
    return activations_from_trace(traced)


def compare_methods(model: str | ModelSpec, settings: TrainingSettings | None = None) -> dict[str, Estimate]:
    """The same settings under full fine-tuning, LoRA and QLoRA, for a side-by-side table."""
    from ..model_specs import ModelSpec, resolve_model_spec

    spec = model if isinstance(model, ModelSpec) else resolve_model_spec(model)
    settings = settings or TrainingSettings()
    return {m: estimate_training_memory(spec, settings.model_copy(update={"method": m})) for m in METHODS}


def _check(spec: ModelSpec, settings: TrainingSettings) -> None:
    if settings.method == "qlora" and settings.precision == "fp32":
        raise InvalidInput(
            "QLoRA computes in bf16 or fp16",
            fields=[
                FieldIssue(
                    field="precision", message="fp32 is not a QLoRA compute dtype", allowed=["bf16", "fp16", "mixed"]
                )
            ],
        )
    if settings.batch * settings.seq > 1 << 26:
        raise InvalidInput(
            "batch x seq is over 67M tokens per GPU",
            fields=[FieldIssue(field="seq", message="batch x seq must be at most 67,108,864")],
        )


POSITION_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length")


def _warnings(arch, settings: TrainingSettings) -> list[str]:
    """What the estimate computes anyway but a real run would not do as asked."""
    out = []
    positions = next((arch.config[k] for k in POSITION_KEYS if isinstance(arch.config.get(k), int)), None)
    if positions and settings.seq > positions:
        out.append(
            f"--seq {settings.seq:,} is above the model's {positions:,} positions ({arch.model_type}'s "
            "max_position_embeddings): the model was not trained for it, and one with learned position embeddings "
            "cannot run it"
        )
    if settings.method != "full":
        small = sorted(
            {
                f"{name.split('.')[-1]} ({min(i.in_features, i.out_features):,})"
                for layer in arch.layer_linears
                for name, i in layer.items()
                if i.adapted and min(i.in_features, i.out_features) < settings.rank
            }
        )
        if small:
            out.append(
                f"rank {settings.rank} is above the smaller dimension of {', '.join(small)}: the update BA cannot "
                "have rank above it, so the extra rank adds parameters and memory without capacity"
            )
    return out


def _allocator_slack(mem) -> int:
    # The caching allocator reserves whole blocks and keeps freed ones; on the H200
    # calibration runs reserved exceeded allocated by 5-28% of the peak, most where
    # large short-lived buffers (logits, loss) dominate. Report a mid-range figure.
    return int(0.15 * max(mem.phases.values()))


def _assumptions(s: TrainingSettings) -> list[str]:
    out = [
        (
            "one step as in the calibration protocol: forward with labels, loss.backward(), optimizer.step(), "
            "zero_grad(set_to_none=True)"
        ),
        f"batch {s.batch} x seq {s.seq} tokens per GPU, no padding",
    ]
    if s.loss == "fused":
        out[1:1] = [
            "the previous step's output (KV cache; the fused loss returns no logits) stays alive until the next "
            "forward returns",
            (
                "fused loss: Liger-Kernel's LigerFusedLinearCrossEntropy (mean or sum reduction) on a CUDA device of "
                "compute capability 8 or more: the LM head and the loss computed in token chunks with their "
                "gradients in forward, no full logits"
            ),
        ]
    elif s.loss == "trl_chunked":
        out[1] = f"batch {s.batch} x seq {s.seq} tokens per GPU, no padding, every next-token label kept"
        out[1:1] = [
            (
                "TRL's fused LM head (trl.trainer.utils.add_fused_lm_head, which TRL 1.16's SFTTrainer always adds, "
                "with log_probs, entropy and is_top1): the backbone with use_cache=False, then log-probabilities of "
                f"the labelled positions in {TRL_TILES}, logits recomputed in backward, "
                "gradients accumulated in fp32; its CUDA path (Triton kernels, torch >= 2.8); the trainer keeps "
                "no output for the next step"
            ),
        ]
    else:
        out[1:1] = [
            "the previous step's output (logits, KV cache) stays alive until the next forward returns",
            "transformers' causal-LM loss upcasts logits to fp32",
        ]
    if s.method != "full":
        out.append("LoRA adapter weights in fp32 (PEFT's autocast_adapter_dtype=True), lora_dropout 0")
    if s.method == "qlora":
        out.append(
            (
                "QLoRA recipe: NF4 + double quantization for linear layers inside the blocks; embeddings, norms and LM "
                "head in fp32 (prepare_model_for_kbit_training); bf16 autocast; not validated against a measurement"
            )
        )
    if s.precision == "mixed":
        out.append(
            "mixed: fp32 weights, forward under bf16 autocast (autocast keeps bf16 copies of weights for backward)"
        )
    if s.attention == "sdpa":
        out.append("SDPA dispatches to flash/efficient kernels (no attention mask, GQA native)")
    if s.sharding == "zero2":
        out.append(
            (
                "ZeRO-2: optimizer states and fp32 master weights partitioned over GPUs; only trainable parameters "
                "have optimizer states"
            )
        )
    if s.sharding == "fsdp":
        out.append(
            "FSDP full sharding (FSDP2, each decoder layer and the root): parameters, gradients and optimizer states "
            "sharded; the root (embedding, final norm, LM head) stays gathered from forward to the end of backward, "
            "and up to two layers' parameters and gradients are gathered at a time"
        )
    if s.sharding == "ddp":
        out.append("DDP: gradient buckets hold a second copy of the gradients, allocated when the model is wrapped")
    return out


def _versions() -> dict[str, str]:
    return installed_versions("advisor", "torch", "transformers", "peft")
