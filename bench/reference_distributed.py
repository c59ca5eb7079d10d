"""Each rank's peak under DDP and FSDP on N CPU processes (gloo), beside the estimator's per-GPU peak.

    .venv/bin/python bench/reference_distributed.py                       # a small Llama config, 2 processes
    .venv/bin/python bench/reference_distributed.py qwen2.5-0.5b --layers 2 --nproc 2

Runs `advisor.reference.distributed.distributed_run` (full fine-tuning, then LoRA on all
linear layers) under ddp and fsdp and prints, per rank, the measured peak, the estimator's
per-GPU peak for `--gpus N --sharding ...` and the error, with the median step time and its
90% interval, side by side in one run. `--layers` cuts a catalog model to its first layers
(every layer at its exact shape), to keep a CPU run short.

Each rank's peak leaves out gloo's own collective buffers (NCCL on a GPU allocates none:
gloo's `_reduce_scatter_base_` clones its whole input, `_allgather_base_` gathers into a
flat copy) and prints their peak beside it ("gloo's own buffers"). Measured on 2 CPU
processes (2026-12, a busy 2-core machine, load average 4-5, the default small config, two
runs, identical to the byte in both; in a third, and once before, FSDP full's rank 1 held
31.75 MiB, -3.3%: one layer's reduce-scatter buffer, 1.5 MiB, more, timing-dependent and
not separated further; the tiny test model has shown up to 14% more on one rank: a
tensor FSDP handed to gloo, an all-gather output or a reduce-scatter input, freed on gloo's
thread unseen and counted until the allocator reuses its address):

    sharding  method  rank 0    rank 1    estimator  error    gloo's own buffers (left out)
    ddp       full    50.68 MiB 50.68 MiB 50.65 MiB  -0.1%    0 B
    ddp       lora    20.21 MiB 20.21 MiB 20.21 MiB  -0.0%    0 B
    fsdp      full    30.25 MiB 30.25 MiB 30.72 MiB  +1.5%    4.0 to 11.0 MiB
    fsdp      lora    19.37 MiB 19.37 MiB 19.29 MiB  -0.4%    4.0 to 4.15 MiB

and `qwen2.5-0.5b --layers 2 --steps 3` (tied embeddings, a 152k vocabulary: the root is
260 MiB in bf16), one run:

    sharding  method  rank 0     rank 1     estimator   error   gloo's own buffers (left out)
    ddp       full    2.07 GiB   2.07 GiB   2.07 GiB    -0.0%   0 B
    ddp       lora    461.95 MiB 461.96 MiB 461.95 MiB  -0.0%   0 B
    fsdp      full    1.55 GiB   1.55 GiB   1.52 GiB    -1.8%   288 MiB
    fsdp      lora    756.71 MiB 756.71 MiB 755.87 MiB  -0.1%   260 MiB

(before the last estimator change, FSDP there was +6.4% and -22.2%).

Before (same config): DDP full -0.1%, DDP LoRA -2.9% (once -35% on rank 0), FSDP full
-41%/-34%, FSDP LoRA -16%/-15%, the ranks differing by up to 10 MiB. How the error was
taken apart (allocations attributed to the operator and FSDP phase that made them, from
the profiler's event tree; allocations matched to frees by address):

- gloo's clones were freed on its worker threads, where the profiler does not listen, so
  the running sum kept them for the rest of the run (1.5 MiB a step on one rank, 4 MiB at
  the root's reduce-scatter): left out now, by mechanism (`measure.py`). DDP LoRA's
  -35% was 10 MiB more on rank 0 alone, the size of the model's weights, in one run of
  three; DDP's construction-time broadcast (rank 0 sends a flat copy of them through gloo)
  is the one such rank-0 allocation, and is skipped on the CPU now, where every rank builds
  the same weights from the seed; the excess has not come back in the runs since (an
  inference from size and rank, not caught in the act).
- FSDP full, at the peak (a layer's backward): 10.0 MiB AdamW states and 5.0 MiB weights
  (each rank's half), 4.0 MiB the root's unsharded parameters (embedding and LM head: the
  root is not resharded after forward), 1.5 + 1.5 MiB the current layer's unsharded copy
  and the prefetched all-gather output, 3.0 MiB gradient shards and the reduce-scatter
  input kept in flight, 3.8 MiB the LM head's unsharded gradient and the layer's own,
  1.4 MiB activations. The estimator had 2 layers' copies only; it now follows FSDP2's
  code (`memory._fsdp_unsharded`). The +1.5% left: its `layers_backward` phase holds all
  saved activations beside the largest layer's gathered copies, an upper bound; the
  measured peak comes partway through the layers.
- Qwen2.5-0.5B FSDP LoRA peaks at the first layer's copy-out: the root's all-gather output
  (260 MiB, kept by `wait_for_unshard` through the next copy-out) beside the root's
  unsharded copy (260 MiB) and the layer's two (2 x 29 MiB); phase `first_layer_gather`.
  Full fine-tuning peaks at the embedding's backward: the root's unsharded copy and its
  LM-head gradient (260 MiB each) beside the tied weight's transient (519 MiB); the -1.8%
  left is 28 MiB not attributed.
- DDP LoRA: the gradient buckets (one copy of the trainable gradients, 0.59 MiB) are
  allocated when the model is wrapped and held through forward, where LoRA peaks; the
  estimator counted them only beside the gradients (`memory._ddp_buckets`).
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
