"""`advisor mcp`: serve the advisor's tools to AI agents over the Model Context Protocol (stdio)."""

from __future__ import annotations

import gc
from pathlib import Path

import click

from ..errors import MissingDependency

MCP_INSTALL = "pip install 'advisor[mcp]'"


@click.command("mcp", short_help="Serve the advisor's tools to AI agents over MCP (stdio).")
@click.option(
    "--reports-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help=(
        "An existing folder render_report may write reports into, and nowhere else. Without it, reports come back "
        "as markdown only."
    ),
)
@click.option(
    "--data-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="An existing folder inspect_dataset and assess_lora_fit may read datasets from, and nowhere else. Without "
    "it, they read no data.",
)
def mcp_command(reports_dir: Path | None, data_dir: Path | None) -> None:
    """Serve the advisor's tools over MCP (`advisor schema --format openai` lists them with their arguments).

    Speaks JSON-RPC on stdin and stdout until stdin closes: configure an MCP client to
    start `advisor mcp` rather than running it by hand. Logs go to stderr.
    """
    try:
        from ..agents.mcp_server import build_server
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in ("mcp", "mcp_types"):
            raise MissingDependency(f"`advisor mcp` needs the MCP Python SDK: run `{MCP_INSTALL}`") from None
        raise
    build_server(reports_dir, data_dir).run("stdio")
    # stdin closed: the client waits about 2 s for the server to exit, then kills it. Once the
    # estimator has loaded torch, transformers and peft, the interpreter's final garbage
    # collection alone takes 1-2 s; freezing the heap skips it (the OS reclaims the memory).
    gc.freeze()
