"""The reference run: a real, small run of full fine-tuning and LoRA side by side, measured.

`reference_run(spec, settings)` returns a `ReferenceRun`; `render_markdown(run)` turns
it into a report section; `measure_recommendation(assessment)` runs it for an
assessment that recommends training. Attributes load on first use, so importing the
result models costs neither torch nor jinja2.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "ReferenceRun": "result",
    "reference_run": "run",
    "default_settings": "run",
    "DEFAULT_BATCH": "run",
    "DEFAULT_SEQ": "run",
    "DEFAULT_STEPS": "run",
    "render_markdown": "report",
    "MeasuredAssessment": "recommendation",
    "measure_recommendation": "recommendation",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
