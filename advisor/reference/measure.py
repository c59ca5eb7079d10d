"""Measuring on the device: peak tensor memory, free memory, live tensor bytes, checkpoint files.

Peak memory follows the protocol the estimator predicts (bench/data/h200_training_memory.md):
bytes held by tensors, from before the model is built to the end of the last step,
above what was allocated before; no CUDA context, no allocator cache. A run records the
build and its first `TRACKED_STEPS` steps: from the second step on, a step allocates and
frees as the one before it did (same shapes, the optimizer's state made in the first), so
later steps add nothing to the peak, and on the CPU the profiler's analysis grows with
every step it records (about 0.2 s a step on a busy 2-core machine), which a long run
would pay when it stops, past its time limit.

- CUDA: `torch.cuda.max_memory_allocated`, reset at the start of each phase.
- CPU: PyTorch's CPU allocator has no peak counter, but with
  `profile(profile_memory=True)` it reports every allocation it makes and every free
  of a block it saw allocated, with the block's size, to the profiler
  (c10's ProfiledCPUMemoryReporter). The running sum of those events in time order
  is the bytes held by tensors, to the byte, including temporaries that live only
  inside one kernel, as `max_memory_allocated` counts them on CUDA; its maximum within
  a phase is that phase's peak. Blocks allocated before the profiler started are not
  in the sum, which is why each session starts before the model is built; what is
  freed after it stops (the model, after the recorded steps) is not reported to any
  session. The profiler adds a few microseconds per operator to the recorded steps'
  times.
- CPU under torch.distributed (gloo): gloo stages its collectives through tensors of its
  own (`_reduce_scatter_base_` clones its whole input and all-reduces the clone,
  `_allgather_base_` gathers into a flat buffer and copies out), which NCCL on a GPU does
  not allocate, and some of them are freed on gloo's worker threads, where the profiler
  does not listen, so the running sum never sees them freed. With
  `exclude_collectives=True` the sum is taken over the profiler's allocation events matched
  by address, leaving out every block allocated inside a `c10d::` or `gloo:` operator;
  their own peak is kept beside it (`Window.staging_peak_bytes`). A tensor handed to a
  collective can be freed unseen too, when gloo's thread drops the last reference (FSDP's
  reduce-scatter input at times): any block whose address the allocator hands out again
  without a free seen in between was freed by then, and leaves the sum there; until then it
  counts (an upper bound, in both sums).
"""

from __future__ import annotations

import bisect
import itertools
import os
import platform
import statistics
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import FieldIssue, InvalidInput

FREE_MEMORY_ENV = "ADVISOR_FREE_MEMORY_BYTES"
TRACKED_STEPS = 6  # steps whose memory a run records (see the module doc)
_WINDOW = "advisor::"


@dataclass(frozen=True)
class FreeMemory:
    bytes: int
    source: str


def free_memory(device) -> FreeMemory:
    """Free memory on `device`: CUDA's own count, /proc/meminfo's MemAvailable on the CPU.

    `ADVISOR_FREE_MEMORY_BYTES` replaces the probe: set it to leave memory to other
    processes, or (in tests) to force the preflight to refuse.
    """
    override = os.environ.get(FREE_MEMORY_ENV)
    if override is not None:
        try:
            value = int(override)
        except ValueError:
            raise InvalidInput(
                f"{FREE_MEMORY_ENV} must be a number of bytes, not {override!r}",
                fields=[FieldIssue(field=FREE_MEMORY_ENV, message="not an integer")],
            ) from None
        return FreeMemory(value, f"{FREE_MEMORY_ENV} environment variable")
    if device.type == "cuda":
        import torch

        free, _total = torch.cuda.mem_get_info(device)
        return FreeMemory(int(free), "torch.cuda.mem_get_info")
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return FreeMemory(int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo")
    except OSError:
        pass
    pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return FreeMemory(int(pages), "available physical pages (sysconf)")


@dataclass(frozen=True)
class Window:
    """A phase of a run: tensor bytes held when it started, and the most held during it."""

    start_bytes: int
    peak_bytes: int
    staging_peak_bytes: int = 0  # most bytes held at once by collectives' own buffers (exclude_collectives)


class CpuMemoryTracker:
    """Tensor bytes on the CPU, from the allocator's reports to the profiler (see the module doc)."""

    mechanism = (
        "CPU allocator events (torch profiler, profile_memory=True): running sum of allocated minus freed bytes; "
        "the peak is its maximum"
    )

    def __init__(self, *, exclude_collectives: bool = False) -> None:
        self.windows: dict[str, Window] = {}
        self.exclude_collectives = exclude_collectives
        self._profile = None

    def __enter__(self) -> "CpuMemoryTracker":
        from torch.autograd.profiler import profile

        # Kineto prints a line when a profiler starts and stops unless told otherwise.
        os.environ.setdefault("KINETO_LOG_LEVEL", "6")
        self._profile = profile(use_cpu=True, profile_memory=True, record_shapes=False)
        self._profile.__enter__()
        return self

    @contextmanager
    def window(self, name: str) -> Iterator[None]:
        from torch.autograd.profiler import record_function

        with record_function(_WINDOW + name):
            yield

    def __exit__(self, exc_type, exc, tb) -> None:
        self._profile.__exit__(exc_type, exc, tb)
        if exc_type is None:
            results = self._profile.kineto_results
            if self.exclude_collectives:
                self.windows = _windows_without_collectives(results.events(), results.experimental_event_tree())
            else:
                self.windows = _windows_from(results.events())
        self._profile = None


def _windows_from(events) -> dict[str, Window]:
    from torch.autograd import DeviceType

    memory = sorted(
        ((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]" and e.device_type() == DeviceType.CPU),
        key=lambda item: item[0],
    )
    times = [t for t, _ in memory]
    running = list(itertools.accumulate(n for _, n in memory))
    return _windows(events, times, running)


def _windows(events, times: list[int], held: list[int], staged: list[int] | None = None) -> dict[str, Window]:
    """Each named window's bytes held at its start and its peak, from the running totals `held` (and `staged`,
    the collectives' own buffers) sampled at `times`."""
    windows = {}
    for e in events:
        name = e.name()
        if not name.startswith(_WINDOW):
            continue
        first = bisect.bisect_left(times, e.start_ns())
        last = bisect.bisect_right(times, e.end_ns())
        before = held[first - 1] if first else 0
        staging = max(staged[first:last], default=0) if staged is not None else 0
        windows[name[len(_WINDOW) :]] = Window(before, max(held[first:last], default=before), staging)
    return windows


_COLLECTIVES = ("c10d::", "gloo:")


def _windows_without_collectives(events, tree) -> dict[str, Window]:
    """Windows over the allocation events matched by address, without the blocks allocated inside a collective
    (see the module doc); each window's staging peak is the most those blocks held at once."""
    from torch._C._profiler import _EventType

    allocations = []  # (time, bytes, address, inside a collective)
    stack = list(tree)
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag != _EventType.Allocation or event.extra_fields.device.type != "cpu":
            continue
        parent, staging = event.parent, False
        while parent is not None and not staging:
            staging = parent.name.startswith(_COLLECTIVES)
            parent = parent.parent
        allocations.append((event.start_time_ns, event.extra_fields.alloc_size, event.extra_fields.ptr, staging))
    allocations.sort(key=lambda item: item[0])
    times, held, staged = [], [], []
    tensors = staging_bytes = 0
    blocks: dict[int, tuple[bool, int]] = {}  # address -> (allocated inside a collective, bytes)
    for t, size, ptr, staging in allocations:
        if size > 0:
            unseen = blocks.get(ptr)
            if unseen:  # freed on a gloo thread, unseen, before the allocator handed the address out again
                if unseen[0]:
                    staging_bytes -= unseen[1]
                else:
                    tensors -= unseen[1]
            blocks[ptr] = (staging, size)
        else:
            staging = blocks.pop(ptr, (False, 0))[0]
        if staging:
            staging_bytes += size
        else:
            tensors += size
        times.append(t)
        held.append(tensors)
        staged.append(staging_bytes)
    return _windows(events, times, held, staged)


class CudaMemoryTracker:
    """Tensor bytes on a CUDA device, from the caching allocator's own counters."""

    mechanism = (
        "torch.cuda.max_memory_allocated, reset at the start of each phase, minus memory_allocated before the run"
    )

    def __init__(self, device) -> None:
        self.device = device
        self.windows: dict[str, Window] = {}
        self._base = 0

    def __enter__(self) -> "CudaMemoryTracker":
        import torch

        torch.cuda.synchronize(self.device)
        self._base = torch.cuda.memory_allocated(self.device)
        return self

    @contextmanager
    def window(self, name: str) -> Iterator[None]:
        import torch

        torch.cuda.synchronize(self.device)
        start = torch.cuda.memory_allocated(self.device) - self._base
        torch.cuda.reset_peak_memory_stats(self.device)
        try:
            yield
        finally:
            torch.cuda.synchronize(self.device)
            self.windows[name] = Window(start, torch.cuda.max_memory_allocated(self.device) - self._base)

    def __exit__(self, exc_type, exc, tb) -> None:
        return None


def memory_tracker(device) -> CpuMemoryTracker | CudaMemoryTracker:
    return CudaMemoryTracker(device) if device.type == "cuda" else CpuMemoryTracker()


def storage_bytes(tensors: Iterable) -> int:
    """Bytes of the distinct storages behind `tensors` (a tied weight or a view counts once)."""
    seen: set[tuple[int, str]] = set()
    total = 0
    for tensor in tensors:
        if tensor is None:
            continue
        storage = tensor.untyped_storage()
        key = (storage.data_ptr(), str(tensor.device))
        if key not in seen:
            seen.add(key)
            total += storage.nbytes()
    return total


def tensors_in(obj, depth: int = 4) -> list:
    """Tensors reachable from a model output: its fields, lists, dicts and cache objects."""
    import torch

    if isinstance(obj, torch.Tensor):
        return [obj]
    if depth == 0 or obj is None or isinstance(obj, (str, bytes, int, float, bool)):
        return []
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, (list, tuple)):
        children = obj
    elif hasattr(obj, "__dict__"):
        children = vars(obj).values()
    else:
        return []
    return [t for child in children for t in tensors_in(child, depth - 1)]


class SavedForBackward:
    """Counts the storages autograd saves for backward while `recording` (parameters excluded).

    Installed with `torch.autograd.graph.saved_tensors_hooks(self.pack, self.unpack)`;
    `pack` returns the tensor itself, so nothing about the step changes.
    """

    def __init__(self, exclude: Iterable) -> None:
        self._exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self._seen: set[int] = set()
        self.recording = True
        self.bytes = 0

    def pack(self, tensor):
        if self.recording:
            storage = tensor.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in self._exclude and ptr not in self._seen:
                self._seen.add(ptr)
                self.bytes += storage.nbytes()
        return tensor

    @staticmethod
    def unpack(tensor):
        return tensor

    def hold(self, tensors: Iterable) -> int:
        """Count the storages of `tensors` not yet counted (weights excluded), and return their bytes: what the
        model's returned KV cache holds beyond what autograd saved (a cache that copies keys and values, as
        transformers' DynamicCache does where the attention reads the unconcatenated ones)."""
        added = 0
        for tensor in tensors:
            storage = tensor.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in self._exclude and ptr not in self._seen:
                self._seen.add(ptr)
                added += storage.nbytes()
        self.bytes += added
        return added


@dataclass(frozen=True)
class CheckpointSize:
    bytes: int  # the safetensors files
    header_bytes: int  # their headers (8-byte length + JSON index)


def safetensors_size(folder: Path) -> CheckpointSize:
    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"save_pretrained wrote no safetensors file in {folder}")
    total = header = 0
    for path in files:
        total += path.stat().st_size
        with path.open("rb") as fh:
            header += 8 + struct.unpack("<Q", fh.read(8))[0]
    return CheckpointSize(total, header)


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def device_name(device) -> str:
    if device.type == "cuda":
        import torch

        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"
