"""Fuzzing the markdown report: text from users (the goal, the base model), from model folders and paths (the
compute details and the reference run carry a folder's name, a config or dataset path) and from the machine (a
device name) cannot change the report's structure, add HTML, links, images or code, or be lost.

The reference run is a real one on a tiny config, stored in tests/data/reference_run.json; regenerate it when
ReferenceRun changes: `advisor reference-run --model <TINY config.json from tests/test_reference_run.py>
--targets all-linear --rank 8 --steps 3 --json`, with `model.spec` set to "tiny/config.json"."""

from __future__ import annotations

import re
import unicodedata

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

import advisor
from advisor.assessment.contract import TRAINING_OPTIONS, Answers, Assessment, ComputeAssessment
from advisor.assessment.engine import evaluate
from advisor.assessment.service import installed_versions
from advisor.assessment.worked_examples import example_path
from advisor.report.render import render_report
from tests.conftest import ROOT
from tests.strategies import FUZZ, RUBRIC

pytestmark = pytest.mark.fuzz
MD = MarkdownIt("commonmark").enable("table").enable("strikethrough")

FRAGMENTS = [
    "|",
    "\\|",
    "||",
    "\n",
    "\r\n",
    "\t",
    "#",
    "# ",
    "## ",
    " #",
    "`",
    "``",
    "```",
    "~~~",
    "```python\n",
    "    ",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<!--",
    "-->",
    "<!-- c -->",
    "<details>",
    "</div>",
    "[x](javascript:alert(1))",
    "![i](https://evil.example/p.png)",
    "<https://evil.example>",
    "<javascript:alert(1)>",
    "[ref]: https://evil.example",
    "[ref]",
    "[^1]",
    "[ ]",
    "&amp;",
    "&#60;",
    "&lt;",
    "&nbsp;",
    "*",
    "**",
    "_",
    "__",
    "~",
    "~~",
    "\\",
    "\\#",
    "- ",
    "+ ",
    "* ",
    "1. ",
    "2) ",
    "> ",
    "---",
    "===",
    "|---|",
    ":",
    "!",
    "[",
    "]",
    "(",
    ")",
    "\u202e",
    "\u202d",
    "\u2066",
    "\u2069",
    "\u200f",
    "\u2028",
    "\u2029",
    "\x85",
    "\x00",
    "\x1b[31m",
    "\x9b",
    "\x7f",
    "\x0b",
    "\x0c",
    "\u00a0",
    "https://example.com",
    "www.example.com",
    " ",
    "a",
    "é",
    "漢字",
    "😀",
    "\ufeff",
]
BODY = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=24).map("".join)
# Markdown reads a line's start and end specially: markers, closing sequences, hard breaks, cell edges.
EDGES = st.sampled_from(["", "", "#", " #", " ##", "- ", "1. ", "=", "\\", "  ", " |", "|", "`"])
HOSTILE = st.tuples(EDGES, BODY, EDGES).map("".join)
VERSIONS = installed_versions(RUBRIC)
NOT_ASSESSED = ComputeAssessment(
    status="not_assessed", reason="x", options={o: "not_assessed" for o in TRAINING_OPTIONS}
)
# One assessment per decision, the not_ready one with a blockers table.
BASES = {
    name: evaluate(
        advisor.parse_answers(yaml.safe_load(example_path(name).read_text())),
        RUBRIC,
        compute=NOT_ASSESSED,
        versions=VERSIONS,
    )
    for name in ("nc-dataset-commercial", "policy-docs-qa", "release-notes-format")
}


BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}


def _breaking(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Zl", "Zp") or unicodedata.bidirectional(char) in BIDI_CONTROLS


def plain(text: str) -> str:
    """What the report must show of `text`: the same characters on one line, each run of control, line-break
    and bidi control characters as one space, and no space at either end."""
    marked = "".join("\n" if _breaking(char) else char for char in text)
    return re.sub("\n+", " ", marked).strip()


@st.composite
def reports(draw):
    """A base assessment and the hostile strings to put in it, each in its place."""
    base = draw(st.sampled_from(sorted(BASES)))
    assessed = draw(st.booleans())
    texts = {
        "goal": draw(HOSTILE),
        "base_model": draw(HOSTILE.map(lambda s: s[:500])),
        "reason": draw(HOSTILE),
        "details": draw(st.lists(HOSTILE, max_size=3)) if assessed else [],
    }
    reference = draw(st.sampled_from([None, "skipped", "run"]))
    if reference == "skipped":
        texts["skipped"] = draw(HOSTILE)
    elif reference == "run":
        texts.update({key: draw(HOSTILE) for key in ("model_id", "spec", "device", "dataset", "scale")})
        texts["cut_short"] = draw(st.none() | HOSTILE)
        texts["notes"] = draw(st.lists(HOSTILE, max_size=2))
    return base, assessed, reference, texts


def _reference_run(texts: dict, swap):
    from advisor.reference import ReferenceRun

    run = ReferenceRun.model_validate_json((ROOT / "tests" / "data" / "reference_run.json").read_text())
    cut_short = None if texts["cut_short"] is None else swap(texts["cut_short"])
    return run.model_copy(
        update={
            "model": run.model.model_copy(update={"id": swap(texts["model_id"]), "spec": swap(texts["spec"])}),
            "device": run.device.model_copy(update={"name": swap(texts["device"])}),
            "dataset": run.dataset.model_copy(update={"source": swap(texts["dataset"])}),
            "scale": run.scale.model_copy(update={"reason": swap(texts["scale"])}),
            "cut_short": cut_short,
            "complete": cut_short is None,
            "notes": [swap(n) for n in texts["notes"]],
        }
    )


def render(base: str, assessed: bool, reference: str | None, texts: dict, swap=lambda s: s) -> str:
    """The report with every hostile string passed through `swap` (the identity, or a benign stand-in)."""
    assessment: Assessment = BASES[base]
    answers = Answers.model_validate(
        {**assessment.answers.model_dump(), "goal": swap(texts["goal"]), "base_model": swap(texts["base_model"])}
    )
    compute = ComputeAssessment(
        status="assessed" if assessed else "not_assessed",
        reason=swap(texts["reason"]),
        options={o: "fits" if assessed else "not_assessed" for o in TRAINING_OPTIONS},
        details=[swap(line) for line in texts["details"]],
    )
    assessment = assessment.model_copy(update={"answers": answers, "compute": compute})
    if reference is not None:
        from advisor.reference import MeasuredAssessment

        assessment = MeasuredAssessment(
            **assessment.model_dump(),
            reference_run_skipped=swap(texts["skipped"]) if reference == "skipped" else None,
            reference_run=_reference_run(texts, swap) if reference == "run" else None,
        )
    return render_report(assessment)


def benign(text: str) -> str:
    """A harmless stand-in that prints as empty exactly when `text` does, and is empty exactly when `text` is
    (templates test a value's presence, as `{% if skipped %}` does)."""
    if plain(text):
        return "plain words"
    return " " if text else ""


def flat(tokens) -> list:
    return [*tokens, *(child for token in tokens for child in (token.children or []))]


def structure(tokens) -> list[tuple]:
    """Every block and inline token but text, with its attributes (links keep their href)."""
    return [
        (
            t.type,
            t.tag,
            t.nesting,
            tuple(sorted((t.attrs or {}).items())),
            t.content if t.type == "code_inline" else None,
        )
        for t in flat(tokens)
        if t.type != "text"
    ]


def inline_texts(tokens) -> list[str]:
    return ["".join(child.content for child in t.children or []) for t in tokens if t.type == "inline"]


@FUZZ
@given(reports())
def test_hostile_text_cannot_change_the_report(case):
    base, assessed, reference, texts = case
    hostile = MD.parse(render(base, assessed, reference, texts))
    reference_report = MD.parse(render(base, assessed, reference, texts, swap=benign))

    assert not {t.type for t in flat(hostile)} & {"html_block", "html_inline", "image"}
    # the same blocks, tables, rows, cells, list items, code blocks, emphasis, links (same targets) and code
    # spans, in the same order
    assert structure(hostile) == structure(reference_report)

    # and every hostile string is there, as text: cells, bullets and headings whole, the rest inside its sentence
    shown = inline_texts(hostile)
    whole = [texts["goal"], texts["base_model"], *texts["details"], *texts.get("notes", [])]
    within = [
        texts[key]
        for key in ("skipped", "model_id", "spec", "device", "dataset", "scale", "cut_short")
        if texts.get(key)
    ]
    if not assessed:
        within.append(texts["reason"])
    for text in filter(plain, whole):
        assert plain(text) in shown, (text, plain(text))
    for text in filter(plain, within):
        assert any(plain(text) in line for line in shown), (text, plain(text))
