"""The reference run: a real, small run of full fine-tuning and LoRA side by side, measured.

`reference_run(spec, settings)` returns a `ReferenceRun` (`advisor.report.render.render_reference_run`
turns it into markdown); `measure_recommendation(assessment)` runs it for an
assessment that recommends training. Attributes load on first use, so importing the
result models costs neither torch nor jinja2.
"""

from __future__ import annotations

from importlib import import_module

# What a reference run with the defaults costs, measured on a quiet 2-core CPU on 2026-12-02, imports
# included: llama-3.2-1b 43 s (bench/reference_run.py), llama-3.1-8b 98 s (`advisor reference-run --model
# llama-3.1-8b`); the serving check's interleaved rounds made both longer than the 25 s and 59 s before them.
# The CLI and the MCP tool quote this, and `plan.DEFAULT_TIME_BUDGET_S` bounds it.
REFERENCE_RUN_COST = "under a minute for a 1B model and about a minute and a half for an 8B one on a 2-core CPU"

_EXPORTS = {
    "ReferenceRun": "result",
    "reference_run": "run",
    "default_settings": "run",
    "DEFAULT_BATCH": "run",
    "DEFAULT_SEQ": "run",
    "DEFAULT_STEPS": "run",
    "MeasuredAssessment": "recommendation",
    "measure_recommendation": "recommendation",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
