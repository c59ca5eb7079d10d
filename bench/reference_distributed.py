"""Each rank's peak under DDP and FSDP on N CPU processes (gloo), beside the estimator's per-GPU peak.

    .venv/bin/python bench/reference_distributed.py                       # a small Llama config, 2 processes
    .venv/bin/python bench/reference_distributed.py qwen2.5-0.5b --layers 2 --nproc 2

Runs `advisor.reference.distributed.distributed_run` (full fine-tuning, then LoRA on all
linear layers) under ddp and fsdp and prints, per rank, the measured peak, the estimator's
per-GPU peak for `--gpus N --sharding ...` and the error, with the median step time and its
90% interval, side by side in one run. `--layers` cuts a catalog model to its first layers
(every layer at its exact shape), to keep a CPU run short.

What the errors are made of is not yet separated. Measured on 2 CPU processes (2026-12, a
busy 2-core machine, the default small config, two runs): DDP full fine-tuning -0.1% on
both ranks in both runs; DDP LoRA -2.9% on both ranks, except once -35% on rank 0 alone
(10 MiB more, not reproduced in the second run); FSDP -15% to -26% for both methods, the
ranks differing by up to 1.8 MiB from run to run. Candidate causes, not measured apart:
gloo stages collectives through host buffers NCCL on a GPU would not allocate (FSDP's
all-gather and reduce-scatter, DDP's all-reduce), allocated at moments that vary with
the ranks' timing; FSDP2's unsharded copies on the CPU; the estimator predicting CUDA's
allocator.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from advisor.fmt import fmt_bytes, fmt_pct, fmt_seconds  # noqa: E402

SMALL = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": 4096,
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "tie_word_embeddings": False,
    "max_position_embeddings": 512,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", default=None, help="catalog id or config.json (default: a small Llama)")
    parser.add_argument("--layers", type=int, default=None)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()

    from advisor.model_specs import resolve_model_spec
    from advisor.reference import default_settings
    from advisor.reference.distributed import distributed_run
    from advisor.reference.model import at_depth

    if args.model is None:
        path = ROOT / "bench" / "out" / "small-llama" / "config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(SMALL))
        spec = resolve_model_spec(str(path))
    else:
        spec = resolve_model_spec(args.model)
    if args.layers:
        spec = at_depth(spec, args.layers)
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for sharding in ("ddp", "fsdp"):
        run = distributed_run(
            spec, default_settings(targets="all-linear"), nproc=args.nproc, sharding=sharding, steps=args.steps
        )
        print(
            f"\n{run.model} cut to {spec.config.get('num_hidden_layers')} layers: {run.nproc} processes, "
            f"{sharding} ({run.backend}), {run.steps} steps, {run.seconds:.1f} s"
        )
        for m in run.methods:
            for rank, error in zip(m.ranks, m.errors, strict=True):
                interval = rank.step_seconds_interval
                spread = f"{fmt_seconds(interval[0])} to {fmt_seconds(interval[1])}" if interval else "-"
                staging = rank.collective_staging_bytes
                print(
                    f"  {m.method:<5} rank {rank.rank}: peak {fmt_bytes(rank.peak_bytes):>12}, estimator per GPU "
                    f"{fmt_bytes(m.estimated_peak_bytes):>12}, error {fmt_pct(error, 1, signed=True):>7}; "
                    + (f"gloo's own buffers (left out) up to {fmt_bytes(staging)}; " if staging is not None else "")
                    + f"median step {fmt_seconds(rank.step_seconds)} ({spread})"
                )
        for note in run.notes:
            print(f"  note: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
