"""`advisor mcp` in-process: every tool through the SDK's client, with valid and invalid arguments."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import anyio
import pytest
from mcp import Client

import advisor
from advisor.agents.mcp_server import build_server
from advisor.agents.tools import TOOLS
from advisor.assessment.contract import Answers, Questionnaire
from advisor.assessment.worked_examples import example_path
from advisor.estimate import estimate_training_memory, training_settings
from advisor.files import load_mapping
from advisor.report.render import render_report
from tests.conftest import ROOT, TINY_LLAMA

HEAVY = ("torch", "transformers", "peft")


def call(server, name: str, arguments: dict):
    async def go():
        async with Client(server) as client:
            return await client.call_tool(name, arguments)

    return anyio.run(go)


def error_of(result) -> dict:
    """The advisor error object a failed call carries as its text."""
    assert result.is_error
    return json.loads(result.content[0].text)["error"]


def fields_of(error: dict) -> dict[str, dict]:
    return {issue["field"]: issue for issue in error["fields"]}


def example(name: str) -> dict:
    return load_mapping(example_path(name), field="example")


@pytest.fixture
def reports(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    return folder


@pytest.fixture
def server(reports):
    return build_server(reports)


def test_every_tool_is_listed_with_its_contract(server):
    async def go():
        async with Client(server) as client:
            return await client.list_tools()

    listed = {tool.name: tool for tool in anyio.run(go).tools}
    assert set(listed) == set(TOOLS)
    for name, tool in TOOLS.items():
        mcp_tool = listed[name]
        assert mcp_tool.input_schema == tool.input.model_json_schema()
        assert mcp_tool.input_schema["additionalProperties"] is False
        assert set(mcp_tool.output_schema["properties"]) == set(tool.output.model_fields)
        assert "Cost:" in mcp_tool.description and mcp_tool.description == tool.description
        assert mcp_tool.annotations.read_only_hint is (name not in ("render_report", "write_training_recipe"))


def test_list_questions(server):
    result = call(server, "list_questions", {})
    assert not result.is_error
    data = Questionnaire.model_validate(result.structured_content)
    assert [q.id for q in data.questions] == list(Answers.model_fields)


@pytest.mark.parametrize("name", ["support-tone", "policy-docs-qa", "triage-no-evals"])
def test_assess_returns_what_the_api_returns(server, name):
    answers = example(name)
    result = call(server, "assess_lora_fit", {"answers": answers})
    assert not result.is_error
    expected = advisor.assess(answers).model_dump(mode="json")
    assert result.structured_content == expected
    assert json.loads(result.content[0].text) == expected


def test_null_arguments_are_left_out(server):
    empty = call(server, "assess_lora_fit", {"answers": None})
    assert empty.structured_content == advisor.assess({}).model_dump(mode="json")
    result = call(server, "estimate_training_memory", {"model": "qwen2.5-0.5b", "rank": None, "method": "qlora"})
    assert result.structured_content["settings"]["rank"] == training_settings().rank  # the default


def test_estimate_returns_what_the_estimator_returns(server):
    arguments = {"model": "qwen2.5-0.5b", "method": "lora", "rank": 16, "targets": ["q_proj", "v_proj"], "seq": 1024}
    result = call(server, "estimate_training_memory", arguments)
    assert not result.is_error, result.content[0].text
    settings = training_settings(method="lora", rank=16, targets=["q_proj", "v_proj"], seq=1024)
    assert result.structured_content == estimate_training_memory("qwen2.5-0.5b", settings).model_dump(mode="json")
    assert result.structured_content["trainable_params"] > 0


def test_reference_run_measures_lora_beside_the_estimator(server, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY_LLAMA))
    arguments = {"model": str(config), "targets": "all-linear", "rank": 4, "seq": 32, "steps": 3, "max_seconds": 120}
    result = call(server, "run_reference_lora", arguments)
    assert not result.is_error, result.content[0].text
    run = result.structured_content
    estimated = estimate_training_memory(
        str(config), training_settings(method="lora", targets="all-linear", rank=4, seq=32)
    )
    assert run["lora"]["figures"]["trainable_params"]["measured"] == estimated.trainable_params
    assert run["full"]["figures"]["trainable_params"]["measured"] == estimated.total_params


def test_reference_run_is_refused_when_it_would_not_fit(server, tmp_path, monkeypatch):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY_LLAMA))
    monkeypatch.setenv("ADVISOR_FREE_MEMORY_BYTES", "1000")
    error = error_of(call(server, "run_reference_lora", {"model": str(config), "max_seconds": 60}))
    assert error["code"] == "refused" and "1000" in error["message"].replace(",", "")


def test_reference_run_mistakes_in_the_users_files_are_error_objects_naming_the_argument(server, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_LLAMA))
    (folder / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json header")
    error = error_of(call(server, "run_reference_lora", {"model": str(folder), "steps": 2}))
    assert error["code"] == "invalid_file" and fields_of(error).keys() == {"model"}
    dataset = tmp_path / "data.jsonl"
    dataset.write_bytes(b'{"text": "lone \\ud800 surrogate"}\n')
    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY_LLAMA))
    error = error_of(call(server, "run_reference_lora", {"model": str(config), "dataset": str(dataset), "steps": 2}))
    assert error["code"] == "invalid_file" and fields_of(error).keys() == {"dataset"}
    assert "unpaired surrogate" in error["message"]


def test_render_report_writes_a_name_at_the_limit_and_refuses_one_over_it(server, reports):
    at_limit = "r" * 252 + ".md"
    result = call(server, "render_report", {"filename": at_limit})
    assert not result.is_error, result.content[0].text
    assert (reports / at_limit).is_file() and [p.name for p in reports.iterdir()] == [at_limit]
    # 131 characters, within the argument's 255, but 259 bytes in UTF-8: over the file system's limit
    error = error_of(call(server, "render_report", {"filename": "é" * 128 + ".md"}))
    assert fields_of(error).keys() == {"filename"} and "259 bytes long" in error["message"]


def test_render_report_returns_markdown_and_writes_only_when_asked(server, reports):
    answers = example("sql-dialect")
    expected = render_report(advisor.assess(answers))

    result = call(server, "render_report", {"answers": answers})
    assert result.structured_content == {"markdown": expected, "path": None}
    assert not any(reports.iterdir())

    result = call(server, "render_report", {"answers": answers, "filename": "sql.md"})
    assert result.structured_content["path"] == str(reports.resolve() / "sql.md")
    assert (reports / "sql.md").read_text(encoding="utf-8") == expected

    (reports / "sql.md").write_text("older report", encoding="utf-8")
    error = error_of(call(server, "render_report", {"answers": answers, "filename": "sql.md"}))
    assert "overwrite" in fields_of(error)["filename"]["message"]
    assert (reports / "sql.md").read_text(encoding="utf-8") == "older report"
    assert not call(server, "render_report", {"answers": answers, "filename": "sql.md", "overwrite": True}).is_error
    assert (reports / "sql.md").read_text(encoding="utf-8") == expected

    (reports / "team").mkdir()
    assert not call(server, "render_report", {"answers": answers, "filename": "team/sql.md"}).is_error
    assert (reports / "team" / "sql.md").is_file()


def escape_routes(reports, outside):
    """Filenames that would land outside `reports`, or nowhere sensible, keyed by what is wrong."""
    (reports / "out").symlink_to(outside, target_is_directory=True)
    (reports / "escape.md").symlink_to(outside / "escape.md")
    (reports / "loop.md").symlink_to(reports / "loop.md")
    return {
        "absolute": str(outside / "x.md"),
        "parent": "../x.md",
        "nested parent": "sub/../../x.md",
        "linked folder": "out/x.md",
        "linked file": "escape.md",
        "not markdown": "notes.txt",
        "missing folder": "nope/x.md",
        "folder": "folder.md",
        "link loop": "loop.md",
        "NUL": "a\x00.md",
    }


def test_render_report_refuses_every_path_outside_its_folder(server, reports, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (reports / "folder.md").mkdir()
    for what, filename in escape_routes(reports, outside).items():
        arguments = {"answers": {"change_kind": "style"}, "filename": filename, "overwrite": True}
        error = error_of(call(server, "render_report", arguments))
        assert error["code"] in ("invalid_input", "invalid_file"), what
        assert "filename" in fields_of(error), what
    assert not any(outside.iterdir())


def test_render_report_writes_nothing_without_a_reports_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    server = build_server()
    error = error_of(call(server, "render_report", {"answers": {}, "filename": "advice.md"}))
    assert error["code"] == "refused" and "--reports-dir" in fields_of(error)["filename"]["message"]
    assert not call(server, "render_report", {"answers": {}}).is_error
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("tool", "arguments", "field", "allowed"),
    [
        (
            "assess_lora_fit",
            {"answers": {"stability": "sometimes"}},
            "answers.stability",
            {"stable", "evolving", "volatile", "unknown"},
        ),
        ("assess_lora_fit", {"answers": {"stabilty": "stable"}}, "answers.stabilty", None),
        ("assess_lora_fit", {"answer": {"stability": "stable"}}, "answer", None),
        ("assess_lora_fit", {"answers": {"dataset_examples": "lots"}}, "answers.dataset_examples", None),
        ("assess_lora_fit", {"answers": {"dataset_license": "made-up-license"}}, "answers.dataset_license", None),
        ("assess_lora_fit", {"answers": ["stable"]}, "answers", None),
        ("estimate_training_memory", {"model": "qwen2.5-0.5b", "method": "dora"}, "method", {"full", "lora", "qlora"}),
        ("estimate_training_memory", {"model": "qwen2.5-0.5b", "ranks": 8}, "ranks", None),
        ("estimate_training_memory", {"model": "qwen2.5-0.5b", "rank": "eight"}, "rank", None),
        ("estimate_training_memory", {"model": "qwen2.5-0.5b", "rank": 0}, "rank", None),
        ("estimate_training_memory", {"method": "lora"}, "model", None),
        ("estimate_training_memory", {"model": "no-such-model"}, "model", None),
        (
            "estimate_training_memory",
            {"model": "qwen2.5-0.5b", "method": "qlora", "precision": "fp32"},
            "precision",
            {"bf16", "fp16", "mixed"},
        ),
        ("run_reference_lora", {"model": "qwen2.5-0.5b", "steps": 0}, "steps", None),
        ("run_reference_lora", {"model": "qwen2.5-0.5b", "device": "tpu"}, "device", {"auto", "cpu", "cuda"}),
        ("run_reference_lora", {"model": "qwen2.5-0.5b", "max_seconds": -1}, "max_seconds", None),
        ("render_report", {"answers": {}, "filename": 42}, "filename", None),
        ("render_report", {"answers": {}, "overwrite": [True]}, "overwrite", None),
        ("render_report", {"assessment": {}}, "assessment", None),
        ("list_questions", {"verbose": True}, "verbose", None),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_invalid_arguments_name_the_field_and_what_it_accepts(server, tool, arguments, field, allowed):
    error = error_of(call(server, tool, arguments))
    assert error["code"] == "invalid_input"
    issue = fields_of(error)[field]
    assert issue["message"]
    if allowed is not None:
        assert set(issue["allowed"]) == allowed


def test_every_problem_is_reported_in_one_answer(server):
    arguments = {"answers": {"stability": "sometimes", "stabilty": "stable", "dataset_examples": -1}, "extra": 1}
    error = error_of(call(server, "assess_lora_fit", arguments))
    assert set(fields_of(error)) == {"answers.stability", "answers.stabilty", "answers.dataset_examples", "extra"}


def test_a_bug_reaches_the_caller_without_details(reports, monkeypatch):
    def broken(inp, context):
        raise RuntimeError("secret internal detail")

    monkeypatch.setitem(TOOLS, "list_questions", dataclasses.replace(TOOLS["list_questions"], run=broken))
    result = call(build_server(reports), "list_questions", {})
    assert result.is_error
    assert "secret" not in result.content[0].text and "list_questions" in result.content[0].text


def test_the_server_answers_without_torch_transformers_or_peft():
    script = (
        "import json, sys, anyio\nfrom mcp import Client\nfrom advisor.agents.mcp_server import build_server\nasync "
        "def main():\n    async with Client(build_server()) as client:\n        await client.list_tools()\n        "
        "for name, arguments in [('list_questions', {}), ('assess_lora_fit', {'answers': ANSWERS}), ('render_report', "
        "{'answers': ANSWERS})]:\n            assert not (await client.call_tool(name, arguments)).is_error, "
        "name\nanyio.run(main)\nprint(json.dumps(sorted(sys.modules)))\n"
    ).replace("ANSWERS", repr(example("sql-dialect")))
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert "advisor.agents.mcp_server" in loaded
    assert not [m for m in loaded if m.split(".")[0] in HEAVY]
