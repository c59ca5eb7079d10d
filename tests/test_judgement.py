"""Case 16 of the judgement issue: sources that change (vendor guidance, licences, serving stacks) carry the date
they were checked, and advice that rests on a platform that has since closed says so."""

import datetime

import pytest
import yaml

import advisor
from advisor.assessment.rubric import load_rubric
from advisor.assessment.worked_examples import example_names, example_path

RUBRIC = load_rubric()
CHANGING_KINDS = {"vendor"}  # vendor pages and licences change without a new version; papers and standards do not
CLOSED_PATHS = {  # guidance whose platform path has closed, and the source that records it
    "openai-fine-tuning": "openai-deprecations",
    "google-gemini-tuning": "google-gemini-tuning",
}


@pytest.mark.parametrize("source_id", sorted(s for s, d in RUBRIC.sources.items() if d.kind in CHANGING_KINDS))
def test_every_vendor_source_says_when_it_was_checked(source_id):
    checked = RUBRIC.sources[source_id].checked
    assert checked is not None, f"{source_id}: add `checked: YYYY-MM-DD` after reading the page"
    assert datetime.date.fromisoformat(checked) <= datetime.date.today()


def test_the_wind_downs_are_recorded_in_the_sources_themselves():
    deprecations = RUBRIC.sources["openai-deprecations"].title
    assert "2027-01-06" in deprecations and "no new fine-tuning jobs" in deprecations
    gemini = RUBRIC.sources["google-gemini-tuning"].title
    assert "Vertex" in gemini and "No model in the Gemini API supports tuning" in gemini


def _cited(assessment) -> set[str]:
    cited = {s for r in assessment.reasons for s in r.sources}
    cited |= {s for option in assessment.options for r in option.reasons for s in r.sources}
    return cited


@pytest.mark.parametrize("name", example_names())
def test_advice_resting_on_a_closed_platform_carries_a_limit_that_says_so(name):
    assessment = advisor.assess(yaml.safe_load(example_path(name).read_text()))
    limit_sources = {s for limit in assessment.limits for s in limit.sources}
    for guidance, record in CLOSED_PATHS.items():
        if guidance in _cited(assessment):
            assert record in limit_sources | _cited(assessment), (name, guidance)


def test_an_unknown_licence_is_a_training_blocker_and_a_question_worth_asking():
    """Case 14: a licence gate is reported whatever the decision, and what_would_change names the licence."""
    answers = yaml.safe_load(example_path("support-tone").read_text()) | {"dataset_license": "unknown"}
    assessment = advisor.assess(answers)
    assert "dataset_license" in assessment.training_blockers
    assert "dataset_license" in {change.question for change in assessment.what_would_change}
