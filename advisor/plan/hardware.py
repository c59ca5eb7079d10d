"""Named accelerators: memory, bf16 throughput, bandwidth and an indicative price, read from `hardware.json`.

Every figure carries its source in the data file; prices are indicative and a caller
overrides them (`--price-per-hour`). A device is resolved by its id or an alias, in
any case; an unknown name is a field error listing the catalog.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import FieldIssue, InvalidInput

HARDWARE_FILE = Path(__file__).with_name("hardware.json")


class Device(BaseModel):
    """One accelerator as the catalog describes it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Catalog id, as --gpu takes it.")
    aliases: list[str] = Field(default=[], description="Other names --gpu accepts.")
    name: str
    kind: Literal["gpu", "unified", "cpu"] = Field(description="gpu, unified memory (Apple), or cpu (no accelerator).")
    memory_gib: float = Field(ge=0, description="Memory of one device as the vendor lists it (0 for CPU only).")
    usable_fraction: float = Field(
        1.0, gt=0, le=1, description="Share of memory a training process can use (unified memory shares with the OS)."
    )
    bf16_dense_tflops: float | None = Field(description="Dense bf16 tensor TFLOPS, fp32 accumulate; null if none.")
    fp16_dense_tflops: float | None = Field(None, description="Dense fp16 tensor TFLOPS where bf16 has none.")
    bandwidth_gbs: float | None = Field(description="Memory bandwidth in GB/s.")
    price_usd_per_hour: float | None = Field(description="Indicative on-demand price of one device; null if owned.")
    sources: list[str]

    @property
    def usable_gib(self) -> float:
        """Memory the fit search plans against."""
        return self.memory_gib * self.usable_fraction

    @property
    def tensor_tflops(self) -> float | None:
        """The throughput training would run at: bf16, or fp16 where the device has no bf16 tensor cores."""
        return self.bf16_dense_tflops or self.fp16_dense_tflops


@cache
def load_hardware() -> dict[str, Device]:
    data = json.loads(HARDWARE_FILE.read_text(encoding="utf-8"))
    return {d["id"]: Device(**d) for d in data["devices"]}


def hardware_notes() -> list[str]:
    return list(json.loads(HARDWARE_FILE.read_text(encoding="utf-8"))["about"])


def resolve_gpu(name: str, *, field: str = "gpu") -> Device:
    """The device `name` names (id or alias, any case), or a field error listing the catalog (exit 2)."""
    key = str(name).strip().lower().replace("_", "-").replace(" ", "-")
    devices = load_hardware()
    for device in devices.values():
        if key == device.id or key in device.aliases:
            return device
    raise InvalidInput(
        f"unknown gpu {name!r}",
        fields=[FieldIssue(field=field, message=f"unknown gpu {name!r}", allowed=sorted(devices))],
    )


def describe_device(device: Device, gpus: int = 1) -> str:
    """`8 x NVIDIA H100 SXM (80 GB HBM3)`, or the CPU's name."""
    if device.kind == "cpu":
        return device.name
    return f"{gpus} x {device.name}" if gpus > 1 else device.name
