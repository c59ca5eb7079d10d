"""Markdown reports: committed example reports stay current, user text cannot break them, writes are atomic."""

from __future__ import annotations

import os
from importlib.metadata import PackageNotFoundError, version

import pytest
import yaml
from markdown_it import MarkdownIt

import advisor
from advisor.assessment import service
from advisor.assessment.contract import Assessment
from advisor.assessment.worked_examples import example_names, example_path, expected_outcomes
from advisor.report.render import md_escape, render_report
from tests.conftest import ROOT, run_advisor

REPORTS = ROOT / "reports"
UPDATE = os.environ.get("ADVISOR_UPDATE_REPORTS") == "1"
RUBRIC = advisor.load_rubric()
# The committed reports print this instead of the advisor version, so a version bump does not make them stale.
GOLDEN_ADVISOR_VERSION = "at the commit of this report"


def pinned_versions() -> dict[str, str]:
    """Distribution name (lowercase) -> the exact version constraints.txt pins."""
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name, _, pinned = line.split("#")[0].strip().partition("==")
        if pinned:
            pins[name.lower()] = pinned
    return pins


def golden(assessment: Assessment) -> Assessment:
    """`assessment` as the committed reports show it: the torch, transformers and peft versions pinned in
    constraints.txt in place of the ones installed here, so the reports do not depend on the environment."""
    pins = pinned_versions()
    versions = assessment.versions.model_copy(
        update={"advisor": GOLDEN_ADVISOR_VERSION, **{name: pins[name] for name in ("torch", "transformers", "peft")}}
    )
    return assessment.model_copy(update={"versions": versions})


def example_answers(name: str) -> dict:
    return yaml.safe_load(example_path(name).read_text())


def example_report(name: str) -> str:
    """The report a user gets for example `name` here, with the versions installed here."""
    return render_report(advisor.assess(example_answers(name)))


def golden_report(name: str) -> str:
    """The committed report: an example that ships a dataset is assessed with it (and its evaluation set), read
    by paths relative to the repository so the report names the same paths on every machine."""
    with_data = expected_outcomes()[name].get("with_data")
    data = None
    if with_data:
        cwd = os.getcwd()
        os.chdir(ROOT)
        try:
            evaluation = with_data.get("eval_data")
            data = advisor.inspect_dataset(
                f"examples/{with_data['data']}", eval_path=f"examples/{evaluation}" if evaluation else None
            )
        finally:
            os.chdir(cwd)
    return render_report(golden(advisor.assess(example_answers(name), data=data)))


def installed(distribution: str) -> str | None:
    """What importlib.metadata says is installed, read here rather than through advisor.versions."""
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def versions_section(report: str) -> str:
    return report.split("\n## Versions\n\n", 1)[1].strip()


def installed_here_line(report: str) -> str:
    return next(line for line in report.splitlines() if line.startswith("- Installed here: "))


@pytest.mark.parametrize("name", example_names())
def test_committed_report_is_current(name):
    """Regenerate with: ADVISOR_UPDATE_REPORTS=1 .venv/bin/python -m pytest -q tests/test_report.py -n 0"""
    path = REPORTS / f"{name}.md"
    fresh = golden_report(name)
    if UPDATE:
        path.write_text(fresh, encoding="utf-8")
    assert path.exists(), f"missing {path}; regenerate with ADVISOR_UPDATE_REPORTS=1"
    assert path.read_text(encoding="utf-8") == fresh, f"{path} is stale; regenerate with ADVISOR_UPDATE_REPORTS=1"


def test_no_stray_reports():
    assert sorted(p.stem for p in REPORTS.glob("*.md")) == example_names()


def test_committed_reports_show_the_versions_constraints_txt_pins():
    pins = pinned_versions()
    for name in example_names():
        text = (REPORTS / f"{name}.md").read_text(encoding="utf-8")
        assert versions_section(text) == (
            f"advisor {GOLDEN_ADVISOR_VERSION}; rubric {RUBRIC.version_label}; "
            f"license table {RUBRIC.licenses.version}; torch {pins['torch']}; "
            f"transformers {pins['transformers']}; peft {pins['peft']}."
        ), name
        assert installed_here_line(text).startswith(f"- Installed here: peft {pins['peft']}, transformers ")


def test_a_users_report_shows_the_versions_installed_here():
    report = example_report("support-tone")
    torch, transformers, peft = (installed(name) or "not installed" for name in ("torch", "transformers", "peft"))
    assert versions_section(report) == (
        f"advisor {installed('advisor') or '0.0.0+source'}; rubric {RUBRIC.version_label}; "
        f"license table {RUBRIC.licenses.version}; torch {torch}; transformers {transformers}; peft {peft}."
    )
    assert installed_here_line(report).startswith(f"- Installed here: peft {peft}, transformers {transformers}; ")


@pytest.mark.parametrize("fake_peft", ["9.9.9", None], ids=["another-version", "not-installed"])
def test_another_installed_peft_shows_in_a_users_report_and_leaves_the_committed_ones_current(monkeypatch, fake_peft):
    assert installed("peft") != fake_peft  # the fake differs from what is really installed
    real = service.installed_version
    monkeypatch.setattr(service, "installed_version", lambda name: fake_peft if name == "peft" else real(name))
    for name in example_names():
        assert golden_report(name) == (REPORTS / f"{name}.md").read_text(encoding="utf-8"), name
    report = example_report("support-tone")
    shown = fake_peft or "not installed"
    assert installed_here_line(report).startswith(f"- Installed here: peft {shown}, ")
    assert versions_section(report).endswith(f"; peft {shown}.")


def test_report_leads_with_decision_and_primary():
    lines = example_report("nc-dataset-commercial").splitlines()
    assert lines[0] == "# LoRA advice: `not_ready`, primary option `lora`"
    text = "\n".join(lines)
    assert (
        text.index("## Blockers")
        < text.index("## Why")
        < text.index("## Criteria")
        < text.index("## Alternatives compared")
    )
    for section in (
        "## What would change the decision",
        "## Compute feasibility",
        "## Limits of this advice",
        "## Inputs",
        "## Sources",
        "## Versions",
    ):
        assert section in text
    assert "Replace the data with commercially licensed data" in text


def test_secondary_sources_are_marked():
    assert "(secondary: reported second-hand)" in example_report("policy-docs-qa")


def test_reference_run_section_appears_only_for_a_measured_assessment():
    from advisor.reference import MeasuredAssessment

    result = advisor.assess(yaml.safe_load(example_path("policy-docs-qa").read_text()))
    assert "## Reference run" not in render_report(result)
    skipped = MeasuredAssessment(**result.model_dump(), reference_run_skipped="the decision is use_alternative | <b>")
    report = render_report(skipped)
    assert "## Reference run" in report and r"Not run: the decision is use_alternative \| \<b\>." in report


ADVERSARIAL = (
    "# Injected heading\n## another\n| a | b |\n|---|---|\n```python\nimport os\n```\n"
    "<script>alert(1)</script> <img src=x onerror=alert(1)> &lt;b&gt; [click me](https://evil.example) "
    "![pixel](https://evil.example/p.png) <https://evil.example> **bold** _em_ ~~strike~~ `code` \\ "
    "\n- list item\n1. ordered\n> quote\n---\n===\n<!-- comment -->\u2028line separator"
)


def tokens_of(report: str):
    md = MarkdownIt("commonmark").enable("table").enable("strikethrough")
    tokens = md.parse(report)
    flat = [*tokens, *(child for t in tokens for child in (t.children or []))]
    return tokens, flat


def _naming(assessment, base_model: str):
    """The assessment of a base model named `base_model`: a model folder can bear any name, and the report prints
    it (assess itself refuses a name that resolves to no model)."""
    return assessment.model_copy(update={"answers": assessment.answers.model_copy(update={"base_model": base_model})})


def test_user_text_cannot_break_the_report():
    benign = _naming(advisor.assess({"goal": "plain words", "change_kind": "style"}), "org/model")
    hostile = _naming(advisor.assess({"goal": ADVERSARIAL, "change_kind": "style"}), "1. `x` | <b>y</b>")
    good_tokens, good_flat = tokens_of(render_report(benign))
    report = render_report(hostile)
    tokens, flat = tokens_of(report)
    kinds = {t.type for t in flat}
    assert not kinds & {
        "html_block",
        "html_inline",
        "image",
        "fence",
        "code_block",
        "s_open",
        "em_open",
        "strong_open",
        "hr",
    }
    # the only links are the cited sources' (their URL, else their arXiv page), the same as without user text
    links = [t.attrGet("href") for t in flat if t.type == "link_open"]
    sources = [RUBRIC.sources[source.id] for source in hostile.sources]
    cited = {s.url or f"https://arxiv.org/abs/{s.arxiv}" for s in sources if s.url or s.arxiv}
    assert links and set(links) == cited
    assert links == [t.attrGet("href") for t in good_flat if t.type == "link_open"]
    assert not any("evil" in href for href in links)

    # same structure as a benign report: the same headings, tables and rows
    def shape(ts):
        return [
            (t.type, t.tag)
            for t in ts
            if t.type.endswith("_open")
            and t.type
            in ("heading_open", "table_open", "tr_open", "bullet_list_open", "ordered_list_open", "blockquote_open")
        ]

    assert shape(tokens) == shape(good_tokens)
    # and the text is still there, verbatim, as text
    inputs = next(t for t in flat if t.type == "text" and "Injected heading" in t.content)
    assert "<script>alert(1)</script>" in inputs.content and "[click me](https://evil.example)" in inputs.content


@pytest.mark.parametrize(
    "text",
    [
        "# h",
        "- item",
        "+ item",
        "1. one",
        "2) two",
        "=== ",
        "a | b",
        "<b>x</b>",
        "a_b_c",
        "_x_",
        "*x*",
        "[a](b)",
        "x\ny",
    ],
)
def test_md_escape_renders_back_to_the_same_text(text):
    rendered = MarkdownIt("commonmark").enable("table").parse(f"- {md_escape(text)}\n")
    inline = next(t for t in rendered if t.type == "inline")
    assert [c.type for c in inline.children] in (["text"], ["text", "softbreak", "text"])
    assert "".join(c.content for c in inline.children) == " ".join(text.split("\n")).strip()


def test_md_escape_keeps_plain_text_readable():
    assert md_escape("LicenseRef-Llama-3.1-Community") == "LicenseRef-Llama-3.1-Community"
    assert md_escape("non_commercial") == "non_commercial"
    assert md_escape("0.21.2") == "0.21.2"


def test_report_option_writes_and_refuses_to_overwrite(tmp_path):
    target = tmp_path / "advice.md"
    res = run_advisor("assess", "--example", "support-tone", "--report", str(target), "--json")
    assert res.returncode == 0 and target.read_text().startswith("# LoRA advice: `recommend_lora`")
    target.write_text("keep me", encoding="utf-8")
    res = run_advisor("assess", "--example", "support-tone", "--report", str(target), "--json")
    assert res.returncode == 2 and "--force" in res.stdout
    assert target.read_text() == "keep me"
    res = run_advisor("assess", "--example", "support-tone", "--report", str(target), "--force")
    assert res.returncode == 0 and target.read_text().startswith("# LoRA advice")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_report_into_a_missing_folder_is_refused(tmp_path):
    res = run_advisor("assess", "--example", "support-tone", "--report", str(tmp_path / "no" / "r.md"), "--json")
    assert res.returncode == 2 and "does not exist" in res.stdout


@pytest.mark.parametrize("name", ["policy-docs-qa", "contract-clauses"])
def test_every_source_is_its_own_list_item(name):
    """The line ends in a block tag, whose newline jinja's trim_blocks would eat: all sources ran into one item."""
    result = advisor.assess(yaml.safe_load(example_path(name).read_text()))
    report = render_report(result)
    tokens, _ = tokens_of(report[report.index("## Sources") : report.index("## Versions")])
    items = [t for t in tokens if t.type == "list_item_open"]
    assert len(items) == len(result.sources) > 1


@pytest.mark.parametrize("text", ["a #", "C# and F# ##", "#", "x \\#"])
def test_md_escape_keeps_a_headings_closing_hashes(text):
    """'### {{ title }}': a title ending in ' #' lost its hashes as the heading's closing sequence."""
    heading = MarkdownIt("commonmark").parse(f"### {md_escape(text)}\n")[1]
    assert "".join(child.content for child in heading.children) == text


def test_md_escape_turns_c1_controls_and_bidi_overrides_into_spaces():
    """C1 controls (CSI \\x9b acts like ESC [ in terminals) and bidi overrides that reorder the rest of the line."""
    assert md_escape("a\x9b[31mb\u202ec\u2066d\x85e\u2069") == "a \\[31mb c d e"


@pytest.mark.parametrize("text", ["advisor fit --model 'my model'", "a`b``c", "`x`", "line\nbreak | pipe *star*"])
def test_a_command_is_one_code_span_whatever_it_holds(text):
    """A next step's command holds the team's base model: it renders as exactly one code span with its text."""
    from markdown_it import MarkdownIt

    from advisor.report.render import code_span

    tokens = MarkdownIt().parseInline(str(code_span(text)))[0].children
    assert [t.type for t in tokens] == ["code_inline"]
    assert tokens[0].content == " ".join(text.split())


def test_the_recipe_step_quotes_a_base_model_for_the_shell(tmp_path):
    """A base model in a folder whose name has a space: the step's command runs as one argument."""
    import json
    import shlex

    from tests.conftest import TINY_LLAMA

    folder = tmp_path / "our model; v2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_LLAMA))
    answers = yaml.safe_load(example_path("support-tone").read_text())
    answers |= {"base_model": str(folder), "base_model_license": "Apache-2.0"}
    step = next(s for s in advisor.assess(answers).next_steps if s.kind == "recipe")
    assert shlex.split(step.command)[:4] == ["advisor", "recipe", "--model", str(folder)]
