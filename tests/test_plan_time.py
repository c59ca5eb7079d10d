"""Step FLOPs against torch's own count, and the step-time calibration against the measured H200 steps."""

from __future__ import annotations

import json
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from advisor.estimate import TrainingSettings  # noqa: E402
from advisor.model_specs import ModelSpec, resolve_model_spec  # noqa: E402
from advisor.plan.flops import step_flops  # noqa: E402
from advisor.plan.timing import (  # noqa: E402
    architecture_for,
    fit_calibration,
    load_throughput,
    method_cost,
    tokens_to_train,
)
from tests.conftest import ROOT  # noqa: E402

CONFIG = dict(
    model_type="llama",
    architectures=["LlamaForCausalLM"],
    vocab_size=320,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    hidden_size=64,
    intermediate_size=160,
    max_position_embeddings=128,
    tie_word_embeddings=False,
)


@pytest.mark.parametrize("method", ["full", "lora"])
@pytest.mark.parametrize("grad_checkpointing", [False, True])
def test_step_flops_match_what_torch_counts(method, grad_checkpointing):
    """Eager attention runs QKᵀ and attention x V as full s x s matmuls (the causal mask is applied after), so
    torch counts twice the causal attention the model predicts; everything else must match exactly."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModelForCausalLM, LlamaConfig

    spec = ModelSpec(spec="t", id="t", origin="config", task="causal-lm", model_type="llama", config=CONFIG, source="t")
    s = TrainingSettings(
        method=method,
        targets="all-linear",
        rank=8,
        batch=2,
        seq=32,
        precision="fp32",
        grad_checkpointing=grad_checkpointing,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(LlamaConfig(**CONFIG), attn_implementation="eager")
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    if grad_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if method == "lora":
            model.enable_input_require_grads()
    model.train()
    x = torch.randint(0, 320, (2, 32))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=x, labels=x).loss.backward()
    predicted = step_flops(architecture_for(spec, s), s)
    assert counter.get_total_flops() == predicted.total + predicted.attention


def _calibration():
    sys.path.insert(0, str(ROOT / "bench"))
    from calibration import load_rows, settings_for

    rows = load_rows()
    settings = [settings_for(r) for r in rows]
    archs = [architecture_for(resolve_model_spec(r["model"]), s) for r, s in zip(rows, settings, strict=True)]
    return rows, archs, settings


def test_the_step_time_constants_are_the_fit_to_the_measured_steps():
    rows, archs, settings = _calibration()
    fitted = fit_calibration(rows, archs, settings)
    data = load_throughput()
    for key in ("seconds_per_linear", "seconds_per_adapter", "utilisation"):
        assert data[key] == pytest.approx(fitted[key], rel=1e-6), key
    errors = fitted["errors"]
    assert data["calibration_rows"] == len(rows) == 22
    assert data["calibration_error_min"] == pytest.approx(min(errors), abs=1e-6)
    assert data["calibration_error_max"] == pytest.approx(max(errors), abs=1e-6)
    assert data["range_low"] == pytest.approx(1 / (1 + max(errors)), rel=1e-6)
    assert data["range_high"] == pytest.approx(1 / (1 + min(errors)), rel=1e-6)
    assert 0.05 < data["utilisation"] <= 1.0  # a physical utilisation, not a free parameter gone wild
    assert max(abs(e) for e in errors) < 0.3


def test_time_and_cost_follow_tokens_throughput_and_price():
    assert tokens_to_train(1000, 500, 2) == 1_000_000
    assert tokens_to_train(1000, 500) == 1_500_000  # TrainingArguments' 3 epochs
    assert tokens_to_train(None, 500) is None
    spec = resolve_model_spec("llama-3.1-8b")
    s = TrainingSettings(method="lora", targets="all-linear", rank=16, batch=4, seq=2048, grad_checkpointing=True)
    arch = architecture_for(spec, s)
    fast = method_cost(arch, s, tokens=10**8, tflops=989, price=3.0)
    slow = method_cost(arch, s, tokens=10**8, tflops=989 / 2, price=3.0)
    assert slow.hours == pytest.approx(2 * fast.hours, rel=1e-3)  # compute-bound at 8,192 tokens a step
    assert fast.cost_usd == pytest.approx(fast.gpu_hours * 3.0)
    assert fast.hours_low < fast.hours < fast.hours_high
    assert fast.steps == -(-(10**8) // (4 * 2048))
    none = method_cost(arch, s, tokens=10**8, tflops=None, price=None)
    assert none.hours is None and none.notes


def test_throughput_data_explains_itself():
    data = json.loads((ROOT / "advisor" / "plan" / "throughput.json").read_text())
    assert "bench/data/h200_training_memory.jsonl" in data["about"]
