"""The CLI as agents use it: every command with --json reports errors as JSON; `advisor mcp` fails cleanly."""

from __future__ import annotations

import json
import sys

import click
import pytest
from click.testing import CliRunner

from advisor.cli import COMMANDS, cli


def json_commands() -> list[tuple[str, ...]]:
    """The path of every command (subcommands included) that takes --json."""
    ctx = click.Context(cli)
    found = []

    def visit(command: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                visit(command.get_command(ctx, name), (*path, name))
        elif any("--json" in param.opts for param in command.params):
            found.append(path)

    for name in COMMANDS:
        visit(cli.get_command(ctx, name), (name,))
    return found


def run(*args: str):
    return CliRunner().invoke(cli, list(args), prog_name="advisor")


def test_the_agent_commands_take_json():
    assert {("assess",), ("questions",), ("estimate",), ("models",), ("rubric", "validate")} <= set(json_commands())


@pytest.mark.parametrize("path", json_commands(), ids=" ".join)
def test_usage_errors_are_json_objects_with_exit_2(path):
    result = run(*path, "--json", "--no-such-option")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_input" and "--no-such-option" in error["message"]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("estimate", "--model", "qwen2.5-0.5b", "--rank", "0"), "rank"),
        (("estimate", "--model", "no-such-model"), "model"),
        (("estimate", "--model", "qwen2.5-0.5b", "--method", "dora"), "--method"),
        (("assess", "--example", "no-such-example"), "--example"),
    ],
)
def test_invalid_values_name_the_field_in_json(args, field):
    result = run(*args, "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert field in {issue["field"] for issue in error["fields"]}


def test_mcp_needs_an_existing_reports_folder(tmp_path):
    result = run("mcp", "--reports-dir", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert "--reports-dir" in result.stderr and "does not exist" in result.stderr


def test_mcp_without_the_sdk_names_the_install_command(monkeypatch):
    # `import mcp...` now fails as if the SDK were not installed, even where other tests imported it
    for name in ["mcp", *(m for m in sys.modules if m.startswith("mcp."))]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.delitem(sys.modules, "advisor.agents.mcp_server", raising=False)
    result = run("mcp")
    assert result.exit_code == 1
    assert "pip install 'advisor[mcp]'" in result.stderr
