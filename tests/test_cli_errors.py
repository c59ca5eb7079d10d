"""The command line's errors and help: exit codes, the JSON envelope, and what a person reads."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest

from tests.conftest import run_advisor
from tests.test_imports import HEAVY, loaded_modules


def test_unknown_command_is_a_usage_error_with_json():
    res = run_advisor("no-such-command", "--json")
    assert res.returncode == 2
    err = json.loads(res.stdout)["error"]
    assert err["code"] == "invalid_input"
    assert "no-such-command" in err["message"]


def test_version():
    res = run_advisor("--version")
    assert res.returncode == 0
    assert res.stdout == f"advisor {version('advisor')}\n"


@pytest.mark.parametrize("args", [[], ["rubric"]], ids=["advisor", "advisor-rubric"])
def test_a_group_without_a_command_prints_its_help_and_exits_0(args):
    res = run_advisor(*args)
    assert res.returncode == 0, res.stderr
    assert res.stdout == run_advisor(*args, "--help").stdout  # the same help --help prints
    assert res.stdout.startswith("Usage: advisor") and "\nCommands:\n" in res.stdout
    assert "\\n" not in res.stdout and "error" not in res.stdout + res.stderr


@pytest.mark.parametrize(
    "args", [["rubric", "nope", "--json"], ["assess", "--nope", "--json"], ["estimate", "--method", "x", "--json"]]
)
def test_other_usage_errors_still_exit_2_with_the_json_envelope(args):
    res = run_advisor(*args)
    assert res.returncode == 2
    assert json.loads(res.stdout)["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("extra", ["", "gpu_memory_gib: 24\n"], ids=["without-gpu-memory", "with-gpu-memory"])
def test_an_unknown_base_model_is_invalid_input_over_json(extra):
    res = run_advisor("assess", "--json", input=f"change_kind: style\nbase_model: lama-3.1-8b\n{extra}")
    assert res.returncode == 2
    error = json.loads(res.stdout)["error"]
    assert error["code"] == "invalid_input"
    assert [issue["field"] for issue in error["fields"]] == ["base_model"]
    assert "close matches: llama-3.1-8b" in error["fields"][0]["message"]


def test_an_unknown_base_model_in_words_names_the_field():
    res = run_advisor("assess", "--answers", "-", input="base_model: ./no/such/config.json\n")
    assert res.returncode == 2 and res.stdout == ""
    assert "base_model: no such file or folder: ./no/such/config.json" in res.stderr


def test_a_catalog_base_model_is_checked_without_importing_heavy_packages(tmp_path):
    answers = tmp_path / "answers.yaml"
    answers.write_text("change_kind: style\nbase_model: meta-llama/Llama-3.1-8B-Instruct\n", encoding="utf-8")
    code = (
        "from advisor.cli import cli\n"
        f"cli.main(['assess', '--answers', {str(answers)!r}, '--json'], standalone_mode=False)"
    )
    modules = loaded_modules(code)
    assert "advisor.model_specs" in modules  # the base model was resolved...
    assert not [m for m in modules if m.split(".")[0] in HEAVY]  # ...from the catalog alone


def test_a_file_error_names_its_option_in_words():
    res = run_advisor("assess", "--answers", "no-such-answers.yaml")
    assert res.returncode == 2
    assert res.stderr.startswith("error: --answers: no such file: no-such-answers.yaml")


def test_an_enum_error_lists_its_allowed_values_once():
    res = run_advisor("assess", "--answers", "-", input='{"change_kind": "bogus"}')
    assert res.returncode == 2
    line = next(line for line in res.stderr.splitlines() if "change_kind" in line)
    assert line.count("'style'") + line.count(" style,") == 1, line
    assert "got 'bogus'" in line and "allowed: style, format" in line
