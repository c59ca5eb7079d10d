"""Markdown reports of an assessment and of a reference run, from the jinja2 templates in `templates/`.

Every value a template prints is escaped for Markdown by default (jinja's `finalize`),
so user text cannot open a heading, a table cell, a code span, a link or raw HTML.
Only values the template marks with `Markup` (ids in code spans it built itself,
validated source links) pass through as Markdown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from markupsafe import Markup

from ..assessment.contract import Assessment
from ..fmt import fmt_bytes, fmt_count, fmt_int, fmt_number, fmt_pct, fmt_ratio, fmt_seconds

ASSESSMENT_TEMPLATE = "assessment.md.j2"
REFERENCE_RUN_TEMPLATE = "reference_run.md.j2"
DISTRIBUTED_RUN_TEMPLATE = "distributed_run.md.j2"
DATASET_TEMPLATE = "dataset.md.j2"
# Escaped wherever they appear: the characters that open inline Markdown or HTML
# (code, emphasis, links and images, raw HTML and autolinks, entities, table cells,
# strikethrough). Underscores only at a word's edge: inside a word they are inert.
_INLINE = re.compile(r"[\\`*\[\]<>&|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# Escaped at the start of a value, where a line or cell starts: headings, list markers,
# setext underlines and ordered lists ("1. ", "2) ").
_LINE_START = re.compile(r"^(?:[#\-+=]|\d{1,9}(?=[.)](?:\s|$)))")
# Escaped at the end of a value: a heading's optional closing sequence (" #", " ##"), which
# would otherwise be dropped from "### {{ title }}".
_LINE_END = re.compile(r"(\s)(#+)$")
_ID = re.compile(r"[A-Za-z0-9_.+\-]+")
# Replaced by a space: control characters (C0, DEL and C1, whose CSI \x9b drives terminals like ESC [),
# line and paragraph separators, and the bidi embeddings, overrides and isolates that reorder how the
# rest of a line displays ("Trojan Source").
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")


def md_escape(value: Any) -> str:
    """`value` as inert Markdown text on one line; `Markup` passes through unchanged."""
    if isinstance(value, Markup):
        return str(value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    text = _BREAKS.sub(" ", str(value)).strip()
    text = _INLINE.sub(lambda m: "\\" + m.group(0), text)
    match = _LINE_START.match(text)
    if match:  # escape the marker itself: "#", "-", "+", "=", or the "." / ")" after digits
        end = match.end() if match.group(0)[0].isdigit() else 0
        text = text[:end] + "\\" + text[end:]
    return _LINE_END.sub(r"\1\\\2", text)


def code(value: str) -> Markup:
    """An id in a code span; ids come from the rubric and the contract, never from users."""
    if not _ID.fullmatch(value):
        raise ValueError(f"not an id: {value!r}")
    return Markup(f"`{value}`")


def code_span(text: str) -> Markup:
    """Any text, a team's included, as one inline code span: delimited by more backticks than it holds
    (CommonMark), on one line, so nothing in it is read as markdown."""
    text = " ".join(text.split())
    run = max((len(r) for r in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return Markup(f"{fence}{pad}{text}{pad}{fence}")


def cite(ids: Sequence[str]) -> Markup:
    """ " (sources: `a`, `b`)" after a sentence; nothing when there are none."""
    return Markup(f" (sources: {', '.join(code(i) for i in ids)})") if ids else Markup("")


def source_link(url: str | None, arxiv: str | None) -> Markup:
    """The link to a source: its https URL or its arXiv abstract page, as an autolink."""
    if url and re.fullmatch(r"https://[^\s<>()\[\]`\\]+", url):
        return Markup(f"<{url}>")
    if arxiv and re.fullmatch(r"\d{4}\.\d{4,5}", arxiv):
        return Markup(f"arXiv [{arxiv}](https://arxiv.org/abs/{arxiv})")
    return Markup("")


def render_report(assessment: Assessment) -> str:
    """The markdown report; a `MeasuredAssessment` adds its reference run (or why there was none)."""
    template = environment().get_template(ASSESSMENT_TEMPLATE)
    labels = {option.option: option.label for option in assessment.options}
    fits = {option.option: option.fit for option in assessment.options}
    # The training option the blockers are about: the primary when it trains, else the best one on the merits.
    target = assessment.training_target()
    text = template.render(
        a=assessment,
        labels=labels,
        fits=fits,
        training_target=target,
        target_gate_ids=[gate.id for gate in assessment.gates if target in gate.blocks],
        run=getattr(assessment, "reference_run", None),
        skipped=getattr(assessment, "reference_run_skipped", None),
    )
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_dataset_report(report) -> str:
    """The dataset inspection (`advisor.dataset.DatasetReport`) as a report of its own."""
    text = environment().get_template(DATASET_TEMPLATE).render(d=report)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_reference_run(run) -> str:
    """The reference run (`advisor.reference.ReferenceRun`) as a report of its own."""
    return environment().get_template(REFERENCE_RUN_TEMPLATE).render(run=run)


def render_distributed_run(run) -> str:
    """The multi-process reference run (`advisor.reference.distributed.DistributedRun`): each rank beside the
    estimator's per-GPU peak."""
    return environment().get_template(DISTRIBUTED_RUN_TEMPLATE).render(run=run)


# What the chart shows of a step's memory, by the figure's name in `RunFigures`.
CHART_PARTS = {
    "weight_bytes": "weights",
    "gradient_bytes": "gradients",
    "optimizer_state_bytes": "optimizer",
    "activation_bytes": "activations",
    "peak_bytes": "peak",
}
_CHART_UNITS = (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("bytes", 1))


@dataclass(frozen=True)
class MemoryChart:
    unit: str  # the y axis' unit
    labels: Markup  # the x axis' categories, quoted, comma-separated
    values: Markup  # the bars, plain decimals, comma-separated
    top: Markup  # the y axis' end


def memory_chart(run) -> MemoryChart | None:
    """The memory chart's data, or None when full fine-tuning or LoRA has no figures.

    One `bar` series whose categories pair the methods ("weights, full", "weights, LoRA", ...):
    mermaid's xychart draws several `bar` series at the same x, overlapping in the releases of
    2024-2025 and stacked in later ones, so neither hides the other only when each bar has its own
    category. Values are in the largest binary unit in which the tallest bar is at least 1, printed
    as plain decimals (xychart's number grammar, `[+-]?(\\d+(\\.\\d+)?|\\.\\d+)`, has no exponent)."""
    full, lora = run.full.figures, run.lora.figures
    if not (full and lora):
        return None
    bars = [
        (f"{label}, {method}", getattr(figures, name).measured or 0)
        for name, label in CHART_PARTS.items()
        for method, figures in (("full", full), ("LoRA", lora))
    ]
    tallest = max(value for _, value in bars)
    unit, size = next((u, s) for u, s in _CHART_UNITS if tallest >= s or s == 1)
    values = [chart_number(value / size) for _, value in bars]
    return MemoryChart(
        unit=unit,
        labels=Markup(", ".join(f'"{label}"' for label, _ in bars)),
        values=Markup(", ".join(values)),
        top=Markup(chart_number(tallest / size * 1.05 if tallest else 1)),
    )


def chart_number(x: float) -> str:
    """`x` as a plain decimal with three significant digits and no exponent or separator: 1610.2 -> '1610',
    0.0001234 -> '0.000123'; what mermaid's xychart reads as a number."""
    text = fmt_number(x)
    if not re.fullmatch(r"-?\d+(\.\d+)?", text):  # fmt_number prints digits; anything else is a bug here
        raise ValueError(f"not a plain decimal: {text!r}")
    return text


@cache  # compiling a template is most of a render's time (64 ms of 66)
def environment():
    """The jinja2 environment every report template renders in: Markdown-escaping `finalize`."""
    from jinja2 import Environment, PackageLoader, StrictUndefined

    env = Environment(
        loader=PackageLoader("advisor.report", "templates"),
        autoescape=False,  # HTML escaping is wrong for Markdown; `finalize` escapes instead
        finalize=md_escape,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["code"] = code
    env.filters["code_span"] = code_span
    env.filters["signed"] = lambda number: Markup(f"{number:+g}")
    env.globals["source_link"] = source_link
    env.globals["cite"] = cite
    env.globals["memory_chart"] = memory_chart
    env.filters["codes"] = lambda ids: Markup(", ".join(code(i) for i in ids)) if ids else Markup("—")
    for name, fmt in _NUMBER_FILTERS.items():
        env.filters[name] = lambda value, fmt=fmt: Markup("—") if value is None else Markup(fmt(value))
        # an interval [low, high] of such numbers: "1.0 ms to 1.2 ms"
        env.filters[f"{name}_range"] = lambda iv, fmt=fmt: Markup(f"{fmt(iv[0])} to {fmt(iv[1])}" if iv else "—")
    return env


# Numbers print as digits and units only (advisor.fmt), so they pass through unescaped
# ("+1.5%" must not become "\\+1.5%"); None prints as a dash.
_NUMBER_FILTERS = {
    "bytes": fmt_bytes,
    "count": fmt_count,
    "int": fmt_int,
    "pct": lambda x: fmt_pct(x, signed=True),
    "ratio": fmt_ratio,
    "secs": fmt_seconds,
    "fixed": fmt_number,
}
