"""`advisor schema`: the contracts as JSON Schema, and the tools as strict OpenAI tool definitions.

The JSON Schemas come straight from the pydantic models every door returns
(inputs in validation mode, results in serialization mode). The OpenAI
definitions are the same tools the MCP server serves (`advisor.agents.tools.TOOLS`),
with their input schemas rewritten to OpenAI's strict mode: every object closed
and every property required, optional ones as null unions. `advisor.agents.tools`
treats a null argument as a left-out one, so a strict-mode call runs unchanged
through `advisor.agents.tools.call_tool`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode

from ..assessment.contract import Answers, Assessment
from ..dataset.contract import DatasetReport
from ..estimate.settings import Estimate, TrainingSettings
from .tools import TOOLS

DIALECT = "https://json-schema.org/draft/2020-12/schema"

CONTRACTS: dict[str, tuple[type[BaseModel], JsonSchemaMode]] = {
    "answers": (Answers, "validation"),
    "assessment": (Assessment, "serialization"),
    "training_settings": (TrainingSettings, "validation"),
    "estimate": (Estimate, "serialization"),
    "dataset_report": (DatasetReport, "serialization"),
}

# Keywords strict mode refuses. A length limit moves into the description; the
# default is what a null argument stands for, and the description says so.
_DROPPED = frozenset({"default", "title", "minLength", "maxLength"})
# Keywords strict mode cannot take and that pydantic does not emit for these models;
# meeting one is an error here rather than a definition the API rejects.
_UNSUPPORTED = ("allOf", "oneOf", "not", "if", "patternProperties", "propertyNames", "dependentRequired")


def contract_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema (draft 2020-12) of each contract: answers, assessment, training_settings, estimate,
    dataset_report."""
    return {
        name: {"$schema": DIALECT, **model.model_json_schema(mode=mode)} for name, (model, mode) in CONTRACTS.items()
    }


def openai_tools() -> list[dict[str, Any]]:
    """Every tool as an OpenAI function-calling definition (Chat Completions form) with `strict: true`."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "strict": True,
                "parameters": strict_schema(tool.input.model_json_schema()),
            },
        }
        for tool in TOOLS.values()
    ]


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` rewritten to OpenAI's strict-mode rules.

    Every object gets `additionalProperties: false` and lists all its properties in
    `required`; a property that was optional becomes a null union (null standing for
    its default). `$ref` is allowed only on its own, so one with siblings (pydantic
    puts a field's description beside it) is replaced by the definition it names;
    `$defs` keeps the definitions still referenced. Raises ValueError for what
    strict mode cannot express, such as objects with free-form keys.
    """
    defs = schema.get("$defs", {})
    referenced: list[str] = []

    def visit(node: dict[str, Any], where: str) -> dict[str, Any]:
        if "$ref" in node:
            name = _def_name(node["$ref"], defs, where)
            if len(node) == 1:
                if name not in referenced:
                    referenced.append(name)
                return dict(node)
            node = {**defs[name], **{key: value for key, value in node.items() if key != "$ref"}}
        for keyword in _UNSUPPORTED:
            if keyword in node:
                raise ValueError(f"{where}: {keyword} cannot be expressed in OpenAI strict mode")
        out = {key: value for key, value in node.items() if key not in _DROPPED}
        limits = [
            f"{word} {node[key]} characters."
            for key, word in (("minLength", "At least"), ("maxLength", "At most"))
            if key in node
        ]
        if limits:
            out["description"] = " ".join([node.get("description", ""), *limits]).strip()
        if "properties" in node or node.get("type") == "object":
            if node.get("additionalProperties", False) is not False:
                raise ValueError(f"{where}: an object with free-form keys cannot be expressed in OpenAI strict mode")
            required = set(node.get("required", ()))
            properties = {}
            for key, sub in node.get("properties", {}).items():
                strict_sub = visit(sub, f"{where}/properties/{key}")
                properties[key] = strict_sub if key in required else _nullable(strict_sub, sub)
            out.update(properties=properties, required=list(properties), additionalProperties=False)
        if "items" in node:
            out["items"] = visit(node["items"], f"{where}/items")
        if "anyOf" in node:
            out["anyOf"] = [visit(branch, f"{where}/anyOf/{i}") for i, branch in enumerate(node["anyOf"])]
        return out

    result = visit({key: value for key, value in schema.items() if key != "$defs"}, "#")
    strict_defs: dict[str, Any] = {}
    while len(strict_defs) < len(referenced):  # visiting a definition may reference further ones
        name = referenced[len(strict_defs)]
        strict_defs[name] = visit(defs[name], f"#/$defs/{name}")
    if strict_defs:
        result["$defs"] = strict_defs
    return result


def _nullable(strict: dict[str, Any], original: dict[str, Any]) -> dict[str, Any]:
    """An optional property in strict form: it already accepts null, or becomes a union with null."""
    if _accepts_null(strict):
        return strict
    description = strict.get("description", "")
    note = (
        f"Null for the default ({json.dumps(original['default'])})."
        if "default" in original
        else "Null to leave it out."
    )
    branch = {key: value for key, value in strict.items() if key != "description"}
    return {"anyOf": [branch, {"type": "null"}], "description": f"{description} {note}".strip()}


def _accepts_null(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return (
        kind == "null"
        or (isinstance(kind, list) and "null" in kind)
        or any(_accepts_null(b) for b in node.get("anyOf", ()))
    )


def _def_name(ref: str, defs: dict[str, Any], where: str) -> str:
    prefix = "#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
        raise ValueError(f"{where}: $ref {ref!r} does not name a definition in $defs")
    return ref[len(prefix) :]
