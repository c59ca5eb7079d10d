"""The estimator's contract: the training settings it takes and the estimate it returns."""

# Written for start-up like the contract's models: see the docstring of advisor/assessment/contract.py.

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Method = Literal["full", "lora", "qlora"]
PrecisionName = Literal["bf16", "fp16", "fp32", "mixed"]
Optimizer = Literal["adamw", "adamw8bit", "sgd", "adafactor"]
Sharding = Literal["none", "ddp", "zero2", "fsdp"]
AttentionImpl = Literal["sdpa", "eager"]
LossImpl = Literal["standard", "fused", "trl_chunked"]
# TRL's fused LM head (TRL 1.16) scores tiles of TOKEN_CHUNK_SIZE tokens (trl/kernels/chunked_logprob.py) by
# _CHUNKED_LOGPROB_CHUNK_SIZE vocabulary entries (trl/trainer/utils.py).
TRL_TOKEN_TILE = 4096
TRL_VOCAB_TILE = 32768
TRL_TILES = f"{TRL_TOKEN_TILE:,}-token x {TRL_VOCAB_TILE:,}-vocabulary tiles"

METHOD_LABELS: dict[str, str] = {"full": "Full fine-tuning", "lora": "LoRA", "qlora": "QLoRA"}
# How a recipe line names a loss other than the standard one.
LOSS_LABELS: dict[str, str] = {"standard": "", "fused": "fused loss", "trl_chunked": "TRL chunked LM head"}

# The recipe a team starts from when it has not chosen one: LoRA on every linear layer
# (Biderman et al. 2024: target all modules; "LoRA Without Regret": all layers, MLP
# included) at rank 16, bf16 weights, AdamW. Compute feasibility estimates it and the
# reference run measures it when it proves a recommendation.
STARTING_RECIPE: dict[str, object] = {"rank": 16, "targets": "all-linear", "precision": "bf16", "optimizer": "adamw"}

# Upper bounds no real run reaches, here and in the Answers contract that feeds compute feasibility: a micro-batch of
# a million sequences, 16M tokens per sequence (the longest published context windows are 10M), 65,536 GPUs (four
# times the 16,384 H100s of Llama 3 405B's pre-training, the largest published job).
MAX_BATCH = 1 << 20
MAX_SEQ = 1 << 24
MAX_GPUS = 65536


class TrainingSettings(BaseModel):
    """How the model would be trained. Defaults follow PEFT's LoraConfig and a single-GPU bf16 AdamW run."""

    # Built on first use: the assessment imports this module for its labels and limits, not its models.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    method: Method = Field("lora", description="full fine-tuning, LoRA, or QLoRA (4-bit NF4 base with LoRA adapters).")
    rank: int = Field(8, ge=1, le=65536, description="LoRA rank r (PEFT's default is 8).")
    alpha: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="LoRA alpha; default 2 x rank (Biderman et al. 2024). Does not change memory.",
    )
    targets: list[str] | Literal["all-linear"] | None = Field(
        None,
        description=(
            "Modules LoRA adapts: names such as q_proj,v_proj, or all-linear. Default: PEFT's default for "
            "the architecture."
        ),
    )
    batch: int = Field(1, ge=1, le=MAX_BATCH, description="Micro-batch size per GPU.")
    seq: int = Field(512, ge=1, le=MAX_SEQ, description="Sequence length in tokens.")
    precision: PrecisionName = Field(
        "bf16", description="bf16/fp16: all weights in that dtype; fp32; mixed: fp32 weights with bf16 autocast."
    )
    optimizer: Optimizer = Field(
        "adamw", description="torch AdamW (foreach), bitsandbytes 8-bit AdamW, SGD with momentum, or Adafactor."
    )
    grad_checkpointing: bool = Field(
        False, description="Recompute each layer's activations in backward (non-reentrant checkpointing)."
    )
    gpus: int = Field(1, ge=1, le=MAX_GPUS, description="Number of GPUs.")
    sharding: Sharding = Field(
        "none",
        description=(
            "none (every GPU holds a full replica), ddp (replicas plus DDP's gradient buckets), zero2 "
            "(DeepSpeed ZeRO-2) or fsdp (full sharding)."
        ),
    )
    attention: AttentionImpl = Field(
        "sdpa", description="Attention implementation; sdpa uses flash/efficient kernels on GPU."
    )
    loss: LossImpl = Field(
        "standard",
        description=(
            "standard: transformers' cross-entropy on the full logits, upcast to fp32; fused: Liger-Kernel's fused "
            "linear cross-entropy (the LM head and the loss in token chunks, gradients computed in forward, no "
            "full logits; needs the liger-kernel package); trl_chunked: TRL's fused LM head, which SFTTrainer "
            f"(TRL 1.16) always runs (log-probabilities in {TRL_TILES}, logits recomputed in backward, no full "
            "logits)."
        ),
    )

    @field_validator("targets", mode="before")
    @classmethod
    def _split_targets(cls, value):
        if isinstance(value, str):
            if value.strip() == "all-linear":
                return "all-linear"
            value = [t.strip() for t in value.split(",")]
        if value is None:
            return None
        # Anything but a list of names would fail each member of the union: errors for targets.list[str] and
        # targets.literal['all-linear'] instead of one for targets.
        if not isinstance(value, (list, tuple)) or not value or any(not isinstance(t, str) or not t for t in value):
            raise ValueError("targets must be module names such as q_proj,v_proj, or all-linear")
        return value

    @property
    def lora_alpha(self) -> float:
        return self.alpha if self.alpha is not None else 2.0 * self.rank


class ParamGroupOut(BaseModel):
    model_config = ConfigDict(defer_build=True)

    module: str = Field(description="Module name (q_proj, embed_tokens, q_proj.lora_A, ...).")
    modules: int = Field(description="How many such modules the model has.")
    params: int
    trainable: int


class Estimate(BaseModel):
    """Parameters and per-GPU training memory for one model under one method."""

    model_config = ConfigDict(defer_build=True)

    model: str
    model_type: str
    auto_class: str = Field(
        description="The transformers auto class the model was built with: AutoModelForCausalLM, or AutoModel for "
        "an encoder's backbone."
    )
    task_from: Literal["catalog", "architectures", "model_type"] = Field(
        description="What chose the auto class: the catalog entry, the config's `architectures`, or (without that "
        "key) the model type's place in transformers' task mappings."
    )
    method: Method
    settings: TrainingSettings
    total_params: int = Field(description="Parameters of the base model.")
    trainable_params: int
    trainable_fraction: float
    params_by_module: list[ParamGroupOut]
    lora_targets: list[str] = Field(default=[])
    activation_basis: Literal["traced", "modelled", "approximated"] | None = Field(
        None,
        description="How the activations are known: traced (the real transformers module run on the meta device "
        "under saved_tensors_hooks), modelled (a hand-written block checked against autograd), approximated (a "
        "Llama-style layer standing in); null when memory is not estimated.",
    )
    attention_kernels: Literal["cuda", "cpu"] | None = Field(
        None,
        description="For traced activations: whose SDPA kernel choice the trace emulated, cuda (an estimate for a "
        "GPU) or cpu (a reference run on the CPU comparing its measurement); null when not traced.",
    )
    peak_bytes: int | None = Field(
        description=(
            "Predicted peak of tensor memory per GPU, as torch.cuda.max_memory_allocated counts it (no CUDA "
            "context, no allocator slack)."
        )
    )
    peak_phase: str | None = Field(None, description="The step phase where the peak falls.")
    components: dict[str, int] = Field(
        default={}, description="Bytes by component at the peak; they sum to peak_bytes."
    )
    sizes: dict[str, int] = Field(
        default={}, description="Each component's full size, whether or not it is live at the peak."
    )
    phases: dict[str, int] = Field(default={}, description="Live tensor bytes at each phase of a step.")
    cuda_context_bytes: int = Field(description="Typical CUDA context and kernels, outside peak_bytes.")
    allocator_slack_bytes: int | None = Field(
        None, description="Rough caching-allocator overhead beyond peak_bytes (reserved minus allocated)."
    )
    checkpoint_bytes: int = Field(
        description="Size of what training saves: the adapter (LoRA) or the whole model (full)."
    )
    full_checkpoint_bytes: int = Field(description="Size of the full model's weights in the training dtype.")
    assumptions: list[str] = Field(default=[])
    warnings: list[str] = Field(
        default=[],
        description="Settings the estimate accepts but a real run would not use as given (a sequence longer than "
        "the model's positions, a rank above a target's smaller dimension).",
    )
    notes: list[str] = Field(default=[])
    versions: dict[str, str] = Field(default={})

    def total_needed_bytes(self) -> int | None:
        if self.peak_bytes is None:
            return None
        return self.peak_bytes + self.cuda_context_bytes + (self.allocator_slack_bytes or 0)
