"""`advisor mcp` as an MCP client starts it: a subprocess on stdio, driven by the SDK's stdio client."""

from __future__ import annotations

import json
import os
import sys

import anyio
from mcp import ClientSession, StdioServerParameters, stdio_client

from advisor.agents.tools import TOOLS
from advisor.assessment.worked_examples import example_path
from advisor.files import load_mapping
from tests.conftest import ROOT

# Runs `python -m advisor mcp ARGS` with this process's stdin and stdout, then reports its exit
# status on stderr. The SDK kills the whole process tree when the server does not exit on its
# own once stdin closes, so the line appears only after a clean exit.
RUN_AND_REPORT = (
    "import subprocess, sys; "
    "code = subprocess.call([sys.executable, '-m', 'advisor', 'mcp', *sys.argv[1:]]); "
    "print(f'advisor mcp exited with {code}', file=sys.stderr)"
)


def test_stdio_session_lists_tools_calls_them_and_shuts_down_cleanly(tmp_path):
    answers = load_mapping(example_path("sql-dialect"), field="example")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-c", RUN_AND_REPORT, "--reports-dir", str(tmp_path)],
        cwd=str(ROOT),
        env=dict(os.environ),
    )
    errlog_path = tmp_path / "stderr.txt"

    async def session():
        with anyio.fail_after(120), errlog_path.open("w", encoding="utf-8") as errlog:
            async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as client:
                init = await client.initialize()
                tools = await client.list_tools()
                assessed = await client.call_tool("assess_lora_fit", {"answers": answers})
                estimated = await client.call_tool(
                    "estimate_training_memory", {"model": "qwen2.5-0.5b", "method": "qlora"}
                )
                rejected = await client.call_tool("assess_lora_fit", {"answers": {"stability": "sometimes"}})
        return init, tools, assessed, estimated, rejected

    init, tools, assessed, estimated, rejected = anyio.run(session)

    assert init.server_info.name == "advisor"
    assert {tool.name for tool in tools.tools} == set(TOOLS)
    assert not assessed.is_error
    assert assessed.structured_content["decision"] == "recommend_lora"
    assert not estimated.is_error
    assert estimated.structured_content["model"] == "qwen2.5-0.5b"
    assert estimated.structured_content["method"] == "qlora"
    assert estimated.structured_content["peak_bytes"] > 0
    assert rejected.is_error
    assert json.loads(rejected.content[0].text)["error"]["fields"][0]["field"] == "answers.stability"

    stderr = errlog_path.read_text(encoding="utf-8")
    assert "Traceback" not in stderr
    assert "advisor mcp exited with 0" in stderr, stderr
