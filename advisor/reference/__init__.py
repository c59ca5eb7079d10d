"""The reference run: a real, small run of full fine-tuning and LoRA side by side, measured.

`reference_run(spec, settings)` returns a `ReferenceRun` (`advisor.report.render.render_reference_run`
turns it into markdown); `measure_recommendation(assessment)` runs it for an
assessment that recommends training. Attributes load on first use, so importing the
result models costs neither torch nor jinja2.
"""

from __future__ import annotations

from importlib import import_module

# What a reference run with the defaults costs, as bench/reference_run.py measured it on a
# 2-core CPU (llama-3.2-1b 25 s, llama-3.1-8b 59 s, imports included); the CLI and the MCP
# tool quote this, and `plan.DEFAULT_TIME_BUDGET_S` is what keeps it true.
REFERENCE_RUN_COST = "about a minute on a 2-core CPU for a 1B-8B model"

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
