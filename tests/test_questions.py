"""`advisor questions --json`: the questionnaire as data, and a JSON Schema agents can validate against."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from advisor.assessment.contract import Answers
from advisor.assessment.worked_examples import example_names, example_path
from tests.conftest import run_advisor


@pytest.fixture(scope="module")
def questionnaire() -> dict:
    res = run_advisor("questions", "--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_every_contract_field_is_asked_with_help_and_sources(questionnaire):
    ids = [q["id"] for q in questionnaire["questions"]]
    assert ids == list(Answers.model_fields)
    for q in questionnaire["questions"]:
        assert q["text"] and q["help"] and q["sources"]
    cited = {s for q in questionnaire["questions"] for s in q["sources"]}
    assert cited == {s["id"] for s in questionnaire["sources"]}


def test_choices_match_the_schema(questionnaire):
    schema = questionnaire["answers_schema"]
    for q in questionnaire["questions"]:
        if q["type"] == "choice":
            allowed = {v for branch in schema["properties"][q["id"]]["anyOf"] for v in branch.get("enum", [])}
            assert {c["value"] for c in q["choices"]} | {"unknown"} == allowed


def test_schema_forbids_unknown_fields_and_describes_every_field(questionnaire):
    schema = questionnaire["answers_schema"]
    assert schema["additionalProperties"] is False
    assert all(p.get("description") for p in schema["properties"].values())


@pytest.mark.parametrize("name", example_names())
def test_examples_validate_against_the_schema(questionnaire, name):
    jsonschema.validate(yaml.safe_load(example_path(name).read_text()), questionnaire["answers_schema"])


def test_text_listing():
    res = run_advisor("questions")
    assert res.returncode == 0
    assert "change_kind" in res.stdout and "tens_of_thousands" in res.stdout and "unknown" in res.stdout


def test_every_result_field_is_described():
    """The Assessment's JSON Schema is what agents read: every field says what it means."""
    from advisor.assessment.contract import Assessment, Questionnaire

    for model in (Assessment, Questionnaire):
        schema = model.model_json_schema()
        for name, definition in [(model.__name__, schema), *schema.get("$defs", {}).items()]:
            for field, prop in definition.get("properties", {}).items():
                assert prop.get("description"), f"{name}.{field}"
