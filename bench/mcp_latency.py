"""Latency of `assess_lora_fit` through MCP, and the start-up time of `advisor mcp`.

Prints the median of:
- start-up: spawning `python -m advisor mcp` until its `initialize` answer arrives
  (a fresh process each run, as an MCP client starts it), next to the floor of
  importing the SDK's server (`python -c "import mcp.server.mcpserver"`);
- `assess_lora_fit` through the SDK's in-process client (`mcp.Client(server)`), target under 20 ms;
- `assess_lora_fit` over stdio after start-up, target under 50 ms;
- `advisor.assess` called directly, the work every door shares.

Each latency excludes a first warm-up call. The client validates every result against
the tool's output schema, as agents' SDK clients do; that is part of what is timed.

    .venv/bin/python bench/mcp_latency.py [--calls 50] [--starts 7] [--example sql-dialect]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import anyio
from mcp import Client, ClientSession, StdioServerParameters, stdio_client

from advisor.agents.mcp_server import build_server
from advisor.assessment.service import assess
from advisor.assessment.worked_examples import example_path
from advisor.files import load_mapping

ROOT = Path(__file__).resolve().parents[1]
SERVER = StdioServerParameters(
    command=sys.executable, args=["-m", "advisor", "mcp"], cwd=str(ROOT), env=dict(os.environ)
)


async def timed_calls(call, calls: int) -> list[float]:
    await call()  # warm-up: first-use caches (rubric, license table, output-schema validator)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        result = await call()
        samples.append(time.perf_counter() - start)
        assert not result.is_error, result.content[0].text
    return samples


async def in_process(arguments: dict, calls: int) -> list[float]:
    async with Client(build_server()) as client:
        return await timed_calls(lambda: client.call_tool("assess_lora_fit", arguments), calls)


async def over_stdio(arguments: dict, calls: int) -> list[float]:
    async with stdio_client(SERVER) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        await client.list_tools()  # as clients do; the result validator needs the output schemas
        return await timed_calls(lambda: client.call_tool("assess_lora_fit", arguments), calls)


async def start_up() -> float:
    start = time.perf_counter()
    async with stdio_client(SERVER) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        return time.perf_counter() - start


def import_floor() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import mcp.server.mcpserver"], check=True, cwd=ROOT)
    return time.perf_counter() - start


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def measure(calls: int = 50, starts: int = 7, example: str = "sql-dialect") -> dict:
    """Median seconds of assess_lora_fit called directly, in-process and over stdio, and of the server's start-up."""
    answers = load_mapping(example_path(example), field="--example")
    arguments = {"answers": answers}
    assess(answers)
    direct = []
    for _ in range(calls):
        start = time.perf_counter()
        assess(answers)
        direct.append(time.perf_counter() - start)
    local = anyio.run(in_process, arguments, calls)
    stdio = anyio.run(over_stdio, arguments, calls)
    import_floor()  # warm the OS file cache and .pyc files before timing start-ups
    start_times, floors = [], []
    for _ in range(starts):  # in turns, so that load on the machine hits both alike
        start_times.append(anyio.run(start_up))
        floors.append(import_floor())
    median = statistics.median
    return {
        "example": example,
        "calls": calls,
        "starts": starts,
        "direct_s": median(direct),
        "in_process_s": median(local),
        "stdio_s": median(stdio),
        "start_up_s": median(start_times),
        "sdk_import_s": median(floors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--starts", type=int, default=7)
    parser.add_argument("--example", default="sql-dialect")  # names no base model: the estimator is not run
    args = parser.parse_args()
    m = measure(args.calls, args.starts, args.example)
    print(f"assess_lora_fit ({args.example}), median of {args.calls} calls after one warm-up:")
    print(f"  advisor.assess() directly          {ms(m['direct_s'])}")
    print(f"  MCP, in-process client             {ms(m['in_process_s'])}   (target: under 20 ms)")
    print(f"  MCP, stdio after start-up          {ms(m['stdio_s'])}   (target: under 50 ms)")
    print(f"advisor mcp start-up, median of {args.starts}:")
    print(f"  spawn to initialize answered       {ms(m['start_up_s'])}")
    print(f"  python -c 'import mcp.server.mcpserver' {ms(m['sdk_import_s'])}   (the SDK's import alone)")


if __name__ == "__main__":
    main()
