"""The reference run: a real, small run of full fine-tuning and LoRA side by side, measured.

`reference_run(spec, settings)` returns a `ReferenceRun`; `render_markdown(run)` turns
it into a report section. torch, transformers and peft are imported when a run starts.
"""

from __future__ import annotations

from .report import render_markdown
from .result import ReferenceRun
from .run import DEFAULT_BATCH, DEFAULT_SEQ, DEFAULT_STEPS, default_settings, reference_run

__all__ = ["ReferenceRun", "reference_run", "default_settings", "render_markdown",
           "DEFAULT_BATCH", "DEFAULT_SEQ", "DEFAULT_STEPS"]
