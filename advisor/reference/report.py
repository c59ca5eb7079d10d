"""The reference run as a markdown report section (`advisor/templates/reference_run.md.j2`).

The template needs nothing but the `ReferenceRun` (as `run`) and jinja2's built-in
filters, so the assessment report can include it as a section with its own environment.
"""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined

from .result import ReferenceRun

TEMPLATE = "reference_run.md.j2"


def render_markdown(run: ReferenceRun) -> str:
    env = Environment(loader=PackageLoader("advisor", "templates"), undefined=StrictUndefined,
                      keep_trailing_newline=True, autoescape=False)
    return env.get_template(TEMPLATE).render(run=run)
