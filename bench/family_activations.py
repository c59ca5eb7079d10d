"""One row per traced family: `advisor reference-run` on a small shape on this CPU, activations measured vs estimated.

    .venv/bin/python bench/family_activations.py [model_type ...]

Each family's small config (the shapes of tests/test_traced.py, widened) is written to a
temporary folder and run as a user runs it: `advisor reference-run --model CONFIG --device cpu
--json` in a fresh process (LoRA with the default targets beside full fine-tuning, batch 2 x
seq 256, bf16). The reference run measures what autograd saves with the CPU's own kernels; the
estimate traces the module with CUDA's attention kernel choice emulated, so a family whose
layers pass an attention mask (sliding windows shorter than the sequence) differs by what the
CPU and CUDA kernels save, which the row says.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WIDE = dict(
    vocab_size=2048,
    num_hidden_layers=4,
    num_attention_heads=8,
    num_key_value_heads=4,
    hidden_size=256,
    intermediate_size=704,
    max_position_embeddings=1024,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)
FAMILIES = {
    "qwen3": dict(architectures=["Qwen3ForCausalLM"], head_dim=32, tie_word_embeddings=True),
    "gemma3_text": dict(
        architectures=["Gemma3ForCausalLM"],
        head_dim=32,
        query_pre_attn_scalar=32,
        sliding_window=512,  # longer than the sequence: no mask, as Gemma 3's 512-token window at seq <= 512
        layer_types=["sliding_attention", "sliding_attention", "sliding_attention", "full_attention"],
        final_logit_softcapping=None,
    ),
    "olmo2": dict(architectures=["Olmo2ForCausalLM"]),
    "gpt2": dict(architectures=["GPT2LMHeadModel"], n_embd=256, n_layer=4, n_head=8, n_positions=1024),
    "qwen3_moe": dict(
        architectures=["Qwen3MoeForCausalLM"],
        num_experts=8,
        num_experts_per_tok=2,
        moe_intermediate_size=128,
        head_dim=32,
    ),
    "deepseek_v3": dict(
        architectures=["DeepseekV3ForCausalLM"],
        num_key_value_heads=8,
        first_k_dense_replace=1,
        n_routed_experts=8,
        num_experts_per_tok=2,
        moe_intermediate_size=128,
        kv_lora_rank=64,
        q_lora_rank=96,
        qk_rope_head_dim=16,
        qk_nope_head_dim=32,
        v_head_dim=32,
        n_group=1,
        topk_group=1,
    ),
    "gpt_oss": dict(
        architectures=["GptOssForCausalLM"], num_local_experts=8, num_experts_per_tok=2, head_dim=32, sliding_window=512
    ),
    "llama4_text": dict(
        architectures=["Llama4ForCausalLM"],
        head_dim=32,
        num_local_experts=4,
        num_experts_per_tok=1,
        intermediate_size_mlp=704,
        interleave_moe_layer_step=2,
    ),
}


# Variants that isolate a difference between this CPU and the GPU the estimate is for (see the docstring).
VARIANTS = {
    # GPT-2 trains with dropout 0.1: CUDA's flash kernel keeps only its random state, the CPU's SDPA takes the math
    # path and saves the s x s probabilities and dropout mask. Without dropout both take flash.
    "gpt2-no-dropout": ("gpt2", dict(FAMILIES["gpt2"], attn_pdrop=0.0, resid_pdrop=0.0, embd_pdrop=0.0)),
    # DeepSeek-V3's values are narrower than its queries and keys (MLA): CUDA takes the memory-efficient kernel, the
    # CPU the math path. With values as wide as the keys both take flash.
    "deepseek-v-wide": ("deepseek_v3", dict(FAMILIES["deepseek_v3"], v_head_dim=48)),
    # Llama 4 interleaves dense and MoE layers; the reference run extrapolates from 1- and 2-layer proxies as if
    # every later layer were the second. With every layer MoE the proxies are representative.
    "llama4-all-moe": ("llama4_text", dict(FAMILIES["llama4_text"], interleave_moe_layer_step=1)),
}


def run(name: str, folder: Path) -> dict:
    model_type, extra = VARIANTS.get(name, (name, FAMILIES.get(name, {})))
    config = dict(WIDE, model_type=model_type, **extra)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    command = [sys.executable, "-m", "advisor", "reference-run", "--model", str(path), "--device", "cpu"]
    command += ["--batch", "2", "--seq", "256", "--json"]
    started = time.perf_counter()
    res = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if res.returncode != 0:
        return {"model_type": name, "error": (res.stdout + res.stderr).strip().splitlines()[-1][:160]}
    out = json.loads(res.stdout)
    row = {"model_type": name, "wall_s": wall}
    for method in ("full", "lora"):
        figures = out[method]["figures"] or {}
        act = figures.get("activation_bytes") or {}
        row[method] = (act.get("measured"), act.get("estimated"), act.get("error"), out[method]["basis"])
    return row


def main(types: list[str]) -> int:
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{'family':<13}{'full measured':>15}{'estimated':>13}{'error':>9}"
        f"{'LoRA measured':>15}{'estimated':>13}{'error':>9}"
    )
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for model_type in types:
            row = run(model_type, Path(tmp))
            if "error" in row:
                print(f"{model_type:<16} refused or failed: {row['error']}")
                continue
            cells = []
            for method in ("full", "lora"):
                measured, estimated, error, _ = row[method]
                cells += [f"{measured:>15,}", f"{estimated:>13,}", f"{error * 100:>8.2f}%"]
                worst = max(worst, abs(error))
            print(f"{model_type:<16}" + "".join(cells) + f"   ({row['wall_s']:.0f} s)")
    print(f"largest activation error: {worst * 100:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or [*FAMILIES, *VARIANTS]))
