"""`advisor mcp`: the tools of `advisor.agents.tools` served over the Model Context Protocol.

Built on the official SDK (v2, `MCPServer`). Each tool is registered as its
contract says: the input model's JSON Schema is the tool's `inputSchema`, the
output model is its `outputSchema` and the result its structured content. This
module only translates between the protocol and `advisor.agents.tools`:

- arguments reach `Tool.parse`, which refuses unknown keys and names every bad
  field (the SDK alone would drop keys a tool does not declare, so calls that
  carry them are checked here, before the SDK sees them);
- an `AdvisorError` comes back as a tool error (`isError`) whose text is the same
  `{"error": {"code", "message", "fields"}}` object `advisor ... --json` prints;
- anything else is a bug of ours: the SDK logs it and the caller gets no details.

Importing this module imports neither torch nor transformers nor peft; the
estimator loads them inside its first call.
"""

from __future__ import annotations

import inspect
import json
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool as SDKTool
from mcp.types import CallToolResult, ToolAnnotations

from ..errors import AdvisorError
from .tools import TOOLS, CallControl, Tool, ToolContext

INSTRUCTIONS = (
    "advisor decides whether a team should adapt a model with LoRA or use something cheaper first. "
    "Call assess_lora_fit with whatever answers you have (list_questions says what each one means); "
    "its what_would_change lists the questions worth asking the user next. "
    "Errors name each bad field and the values it accepts: fix those and call again. Tools: "
    + "; ".join(f"{tool.name}: {tool.title}" for tool in TOOLS.values())
    + "."
)


class AdvisorServer(MCPServer):
    """An `MCPServer` whose tool errors are advisor's error objects."""

    def __init__(self, context: ToolContext):
        from .. import __version__

        super().__init__(
            name="advisor",
            version=__version__,
            instructions=INSTRUCTIONS,
            tools=[_sdk_tool(tool, context) for tool in TOOLS.values()],
            log_level="WARNING",  # stderr is the client's log; rejected arguments are answered, not logged
        )

    async def call_tool(self, name: str, arguments: dict[str, Any], context=None) -> CallToolResult:
        tool = TOOLS.get(name)
        if tool is not None and not arguments.keys() <= tool.input.model_fields.keys():
            try:
                tool.parse(arguments)  # refuses the unknown keys, with every other problem in the arguments
            except AdvisorError as exc:
                raise ToolError(error_text(exc)) from exc
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, AdvisorError):
                raise ToolError(error_text(exc.__cause__)) from exc.__cause__
            raise


def build_server(reports_dir: str | Path | None = None, data_dir: str | Path | None = None) -> AdvisorServer:
    """The server, with `render_report` writing under `reports_dir` (and only there) and `inspect_dataset` and
    `assess_lora_fit` reading datasets under `data_dir` (and only there); None: it writes, or reads, nothing.
    Temporary folders that reference runs of killed processes left behind are removed first."""
    from ..reference.control import remove_stale_folders

    remove_stale_folders()
    return AdvisorServer(
        ToolContext(
            reports_dir=Path(reports_dir).resolve() if reports_dir is not None else None,
            data_dir=Path(data_dir).resolve() if data_dir is not None else None,
        )
    )


def error_text(error: AdvisorError) -> str:
    """The tool error's text: the JSON error object of the CLI, for the model to read and correct."""
    return json.dumps({"error": error.info().model_dump(mode="json")}, ensure_ascii=False)


def _sdk_tool(tool: Tool, context: ToolContext) -> SDKTool:
    """Register `tool` with the SDK: one keyword parameter per input field, validated by `Tool.parse`."""

    def call(**arguments: Any) -> Any:
        return tool.run(tool.parse(arguments), context)

    parameters = [
        inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Any)
        for field in tool.input.model_fields
    ]
    if tool.controlled:
        call = _controlled_call(tool, context)
        parameters.append(inspect.Parameter(_CONTEXT, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Context))
    # The SDK builds its argument model from the signature; `Any` leaves validation to the contract's
    # model, and None (left out) lets `Tool.parse` apply the defaults and report missing fields.
    call.__signature__ = inspect.Signature(parameters, return_annotation=tool.output)
    call.__name__ = tool.name
    registered = SDKTool.from_function(
        call,
        name=tool.name,
        title=tool.title,
        description=tool.description,
        annotations=ToolAnnotations(
            title=tool.title,
            read_only_hint=tool.read_only,
            destructive_hint=not tool.read_only,
            idempotent_hint=True,
            open_world_hint=tool.open_world,
        ),
        structured_output=True,
        context_kwarg=_CONTEXT if tool.controlled else None,
    )
    registered.parameters = tool.input.model_json_schema()  # advertise the contract itself, extras forbidden
    return registered


_CONTEXT = "mcp_context"  # the SDK's request context, passed to controlled tools; not an argument
POLL_SECONDS = 0.02


def _controlled_call(tool: Tool, context: ToolContext):
    """`tool` run in a worker thread with progress notifications and cancellation.

    The SDK runs a plain function in a worker thread and, when the client cancels (or its
    request times out and it sends `notifications/cancelled`), waits for the thread to
    finish on its own. Here the thread gets a cancellation flag instead: on cancellation the
    flag is set, the call waits (shielded) until the thread has stopped at its next check,
    which is within one training step or one timed pass, and then ends as cancelled."""

    async def call(**arguments: Any) -> Any:
        ctx = arguments.pop(_CONTEXT, None)
        parsed = tool.parse(arguments)
        cancel, finished = threading.Event(), threading.Event()

        def progress(description: str, done: int, total: int) -> None:
            if ctx is None or cancel.is_set():
                return
            try:
                anyio.from_thread.run(ctx.report_progress, done, total, description)
            except Exception:  # noqa: BLE001 - a notification that cannot be sent must not stop the run
                pass

        def work():
            try:
                return tool.run(parsed, context, control=CallControl(progress=progress, cancel=cancel))
            finally:
                finished.set()

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            cancel.set()
            with anyio.CancelScope(shield=True):
                while not finished.is_set():
                    await anyio.sleep(POLL_SECONDS)
            raise

    return call
