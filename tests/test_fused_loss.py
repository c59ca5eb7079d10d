"""The fused linear cross-entropy's memory model (`memory.fused_loss`) against autograd and the CPU allocator.

The model here is the end of a causal LM: hidden states -> LM head -> loss, with the fused op in place of the full
logits. `FusedLinearCrossEntropy` below is a pure-torch implementation of Liger-Kernel's algorithm
(src/liger_kernel/ops/fused_linear_cross_entropy.py, the mean/sum reduction path): the same chunk rule, the same
buffers, and the branches Liger takes on a CUDA device of compute capability 8 or more, chosen here by the same
dtype and autocast tests with the device test left out, since this runs on the CPU:

- without autocast, one (chunk, vocab) logits buffer filled by torch.mm(out=) and the hidden states' gradient
  written by torch.mm(out=); the head weight's gradient by addmm(out=) in bf16/fp16, or by Liger's fallback
  `grad_weight += torch.mm(...).float()` in fp32;
- under autocast, `x @ w.t()` and `grad_logits @ w` as autocast runs them (casts of the chunk and the weight).

What is measured: the storages autograd saves (saved_tensors_hooks), and the peak of live tensor bytes in the op's
forward, counted by `LiveTensors`, a TorchDispatchMode that adds every storage an op creates and drops it when it
is freed. That is what CUDA's caching allocator counts for these ops (its GEMMs write into the output they are
given); the CPU allocator, which the reference run reads, would also count the CPU BLAS's own packing buffers
inside bf16 matmuls (a weight-sized one in `grad_logits @ weight`), which cuBLAS does not allocate per call.

Liger's Triton cross-entropy kernel overwrites each chunk's logits with the loss's gradient, one row per program,
in fp32 registers. `_cross_entropy_` does the same in place with torch ops, which need a few per-row statistics
(max, sum, the target's logit: chunk-sized vectors) and 0-d scalars the kernel keeps in registers. The test
measures that scratch on its own and requires the op's measured peak to equal the estimator's peak, or, where the
kernel's step is the op's largest moment, the estimator's bytes at that step plus the scratch, exactly.

Not covered: full fine-tuning under mixed precision, where Liger accumulates the fp32 head gradient from bf16
chunks with `torch.addmm(..., out_dtype=torch.float32)`, which torch has only for CUDA.
"""

from __future__ import annotations

import contextlib
import math

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from torch.multiprocessing.reductions import StorageWeakRef  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402
from torch.utils._pytree import tree_leaves  # noqa: E402

from advisor.estimate import TrainingSettings  # noqa: E402
from advisor.estimate.architecture import describe  # noqa: E402
from advisor.estimate.memory import activations, fused_loss, precision_of  # noqa: E402
from advisor.model_specs import ModelSpec  # noqa: E402

IGNORE = -100
BATCH, SEQ = 2, 40  # 80 tokens
VOCAB, HIDDEN = 2048, 64  # ceil(V / H) = 32: chunks of next_power_of_2(ceil(80 / 32)) = 4 tokens, 20 of them

CONFIG = dict(
    model_type="llama",
    architectures=["LlamaForCausalLM"],
    vocab_size=VOCAB,
    num_hidden_layers=1,
    num_attention_heads=4,
    num_key_value_heads=2,
    hidden_size=HIDDEN,
    intermediate_size=128,
    max_position_embeddings=128,
    tie_word_embeddings=False,
)

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


class LiveTensors(TorchDispatchMode):
    """Peak bytes of the storages ops create while it is on, each counted from the op that creates it until it is
    freed (a view, an in-place or out= result is not a new storage); measured after every op, with the op's inputs
    still alive, as an allocator's peak would see them."""

    def __init__(self):
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        self.live = {k: v for k, v in self.live.items() if not v[0].expired()}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key not in inputs and key not in self.live:
                    self.live[key] = (StorageWeakRef(storage), storage.nbytes())
        self.peak = max(self.peak, sum(n for _, n in self.live.values()))
        return out


def _chunk_size(tokens: int, vocab: int, hidden: int) -> int:
    inc = math.ceil(vocab / hidden)
    return min(1 << (math.ceil(tokens / inc) - 1).bit_length(), tokens)


def _cross_entropy_(logits, target, n_valid: int):
    """Liger's kernel on one chunk: returns the per-token loss (already divided by n_valid, fp32) and overwrites
    `logits` with its gradient, softmax(logits) - onehot(target), divided by n_valid; ignored rows get zeros."""
    valid = target != IGNORE
    index = target.clamp(min=0).unsqueeze(1)
    picked = logits.gather(1, index).float()
    top = logits.amax(1, keepdim=True)
    logits.sub_(top).exp_()
    # (CPU ops chosen to allocate no chunk-sized copy: sum(dtype=float32) and bf16 scatter_ would)
    total = logits.sum(1, keepdim=True)
    loss = (top.float() + total.float().log() - picked).squeeze(1)
    logits.div_(total)
    rows = torch.arange(len(target))
    logits.index_put_((rows, index.squeeze(1)), torch.tensor(-1.0, dtype=logits.dtype), accumulate=True)
    logits.mul_((valid.to(logits.dtype) / n_valid).unsqueeze(1))
    return loss.mul_(valid) / n_valid


class FusedLinearCrossEntropy(torch.autograd.Function):
    """Liger's LigerFusedLinearCrossEntropyFunction (mean reduction), in torch: see the module doc."""

    @staticmethod
    def forward(ctx, x, weight, target):
        tokens, hidden = x.shape
        vocab = weight.shape[0]
        chunk = _chunk_size(tokens, vocab, hidden)
        # `_can_use_mm_out` less its device test (grad is off inside Function.forward)
        use_mm_out = not torch.is_autocast_enabled("cpu") and x.dtype == weight.dtype
        grad_input = torch.zeros_like(x)
        grad_weight = torch.zeros_like(weight) if weight.requires_grad else None
        loss_1d = torch.zeros(tokens, dtype=torch.float32)
        mask = target != IGNORE
        n_valid = int(mask.sum().item())
        storage = torch.empty((chunk, vocab), dtype=x.dtype) if use_mm_out else None
        for start in range(0, tokens, chunk):
            end = min(start + chunk, tokens)
            x_chunk = x[start:end]
            if storage is not None:
                logits = storage[: end - start]
                torch.mm(x_chunk, weight.t(), out=logits)
            else:
                logits = x_chunk @ weight.t()
            loss_1d[start:end] = _cross_entropy_(logits, target[start:end], n_valid)
            if storage is not None and logits.dtype == grad_input.dtype:
                torch.mm(logits, weight, out=grad_input[start:end])
            else:
                grad_input[start:end] = logits @ weight
            if grad_weight is not None:
                if grad_weight.dtype in (torch.bfloat16, torch.float16) and grad_weight.dtype == logits.dtype:
                    torch.addmm(grad_weight, logits.t(), x_chunk, out=grad_weight)
                elif grad_weight.dtype == torch.float32 and logits.dtype != torch.float32:
                    raise NotImplementedError("Liger's addmm(out_dtype=float32) runs on CUDA only")
                else:
                    grad_weight += torch.mm(logits.t(), x_chunk).float()
            del logits, x_chunk
        del storage
        ctx.save_for_backward(grad_input, grad_weight)
        return loss_1d.sum()

    @staticmethod
    def backward(ctx, grad_output):
        grad_input, grad_weight = ctx.saved_tensors
        if grad_output.item() != 1.0:
            grad_input.mul_(grad_output)
            if grad_weight is not None:
                grad_weight.mul_(grad_output)
        return grad_input, grad_weight, None


def _estimate(method: str, precision: str):
    settings = TrainingSettings(method=method, precision=precision, batch=BATCH, seq=SEQ, loss="fused", rank=4)
    spec = ModelSpec(
        spec="tiny", id="tiny", origin="config", task="causal-lm", model_type="llama", config=CONFIG, source="test"
    )
    p = precision_of(settings)
    arch = describe(spec, method=method, rank=4, alpha=8, targets=None, weights=p.weights, others=p.others)
    return fused_loss(arch, settings, activations(arch, settings))


def _inputs(dtype, weight_dtype, head_trains: bool):
    torch.manual_seed(0)
    tokens = BATCH * SEQ
    x = torch.randn(tokens, HIDDEN, dtype=dtype, requires_grad=True)
    weight = torch.nn.Parameter((torch.randn(VOCAB, HIDDEN) / HIDDEN**0.5).to(weight_dtype), requires_grad=head_trains)
    target = torch.randint(0, VOCAB, (tokens,))
    target[::7] = IGNORE  # as padding or a prompt masked out of the loss
    return x, weight, target


# method, precision -> the hidden states' dtype at the LM head, the LM head weight's dtype, autocast. bf16/fp32: the
# model's dtype throughout; mixed: fp32 weights and residual stream (RMSNorm returns the residual's dtype) under
# bf16 autocast; QLoRA: prepare_model_for_kbit_training leaves the LM head and norms in fp32, bf16 autocast.
CASES = {
    ("full", "bf16"): ("bf16", "bf16", False),
    ("lora", "bf16"): ("bf16", "bf16", False),
    ("full", "fp32"): ("fp32", "fp32", False),
    ("lora", "fp32"): ("fp32", "fp32", False),
    ("lora", "mixed"): ("fp32", "fp32", True),
    ("qlora", "bf16"): ("fp32", "fp32", True),
}


@pytest.mark.parametrize("method,precision", sorted(CASES), ids=lambda v: str(v))
def test_fused_loss_memory_matches_autograd_and_the_allocator(method, precision):
    x_dtype, w_dtype, autocast = CASES[(method, precision)]
    x, weight, target = _inputs(DTYPES[x_dtype], DTYPES[w_dtype], head_trains=method == "full")
    predicted = _estimate(method, precision)
    assert predicted.chunk == _chunk_size(BATCH * SEQ, VOCAB, HIDDEN) == 4

    saved = {}

    def pack(t):
        saved.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        return t

    casting = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
    # The kernel emulation's own scratch, measured alone on a chunk of logits like the op's.
    logits_dtype = torch.bfloat16 if autocast else DTYPES[x_dtype]
    chunk_logits = torch.randn(predicted.chunk, VOCAB).to(logits_dtype)
    chunk_target = target[: predicted.chunk].clone()
    with LiveTensors() as scratch:
        _cross_entropy_(chunk_logits, chunk_target, 7)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), casting, LiveTensors() as forward:
        loss = FusedLinearCrossEntropy.apply(x, weight, target)
    assert 0 < scratch.peak < predicted.chunk * 64, scratch.peak  # a few chunk-sized vectors and scalars
    assert sum(saved.values()) == predicted.saved, (sum(saved.values()), predicted.saved)
    # At the kernel's step the op holds its fixed buffers and one chunk's logits (what the estimate's largest step
    # adds beyond them is the chunk's other buffers: a cast weight, a cast input chunk, fp32's weight-sized
    # temporary).
    at_kernel = predicted.peak - predicted.chunk_bytes + predicted.chunk * VOCAB * logits_dtype.itemsize
    expected = max(predicted.peak, at_kernel + scratch.peak)
    assert forward.peak == expected, (forward.peak, predicted.peak, at_kernel, scratch.peak)
    loss.backward()
    assert x.grad is not None


@pytest.mark.parametrize("head_trains", [False, True])
def test_fused_loss_computes_the_standard_loss_and_gradients(head_trains):
    """The emulation is the algorithm, not only its buffers: fp32 results equal cross-entropy on the full logits."""
    x, weight, target = _inputs(torch.float32, torch.float32, head_trains)
    loss = FusedLinearCrossEntropy.apply(x, weight, target)
    (2 * loss).backward()  # a loss gradient other than 1 takes backward's in-place scaling
    grads = (x.grad.clone(), weight.grad.clone() if head_trains else None)
    x.grad = None
    weight.grad = None
    reference = torch.nn.functional.cross_entropy(x @ weight.t(), target, ignore_index=IGNORE)
    (2 * reference).backward()
    torch.testing.assert_close(loss, reference)
    torch.testing.assert_close(grads[0], x.grad)
    if head_trains:
        torch.testing.assert_close(grads[1], weight.grad)


@pytest.mark.parametrize(
    "method,targets,precision",
    [("full", None, "bf16"), ("lora", "all-linear", "bf16"), ("lora", "all-linear", "mixed"), ("full", None, "fp32")],
    ids=str,
)
def test_a_model_with_the_fused_loss_saves_what_the_estimate_counts(method, targets, precision):
    """The whole model: the backbone (embedding, layers, final norm) as transformers runs it, then the fused op on
    its hidden states in place of the LM head, soft-capping and the loss, as Liger's patched forward does. Autograd's
    saved bytes must equal the estimate's activations with the LM head's share taken out, plus the op's saved
    gradients."""
    from peft import get_peft_model

    from advisor.hf import build_config, lora_config

    settings = TrainingSettings(
        method=method, targets=targets, rank=4, precision=precision, batch=BATCH, seq=SEQ, loss="fused"
    )
    spec = ModelSpec(
        spec="tiny", id="tiny", origin="config", task="causal-lm", model_type="llama", config=CONFIG, source="test"
    )
    p = precision_of(settings)
    arch = describe(spec, method=method, rank=4, alpha=8, targets=targets, weights=p.weights, others=p.others)
    act = activations(arch, settings)
    tokens = BATCH * SEQ
    layers = sum(v for k, v in act.layers_per_token.items() if k != "kv_cache")
    head = sum(act.head_per_token.values()) - act.head_linear_per_token
    fixed = sum(act.layers_fixed.values()) + sum(act.head_fixed.values()) - act.head_linear_fixed
    predicted = tokens * (layers + head) + fixed + fused_loss(arch, settings, act).saved

    torch.manual_seed(0)
    config = build_config(spec)
    config._attn_implementation = "sdpa"
    dtype = torch.float32 if precision in ("fp32", "mixed") else torch.bfloat16
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    if method == "lora":
        model = get_peft_model(model, lora_config(spec, rank=4, alpha=8, targets=targets))
    base = model.get_base_model() if method == "lora" else model
    params = {t.untyped_storage().data_ptr() for t in model.parameters()}
    saved = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    ids = torch.randint(3, VOCAB, (BATCH, SEQ))
    labels = torch.nn.functional.pad(ids, (0, 1), value=IGNORE)[:, 1:].reshape(-1)  # Liger's shift
    casting = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "mixed" else contextlib.nullcontext()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), casting:
        hidden = base.model(input_ids=ids, use_cache=False).last_hidden_state
        loss = FusedLinearCrossEntropy.apply(hidden.reshape(-1, HIDDEN), base.lm_head.weight, labels)
    assert sum(saved.values()) == predicted, (sum(saved.values()), predicted)
    loss.backward()
