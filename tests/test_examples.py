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
    assert {"decision": result["decision"], "primary": result["primary"]} == EXPECTED[name]


def test_every_example_has_an_expectation_and_back():
    assert sorted(EXPECTED) == example_names()


def test_examples_span_every_decision_and_primary():
    decisions = {e["decision"] for e in EXPECTED.values()}
    primaries = {e["primary"] for e in EXPECTED.values()}
    assert decisions == set(get_args(Decision))
    assert primaries == set(get_args(OptionId))


def test_default_example_ends_in_lora():
    assert EXPECTED[DEFAULT_EXAMPLE] == {"decision": "recommend_lora", "primary": "lora"}
    res = run_advisor("assess", "--example", DEFAULT_EXAMPLE, "--json")
    assert res.returncode == 0
    assert json.loads(res.stdout)["decision"] == "recommend_lora"
