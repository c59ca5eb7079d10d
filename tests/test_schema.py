"""`advisor schema`: JSON Schemas that real answers, assessments and estimates satisfy, and OpenAI
tool definitions that obey strict mode and still run."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import jsonschema
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ConfigDict, Field

import advisor
from advisor.agents.schemas import contract_schemas, openai_tools, strict_schema
from advisor.agents.tools import TOOLS, call_tool
from advisor.assessment.contract import Answers
from advisor.assessment.worked_examples import example_names, example_path
from advisor.cli import cli
from advisor.errors import InvalidInput
from advisor.estimate import estimate_training_memory, training_settings
from advisor.files import load_mapping
from advisor.report.render import render_report

# What OpenAI's strict mode accepts (platform.openai.com/docs/guides/structured-outputs,
# "Supported schemas"), checked here independently of how advisor.agents.schemas builds its output.
STRICT_KEYWORDS = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "description",
    "enum",
    "const",
    "anyOf",
    "items",
    "$ref",
    "$defs",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
}
JSON_TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
MAX_PROPERTIES, MAX_DEPTH, MAX_ENUM_VALUES = 100, 5, 500  # the tighter limits of the first published rules


def strict_mode_violations(parameters: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    defs = parameters.get("$defs", {})
    counts = {"properties": 0, "enum": 0}

    def walk(node: Any, where: str, depth: int) -> None:
        if not isinstance(node, dict):
            problems.append(f"{where}: a schema must be an object")
            return
        problems.extend(f"{where}: keyword {k!r} is not supported" for k in node if k not in STRICT_KEYWORDS)
        if "$ref" in node:
            if len(node) > 1:
                problems.append(f"{where}: $ref must stand alone")
            if not node["$ref"].startswith("#/$defs/") or node["$ref"][len("#/$defs/") :] not in defs:
                problems.append(f"{where}: $ref {node['$ref']} does not resolve into $defs")
            return
        types = node.get("type", [])
        for kind in types if isinstance(types, list) else [types]:
            if kind not in JSON_TYPES:
                problems.append(f"{where}: unknown type {kind!r}")
        if "type" not in node and "anyOf" not in node and "enum" not in node and "const" not in node:
            problems.append(f"{where}: no type")
        if "properties" in node or node.get("type") == "object":
            if depth > MAX_DEPTH:
                problems.append(f"{where}: nested deeper than {MAX_DEPTH} objects")
            properties = node.get("properties", {})
            counts["properties"] += len(properties)
            if node.get("additionalProperties") is not False:
                problems.append(f"{where}: additionalProperties must be false")
            if sorted(node.get("required", [])) != sorted(properties):
                problems.append(f"{where}: every property must be required")
            for key, sub in properties.items():
                walk(sub, f"{where}/properties/{key}", depth + 1)
        counts["enum"] += len(node.get("enum", []))
        if "items" in node:
            walk(node["items"], f"{where}/items", depth)
        for i, branch in enumerate(node.get("anyOf", [])):
            walk(branch, f"{where}/anyOf/{i}", depth)

    if parameters.get("type") != "object" or "anyOf" in parameters:
        problems.append("the root must be an object, not a union")
    walk({k: v for k, v in parameters.items() if k != "$defs"}, "#", 1)
    for name, definition in defs.items():
        walk(definition, f"#/$defs/{name}", 2)
    if counts["properties"] > MAX_PROPERTIES:
        problems.append(f"{counts['properties']} properties in all (limit {MAX_PROPERTIES})")
    if counts["enum"] > MAX_ENUM_VALUES:
        problems.append(f"{counts['enum']} enum values in all (limit {MAX_ENUM_VALUES})")
    return problems


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="advisor")


@pytest.fixture(scope="module")
def schemas() -> dict[str, dict]:
    return contract_schemas()


@pytest.fixture(scope="module")
def openai() -> dict[str, dict]:
    return {definition["function"]["name"]: definition["function"] for definition in openai_tools()}


def validator(schema: dict) -> jsonschema.Validator:
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_schema_command_prints_both_formats(schemas):
    default = run_cli("schema")
    assert default.exit_code == 0
    assert json.loads(default.stdout) == schemas
    assert set(schemas) == {"answers", "assessment", "training_settings", "estimate", "dataset_report"}
    tools = run_cli("schema", "--format", "openai")
    assert tools.exit_code == 0
    assert json.loads(tools.stdout) == openai_tools()
    wrong = run_cli("schema", "--format", "yaml")
    assert wrong.exit_code == 2 and "yaml" in wrong.stderr


@pytest.mark.parametrize("name", example_names())
def test_every_example_satisfies_the_answers_schema_and_its_assessment_the_assessment_schema(schemas, name):
    answers = load_mapping(example_path(name), field="example")
    validator(schemas["answers"]).validate(answers)
    validator(schemas["assessment"]).validate(advisor.assess(answers).model_dump(mode="json"))


def test_the_answers_schema_rejects_what_the_contract_rejects(schemas):
    answers = validator(schemas["answers"])
    assert not answers.is_valid({"stabilty": "stable"})
    assert not answers.is_valid({"stability": "sometimes"})
    assert not answers.is_valid({"dataset_examples": "lots"})
    assert answers.is_valid({"stability": "unknown", "dataset_examples": None})


def test_a_real_estimate_satisfies_the_estimate_schema(schemas):
    estimate = estimate_training_memory("qwen2.5-0.5b", training_settings(method="qlora", rank=16)).model_dump(
        mode="json"
    )
    validator(schemas["estimate"]).validate(estimate)
    validator(schemas["training_settings"]).validate(estimate["settings"])
    assert not validator(schemas["training_settings"]).is_valid({"method": "dora"})


def test_openai_definitions_are_the_mcp_tools_under_strict_mode(openai):
    assert list(openai) == list(TOOLS)
    for name, function in openai.items():
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name)
        assert function["strict"] is True
        assert function["description"] == TOOLS[name].description
        assert strict_mode_violations(function["parameters"]) == [], name
        # the same tool's plain JSON Schema is not strict: the check above has something to find
        assert strict_mode_violations(TOOLS[name].input.model_json_schema()), name


def test_optional_arguments_become_null_unions_and_required_ones_stay(openai):
    estimate = openai["estimate_training_memory"]["parameters"]["properties"]
    assert estimate["model"]["type"] == "string"
    assert {"type": "null"} in estimate["rank"]["anyOf"]
    assert f"Null for the default ({training_settings().rank})" in estimate["rank"]["description"]
    answers = openai["assess_lora_fit"]["parameters"]["properties"]["answers"]
    assert {"type": "null"} in answers["anyOf"]


def strict_arguments(parameters: dict, given: dict) -> dict:
    """A strict-mode call: every property present, null where nothing was given."""
    out = {}
    for key, sub in parameters["properties"].items():
        value = given.get(key)
        nested = next((b for b in sub.get("anyOf", [sub]) if "properties" in b), None)
        out[key] = strict_arguments(nested, value) if nested is not None and isinstance(value, dict) else value
    return out


@pytest.mark.parametrize("name", ["support-tone", "clinical-notes-uncleared", "order-status-agent"])
def test_strict_calls_validate_and_run_like_ordinary_ones(openai, name):
    answers = load_mapping(example_path(name), field="example")
    expected = advisor.assess(answers)
    for tool, given, check in [
        ("assess_lora_fit", {"answers": answers}, lambda result: result == expected),
        ("render_report", {"answers": answers}, lambda result: result.markdown == render_report(expected)),
    ]:
        parameters = openai[tool]["parameters"]
        arguments = strict_arguments(parameters, given)
        assert set(arguments["answers"]) == set(Answers.model_fields)
        jsonschema.validate(arguments, parameters)
        assert check(call_tool(tool, arguments))


def test_a_strict_estimate_call_uses_the_defaults(openai):
    parameters = openai["estimate_training_memory"]["parameters"]
    arguments = strict_arguments(parameters, {"model": "qwen2.5-0.5b"})
    assert arguments["rank"] is None
    jsonschema.validate(arguments, parameters)
    assert call_tool("estimate_training_memory", arguments) == estimate_training_memory(
        "qwen2.5-0.5b", training_settings()
    )


class _Layer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["attention", "mlp"] = "mlp"


class _Nested(BaseModel):
    model_config = ConfigDict(extra="forbid")
    first: _Layer
    rest: list[_Layer] = Field(default_factory=list, description="More layers.")
    note: str = Field("", max_length=20)


def test_strict_schema_keeps_lone_refs_and_their_definitions():
    strict = strict_schema(_Nested.model_json_schema())
    assert strict["properties"]["first"] == {"$ref": "#/$defs/_Layer"}
    assert strict["properties"]["rest"]["anyOf"][0]["items"] == {"$ref": "#/$defs/_Layer"}
    assert strict["properties"]["note"]["description"] == 'At most 20 characters. Null for the default ("").'
    assert set(strict["$defs"]) == {"_Layer"}
    assert strict_mode_violations(strict) == []
    jsonschema.validate({"first": {"name": "q", "kind": None}, "rest": None, "note": None}, strict)


def test_strict_schema_refuses_what_strict_mode_cannot_express():
    class FreeForm(BaseModel):
        counts: dict[str, int]

    with pytest.raises(ValueError, match="free-form keys"):
        strict_schema(FreeForm.model_json_schema())


def test_call_tool_is_the_python_door_for_tool_calls():
    assert call_tool("assess_lora_fit", {"answers": {"change_kind": "knowledge"}}) == advisor.assess(
        {"change_kind": "knowledge"}
    )
    with pytest.raises(InvalidInput) as unknown:
        call_tool("assess", {})
    assert unknown.value.fields[0].allowed == list(TOOLS)
    with pytest.raises(InvalidInput, match="must be an object"):
        call_tool("assess_lora_fit", ["change_kind", "knowledge"])
