"""The MCP server over a real stdio pipe survives what agents send at machine speed.

Raw JSON-RPC lines, written the way a buggy or hostile client would: malformed JSON,
unknown methods and tools, oversized arguments, and 50 concurrent calls whose results
must come back to the right request ids. The process must answer all of it, keep
serving, and exit cleanly when stdin closes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("mcp")

from tests.conftest import ROOT  # noqa: E402

PROTOCOL = "2025-06-18"


class RawClient:
    """A line-based JSON-RPC peer on the server's stdin/stdout."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "advisor", "mcp"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.responses: dict[int, dict] = {}
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:  # the server must only ever write JSON-RPC
                message = {"id": -1, "invalid_line": line}
            with self.cond:
                if "id" in message and message["id"] is not None:
                    self.responses[message["id"]] = message
                self.cond.notify_all()

    def send_line(self, line: str):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def request(self, id_: int, method: str, params: dict | None = None):
        self.send_line(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params or {}}))

    def wait(self, id_: int, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        with self.cond:
            while id_ not in self.responses:
                left = deadline - time.monotonic()
                assert left > 0, f"no response to request {id_}; server alive: {self.proc.poll() is None}"
                self.cond.wait(left)
            return self.responses[id_]

    def initialize(self):
        self.request(
            0,
            "initialize",
            {
                "protocolVersion": PROTOCOL,
                "capabilities": {},
                "clientInfo": {"name": "robustness-test", "version": "0"},
            },
        )
        assert "result" in self.wait(0)
        self.send_line(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))

    def call(self, id_: int, tool: str, arguments):
        self.request(id_, "tools/call", {"name": tool, "arguments": arguments})

    def close(self) -> tuple[int, str]:
        self.proc.stdin.close()
        code = self.proc.wait(timeout=30)
        return code, self.proc.stderr.read()


@pytest.fixture
def client():
    c = RawClient()
    c.initialize()
    yield c
    if c.proc.poll() is None:
        c.proc.kill()


def _is_error(response: dict) -> bool:
    return "error" in response or response.get("result", {}).get("isError") is True


def test_survives_malformed_input_unknown_tools_and_oversized_arguments(client):
    client.send_line("{this is not json")
    client.send_line(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "no/such/method"}))
    client.call(2, "no_such_tool", {})
    client.call(3, "assess_lora_fit", {"answers": {"goal": "x" * 5_000_000}})
    client.call(4, "assess_lora_fit", "not an object")
    client.call(5, "assess_lora_fit", {"answers": {"change_kind": "telepathy", "surprise": 1}})
    client.call(6, "render_report", {"answers": {}, "filename": "../../etc/passwd.md"})

    assert _is_error(client.wait(1))
    for id_ in (2, 3, 4, 5, 6):
        assert _is_error(client.wait(id_)), id_
    text = client.wait(5)["result"]["content"][0]["text"]
    assert "change_kind" in text and "surprise" in text  # every bad field named
    assert "goal" in client.wait(3)["result"]["content"][0]["text"]

    # still serving, and serving correctly
    client.call(7, "assess_lora_fit", {"answers": {"change_kind": "knowledge"}})
    result = client.wait(7)["result"]
    assert not result.get("isError") and result["structuredContent"]["primary"] == "retrieval"
    assert -1 not in client.responses  # nothing but JSON-RPC on stdout
    code, stderr = client.close()
    assert code == 0 and "Traceback" not in stderr


def test_fifty_concurrent_calls_come_back_to_their_requests(client):
    kinds = {"knowledge": "retrieval", "actions": "tool_access"}
    expected = {}
    for id_ in range(100, 150):
        kind = "knowledge" if id_ % 2 else "actions"
        expected[id_] = kinds[kind]
        client.call(id_, "assess_lora_fit", {"answers": {"change_kind": kind, "goal": f"request {id_}"}})
    for id_, primary in expected.items():
        result = client.wait(id_)["result"]
        content = result["structuredContent"]
        assert not result.get("isError")
        assert content["primary"] == primary
        assert content["answers"]["goal"] == f"request {id_}"
    code, stderr = client.close()
    assert code == 0 and "Traceback" not in stderr
