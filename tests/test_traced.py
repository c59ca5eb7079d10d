"""The traced activation path against what autograd really saves.

For small configs of families without a hand-written block, the estimator traces the real
transformers module on the meta device. Here the same architecture runs for real on the
CPU, with labels, inside `saved_tensors_hooks`, and every tensor autograd keeps is counted
once per storage (parameters and buffers excluded). The estimate's saved bytes (embedding,
layers and head from the trace, the loss from its formula) must equal that count.

Attention runs through the CUDA dispatch emulation in both (the CPU would pick its own
kernels); `test_emulated_flash_saves_what_the_cpu_flash_kernel_saves` checks the emulation
against a real kernel where the CPU has one (SDPA's flash kernel, no mask).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from advisor.estimate import TrainingSettings, estimate_training_memory  # noqa: E402
from advisor.estimate.architecture import describe  # noqa: E402
from advisor.estimate.memory import (  # noqa: E402
    UnsupportedArchitecture,
    activation_basis,
    activations_from_trace,
    precision_of,
)
from advisor.estimate.trace import cuda_attention, trace_activations  # noqa: E402
from advisor.model_specs import ModelSpec  # noqa: E402

BATCH, SEQ = 2, 24
COMMON = dict(
    vocab_size=320,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    hidden_size=64,
    intermediate_size=160,
    max_position_embeddings=128,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)

# model_type -> the small config's own values. Phi-4 (microsoft/phi-4, Phi-4-mini) is model_type phi3, which has a
# hand-written block (tests/test_activations.py).
FAMILIES = {
    "qwen3": dict(head_dim=16, tie_word_embeddings=True),
    "gemma3_text": dict(
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=8,  # shorter than SEQ: the local layer gets a mask, so SDPA takes the efficient kernel
        layer_types=["sliding_attention", "full_attention"],
        final_logit_softcapping=30.0,
    ),
    "olmo2": dict(),
    "gpt2": dict(n_embd=64, n_layer=2, n_head=4, n_positions=128),
    "qwen3_moe": dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, head_dim=16),
    "llama4_text": dict(
        head_dim=16, num_local_experts=4, num_experts_per_tok=1, intermediate_size_mlp=160, interleave_moe_layer_step=2
    ),
    "deepseek_v3": dict(  # multi-head latent attention; first layer dense, second mixture-of-experts
        num_key_value_heads=4,
        first_k_dense_replace=1,
        n_routed_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=32,
        kv_lora_rank=16,
        q_lora_rank=24,
        qk_rope_head_dim=8,
        qk_nope_head_dim=16,
        v_head_dim=16,
        n_group=1,
        topk_group=1,
    ),
    "gpt_oss": dict(num_local_experts=4, num_experts_per_tok=2, head_dim=16, sliding_window=8),
}

CASES = [
    ("full", None, "bf16"),
    ("lora", "all-linear", "bf16"),
    ("lora", None, "bf16"),  # PEFT's default targets, or advisor's documented default where PEFT has none
    ("full", None, "fp32"),
]


def spec_for(model_type: str) -> ModelSpec:
    config = dict(COMMON, model_type=model_type, **FAMILIES[model_type])
    return ModelSpec(
        spec=model_type,
        id=model_type,
        origin="config",
        task="causal-lm",
        model_type=model_type,
        config=config,
        source="test",
    )


def autograd_saved_bytes(
    spec: ModelSpec, settings: TrainingSettings, targets, emulate: bool = True, use_cache: bool = True
) -> int:
    """Bytes of the tensors autograd saves in one real forward with labels on the CPU (parameters excluded),
    with LayerNorm's statistics counted as CUDA keeps them.

    CUDA's native_layer_norm (and its meta function, which the trace runs) keeps the mean and 1/std it saves in fp32
    for bf16 inputs; the CPU kernel keeps them in bf16. With CUDA's kernels emulated (`emulate`), each such
    (batch, seq, 1) bf16 tensor is counted at fp32; with the CPU's own, as it is (the trace with kernels="cpu" keeps
    them in bf16 too)."""
    from peft import get_peft_model

    from advisor.hf import build_config, default_lora_targets, lora_config

    torch.manual_seed(0)
    config = build_config(spec)
    dtype = torch.float32 if settings.precision == "fp32" else torch.bfloat16
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    if settings.method == "lora":
        if targets is None:  # as the training run's inject_lora: PEFT's default, or advisor's
            targets, _ = default_lora_targets(model, spec)
        model = get_peft_model(model, lora_config(spec, rank=settings.rank, alpha=2 * settings.rank, targets=targets))
    model.train()
    kept = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept |= {b.untyped_storage().data_ptr() for b in model.buffers()}
    seen: dict[int, int] = {}
    alive = []
    layer_norms = any(isinstance(m, torch.nn.LayerNorm) for m in model.modules())

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in kept and storage.data_ptr() not in seen:
            stats = emulate and layer_norms and t.dtype == torch.bfloat16 and tuple(t.shape) == (BATCH, SEQ, 1)
            seen[storage.data_ptr()] = storage.nbytes() * (2 if stats else 1)
            alive.append(t)
        return t

    ids = torch.randint(3, config.vocab_size, (BATCH, SEQ))
    attention = cuda_attention() if emulate else _nothing()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), attention:
        out = model(input_ids=ids, labels=ids, use_cache=use_cache)
    assert out.loss.requires_grad
    return sum(seen.values())


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def architecture(spec: ModelSpec, settings: TrainingSettings):
    p = precision_of(settings)
    return describe(
        spec,
        method=settings.method,
        rank=settings.rank,
        alpha=2 * settings.rank,
        targets=settings.targets,
        weights=p.weights,
        others=p.others,
    )


def estimated_saved_bytes(
    spec: ModelSpec, settings: TrainingSettings, use_cache: bool = True, kernels: str = "cuda"
) -> float:
    arch = architecture(spec, settings)
    assert activation_basis(arch, settings) == "traced"
    traced = trace_activations(
        spec,
        method=settings.method,
        rank=settings.rank,
        alpha=2 * settings.rank,
        targets=settings.targets if settings.method != "full" else None,
        precision=settings.precision,
        attention=settings.attention,
        batch=BATCH,
        seq=SEQ,
        use_cache=use_cache,
        kernels=kernels,
    )
    act = activations_from_trace(traced)
    tokens = BATCH * SEQ
    per_token = sum(v for k, v in act.layers_per_token.items() if k != "kv_cache") + sum(act.head_per_token.values())
    # The loss saves log_softmax's fp32 output, the shifted labels and nll's total weight.
    loss = tokens * arch.vocab * 4 + tokens * 8 + 4
    return tokens * per_token + loss


@pytest.mark.parametrize("model_type", sorted(FAMILIES))
@pytest.mark.parametrize("method,targets,precision", CASES, ids=lambda v: str(v))
def test_traced_activations_equal_what_autograd_saves(model_type, method, targets, precision):
    spec = spec_for(model_type)
    settings = TrainingSettings(method=method, targets=targets, rank=4, precision=precision, batch=BATCH, seq=SEQ)
    try:
        estimated = estimated_saved_bytes(spec, settings)
    except UnsupportedArchitecture as exc:
        assert model_type in exc.reason
        if precision == "fp32" and "BF16" in exc.reason:
            # transformers 5's default experts call grouped_mm, whose CUDA kernel (and the meta function that states
            # its contract) takes bf16 only; the CPU kernel takes fp32, so the CPU cannot show the failure.
            assert model_type in ("qwen3_moe", "gpt_oss", "deepseek_v3")
            return
        # Otherwise the estimate refuses only where the real training forward fails too (PEFT's all-linear wraps
        # Llama 4's router, whose forward returns a tuple).
        with pytest.raises(Exception) as real_error:
            autograd_saved_bytes(spec, settings, settings.targets)
        assert type(real_error.value).__name__ in exc.reason
        return
    real = autograd_saved_bytes(spec, settings, settings.targets)
    assert estimated == pytest.approx(real, rel=1e-9), f"estimated {estimated:,.0f} B, autograd saved {real:,} B"


@pytest.mark.parametrize("model_type", ["qwen3", "olmo2"])
def test_emulated_flash_saves_what_the_cpu_flash_kernel_saves(model_type):
    """No mask, bf16: CUDA and the CPU both take SDPA's flash kernel, which saves q, k, v, out and the log-sum-exp."""
    spec = spec_for(model_type)
    settings = TrainingSettings(method="full", precision="bf16", batch=BATCH, seq=SEQ)
    emulated = autograd_saved_bytes(spec, settings, None, emulate=True)
    assert emulated == autograd_saved_bytes(spec, settings, None, emulate=False)


def test_every_estimate_states_its_basis():
    spec = spec_for("qwen3")
    assert estimate_training_memory(spec, TrainingSettings()).activation_basis == "traced"
    assert estimate_training_memory("qwen2.5-0.5b", TrainingSettings()).activation_basis == "modelled"
    mixed = estimate_training_memory(spec, TrainingSettings(precision="mixed"))
    assert mixed.activation_basis == "approximated" and mixed.peak_bytes
    moe = estimate_training_memory(spec_for("qwen3_moe"), TrainingSettings(method="qlora"))
    assert moe.activation_basis is None and moe.peak_bytes is None
    assert any("qwen3_moe" in n and "counts are exact" in n for n in moe.notes)


def test_checkpointing_on_the_traced_path_traces_without_a_cache():
    """Without a cache transformers reads the position ids for packed sequences; the trace answers for it."""
    spec = spec_for("gemma3_text")
    plain = estimate_training_memory(spec, TrainingSettings(method="full", batch=BATCH, seq=SEQ))
    ckpt = estimate_training_memory(
        spec, TrainingSettings(method="full", batch=BATCH, seq=SEQ, grad_checkpointing=True)
    )
    assert ckpt.activation_basis == plain.activation_basis == "traced"
    assert "layer_recompute" in ckpt.phases and ckpt.sizes["activations"] < plain.sizes["activations"]


@pytest.mark.parametrize("model_type", ["qwen3", "gemma3_text", "qwen3_moe"])
def test_traced_activations_without_a_cache_equal_what_autograd_saves(model_type):
    """As under gradient checkpointing (no KV cache): transformers builds the masks another way."""
    spec = spec_for(model_type)
    settings = TrainingSettings(method="full", precision="bf16", batch=BATCH, seq=SEQ)
    estimated = estimated_saved_bytes(spec, settings, use_cache=False)
    assert estimated == pytest.approx(autograd_saved_bytes(spec, settings, None, use_cache=False), rel=1e-9)


@pytest.mark.parametrize("model_type", ["gpt2", "deepseek_v3", "gemma3_text", "qwen3"])
@pytest.mark.parametrize("method", ["full", "lora"])
def test_with_the_cpus_kernels_the_trace_equals_a_real_cpu_forward(model_type, method):
    """What the reference run compares on the CPU: the trace emulating the CPU's own SDPA dispatch (flash, or math
    under dropout (GPT-2) and for values narrower than keys (DeepSeek-V3's MLA)) against the CPU's real kernels."""
    spec = spec_for(model_type)
    settings = TrainingSettings(method=method, rank=4, precision="bf16", batch=BATCH, seq=SEQ)
    estimated = estimated_saved_bytes(spec, settings, kernels="cpu")
    real = autograd_saved_bytes(spec, settings, settings.targets, emulate=False)
    assert estimated == pytest.approx(real, rel=1e-9), f"estimated {estimated:,.0f} B, autograd saved {real:,} B"


def test_the_cpu_and_cuda_kernel_choices_differ_where_torch_says():
    """The CPU's SDPA (asked of torch itself) takes the math path under dropout (GPT-2) and for values narrower
    than keys (DeepSeek-V3's MLA), its flash kernel otherwise, masks and grouped queries included; CUDA's emulated
    dispatch keeps flash for no mask, the memory-efficient kernel for a mask or narrower values."""
    from advisor.estimate.trace import cpu_kernel, cuda_kernel

    q = torch.zeros(2, 8, 64, 32, dtype=torch.bfloat16)
    narrow = torch.zeros(2, 8, 64, 16, dtype=torch.bfloat16)
    grouped = torch.zeros(2, 4, 64, 32, dtype=torch.bfloat16)
    mask = torch.ones(1, 1, 64, 64, dtype=torch.bool)
    assert cpu_kernel(q, q, q, None, 0.0, True, False) == "cpu-flash"
    assert cpu_kernel(q, q, q, None, 0.1, True, False) == "math"
    assert cpu_kernel(q, q, narrow, None, 0.0, True, False) == "math"
    assert cpu_kernel(q, q, q, mask, 0.0, False, False) == "cpu-flash"
    assert cpu_kernel(q, grouped, grouped, None, 0.0, True, True) == "cpu-flash"
    assert cuda_kernel(q, q, q, None, False) == "flash"
    assert cuda_kernel(q, q, narrow, None, False) == "efficient"
    assert cuda_kernel(q, q, q, mask, False) == "efficient"


def test_an_estimate_says_whose_kernels_it_assumed():
    spec = spec_for("gpt2")
    settings = TrainingSettings(method="full", precision="bf16", batch=BATCH, seq=SEQ)
    cuda = estimate_training_memory(spec, settings)
    cpu = estimate_training_memory(spec, settings, kernels="cpu")
    assert (cuda.attention_kernels, cpu.attention_kernels) == ("cuda", "cpu")
    assert estimate_training_memory("qwen2.5-0.5b", settings).attention_kernels is None  # modelled, not traced
    assert any(n.startswith("attention kernels as CUDA would dispatch them") and "flash" in n for n in cuda.notes)
    assert any(n.startswith("attention kernels as the CPU's SDPA dispatches them") and "math" in n for n in cpu.notes)
    assert cpu.sizes["activations"] > cuda.sizes["activations"]  # the math path keeps the s x s probabilities
