"""The plan's MCP tools: fit_training and write_training_recipe (which writes only under the reports folder)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from advisor.agents.mcp_server import build_server  # noqa: E402
from advisor.plan.fit import fit_training  # noqa: E402
from tests.test_mcp import call, error_of, escape_routes, fields_of  # noqa: E402


@pytest.fixture
def reports(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    return folder


def test_fit_training_returns_what_the_fit_search_returns(reports):
    server = build_server(reports)
    arguments = {"model": "qwen2.5-0.5b", "gpu": "l4", "examples": 1000, "mean_tokens": 400}
    result = call(server, "fit_training", arguments)
    assert not result.is_error
    expected = fit_training("qwen2.5-0.5b", gpu="l4", tokens=1000 * 400 * 3)
    assert result.structured_content == expected.model_dump(mode="json")
    assert result.structured_content["best"] == "lora"


def test_fit_training_plans_for_the_format_asked(reports):
    arguments = {"model": "llama-3.1-8b", "gpu_memory_gib": 24, "seq": 4096, "method": "lora", "format": "trl"}
    result = call(build_server(reports), "fit_training", arguments)
    expected = fit_training("llama-3.1-8b", gpu_memory_gib=24, seq=4096, methods=["lora"], recipe_format="trl")
    assert result.structured_content == expected.model_dump(mode="json")
    assert result.structured_content["options"][0]["settings"]["loss"] == "trl_chunked"
    error = error_of(call(build_server(reports), "fit_training", {**arguments, "format": "deepspeed"}))
    assert "format" in fields_of(error)


def test_fit_training_names_bad_fields(reports):
    error = error_of(call(build_server(reports), "fit_training", {"model": "qwen2.5-0.5b", "gpu": "b9000"}))
    assert "gpu" in fields_of(error)
    error = error_of(call(build_server(reports), "fit_training", {"model": "qwen2.5-0.5b", "gpus": 0}))
    assert "gpus" in fields_of(error)


def test_write_training_recipe_returns_the_file_and_writes_only_in_its_folder(reports, tmp_path):
    server = build_server(reports)
    base = {"model": "qwen2.5-0.5b", "gpu": "l4", "method": "lora"}
    result = call(server, "write_training_recipe", {**base, "format": "trl"})
    assert not result.is_error and result.structured_content["path"] is None
    assert "SFTTrainer(" in result.structured_content["content"]
    assert result.structured_content["settings"]["loss"] == "trl_chunked"  # planned with the loss TRL runs
    assert not any(reports.iterdir())
    result = call(server, "write_training_recipe", {**base, "format": "axolotl", "filename": "axolotl.yaml"})
    assert result.structured_content["path"] == str(reports.resolve() / "axolotl.yaml")
    assert (reports / "axolotl.yaml").read_text() == result.structured_content["content"]
    wrong = error_of(call(server, "write_training_recipe", {**base, "format": "trl", "filename": "train.yaml"}))
    assert "filename" in fields_of(wrong)
    outside = tmp_path / "outside"
    outside.mkdir()
    routes = escape_routes(reports, outside)
    (reports / "escape.py").symlink_to(outside / "escape.py")
    for what in ("absolute", "parent", "nested parent", "linked folder", "linked file", "not markdown", "NUL"):
        filename = routes[what].replace(".md", ".py")
        error = error_of(call(server, "write_training_recipe", {**base, "format": "trl", "filename": filename}))
        assert "filename" in fields_of(error), what
    assert not any(outside.iterdir())


def test_write_training_recipe_refuses_when_nothing_fits(reports):
    server = build_server(reports)
    error = error_of(call(server, "write_training_recipe", {"model": "llama-3.1-70b", "gpu": "t4", "format": "trl"}))
    assert error["code"] == "refused"
