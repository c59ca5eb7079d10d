"""Measured training-memory rows (the H200 calibration protocol) and the settings they correspond to.

Each row records one measured training step: the model, method, shapes and the real
`torch.cuda.max_memory_allocated` peak. Tests and `bench/estimator_accuracy.py` run the
estimator on the same settings and compare.
"""

from __future__ import annotations

import json
from pathlib import Path

from advisor.estimate.settings import TrainingSettings

DEFAULT_ROWS = Path(__file__).resolve().parent / "data" / "h200_training_memory.jsonl"


def load_rows(path: Path = DEFAULT_ROWS) -> list[dict]:
    """The training rows of a calibration file (JSON lines; other kinds of rows skipped)."""
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return [r for r in rows if r.get("kind") == "train"]


def settings_for(row: dict) -> TrainingSettings:
    """The TrainingSettings the row was measured under (AdamW, one GPU, SDPA, alpha = 2r)."""
    return TrainingSettings(
        method=row["method"],
        rank=row["rank"] or 8,
        targets=row["targets"],
        batch=row["batch"],
        seq=row["seq"],
        precision=row["precision"],
        grad_checkpointing=row["grad_ckpt"],
    )


def describe_row(row: dict) -> str:
    targets = row["targets"] if isinstance(row["targets"], str) else ",".join(row["targets"] or []) or "-"
    ckpt = " ckpt" if row["grad_ckpt"] else ""
    rank = f" r{row['rank']}" if row["method"] != "full" else ""
    return f"{row['model']} {row['method']}{rank} {targets} {row['precision']} b{row['batch']}x{row['seq']}{ckpt}"
