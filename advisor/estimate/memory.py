"""The training-memory model: what is live at each phase of a step, and the peak.

Pure arithmetic over an `Architecture` (exact shapes from the meta-device build) and
`TrainingSettings`; no torch. The step is the one every trainer runs:

    out = model(input_ids, labels=input_ids)   # forward, loss inside (logits upcast to fp32)
    out.loss.backward()
    optimizer.step(); optimizer.zero_grad(set_to_none=True)

so the live set at each moment is known: weights and optimizer states always; saved
activations from the end of forward until backward frees them layer by layer;
the loss buffers (fp32 log-softmax, its gradient, the gradient of the logits) at the
start of backward; gradients from backward until zero_grad; the optimizer's own
temporaries during `step()`; and the previous step's `out` (logits, KV cache), which
Python keeps until the next forward returns. The peak is the largest of these moments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .activations import BLOCKS, DTYPE_BYTES, Dims, Layer, LinearInfo, Precision, Tensor, mixtral_block
from .architecture import Architecture
from .settings import TRL_TOKEN_TILE, TRL_VOCAB_TILE, TrainingSettings

# QLoRA (arXiv 2305.14314): NF4 weights in blocks of 64 with 8-bit absmax, whose fp32
# constants come in blocks of 256 (double quantization): 4.127 bits per weight.
NF4_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)
# bitsandbytes' 8-bit optimizers keep tensors under 4096 elements in 32 bits, and one
# fp32 absmax per 256-element block for the rest.
BNB_MIN_8BIT_SIZE = 4096
CUDA_CONTEXT_BYTES = 600 * (1 << 20)  # torch + CUDA 12/13 context with lazy module loading, H100/H200 class


@dataclass
class Activations:
    """Saved-for-backward bytes at the end of forward: per token, and fixed (autocast's weight copies)."""

    layers_per_token: dict[str, float]  # embedding, every layer, rotary tables; by kind
    head_per_token: dict[str, float]  # final norm, LM head input, soft-capping
    layers_fixed: dict[str, float]
    head_fixed: dict[str, float]
    layer_per_token: float  # one steady-state layer, recomputed in backward under checkpointing
    layer_fixed: float
    logits_dtype: str
    kv_cache_per_token: float  # held by the output object until the next forward
    notes: list[str] = field(default_factory=list)
    # What the LM head and what follows it (soft-capping) save, inside head_per_token / head_fixed: the part a fused
    # linear cross-entropy replaces; and the dtype of the hidden states entering the LM head.
    head_linear_per_token: float = 0.0
    head_linear_fixed: float = 0.0
    head_input_dtype: str = "bf16"


def precision_of(settings: TrainingSettings) -> Precision:
    if settings.method == "qlora":
        # The QLoRA recipe: 4-bit base linears, prepare_model_for_kbit_training (other
        # weights in fp32), training under bf16 (fp16) autocast.
        return Precision(weights="nf4", autocast="fp16" if settings.precision == "fp16" else "bf16", others="fp32")
    if settings.precision == "mixed":
        return Precision(weights="fp32", autocast="bf16")
    return Precision(weights=settings.precision)


def weight_bytes(arch: Architecture, settings: TrainingSettings) -> int:
    p = precision_of(settings)
    adapters = arch.adapter_params * DTYPE_BYTES[p.adapter]
    if settings.method == "qlora":
        quantized = arch.linear_params_in_layers
        rest = arch.total_params - quantized
        return int(quantized * NF4_BYTES_PER_PARAM) + rest * DTYPE_BYTES[p.norm_dtype] + adapters
    return arch.total_params * DTYPE_BYTES[p.weights] + adapters


def trainable_dtype(settings: TrainingSettings) -> str:
    p = precision_of(settings)
    return p.weights if settings.method == "full" else p.adapter


def gradient_bytes(arch: Architecture, settings: TrainingSettings) -> int:
    return arch.trainable_params * DTYPE_BYTES[trainable_dtype(settings)]


def optimizer_state_bytes(arch: Architecture, settings: TrainingSettings, trainable_tensors: list[int]) -> int:
    """States of the optimizer for the trainable parameters (kept in their dtype by torch)."""
    size = DTYPE_BYTES[trainable_dtype(settings)]
    n = arch.trainable_params
    if settings.optimizer == "adamw":
        return 2 * n * size
    if settings.optimizer == "sgd":
        return n * size
    if settings.optimizer == "adamw8bit":
        total = 0
        for numel in trainable_tensors:
            total += 2 * numel * 4 if numel < BNB_MIN_8BIT_SIZE else 2 * (numel + 4 * -(-numel // 256))
        return total
    # Adafactor: factored second moment (one row and one column vector per matrix), no first moment.
    return sum(_adafactor_state(shape) * size for shape in _tensor_shapes(arch, settings))


def optimizer_step_temporary_bytes(arch: Architecture, settings: TrainingSettings) -> int:
    """torch's foreach AdamW allocates sqrt(exp_avg_sq) for every parameter at once."""
    size = DTYPE_BYTES[trainable_dtype(settings)]
    if settings.optimizer == "adamw":
        return arch.trainable_params * size
    if settings.optimizer == "adafactor":
        largest = max((r * c for r, c in _tensor_shapes(arch, settings)), default=0)
        return 2 * largest * size
    return 0


def _tensor_shapes(arch: Architecture, settings: TrainingSettings) -> list[tuple[int, int]]:
    shapes = []
    if settings.method == "full":
        for layer in arch.layer_linears:
            shapes += [(i.out_features, i.in_features) for i in layer.values()]
        shapes.append((arch.vocab, arch.hidden))
    else:
        for layer in arch.layer_linears:
            shapes += [(settings.rank, i.in_features) for i in layer.values() if i.adapted]
            shapes += [(i.out_features, settings.rank) for i in layer.values() if i.adapted]
    return shapes


def _adafactor_state(shape: tuple[int, int]) -> int:
    rows, cols = shape
    return rows + cols if rows > 1 and cols > 1 else rows * cols


def trainable_tensor_sizes(arch: Architecture, settings: TrainingSettings) -> list[int]:
    return [r * c for r, c in _tensor_shapes(arch, settings)]


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------


def uses_cache(arch: Architecture, settings: TrainingSettings) -> bool:
    """Whether the training forward builds a KV cache: transformers does when the config's `use_cache` is on, except
    under gradient checkpointing (it turns the cache off) and under TRL's fused LM head (which runs the backbone with
    use_cache=False)."""
    return (
        not settings.grad_checkpointing and settings.loss != "trl_chunked" and bool(arch.config.get("use_cache", True))
    )


def activations(arch: Architecture, settings: TrainingSettings) -> Activations:
    p = precision_of(settings)
    full = settings.method == "full"
    dims = Dims(
        hidden=arch.hidden,
        heads=arch.heads,
        kv_heads=arch.kv_heads,
        head_dim=arch.head_dim,
        batch=settings.batch,
        seq=settings.seq,
        rope_dim=_rope_dim(arch),
        intermediate=int(arch.config.get("intermediate_size") or 0),
    )
    attention = "flash" if settings.attention == "sdpa" and arch.model_type not in EAGER_ONLY else "eager"
    notes = []
    if settings.attention == "sdpa" and attention == "eager":
        notes.append(
            f"{arch.model_type} does not support SDPA in transformers; eager attention keeps s x s scores per head"
        )
    use_cache = uses_cache(arch, settings)
    block, family_note = _block_for(arch)
    if family_note:
        notes.append(family_note)

    def layer(linears: dict[str, LinearInfo], wrapped=None) -> Layer:
        return Layer(
            linears,
            p,
            dims,
            attention=attention,
            rank=settings.rank,
            norms_trainable=full,
            use_cache=use_cache,
            wrapped=wrapped,
        )

    # The embedding lookup saves the token ids when its table is trained.
    embed = layer({})
    x = Tensor(arch.hidden, p.norm_dtype, requires_grad=full)
    if full:
        embed.save(Tensor(1, "int64", False), "embedding")
        if arch.model_type == "gemma2":
            embed.fixed["embedding"] += DTYPE_BYTES[p.norm_dtype]  # the sqrt(hidden) scale, a 0-d tensor

    # The first layer can differ (under LoRA nothing upstream of its first adapter needs
    # a gradient); every later layer is the same as the second.
    first = layer(arch.layer_linears[0], arch.layer_wrapped[0])
    y = block(first, x)
    second = min(1, arch.layers - 1)
    rest = layer(arch.layer_linears[second], arch.layer_wrapped[second])
    block(rest, Tensor(arch.hidden, y.dtype, requires_grad=y.requires_grad))
    rope = first.saved.pop("rope", 0.0) or rest.saved.get("rope", 0.0)
    rest.saved.pop("rope", None)

    layers: dict[str, float] = {}
    layers_fixed: dict[str, float] = {}
    for recorder, count in ((embed, 1), (first, 1), (rest, arch.layers - 1)):
        for k, v in recorder.saved.items():
            layers[k] = layers.get(k, 0.0) + v * count
        for k, v in recorder.fixed.items():
            layers_fixed[k] = layers_fixed.get(k, 0.0) + v * count
    if rope:
        layers["rope"] = rope

    head = layer(
        {"lm_head": LinearInfo(arch.hidden, arch.vocab, trainable=full, adapted=False, weight_dtype=p.norm_dtype)}
    )
    logits, h = _head(head, arch, Tensor(arch.hidden, y.dtype, True))
    return Activations(
        layers_per_token=layers,
        head_per_token=dict(head.saved),
        layers_fixed=layers_fixed,
        head_fixed=dict(head.fixed),
        layer_per_token=sum(v for k, v in rest.saved.items() if k != "kv_cache"),
        layer_fixed=sum(rest.fixed.values()),
        logits_dtype=logits.dtype,
        kv_cache_per_token=first.held + rest.held * (arch.layers - 1),
        notes=notes,
        head_linear_per_token=head.saved_after_norm,
        head_linear_fixed=head.fixed_after_norm,
        head_input_dtype=h.dtype,
    )


def activations_from_trace(traced) -> Activations:
    """The memory model's view of a trace (`trace.trace_saved`) at the estimate's own batch x seq."""
    n = traced.tokens
    layers: dict[str, float] = {}
    for part in (traced.embedding, *traced.layers):
        for k, v in part.items():
            layers[k] = layers.get(k, 0.0) + v / n
    if traced.kv_cache:
        layers["kv_cache"] = traced.kv_cache / n
    notes = []
    kernels = ", ".join(f"{k} x{v}" for k, v in sorted(traced.kernels.items()))
    if kernels:
        whose = "the CPU's SDPA dispatches" if traced.kernel_device == "cpu" else "CUDA would dispatch"
        notes.append(f"attention kernels as {whose} them (emulated for the trace): {kernels}")
    elif traced.attention != "sdpa":
        notes.append(f"attention: transformers' {traced.attention} implementation (the model's own choice or asked)")
    return Activations(
        layers_per_token=layers,
        head_per_token={k: v / n for k, v in traced.head.items()},
        layers_fixed={},
        head_fixed={},
        # under checkpointing the layer recomputed at the peak is the largest (Gemma 3's global layers, MoE layers)
        layer_per_token=max((sum(la.values()) for la in traced.layers), default=0.0) / n,
        layer_fixed=0.0,
        logits_dtype=traced.logits_dtype,
        kv_cache_per_token=traced.kv_cache_held / n,
        notes=notes,
        # the trace's "lm_head" part: from the LM head's forward on (its input, soft-capping)
        head_linear_per_token=traced.head.get("lm_head", 0) / n,
        # the trace runs without autocast: the LM head's input has the logits' dtype
        head_input_dtype=traced.logits_dtype,
    )


MODELLED = {*BLOCKS, "mixtral"}  # families with a hand-written block (activations.py)


def activation_basis(arch: Architecture, settings: TrainingSettings) -> str:
    """How the activations are known: `modelled` (a hand-written block, checked against autograd), `traced` (the
    real module run on the meta device), or `approximated` (a Llama-style layer standing in for an unmodelled
    family where the trace cannot run: mixed precision and QLoRA need autocast and bitsandbytes, which the meta
    device has not). Raises UnsupportedArchitecture when none applies."""
    if arch.model_type in MODELLED:
        return "modelled"
    if arch.task != "causal-lm":
        raise UnsupportedArchitecture(arch.model_type, "memory is estimated for causal language models only")
    if settings.method != "qlora" and settings.precision != "mixed":
        return "traced"
    names = {n.split(".")[-1] for n in arch.layer_linears[0]}
    if {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= names:
        return "approximated"
    raise UnsupportedArchitecture(
        arch.model_type,
        f"the trace runs bf16, fp16 and fp32 full fine-tuning and LoRA; {settings.method} with "
        f"{settings.precision} needs a hand-written block, which this family has not",
    )


EAGER_ONLY = {"gemma2"}  # transformers: `_supports_sdpa = False` (soft-capping)


def _block_for(arch: Architecture):
    names = {n.split(".")[-1] for n in arch.layer_linears[0]}
    if arch.model_type in BLOCKS:
        return BLOCKS[arch.model_type], None
    if arch.model_type == "mixtral":
        return mixtral_block(arch.config.get("num_experts_per_tok", 2), arch.config.get("num_local_experts", 8)), (
            "Mixtral: tokens assumed spread evenly over experts (top-k routing, balanced load)"
        )
    if {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= names:
        return (
            BLOCKS["llama"],
            (
                f"{arch.model_type}: activations approximated by a Llama-style layer (same projections); "
                "not checked against this family"
            ),
        )
    raise UnsupportedArchitecture(arch.model_type)


class UnsupportedArchitecture(Exception):
    def __init__(self, model_type: str, reason: str = "no activation model"):
        super().__init__(model_type)
        self.model_type = model_type
        self.reason = reason


def _rope_dim(arch: Architecture) -> int:
    factor = arch.config.get("partial_rotary_factor", 1.0) or 1.0
    return int(arch.head_dim * factor)


def _head(L: Layer, arch: Architecture, x: Tensor) -> tuple[Tensor, Tensor]:
    """Final norm, LM head, and Gemma 2's final logit soft-capping (tanh saves its output). Returns the logits and
    the LM head's input; records on `L` what the LM head and soft-capping save (`saved_after_norm`, per token, and
    `fixed_after_norm`), the part a fused linear cross-entropy replaces."""
    h = L.rms_norm(x, "gemma" if arch.model_type == "gemma2" else "llama")
    saved, fixed = sum(L.saved.values()), sum(L.fixed.values())
    logits = L.linear(h, "lm_head")
    if arch.config.get("final_logit_softcapping"):
        capped = Tensor(logits.elems, logits.dtype, True)
        L.save(capped, "softcap")
        logits = Tensor(logits.elems, logits.dtype, True)
    L.saved_after_norm = sum(L.saved.values()) - saved
    L.fixed_after_norm = sum(L.fixed.values()) - fixed
    return logits, h


# ---------------------------------------------------------------------------
# Phases of a step and the peak
# ---------------------------------------------------------------------------


@dataclass
class FusedLoss:
    """Liger-Kernel's fused linear cross-entropy (LigerFusedLinearCrossEntropyFunction, the path HF Trainer's
    mean/sum reductions take), buffer by buffer. Its forward allocates the hidden states' gradient (and, when the LM
    head trains, the head weight's gradient in the weight's dtype), a per-token fp32 loss and the labels' mask; then,
    for one chunk of tokens at a time, computes the chunk's logits, overwrites them in place with the loss's
    gradient (the Triton kernel works in fp32 registers), and adds their products with the head weight and the
    chunk's inputs into the two gradients. It saves only those gradients for backward, which hands them on, and
    returns no logits. Chunks are sized so a chunk's logits are about as large as the hidden states:
    next_power_of_2(ceil(tokens / ceil(vocab / hidden))) tokens, at most all of them."""

    chunk: int  # tokens per chunk
    saved: int  # saved for backward: the hidden states' gradient, plus head_grad
    head_grad: int  # the LM head weight's gradient (full fine-tuning), which becomes its .grad
    peak: int  # the most the op holds at once in forward, saved included
    chunk_bytes: int  # what one chunk adds at its largest moment


def fused_loss(arch: Architecture, settings: TrainingSettings, act: Activations) -> FusedLoss:
    """Each buffer of the fused loss's forward on a CUDA device of compute capability 8 or more (Ampere on), where
    Liger takes its out= and in-place matmul paths."""
    p = precision_of(settings)
    tokens, hidden, vocab = settings.batch * settings.seq, arch.hidden, arch.vocab
    x = DTYPE_BYTES[act.head_input_dtype]
    inc = -(-vocab // hidden)
    chunk = min(1 << max(0, -(-tokens // inc) - 1).bit_length(), tokens)
    grad_input = tokens * hidden * x  # torch.zeros_like(_input)
    head_grad = _lm_head_grad_bytes(arch, settings)  # torch.zeros_like(weight): accum_dtype None, the weight's dtype
    per_token = tokens * 4 + tokens * 1  # loss_1d (fp32) and target != ignore_index (bool)
    if p.autocast:
        # Under autocast torch.mm(out=) is not used (`_can_use_mm_out`): each chunk's `_input_chunk @ weight.t()`
        # returns the logits in the autocast dtype from autocast's casts of the chunk and of the weight, and
        # `grad_logits_chunk @ weight` again casts the weight and returns a chunk x hidden result that is copied
        # into grad_input. Autocast caches the weight's cast only for a leaf that requires grad (full fine-tuning):
        # then one copy lives until forward ends; otherwise each matmul makes and frees its own.
        a = DTYPE_BYTES[p.autocast]
        copy = vocab * hidden * a
        chunk_bytes = chunk * vocab * a + chunk * hidden * a + (0 if head_grad else copy)
        fixed = copy if head_grad else 0
    else:
        # torch.empty((chunk, vocab)) once, filled by torch.mm(out=) chunk by chunk; grad_input's rows by mm(out=).
        chunk_bytes = chunk * vocab * x
        # The head's gradient: addmm(out=grad_weight) in place in bf16/fp16; in fp32 Liger falls back to
        # `grad_weight += torch.mm(grad_logits_chunk.t(), _input_chunk).float()`, a weight-sized temporary.
        if head_grad and x == 4:
            chunk_bytes += vocab * hidden * 4
        fixed = 0
    peak = grad_input + head_grad + per_token + fixed + chunk_bytes
    return FusedLoss(chunk=chunk, saved=grad_input + head_grad, head_grad=head_grad, peak=peak, chunk_bytes=chunk_bytes)


# TRL's fused LM head tiles its logits TRL_TOKEN_TILE x TRL_VOCAB_TILE (settings.py, with their sources); the tile
# buffer is allocated at the full vocabulary width even when the vocabulary is narrower.
# The per-token fp32 vectors of ChunkedLogProbFunction.forward: seven running statistics (max, sum of exponentials,
# x_sum_exp, sq_sum_exp, z_sum, max_before_target, target_logit: all allocated whichever outputs are asked), then
# log_z, the log-probabilities, entropy's temporary x_sum_exp / sum_exp and the entropy, all live at the entropy's
# step.
TRL_STATS_FP32 = 7
TRL_END_FP32 = 11


@dataclass
class TrlChunkedLoss:
    """TRL 1.16's fused LM head as SFTTrainer runs it (`add_fused_lm_head(model, outputs=("log_probs", "entropy",
    "is_top1"))`, then `model(..., fused_lm_head=True)`), on a CUDA device with Triton, buffer by buffer.

    The patched forward runs the backbone with use_cache=False, keeps its output (`last_hidden_state`) to the end, and
    scores the positions whose next-token label is not -100 (all of them here: batch x (seq - 1)): `labels != -100` (a
    bool mask, which `hidden[mask]` and `masked_scatter` save), `hidden[mask]` (a copy in the hidden states' dtype) and
    `labels[mask]` (int64). ChunkedLogProbFunction's forward allocates seven per-token fp32 statistics and one tile
    buffer of min(tokens, TRL_TOKEN_TILE) x TRL_VOCAB_TILE in the compute dtype (autocast's, else the hidden states');
    for each tile, torch.mm(out=) writes the logits and a Triton kernel folds them into the statistics in registers.
    Inputs in another dtype than the compute dtype are cast: a token chunk of the hidden states (kept through its tiles)
    and a tile of the weight. Then log_z, the log-probabilities and the entropy (fp32). It saves the scored hidden
    states, the labels, log_z and the entropy: the logits are recomputed in backward. Backward allocates the hidden
    states' gradient in fp32, the head weight's in fp32 when the head trains, and another tile buffer; per tile it
    recomputes the logits, overwrites them with their gradient (Triton), and accumulates both gradients with addmm in
    fp32 (cuBLAS's out_dtype=float32 from bf16/fp16 tiles); at its return both are cast to their tensors' dtypes."""

    tokens: int  # positions scored: batch x (seq - 1)
    tile_bytes: int  # one tile buffer, forward's or backward's
    saved: int  # saved for backward: hidden states, labels, log_z, entropy, the label mask
    backbone_output: int  # the backbone's last_hidden_state, alive through the head's forward
    forward_loop: int  # the head's buffers (from the label mask on) while it folds a tile
    forward_end: int  # the same at the entropy's step, the tile buffer still held
    backward_loop: int  # the op's backward while it accumulates a tile (the incoming gradient included)
    backward_end: int  # the same at its return, with the gradients' casts (the head weight's becomes its .grad)
    head_grad: int  # the LM head weight's gradient (full fine-tuning), inside backward_end

    @property
    def forward_peak(self) -> int:
        return self.backbone_output + max(self.forward_loop, self.forward_end)


def trl_chunked_loss(arch: Architecture, settings: TrainingSettings, act: Activations) -> TrlChunkedLoss:
    """Each buffer of TRL's fused LM head on a CUDA device with Triton (the compact path: only labelled positions
    scored; torch >= 2.8 for addmm's out_dtype)."""
    p = precision_of(settings)
    hidden, vocab = arch.hidden, arch.vocab
    n = settings.batch * max(0, settings.seq - 1)
    x_dtype = act.head_input_dtype
    w_dtype = p.norm_dtype  # the LM head's weight (fp32 under QLoRA: prepare_model_for_kbit_training)
    c_dtype = p.autocast or x_dtype  # torch.get_autocast_dtype under autocast, else the hidden states' dtype
    x, w, c = DTYPE_BYTES[x_dtype], DTYPE_BYTES[w_dtype], DTYPE_BYTES[c_dtype]
    trains = settings.method == "full"
    rows = min(n, TRL_TOKEN_TILE)
    tile = rows * TRL_VOCAB_TILE * c
    last_rows = n - TRL_TOKEN_TILE * ((n - 1) // TRL_TOKEN_TILE) if n else 0
    last_cols = vocab - TRL_VOCAB_TILE * ((vocab - 1) // TRL_VOCAB_TILE)
    # `.to(compute_dtype)` copies only across dtypes: the token chunk, kept as a local through its tiles (and after
    # the loop), and the weight's tile, a temporary of its matmul in forward and a local in backward.
    x_copy = rows * hidden * c if x_dtype != c_dtype else 0
    x_copy_last = last_rows * hidden * c if x_dtype != c_dtype else 0
    w_copy = min(vocab, TRL_VOCAB_TILE) * hidden * c if w_dtype != c_dtype else 0
    w_copy_last = last_cols * hidden * c if w_dtype != c_dtype else 0
    mask = n  # labels != -100, bool
    scored = n * hidden * x + n * 8  # hidden[mask], labels[mask]
    saved = scored + n * 4 * 2 + mask  # and log_z, entropy
    forward_loop = mask + scored + TRL_STATS_FP32 * 4 * n + tile + x_copy + w_copy
    forward_end = mask + scored + TRL_END_FP32 * 4 * n + tile + x_copy_last
    # (After the op, masked_scatter's per-token outputs hold about 25 bytes a token with no tile: less than this.)
    # Backward: the incoming gradient of the log-probabilities (masked_scatter's backward selects it, fp32); the
    # entropy's is None (only logged, detached), so its term is skipped.
    grads = n * 4 + n * hidden * 4 + (vocab * hidden * 4 if trains else 0) + tile
    casts = (n * hidden * x if x != 4 else 0) + (vocab * hidden * w if trains and w != 4 else 0)
    # (Then indexing's and slicing's backward scatter the hidden states' gradient into two zeroed tensors of the
    # sequence's shape, once the op's fp32 buffers and tile are freed: less than its return holds.)
    return TrlChunkedLoss(
        tokens=n,
        tile_bytes=tile,
        saved=saved,
        backbone_output=settings.batch * settings.seq * hidden * x,
        forward_loop=forward_loop,
        forward_end=forward_end,
        backward_loop=grads + x_copy + w_copy,
        backward_end=grads + x_copy_last + w_copy_last + casts,
        head_grad=_lm_head_grad_bytes(arch, settings),
    )


@dataclass
class MemoryModel:
    phases: dict[str, int]
    peak_phase: str
    components: dict[str, int]  # at the peak; sums to the peak
    sizes: dict[str, int]
    notes: list[str]


def step_memory(arch: Architecture, settings: TrainingSettings, act: Activations | None = None) -> MemoryModel:
    """The step's phases and peak; `act` from a trace, else from the family's hand-written block."""
    tokens = settings.batch * settings.seq
    act = act or activations(arch, settings)
    W, G, S, T_opt = _sharded_states(arch, settings)
    fused = fused_loss(arch, settings, act) if settings.loss == "fused" else None
    trl = trl_chunked_loss(arch, settings, act) if settings.loss == "trl_chunked" else None
    logits = 0 if fused or trl else tokens * arch.vocab * DTYPE_BYTES[act.logits_dtype]
    fp32_logits = tokens * arch.vocab * 4
    upcast = 0 if act.logits_dtype == "fp32" else fp32_logits
    held = logits + int(tokens * act.kv_cache_per_token)  # the previous step's `out`
    head_grad = _lm_head_grad_bytes(arch, settings)
    residual = DTYPE_BYTES[_residual_dtype(settings)]

    head_saved = tokens * sum(act.head_per_token.values()) + sum(act.head_fixed.values())
    if fused or trl:
        # The fused op (or TRL's head) replaces the LM head and soft-capping: what they save is not saved; its own
        # saved tensors are counted in the loss's buffers.
        head_saved -= tokens * act.head_linear_per_token + act.head_linear_fixed
    if settings.grad_checkpointing:
        # Each layer keeps only its input; backward recomputes one layer at a time.
        A = int(tokens * arch.hidden * residual * arch.layers + head_saved)
        recompute = int(tokens * act.layer_per_token + act.layer_fixed)
    else:
        A = int(tokens * sum(act.layers_per_token.values()) + sum(act.layers_fixed.values()) + head_saved)
        recompute = 0

    # The loss (transformers' ForCausalLMLoss): logits.float(), then log_softmax (saved) and nll.
    loss_forward = logits + upcast + fp32_logits
    # Start of backward: nll's and log_softmax's fp32 gradients beside log_softmax's saved output.
    loss_backward = logits + 3 * fp32_logits
    # Then the gradient is cast back to the logits' dtype and reaches the LM head.
    head_backward = logits + fp32_logits + (logits if upcast else 0) + head_grad
    loss_grads = 0  # gradients already live in forward and at the start of backward
    if fused:
        # Forward: the fused op's buffers at its largest moment (the head's gradient among them). Backward starts
        # with its saved gradients and creates nothing: it hands them on (scaled in place unless the loss's
        # gradient is 1).
        loss_grads = head_grad
        loss_forward = fused.peak - head_grad
        loss_backward = fused.saved - head_grad
        head_backward = fused.saved
    if trl:
        # Forward: the head's buffers at its largest moment, with the backbone's output the forward still holds.
        # Backward starts with what it saved plus its own buffers; at its return the head weight's gradient (its cast,
        # or the fp32 buffer itself) is the one that becomes .grad.
        loss_forward = trl.forward_peak
        loss_backward = trl.saved + trl.backward_loop
        head_backward = trl.saved + trl.backward_end
    emb_transient = _embedding_backward_transient(arch, settings)
    grad_hidden = 2 * tokens * arch.hidden * residual

    phases = {
        "forward": W + S + held + A + loss_forward + loss_grads,
        "loss_backward": W + S + A + loss_backward + loss_grads,
        "head_backward": W + S + A + head_backward,
        "backward_end": W + S + G + held + emb_transient,
        "optimizer_step": W + S + G + T_opt + held,
    }
    if settings.grad_checkpointing:
        phases["layer_recompute"] = W + S + A + logits + head_grad + recompute + grad_hidden
    fsdp = _fsdp_unsharded(
        arch,
        settings,
        phases,
        base={
            "weights": W,
            "optimizer_states": S,
            "activations": A,
            "previous_step_outputs": held,
            "gradients": head_grad,
            "backward_temporaries": grad_hidden,
        },
        embedding_transient=emb_transient,
    )
    buckets = _ddp_buckets(settings, phases, G)
    peak_phase = max(phases, key=phases.get)
    comp = _components(
        peak_phase,
        W=W,
        S=S,
        G=G,
        T_opt=T_opt,
        A=A,
        held=held,
        logits=logits,
        loss_forward=loss_forward,
        loss_backward=loss_backward,
        head_backward=head_backward,
        emb_transient=emb_transient,
        recompute=recompute + grad_hidden,
        head_grad=head_grad,
        loss_grads=loss_grads,
    )
    if buckets:
        comp["ddp_gradient_buckets"] = buckets
    if peak_phase in fsdp:
        comp = {**(comp if peak_phase not in ("layers_backward", "first_layer_gather") else {}), **fsdp[peak_phase]}
    sizes = {
        "weights": W,
        "gradients": G,
        "optimizer_states": S,
        "optimizer_step_temporaries": T_opt,
        "activations": A,
        "logits_and_loss": loss_forward if fused else max(loss_forward, loss_backward) if trl else loss_backward,
        "previous_step_outputs": held,
        **{f"fsdp_unsharded.{k}": v for k, v in fsdp.get("sizes", {}).items()},
        **({"ddp_gradient_buckets": buckets} if buckets else {}),
    }
    if not settings.grad_checkpointing:
        for k, v in act.layers_per_token.items():
            sizes[f"activations.{k}"] = v * tokens
        for k, v in act.head_per_token.items():
            sizes[f"activations.head.{k}"] = sizes.get(f"activations.head.{k}", 0) + v * tokens
        for k, v in {**act.layers_fixed}.items():
            sizes[f"activations.{k}"] = v + act.head_fixed.get(k, 0)
    return MemoryModel(
        phases={k: int(v) for k, v in phases.items()},
        peak_phase=peak_phase,
        components={k: int(v) for k, v in comp.items() if v},
        sizes={k: int(v) for k, v in sizes.items()},
        notes=act.notes,
    )


def _components(
    phase: str,
    *,
    W,
    S,
    G,
    T_opt,
    A,
    held,
    logits,
    loss_forward,
    loss_backward,
    head_backward,
    emb_transient,
    recompute,
    head_grad,
    loss_grads,
) -> dict[str, int]:
    base = {"weights": W, "optimizer_states": S}
    if phase == "forward":
        return {
            **base,
            "activations": A,
            "logits_and_loss": loss_forward,
            "previous_step_outputs": held,
            "gradients": loss_grads,
        }
    if phase == "loss_backward":
        return {**base, "activations": A, "logits_and_loss": loss_backward, "gradients": loss_grads}
    if phase == "head_backward":
        return {**base, "activations": A, "logits_and_loss": head_backward - head_grad, "gradients": head_grad}
    if phase == "backward_end":
        return {**base, "gradients": G, "previous_step_outputs": held, "backward_temporaries": emb_transient}
    if phase == "optimizer_step":
        return {**base, "gradients": G, "optimizer_step_temporaries": T_opt, "previous_step_outputs": held}
    return {**base, "activations": A, "logits_and_loss": logits, "gradients": head_grad, "recomputed_layer": recompute}


def _sharded_states(arch: Architecture, settings: TrainingSettings) -> tuple[int, int, int, int]:
    """Per-GPU weights, gradients, optimizer states and optimizer temporaries."""
    W = weight_bytes(arch, settings)
    G = gradient_bytes(arch, settings)
    S = optimizer_state_bytes(arch, settings, trainable_tensor_sizes(arch, settings))
    T = optimizer_step_temporary_bytes(arch, settings)
    n = settings.gpus
    if settings.sharding == "ddp":
        return W, G, S, T  # and DDP's gradient buckets: _ddp_buckets
    if settings.sharding == "zero2":
        # DeepSpeed ZeRO-2: weights replicated, gradients reduced into partitions, and the
        # optimizer's fp32 states (plus fp32 master copies of 16-bit weights) partitioned.
        fp32_states = S * 4 // DTYPE_BYTES[trainable_dtype(settings)]
        master = arch.trainable_params * 4 if trainable_dtype(settings) != "fp32" else 0
        return W, G // n + min(G, _zero_bucket_bytes(settings)), (fp32_states + master) // n, T // n
    if settings.sharding == "fsdp":
        return W // n, G // n, S // n, T // n  # the unsharded copies during forward and backward: _fsdp_unsharded
    return W, G, S, T


def _ddp_buckets(settings: TrainingSettings, phases: dict, gradients: int) -> int:
    """DDP's gradient buckets (`gradient_as_bucket_view=False`, the default): a second copy of every gradient,
    which the Reducer allocates when the model is wrapped and keeps (re-allocated when it rebuilds the buckets
    after the first step), so it is held in every phase, forward included. Adds it to `phases`; returns it."""
    if settings.sharding != "ddp":
        return 0
    for phase in phases:
        phases[phase] += gradients
    return gradients


def _fsdp_unsharded(
    arch: Architecture, settings: TrainingSettings, phases: dict, *, base: dict[str, int], embedding_transient: int
) -> dict:
    """FSDP2 (`fully_shard` on each decoder layer, then on the root): what each rank holds unsharded beside its
    shards, per phase, from torch's own code (torch/distributed/fsdp/_fully_shard, torch 2.13), all true on a GPU:

    - the root (embedding, final norm, LM head: whatever no decoder layer owns) is not resharded after forward
      (`reshard_after_forward=None` means False for the root), so its unsharded parameters stay from the first
      all-gather to the root's post-backward at the end of backward;
    - in forward, a group's all-gather output is kept until the next group's copy-out is done (`wait_for_unshard`,
      implicit prefetch: its local `prev_all_gather_state` holds it through the copy-out), so the first layer's
      copy-out has the root's all-gather output, the root's unsharded parameters, and the layer's own two beside
      each other (phase `first_layer_gather`: the peak when the vocabulary is large); the last layer's output is
      still held at the loss and at the start of backward (measured on the CPU);
    - in a layer's backward: its unsharded parameters, the next layer's prefetched all-gather output, its
      unsharded gradients and the previous layer's reduce-scatter input (one kept in flight,
      `reduce_scatter_max_input_buffers=1`);
    - at the root's last gradient (the embedding's, whose tied-weight transient `embedding_transient` the phase
      already has), its unsharded parameters and gradients, its gradient shard not yet made; then, at the root's
      post-backward, resharded, its unsharded gradients beside the reduce-scatter input they are copied into.

    Adds these to `phases` (and the phase `layers_backward`); returns the components of each changed phase, and
    `sizes`."""
    if settings.sharding != "fsdp":
        return {}
    c = DTYPE_BYTES[precision_of(settings).activations]
    g = DTYPE_BYTES[trainable_dtype(settings)]
    full = settings.method == "full"
    root_params = arch.vocab * arch.hidden * (1 if arch.tied_embeddings else 2) + arch.hidden
    root = root_params * c
    adapters = [
        sum(settings.rank * (i.in_features + i.out_features) for i in ll.values() if i.adapted)
        for ll in arch.layer_linears
    ]
    linears = [sum(i.in_features * i.out_features for i in ll.values()) for ll in arch.layer_linears]
    # A layer's all-gather holds all its parameters: its nn.Linear weights, and what they miss, its norms and a
    # mixture of experts' 3-D expert weights (and their adapters). Those are known as totals, so each layer gets
    # the mean of what the decoder layers hold beyond the root: exact when the layers are alike, and below the
    # largest layer's by a share of the difference where dense and expert layers mix (DeepSeek's first layers).
    mean_base = -(-(arch.total_params - root_params) // arch.layers)
    mean_adapters = -(-arch.adapter_params // arch.layers)
    layer = max(max(a + w for a, w in zip(adapters, linears, strict=True)), mean_base + mean_adapters) * c
    layer_grads = max(max(linears), mean_base) * g if full else max(max(adapters), mean_adapters) * g
    root_grads = root // c * g if full else 0
    out = {"sizes": {"root": root, "layer": layer, "layer_gradients": layer_grads, "root_gradients": root_grads}}
    for phase in ("forward", "loss_backward", "head_backward"):
        phases[phase] += root + layer
        out[phase] = {"fsdp_unsharded_root": root, "fsdp_all_gather_output": layer}
    phases["layers_backward"] = sum(base.values()) + root + 2 * layer + 2 * layer_grads
    out["layers_backward"] = {
        **base,
        "fsdp_unsharded_root": root,
        "fsdp_unsharded_layer_and_prefetch": 2 * layer,
        "fsdp_layer_gradients_and_reduce_scatter_input": 2 * layer_grads,
    }
    phases["first_layer_gather"] = (
        base["weights"] + base["optimizer_states"] + base["previous_step_outputs"] + 2 * root + 2 * layer
    )
    out["first_layer_gather"] = {
        "weights": base["weights"],
        "optimizer_states": base["optimizer_states"],
        "previous_step_outputs": base["previous_step_outputs"],
        "fsdp_root_unsharded_and_all_gather_output": 2 * root,
        "fsdp_first_layer_unsharded_and_all_gather_output": 2 * layer,
    }
    # the root's post-backward reshards (frees its unsharded parameters) before allocating the reduce-scatter input
    shard = root_grads // settings.gpus
    if embedding_transient + root + root_grads - shard > 2 * root_grads:
        phases["backward_end"] += root + root_grads - shard
        out["backward_end"] = {
            "fsdp_unsharded_root": root,
            "fsdp_root_gradients_before_their_shard": root_grads - shard,
        }
    else:
        phases["backward_end"] += 2 * root_grads - embedding_transient
        out["backward_end"] = {
            "fsdp_root_gradients_and_reduce_scatter_input": 2 * root_grads,
            "backward_temporaries": 0,  # the embedding's transient is over by the post-backward
        }
    if "layer_recompute" in phases:
        phases["layer_recompute"] += root + 2 * layer + 2 * layer_grads
        out["layer_recompute"] = {k: v for k, v in out["layers_backward"].items() if k.startswith("fsdp_")}
    return out


def _zero_bucket_bytes(settings: TrainingSettings) -> int:
    return 500_000_000 * DTYPE_BYTES[trainable_dtype(settings)]  # DeepSpeed's default reduce_bucket_size


def _lm_head_grad_bytes(arch: Architecture, settings: TrainingSettings) -> int:
    if settings.method != "full":
        return 0
    return arch.vocab * arch.hidden * DTYPE_BYTES[trainable_dtype(settings)]


def _embedding_backward_transient(arch: Architecture, settings: TrainingSettings) -> int:
    """A tied embedding's second gradient (from the lookup) and the out-of-place sum with the
    LM head's: three vocabulary-sized tensors alive at once, one of them counted in the gradients."""
    if settings.method != "full" or not arch.tied_embeddings:
        return 0
    return 2 * arch.vocab * arch.hidden * DTYPE_BYTES[trainable_dtype(settings)]


def _residual_dtype(settings: TrainingSettings) -> str:
    p = precision_of(settings)
    return p.norm_dtype if p.autocast else p.weights
