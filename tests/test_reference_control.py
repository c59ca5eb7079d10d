"""One reference run at a time, cancellation, progress and temporary folders, over the Python API and a real
stdio MCP session (`python -m advisor mcp` as a client starts it)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from advisor.reference.control import TEMP_PREFIX
from tests.conftest import ROOT
from tests.test_reference_run import ONE_THREAD, tiny_config

pytest.importorskip("peft")


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def server_params(tmp: Path) -> StdioServerParameters:
    """`python -m advisor mcp` with its own temporary folder, so what a run leaves there can be seen."""
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "advisor", "mcp"],
        cwd=str(ROOT),
        env={**os.environ, **ONE_THREAD, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)},
    )


def run_folders(tmp: Path) -> list[Path]:
    return sorted(tmp.glob(f"{TEMP_PREFIX}*"))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_two_overlapping_calls_one_runs_one_is_refused_busy_and_the_server_lives_on(tmp_path):
    """An agent retrying after a client timeout: the second call arrives while the first trains."""
    config = tiny_config(tmp_path / "m")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    long_run = {"model": str(config), "steps": 50, "max_seconds": 20}
    errlog_path = tmp_path / "stderr.txt"

    async def session():
        training = anyio.Event()

        async def on_progress(progress, total, message):
            if message and "step" in message:
                training.set()

        results = {}
        with anyio.fail_after(150), errlog_path.open("w") as errlog:
            async with stdio_client(server_params(tmp), errlog=errlog) as (r, w), ClientSession(r, w) as client:
                await client.initialize()

                async def first():
                    results["first"] = await client.call_tool(
                        "run_reference_lora", long_run, progress_callback=on_progress
                    )

                async def second():
                    await training.wait()
                    results["second"] = await client.call_tool("run_reference_lora", {**long_run, "steps": 2})

                async with anyio.create_task_group() as group:
                    group.start_soon(first)
                    group.start_soon(second)
                results["after"] = await client.call_tool("run_reference_lora", {**long_run, "steps": 2})
                results["tools"] = await client.list_tools()
        return results

    results = anyio.run(session)
    first, second, after = results["first"], results["second"], results["after"]
    assert not first.is_error, first.content[0].text
    assert first.structured_content["lora"]["figures"] is not None
    assert second.is_error
    error = json.loads(second.content[0].text)["error"]
    assert error["code"] == "busy" and "call again when it has finished" in error["message"]
    assert not after.is_error, after.content[0].text  # served once the first had finished
    assert results["tools"].tools
    assert run_folders(tmp) == []
    assert "Traceback" not in errlog_path.read_text()


def test_a_cancelled_call_stops_training_and_leaves_no_folder(tmp_path):
    """The client gives up (here: cancels after three steps; a request timeout does the same) and sends
    notifications/cancelled: the server stops training within a step, removes the run's folder, and idles."""
    # steps of about a tenth of a second: the 97 steps left would take far longer than one
    config = tiny_config(tmp_path / "m", hidden_size=512, intermediate_size=2048, vocab_size=4096)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    errlog_path = tmp_path / "stderr.txt"

    async def session():
        steps: list[float] = []
        scope = anyio.CancelScope()

        async def on_progress(progress, total, message):
            if message and "step" in message:
                steps.append(time.monotonic())
                if len(steps) == 4:
                    scope.cancel()

        with anyio.fail_after(150), errlog_path.open("w") as errlog:
            async with stdio_client(server_params(tmp), errlog=errlog) as (r, w), ClientSession(r, w) as client:
                await client.initialize()
                arguments = {"model": str(config), "steps": 50, "seq": 256, "max_seconds": 600}
                with scope:
                    await client.call_tool("run_reference_lora", arguments, progress_callback=on_progress)
                cancelled = time.monotonic()
                assert scope.cancelled_caught and len(steps) == 4
                pids = {int(f.name.removeprefix(TEMP_PREFIX).split("-")[0]) for f in run_folders(tmp)}
                deadline = cancelled + 30
                while run_folders(tmp) and time.monotonic() < deadline:
                    await anyio.sleep(0.01)
                gone = time.monotonic()
                assert run_folders(tmp) == [], "the run's temporary folder is removed once it has stopped"
                step = max(b - a for a, b in zip(steps[1:], steps[2:], strict=False))
                left = (100 - 4) * min(b - a for a, b in zip(steps[1:], steps[2:], strict=False))
                assert gone - cancelled < 2 * step + 1.0 < left, (gone - cancelled, step, left)
                # idle now: a quiet second uses a small fraction of a core
                idle = {}
                for pid in pids:
                    before = cpu_seconds(pid)
                    await anyio.sleep(1.0)
                    idle[pid] = cpu_seconds(pid) - before
                # the lock is free again: a new run is served
                again = await client.call_tool("run_reference_lora", {**arguments, "steps": 2, "seq": 64})
        return idle, again

    idle, again = anyio.run(session)
    assert len(idle) == 1, "the server's run had a temporary folder named after its process"
    assert all(v < 0.3 for v in idle.values()), f"CPU seconds used in the second after the cancellation: {idle}"
    assert not again.is_error, again.content[0].text
    assert run_folders(tmp) == []


def test_cancel_stops_the_python_api_within_one_step(tmp_path):
    from advisor.reference import default_settings, reference_run
    from advisor.reference.control import Cancelled

    cancel = threading.Event()
    seen: list[tuple[float, str]] = []

    def progress(description, done, total):
        seen.append((time.monotonic(), description))
        if sum("step" in d for _, d in seen) == 3:
            cancel.set()

    with pytest.raises(Cancelled) as info:
        reference_run(str(tiny_config(tmp_path)), default_settings(), steps=10_000, progress=progress, cancel=cancel)
    stopped = time.monotonic()
    times = [t for t, d in seen if "step" in d]
    assert len(times) == 3, "no step begins after the cancellation"
    step = max(b - a for a, b in zip(times, times[1:], strict=False))
    assert stopped - times[-1] < step + 0.5
    assert info.value.code == "cancelled"


def test_a_second_run_in_the_same_process_is_refused_busy_while_the_first_trains(tmp_path):
    from advisor.errors import Busy
    from advisor.reference import default_settings, reference_run

    config = str(tiny_config(tmp_path))
    training, done = threading.Event(), threading.Event()
    outcome = {}

    def first():
        try:
            outcome["run"] = reference_run(
                config, default_settings(), steps=300, max_seconds=4, progress=lambda d, *_: training.set()
            )
        finally:
            done.set()

    thread = threading.Thread(target=first)
    thread.start()
    assert training.wait(60)
    with pytest.raises(Busy) as info:
        reference_run(config, default_settings(), steps=2)
    assert info.value.code == "busy" and "stops within about" in info.value.message
    thread.join(180)
    assert outcome["run"].complete is False  # the first ran to its time limit undisturbed
    assert reference_run(config, default_settings(), steps=2).complete  # and the lock was released


def test_the_folder_of_a_killed_run_is_removed_at_the_next_start(tmp_path):
    import subprocess

    from advisor.reference.control import remove_stale_folders

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{TEMP_PREFIX}{dead.pid}-abc"
    stale.mkdir()
    (stale / "adapter.safetensors").write_bytes(b"x")
    live = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-def"
    live.mkdir()
    other = tmp_path / "advisor-reference-notapid"
    other.mkdir()
    assert remove_stale_folders(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and other.exists()
