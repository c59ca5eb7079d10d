"""One row per traced family: `advisor reference-run` on a small shape on this CPU, activations measured vs estimated.

    .venv/bin/python bench/family_activations.py [model_type ...]

Each family's small config (the shapes of tests/test_traced.py, widened) is written to a
temporary folder and run as a user runs it: `advisor reference-run --model CONFIG --device cpu
--json` in a fresh process (LoRA with the default targets beside full fine-tuning, batch 2 x
seq 256, bf16). The reference run measures what autograd saves with the CPU's own kernels, and
the returned KV cache's storages autograd did not save; the estimate beside it traces the module
with the CPU's own SDPA choice (an estimate for a GPU traces CUDA's). Models whose layers are not
all alike are measured at the depths `plan.proxy_plan` picks from their layers' kinds (a 4-layer
model whose last layer is its only one of a kind runs whole); each row names the depths, and a
model that also ran whole prints the proxies' extrapolation of its activations beside it.

Measured 2026-12-02 on 2 cores (load average 1.0-2.7), torch 2.13.0 CPU, transformers 5.24.0, peft 0.21.2;
error = (estimated - measured) / measured:

    family          full     LoRA   depths       before this branch (full / LoRA) and why
    qwen3           0.00%    0.00%  1,2,4        0.00% / 0.00%
    gemma3_text    -0.00%   -0.00%  4 (whole)    +0.08% / +0.12%: its one global layer shares RoPE tables the
                                                 1- and 2-layer (local-only) proxies never save (2 x 256 x 32 bf16)
    olmo2           0.00%    0.00%  1,2,4        0.00% / 0.00%
    gpt2            0.00%    0.00%  1,2,4        +2.47% / +2.65%: the proxies were the whole model (n_layer cut,
                                                 num_hidden_layers not); DynamicCache's copies of k and v (never
                                                 saved by autograd) booked by the trace only; LayerNorm's statistics
                                                 fp32 in the trace (as CUDA keeps them), bf16 on the CPU
    qwen3_moe       0.00%    0.00%  1,2,4        0.00% / 0.00%
    deepseek_v3     0.01%   +0.02%  1,2,4        +0.15% / -16.00%: the trace's LoRA lacked the experts' and
                                                 router's adapters all-linear reaches through target_parameters
                                                 (LoRA then defaulted to all-linear; now q_b_proj, kv_b_proj)
    gpt_oss        -0.00%   -0.00%  1,2,3,4      +1.51% / +1.84%: DynamicCache's copies of k and v (as GPT-2)
    llama4_text    -0.00%   -0.00%  4 (whole)    -21.13% / -20.03%: proxies at 1 and 2 layers counted every later
                                                 layer as MoE; layers 0-3 are dense, MoE, dense, MoE without RoPE
    llama4_text-8  -0.00%   -0.00%  1,2,3,4,8    proxies' extrapolation vs whole: +0.00% / +0.00%
    deepseek_v3-6  +0.02%   +0.03%  2,3,6        proxies' extrapolation vs whole: +0.00% / +0.03%

("1,2,4": the proxies, then the whole model, which the time budget allowed on a quiet machine.) What is left:
a few bytes per layer the cache holds beside k and v (measured, not traced: gpt_oss, Gemma 3, Llama 4 show
-0.00%); DeepSeek-V3's MoE layers, whose whole-model measurement differs between runs of one config by up to
12 KB (full 50,935,904 and 50,942,048 B at 4 layers, LoRA 55,687,264 and 55,674,976 B) while a bare forward of
the same model saves the same bytes whatever its input (4 seeds): not explained here.
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


# Deeper variants whose layers are not all alike, measured at the proxy depths and whole (--max-seconds lets the whole
# model run after them): the row is the whole model; the check line is the proxies' extrapolation against it.
VARIANTS = {
    # dense and MoE layers interleaved, and RoPE left out of every fourth: kinds dense, MoE, MoE without RoPE
    "llama4_text-8": ("llama4_text", dict(FAMILIES["llama4_text"], num_hidden_layers=8)),
    # two dense layers, then MoE: the line through 2 and 3 layers
    "deepseek_v3-6": ("deepseek_v3", dict(FAMILIES["deepseek_v3"], num_hidden_layers=6, first_k_dense_replace=2)),
}


def run(name: str, folder: Path) -> dict:
    model_type, extra = VARIANTS.get(name, (name, FAMILIES.get(name, {})))
    config = dict(WIDE, model_type=model_type, **extra)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    command = [sys.executable, "-m", "advisor", "reference-run", "--model", str(path), "--device", "cpu"]
    command += ["--batch", "2", "--seq", "256", "--json"]
    if name in VARIANTS:
        command += ["--max-seconds", "600"]
    started = time.perf_counter()
    res = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - started
    if res.returncode != 0:
        return {"model_type": name, "error": (res.stdout + res.stderr).strip().splitlines()[-1][:160]}
    out = json.loads(res.stdout)
    row = {"model_type": name, "wall_s": wall, "depths": out["scale"]["depths"], "kind": out["scale"]["kind"]}
    row["checks"] = [n for n in out["notes"] if n.startswith("check of the proxy method") and "activations" in n]
    row["extrapolation"] = out["scale"]["extrapolation"]
    for method in ("full", "lora"):
        figures = out[method]["figures"] or {}
        act = figures.get("activation_bytes") or {}
        row[method] = (act.get("measured"), act.get("estimated"), act.get("error"), out[method]["basis"])
    return row


def main(types: list[str]) -> int:
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{'family':<13}{'full measured':>18}{'estimated':>13}{'error':>9}"
        f"{'LoRA measured':>15}{'estimated':>13}{'error':>9}   proxy depths, then the whole model if it ran"
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
            depths = ",".join(map(str, row["depths"]))
            print(f"{model_type:<16}" + "".join(cells) + f"   depths {depths} ({row['wall_s']:.0f} s)")
            if row["extrapolation"] and len(set(row["depths"])) > 2:
                print(f"    {row['extrapolation']}")
            for check in row["checks"]:
                print(f"    {check}")
    print(f"largest activation error: {worst * 100:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or [*FAMILIES, *VARIANTS]))
