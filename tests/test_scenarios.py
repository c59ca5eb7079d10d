"""The judgement a senior ML lead would sign, as data: realistic situations (tests/scenarios/*.yaml) with the
decision, primary option, training blockers and conflicts each must give, run through the real service path
(answers parsed, the catalog consulted, the engine) by one loader."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from advisor.assessment.contract import TRAINING_OPTIONS, ComputeAssessment
from advisor.assessment.engine import evaluate
from advisor.assessment.rubric import load_rubric
from advisor.assessment.service import installed_versions, looked_up, parse_answers
from tests.conftest import ROOT

HERE = Path(__file__).parent / "scenarios"
RUBRIC = load_rubric()
EXPECTATIONS = {
    "decision",
    "primary",
    "blockers",
    "conflicts",
    "cautions",
    "absent_cautions",
    "reasons",
    "confidence",
    "confidence_not",
}


def load() -> list[dict]:
    scenarios = []
    for path in sorted(HERE.glob("*.yaml")):
        for scenario in yaml.safe_load(path.read_text(encoding="utf-8"))["scenarios"]:
            scenarios.append({**scenario, "file": path.name})
    return scenarios


SCENARIOS = load()


def assess(scenario: dict):
    given = dict(scenario["answers"])
    if str(given.get("base_model", "")).startswith("tests/"):  # a model folder of the tests, wherever they run
        given["base_model"] = str(ROOT / given["base_model"])
    answers, evidence = looked_up(parse_answers(given, rubric=RUBRIC), RUBRIC)
    options = {option: scenario.get("compute", {}).get(option, "not_assessed") for option in TRAINING_OPTIONS}
    compute = ComputeAssessment(
        status="assessed" if "compute" in scenario else "not_assessed", reason="scenario", options=options
    )
    return evaluate(answers, RUBRIC, compute=compute, versions=installed_versions(RUBRIC), evidence=evidence)


def test_the_suite_covers_every_numbered_case_of_the_judgement_issue():
    assert len(SCENARIOS) >= 40
    assert len({s["name"] for s in SCENARIOS}) == len(SCENARIOS), "scenario names must be unique"
    # Case 16 (stale sources) is a property of the rubric's sources, checked in tests/test_judgement.py.
    assert {s["case"] for s in SCENARIOS} >= set(range(1, 16))
    for s in SCENARIOS:
        assert set(s["expect"]) <= EXPECTATIONS, s["name"]
        assert {"decision", "primary", "blockers", "conflicts"} <= set(s["expect"]), s["name"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(scenario):
    result = assess(scenario)
    expect = scenario["expect"]
    got = {
        "decision": result.decision,
        "primary": result.primary,
        "blockers": result.training_blockers,
        "conflicts": [c.id for c in result.conflicts],
    }
    assert got == {key: expect[key] for key in got}, scenario["why"]
    cautions = {c.id for c in result.cautions}
    assert set(expect.get("cautions", [])) <= cautions, cautions
    assert not set(expect.get("absent_cautions", [])) & cautions, cautions
    assert set(expect.get("reasons", [])) <= {r.id for r in result.reasons}
    if "confidence" in expect:
        assert result.confidence.level == expect["confidence"], result.confidence.basis
    if "confidence_not" in expect:
        assert result.confidence.level != expect["confidence_not"], result.confidence.basis
    if result.decision == "not_ready":
        assert result.blockers == result.training_blockers
