"""Every worked example gives its expected decision, through the CLI as an agent runs it."""

from __future__ import annotations

import json
from typing import get_args

import pytest

from advisor.assessment.contract import Decision, OptionId
from advisor.assessment.worked_examples import DEFAULT_EXAMPLE, example_names, expected_outcomes
from tests.conftest import run_advisor

EXPECTED = expected_outcomes()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_gives_expected_decision(name):
    res = run_advisor("assess", "--answers", f"examples/{name}.yaml", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    result = json.loads(res.stdout)
    expected = EXPECTED[name]
    assert {"decision": result["decision"], "primary": result["primary"]} == {
        "decision": expected["decision"],
        "primary": expected["primary"],
    }


@pytest.mark.parametrize("name", sorted(name for name, e in EXPECTED.items() if "with_data" in e))
def test_example_with_its_data_gives_expected_decision_and_lists_the_conflicts(name):
    """The examples that ship a dataset: assessed with it, measured answers win and every disagreement shows
    (customer-replies: an export that contradicts its answers; support-tone, the README's main job: one that
    agrees with them)."""
    with_data = EXPECTED[name]["with_data"]
    evaluation = ["--eval-data", f"examples/{with_data['eval_data']}"] if "eval_data" in with_data else []
    res = run_advisor(
        "assess", "--answers", f"examples/{name}.yaml", "--data", f"examples/{with_data['data']}", *evaluation, "--json"
    )
    assert res.returncode == 0, res.stdout + res.stderr
    result = json.loads(res.stdout)
    assert {"decision": result["decision"], "primary": result["primary"]} == {
        "decision": with_data["decision"],
        "primary": with_data["primary"],
    }
    assert result["dataset"]["examples"] > 0
    assert "measured" in result["evidence"].values()
    measured_conflicts = [c["id"] for c in result["conflicts"] if c["id"].startswith("measured.")]
    assert measured_conflicts == with_data["conflicts"]
    for conflict in measured_conflicts:
        field = conflict.removeprefix("measured.")
        if field != "eval_overlap":
            assert result["evidence"][field] == "measured"


def test_every_example_has_an_expectation_and_back():
    assert sorted(EXPECTED) == example_names()


def test_examples_span_every_decision_and_primary():
    decisions = {e["decision"] for e in EXPECTED.values()}
    primaries = {e["primary"] for e in EXPECTED.values()}
    assert decisions == set(get_args(Decision))
    assert primaries == set(get_args(OptionId))


def test_default_example_ends_in_lora_with_and_without_its_data():
    """The README's main job: the default example, with the dataset it ships, ends in LoRA."""
    expected = EXPECTED[DEFAULT_EXAMPLE]
    assert (expected["decision"], expected["primary"]) == ("recommend_lora", "lora")
    assert (expected["with_data"]["decision"], expected["with_data"]["primary"]) == ("recommend_lora", "lora")
    res = run_advisor("assess", "--example", DEFAULT_EXAMPLE, "--json")
    assert res.returncode == 0
    assert json.loads(res.stdout)["decision"] == "recommend_lora"
