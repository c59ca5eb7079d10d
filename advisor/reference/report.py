"""The reference run as a markdown report section (`advisor/templates/reference_run.md.j2`).

Rendered in the same environment as the assessment report, whose `finalize` escapes
every printed value for Markdown: paths and model names the user gave cannot break
the tables or inject links or HTML.
"""

from __future__ import annotations

from ..report import environment
from .result import ReferenceRun

TEMPLATE = "reference_run.md.j2"


def render_markdown(run: ReferenceRun) -> str:
    return environment().get_template(TEMPLATE).render(run=run)
