"""Floating-point work of one training step, by mechanism, from the architecture the estimator builds.

Per token, a linear layer with an `in x out` weight costs 2·in·out FLOPs forward. Backward
costs the same again for the gradient of its input and again for the gradient of its
weight: full fine-tuning runs both (backward = 2 x forward), while LoRA's frozen weights
need only the input gradient (backward = 1 x forward for them) plus the small adapters'
full cost. Causal attention costs 2·s·heads·head_dim per token per layer forward (QKᵀ and
attention x V, each 2·s·d, halved by the causal mask) and twice that backward, whatever
the method, since the gradient must flow through it. Gradient checkpointing adds one
more forward of the decoder layers, less each layer's last projection (non-reentrant
checkpointing stops recomputing once backward has what it needs). A mixture of experts runs only its routed experts:
expert weights count at `experts_per_token / experts`. Embedding lookups cost no FLOPs;
the LM head is a linear layer like the others. Under LoRA without checkpointing, the
first layer's attention input projections need no input gradient (their input comes from
the frozen embedding; with checkpointing PEFT makes it require one).
tests/test_plan_time.py checks these counts against torch's FlopCounterMode on real
forward and backward passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..estimate.architecture import Architecture
from ..estimate.settings import TrainingSettings


@dataclass(frozen=True)
class StepFlops:
    forward: float
    backward: float
    recompute: float
    attention: float  # the part of the three above spent in attention (QKᵀ and attention x V), causal

    @property
    def total(self) -> float:
        return self.forward + self.backward + self.recompute


def active_matmul_params(arch: Architecture) -> tuple[float, float]:
    """Weights one token multiplies by in the decoder layers, and in the LM head."""
    head = arch.vocab * arch.hidden
    experts = arch.config.get("num_local_experts") or arch.config.get("num_experts")
    per_token = arch.config.get("num_experts_per_tok")
    routed = 0.0
    if experts and per_token:
        # transformers 5 stores experts as 3-D parameters, outside the linear modules: what is left of the
        # parameters after the linears and embeddings (norms are negligible beside them), at k of n experts.
        embeddings = head * (1 if arch.tied_embeddings else 2)
        routed = max(arch.total_params - arch.linear_params_in_layers - embeddings, 0) * per_token / experts
    return arch.linear_params_in_layers + routed, float(head)


def step_flops(arch: Architecture, settings: TrainingSettings) -> StepFlops:
    """FLOPs of one optimizer step on one GPU (its micro-batch of `batch x seq` tokens)."""
    tokens = settings.batch * settings.seq
    layers_w, head_w = active_matmul_params(arch)
    attn = 2.0 * tokens * settings.seq * arch.layers * arch.heads * arch.head_dim
    layers_fwd = 2.0 * tokens * layers_w + attn
    head_fwd = 2.0 * tokens * head_w
    forward = layers_fwd + head_fwd
    adapters = 0.0
    if settings.method == "full":
        backward = 2.0 * forward
    else:
        adapters = 2.0 * tokens * arch.adapter_params  # forward of the adapters, already small
        forward += adapters
        # frozen weights: the input gradient only; attention: twice its forward; adapters: input and weight grads.
        backward = (layers_fwd - attn) + head_fwd + 2.0 * attn + 2.0 * adapters
        if not settings.grad_checkpointing:  # with it, PEFT makes the embedding's output require grad
            backward -= _first_inputs(arch, settings)
    recompute = layers_fwd + adapters - _last_projections(arch, settings) if settings.grad_checkpointing else 0.0
    attention = attn * (3 + (1 if settings.grad_checkpointing else 0))
    return StepFlops(forward=forward, backward=backward, recompute=recompute, attention=attention)


# Projections that read a layer's (normed) input: in the first layer under LoRA that input comes from the frozen
# embedding, so autograd computes no gradient for it.
ATTENTION_INPUTS = {"q_proj", "k_proj", "v_proj", "qkv_proj", "query_key_value", "c_attn", "Wqkv"}


def _first_inputs(arch: Architecture, settings: TrainingSettings) -> float:
    tokens = settings.batch * settings.seq
    skipped = 0.0
    for name, info in arch.layer_linears[0].items():
        if name.split(".")[-1] in ATTENTION_INPUTS:
            skipped += info.in_features * (info.out_features + (settings.rank if info.adapted else 0))
    return 2.0 * tokens * skipped


# The last projection of a layer: non-reentrant checkpointing stops recomputing once every tensor backward needs
# is back (torch.utils.checkpoint's early stop, on by default), and this one's output is not among them. Under
# LoRA only the adapter's B matrix is spared: lora_A's output is needed, and PEFT computes it after the frozen
# projection.
LAST_PROJECTIONS = {"down_proj", "w2", "fc2", "dense_4h_to_h"}


def _last_projections(arch: Architecture, settings: TrainingSettings) -> float:
    tokens = settings.batch * settings.seq
    total = 0.0
    for layer in arch.layer_linears:
        for name, info in layer.items():
            if name.split(".")[-1] in LAST_PROJECTIONS:
                # PEFT runs the frozen projection and lora_A before lora_B, whose output alone is not needed.
                total += settings.rank * info.out_features if info.adapted else info.in_features * info.out_features
    return 2.0 * tokens * total


def kernel_counts(arch: Architecture, settings: TrainingSettings) -> tuple[int, int]:
    """Linear modules and LoRA-adapted modules a step runs through: each launches kernels whose fixed cost
    dominates small steps in eager PyTorch (the calibration fits a time per module)."""
    linears = sum(len(ll) for ll in arch.layer_linears)
    adapted = 0 if settings.method == "full" else sum(1 for ll in arch.layer_linears for i in ll.values() if i.adapted)
    factor = 2 if settings.grad_checkpointing else 1
    return linears * factor, adapted * factor
