"""`advisor schema`: the contracts as JSON Schema, or the tools as strict OpenAI tool definitions."""

from __future__ import annotations

import click

from ..files import dumps_json


@click.command(short_help="Print the JSON Schemas of the contracts, or the tools as OpenAI tool definitions.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json-schema", "openai"]),
    default="json-schema",
    show_default=True,
    help="json-schema: answers, assessment, training_settings, estimate and dataset_report (draft 2020-12); "
    "openai: the MCP server's tools as function definitions valid under OpenAI strict mode.",
)
def schema(fmt: str) -> None:
    """Print the JSON Schemas agents validate against, or the tools as OpenAI function definitions (JSON on stdout).

    In the openai definitions every argument is required; null stands for a left-out
    argument, which is how `advisor.agents.tools.call_tool` and `advisor mcp` read it too.
    """
    from ..agents.schemas import contract_schemas, openai_tools

    click.echo(dumps_json(contract_schemas() if fmt == "json-schema" else openai_tools()), nl=False)
