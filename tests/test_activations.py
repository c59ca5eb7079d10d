"""The activation model against what autograd really saves.

For small configs of every family the estimator models, run a real forward pass with
labels on the CPU inside `saved_tensors_hooks`, collect every tensor autograd keeps
for backward (one count per storage, parameters excluded), and compare with the
estimator's saved bytes for the same settings. CPU kernels save what the GPU ones
do for these ops (SDPA's flash kernel saves q, k, v, out and the log-sum-exp on
both), so the test checks the mechanism the GPU estimate rests on.
"""

from __future__ import annotations

import contextlib

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from advisor.estimate import TrainingSettings  # noqa: E402
from advisor.estimate.architecture import describe  # noqa: E402
from advisor.estimate.memory import activations, precision_of  # noqa: E402
from advisor.model_specs import ModelSpec  # noqa: E402

BATCH, SEQ = 2, 24
COMMON = dict(
    vocab_size=320,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    hidden_size=64,
    intermediate_size=160,
    max_position_embeddings=128,
)

FAMILIES = {
    "llama": dict(
        model_type="llama", architectures=["LlamaForCausalLM"], head_dim=16, tie_word_embeddings=False, **COMMON
    ),
    "llama-tied": dict(model_type="llama", architectures=["LlamaForCausalLM"], tie_word_embeddings=True, **COMMON),
    "qwen2": dict(model_type="qwen2", architectures=["Qwen2ForCausalLM"], tie_word_embeddings=True, **COMMON),
    "mistral": dict(model_type="mistral", architectures=["MistralForCausalLM"], sliding_window=None, **COMMON),
    "phi3": dict(
        model_type="phi3", architectures=["Phi3ForCausalLM"], pad_token_id=0, bos_token_id=1, eos_token_id=2, **COMMON
    ),
    "gemma2": dict(
        model_type="gemma2",
        architectures=["Gemma2ForCausalLM"],
        head_dim=16,
        query_pre_attn_scalar=16,
        sliding_window=64,
        final_logit_softcapping=30.0,
        attn_logit_softcapping=50.0,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        **COMMON,
    ),
    "mixtral": dict(
        model_type="mixtral", architectures=["MixtralForCausalLM"], num_local_experts=4, num_experts_per_tok=2, **COMMON
    ),
}

CASES = [
    ("full", None, "bf16"),
    ("lora", ["q_proj", "v_proj"], "bf16"),
    ("lora", "all-linear", "bf16"),
    ("full", None, "fp32"),
    ("full", None, "mixed"),
    ("lora", "all-linear", "mixed"),
]


def _spec(name: str) -> ModelSpec:
    config = dict(FAMILIES[name])
    return ModelSpec(
        spec=name,
        id=name,
        origin="config",
        task="causal-lm",
        model_type=config["model_type"],
        config=config,
        source="test",
    )


def _targets(name: str, targets):
    if targets == ["q_proj", "v_proj"] and name == "phi3":
        return ["qkv_proj"]
    return targets


def traced_saved_bytes(spec: ModelSpec, settings: TrainingSettings) -> int:
    """Bytes of the tensors autograd saves in one forward with labels (parameters excluded)."""
    from peft import get_peft_model

    from advisor.hf import build_config, lora_config

    torch.manual_seed(0)
    config = build_config(spec)
    if spec.model_type != "gemma2":
        config._attn_implementation = "sdpa"
    dtype = torch.float32 if settings.precision in ("fp32", "mixed") else torch.bfloat16
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=dtype)
    if settings.method == "lora":
        model = get_peft_model(
            model, lora_config(spec, rank=settings.rank, alpha=2 * settings.rank, targets=settings.targets)
        )
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen.setdefault(storage.data_ptr(), storage.nbytes())
        return t

    ids = torch.randint(3, config.vocab_size, (BATCH, SEQ))
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16) if settings.precision == "mixed" else contextlib.nullcontext()
    )
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), autocast:
        out = model(input_ids=ids, labels=ids)
    assert out.loss.requires_grad
    return sum(seen.values())


def predicted_saved_bytes(spec: ModelSpec, settings: TrainingSettings) -> float:
    p = precision_of(settings)
    arch = describe(
        spec,
        method=settings.method,
        rank=settings.rank,
        alpha=2 * settings.rank,
        targets=settings.targets,
        weights=p.weights,
        others=p.others,
    )
    act = activations(arch, settings)
    tokens = BATCH * SEQ
    per_token = sum(v for k, v in act.layers_per_token.items() if k != "kv_cache") + sum(act.head_per_token.values())
    fixed = sum(act.layers_fixed.values()) + sum(act.head_fixed.values())
    # The loss saves log_softmax's fp32 output, the shifted labels and nll's total weight.
    loss = tokens * arch.vocab * 4 + tokens * 8 + 4
    return tokens * per_token + fixed + loss


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("method,targets,precision", CASES, ids=lambda v: str(v))
def test_block_saves_what_autograd_saves(family, method, targets, precision):
    spec = _spec(family)
    settings = TrainingSettings(
        method=method, targets=_targets(family, targets), rank=4, precision=precision, batch=BATCH, seq=SEQ
    )
    traced = traced_saved_bytes(spec, settings)
    predicted = predicted_saved_bytes(spec, settings)
    assert predicted == pytest.approx(traced, rel=1e-6), f"predicted {predicted:,.0f} B, autograd saved {traced:,} B"
