"""The reference run on N processes under torch.distributed: DDP or FSDP, each rank's peak and step time.

    >>> from advisor.reference.distributed import distributed_run
    >>> run = distributed_run("llama-3.2-1b", default_settings(), nproc=2, sharding="fsdp")

N processes are started with `torch.multiprocessing` and join one process group with the
standard rendezvous (MASTER_ADDR / MASTER_PORT on this machine, a free port): gloo on
the CPU, NCCL on CUDA (one GPU per rank), the same code a multi-GPU node runs. Every
rank builds the same starting weights (transformers' initialisation under the seed),
wraps the model in `DistributedDataParallel` (ddp) or shards it with FSDP2's
`fully_shard`, each decoder layer and then the root (fsdp), and trains full fine-tuning,
then LoRA, on its own slice of the tokens. Each rank measures its own peak (the CPU
allocator's events, as the single-process run does; CUDA's counter on a GPU) and its step
times; the parent puts them beside the estimator's per-GPU peak for `--gpus N --sharding
...`. On the CPU the collectives go through gloo, which stages through host buffers that
NCCL on a GPU would not allocate: those bytes show in the error.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from ..errors import FieldIssue, InvalidInput
from ..estimate import estimate_training_memory
from ..estimate.settings import TrainingSettings
from ..model_specs import ModelSpec, resolve_model_spec
from . import spread
from .assemble import LEARNING_RATES, METHODS, TORCH_DTYPES
from .control import temporary_folder
from .measure import TRACKED_STEPS
from .plan import predicted_peak
from .result import DatasetInfo
from .run import check_trainable

Sharding = Literal["ddp", "fsdp"]
MAX_NPROC = 8


class RankFigures(BaseModel):
    rank: int
    steps: int = Field(description="Steps this rank trained (fewer than asked when --max-seconds stopped the run).")
    peak_bytes: int | None = Field(
        description=f"Peak tensor bytes of this rank during its first {TRACKED_STEPS} steps (memory is recorded "
        "over those), above what it held before (None: no step)."
    )
    collective_staging_bytes: int | None = Field(
        default=None,
        description="On the CPU: the most bytes gloo's own collective buffers held at once during the steps (at "
        "most; NCCL on a GPU allocates none), left out of peak_bytes.",
    )
    step_seconds: float | None = Field(description="Median step after the warm-up step.")
    step_seconds_interval: list[float] | None = None
    losses: list[float]


class DistributedMethod(BaseModel):
    method: Literal["full", "lora"]
    estimated_peak_bytes: int | None = Field(
        description="The estimator's per-GPU peak for the same model and settings with --gpus N --sharding ..."
    )
    ranks: list[RankFigures]
    errors: list[float | None] = Field(description="(estimated - measured) / measured, per rank.")


class DistributedRun(BaseModel):
    model: str
    layers: int
    nproc: int
    sharding: Sharding
    backend: str
    device: str
    settings: TrainingSettings
    steps: int
    dataset: DatasetInfo
    methods: list[DistributedMethod]
    complete: bool = Field(description="False when --max-seconds stopped the run before every step of both methods.")
    cut_short: str | None = Field(None, description="What was skipped, when the run was stopped early.")
    seconds: float
    notes: list[str]


def distributed_run(
    spec: str | ModelSpec,
    settings: TrainingSettings,
    *,
    nproc: int,
    sharding: Sharding,
    steps: int = 4,
    seed: int = 0,
    dataset: str | Path | None = None,
    max_seconds: float | None = None,
) -> DistributedRun:
    """Train full fine-tuning and LoRA on `nproc` processes under `sharding`; measure every rank.

    `dataset` is read and tokenized once, here, and each rank trains on its own slice of the
    batches. `max_seconds` bounds the whole run, process start-up included: before each step
    the ranks agree (an all-reduce of one flag) whether any has passed the deadline, and stop
    together after the step under way; what was measured comes back with `complete=False`.
    """
    import torch
    import torch.multiprocessing as mp

    started = time.perf_counter()
    spec = spec if isinstance(spec, ModelSpec) else resolve_model_spec(spec)
    if not 2 <= nproc <= MAX_NPROC:
        message = f"nproc must be 2 to {MAX_NPROC} (1 is the single-process reference run)"
        raise InvalidInput(message, fields=[FieldIssue(field="nproc", message=message)])
    if sharding not in ("ddp", "fsdp"):
        message = "a multi-process run shards with ddp or fsdp"
        raise InvalidInput(message, fields=[FieldIssue(field="sharding", message=message, allowed=["ddp", "fsdp"])])
    check_trainable(spec, settings, steps, max_seconds)
    if settings.method != "lora":
        message = "the multi-process run trains LoRA beside full fine-tuning"
        raise InvalidInput(message, fields=[FieldIssue(field="method", message=message, allowed=["lora"])])
    settings = settings.model_copy(update={"alpha": settings.lora_alpha})
    from ..hf import build_config
    from . import corpus

    texts = corpus.load_corpus(dataset)
    vocab = int(spec.config.get("vocab_size", 0) or 0) or int(build_config(spec).vocab_size)
    needed = settings.batch * settings.seq * steps * nproc
    stream = corpus.tokenize(texts, spec, vocab, needed=needed)
    batches = corpus.batches(stream, batch=settings.batch, seq=settings.seq, steps=steps * nproc)
    dataset_info = corpus.dataset_info(texts, stream, batch=settings.batch, seq=settings.seq, steps=steps * nproc)
    cuda = torch.cuda.is_available() and torch.cuda.device_count() >= nproc
    backend = "nccl" if cuda else "gloo"
    job = {
        "batches": batches,
        "deadline": time.time() + max_seconds - (time.perf_counter() - started) if max_seconds else None,
        "spec": spec.model_dump(mode="json"),
        "settings": settings.model_dump(mode="json"),
        "steps": steps,
        "seed": seed,
        "sharding": sharding,
        "nproc": nproc,
        "backend": backend,
        "port": _free_port(),
    }
    with temporary_folder() as tmp:  # named after this process, removed however it ends (see control)
        mp.spawn(_worker, args=(job, str(tmp)), nprocs=nproc, join=True)
        results = [json.loads((tmp / f"rank{r}.json").read_text()) for r in range(nproc)]
    methods = []
    for method in METHODS:
        est = estimate_training_memory(  # traced families: the attention kernels of the devices measured
            spec,
            settings.model_copy(update={"method": method, "gpus": nproc, "sharding": sharding}),
            kernels="cuda" if cuda else "cpu",
        )
        predicted = predicted_peak(est, fused_optimizer=not cuda)
        ranks = [RankFigures(rank=r, **results[r][method]) for r in range(nproc) if method in results[r]]
        methods.append(
            DistributedMethod(
                method=method,
                estimated_peak_bytes=predicted,
                ranks=ranks,
                errors=[
                    (predicted - x.peak_bytes) / x.peak_bytes if predicted and x.peak_bytes else None for x in ranks
                ],
            )
        )
    notes = [
        f"{nproc} processes, torch.distributed with {backend}; "
        + ("DistributedDataParallel" if sharding == "ddp" else "FSDP2 fully_shard on each decoder layer and the root"),
        "each rank trains on its own slice of the tokens; peaks are each rank's tensor bytes above what it held "
        "before the model was built",
    ]
    if not cuda:
        notes.append(
            "on the CPU: gloo stages collectives through buffers of its own that NCCL does not allocate; they are "
            "left out of each rank's peak and reported beside it (collective_staging_bytes); a tensor handed to "
            "gloo (FSDP's all-gather output, reduce-scatter input) that gloo's thread frees is not seen freed and "
            "counts on that rank until its address is reused (it only adds, on one rank at a time); the optimizer "
            "runs unfused where FSDP's DTensors need it"
        )
    done = {
        method: min((results[r].get(method, {}).get("steps", 0) for r in range(nproc)), default=0) for method in METHODS
    }
    short = [f"{method} trained {done[method]} of {steps} steps" for method in METHODS if done[method] < steps]
    if short:
        notes.append(f"stopped by --max-seconds ({max_seconds:g} s): " + "; ".join(short))
    return DistributedRun(
        model=spec.id,
        layers=int(spec.config.get("num_hidden_layers", 0) or 0),
        nproc=nproc,
        sharding=sharding,
        backend=backend,
        device="cuda" if cuda else "cpu",
        settings=settings,
        steps=steps,
        dataset=dataset_info,
        methods=methods,
        complete=not short,
        cut_short="; ".join(short) or None,
        seconds=time.perf_counter() - started,
        notes=notes,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, job: dict, folder: str) -> None:
    """One rank: join the group, train both methods, write this rank's figures to `folder/rank<r>.json`."""
    import torch
    import torch.distributed as dist

    from ..hf import inject_lora, quiet
    from .measure import CpuMemoryTracker, CudaMemoryTracker
    from .model import build_model, make_base_weights

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(job["port"]))
    nproc, cuda = job["nproc"], job["backend"] == "nccl"
    device = torch.device("cuda", rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    dist.init_process_group(job["backend"], rank=rank, world_size=nproc)
    try:
        spec = ModelSpec.model_validate(job["spec"])
        s = TrainingSettings.model_validate(job["settings"])
        dtype = getattr(torch, TORCH_DTYPES[s.precision])
        mine = job["batches"][rank::nproc]
        deadline = job["deadline"]
        stopped = False

        def stop_now() -> bool:
            """Whether any rank has passed the deadline: every rank asks before each step, so all stop together."""
            if deadline is None:
                return False
            flag = torch.tensor([1.0 if time.time() >= deadline else 0.0], device=device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            return bool(flag.item())

        weights = make_base_weights(spec, pretrained=False, seed=job["seed"], dtype=dtype, attention=s.attention)
        result = {}
        for method in METHODS:
            if stopped or stop_now():
                stopped = True
                break
            tracker = CudaMemoryTracker(device) if cuda else CpuMemoryTracker(exclude_collectives=True)
            times, losses = [], []
            with quiet(), contextlib.ExitStack() as session:
                session.enter_context(tracker)
                with tracker.window("build"):
                    model = build_model(spec, weights, device=device, dtype=dtype, attention=s.attention)
                    if method == "lora":
                        model = inject_lora(model, spec, rank=s.rank, alpha=s.lora_alpha, targets=s.targets)
                    model.train()
                    model, fused = _wrap(model, job["sharding"], device)
                    params = [p for p in model.parameters() if p.requires_grad]
                    options = {"foreach": True} if cuda else ({"fused": True} if fused else {"foreach": False})
                    optimizer = torch.optim.AdamW(params, lr=LEARNING_RATES[method], **options)
                out = None
                for i, rows in enumerate(mine):
                    if stop_now():
                        stopped = True
                        break
                    if i == TRACKED_STEPS:
                        session.close()  # the profiler's analysis grows with every step it records
                    ids = torch.tensor(rows, device=device)
                    dist.barrier()
                    clock = time.perf_counter()
                    with tracker.window(f"step{i}") if i < TRACKED_STEPS else contextlib.nullcontext():
                        out = model(input_ids=ids, labels=ids)
                        out.loss.backward()
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
                        losses.append(out.loss.item())
                    times.append(time.perf_counter() - clock)
                del out, optimizer, params, model
            base = tracker.windows["build"].start_bytes
            windows = [tracker.windows[f"step{i}"] for i in range(min(len(times), TRACKED_STEPS))]
            result[method] = {
                "steps": len(times),
                "peak_bytes": int(max(w.peak_bytes for w in windows) - base) if windows else None,
                "collective_staging_bytes": (
                    None if cuda or not windows else int(max(w.staging_peak_bytes for w in windows))
                ),
                "step_seconds": spread.median(times[1:]),
                "step_seconds_interval": spread.median_interval(times[1:]),
                "losses": losses,
            }
            dist.barrier()
        (Path(folder) / f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()
    _exit_before_finalizing()


def _exit_before_finalizing() -> None:
    """End a rank that has written its figures without running Python's finalization.

    `destroy_process_group` does not join gloo's worker threads (the process group lives on while anything refers
    to it). A worker that finishes a collective frees the work after the caller has its result; when that is the
    rank's last collective, the free can land while the interpreter is being torn down, needs the GIL for the
    tensor's Python object, and aborts the process: "terminate called without an active exception", SIGABRT, seen
    in about 1 run in 4 of a run stopped by --max-seconds on a busy 2-core machine (pytorch/pytorch#190489). The
    rank's work is done and its figures are on disk, so it leaves with exit code 0 at once.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _wrap(model, sharding: str, device):
    """The model under DDP, or sharded with FSDP2 (each decoder layer, then the root); and whether fused AdamW
    applies (not to FSDP's DTensor parameters on the CPU)."""
    if sharding == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        # Every rank builds the same weights from the seed, so DDP's broadcast of them at construction is skipped:
        # rank 0 sends a flat copy of the whole model through gloo, which can free it on its own thread, unseen by
        # the profiler; rank 0 alone once held the model's size more for the whole run (+10 MiB on the bench's
        # small config), not seen since.
        cpu = {} if device.type == "cuda" else {"init_sync": False}
        return DistributedDataParallel(model, device_ids=ids, **cpu), True
    from torch.distributed.fsdp import fully_shard

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for layer in base.model.layers:
        fully_shard(layer)
    fully_shard(model)
    return model, device.type == "cuda"
