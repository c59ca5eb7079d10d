"""One reference run at a time in a process, stoppable between steps, and no temporary folder left behind.

- **One at a time.** A run measures the whole process's memory (the CPU tracker is
  the torch profiler, which is process-wide: two at once crash the process in
  Kineto) and its step times compete for the same cores, so two runs side by side
  would measure each other. `exclusive()` admits one run per process; a second call
  made while it is under way is refused at once with the error code `busy`, saying
  how long the run under way may still take. Refusing, rather than queueing, keeps
  a caller's request from waiting past its own timeout for work it cannot see.
- **Stoppable.** `Stop` is the run's time limit and its caller's cancellation in one
  object: training checks it before every step, the serving check before every
  timed pass. The time limit ends the run with what was measured; a cancellation
  ends it with `Cancelled`.
- **Nothing left behind.** The run's temporary folder is named after the process
  (`advisor-reference-<pid>-...`) and removed on every exit; a process killed
  outside Python's control leaves one, which the next run (or the next MCP server)
  on the machine removes once no process has that pid.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import Busy, Interrupted

TEMP_PREFIX = "advisor-reference-"

_lock = threading.Lock()
_current: dict[str, float | None] = {}  # the run under way: when it started, its time limit


class Cancelled(Interrupted):
    """The caller cancelled the run (an MCP client's `notifications/cancelled`, or `Stop.cancel()`)."""

    code = "cancelled"

    def __init__(self, message: str = "the reference run was cancelled; nothing was kept"):
        super().__init__(message)


class Stop:
    """The run's time limit (`max_seconds` from now, or none) and its cancellation."""

    def __init__(self, seconds: float | None = None, cancel: threading.Event | None = None):
        self.at = None if seconds is None else time.monotonic() + seconds
        self.cancel_event = cancel or threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def passed(self) -> bool:
        """Whether to stop now: the time limit passed. Raises `Cancelled` if the caller cancelled."""
        if self.cancel_event.is_set():
            raise Cancelled()
        return self.at is not None and time.monotonic() >= self.at


@contextmanager
def exclusive(max_seconds: float | None) -> Iterator[None]:
    """Hold the process's one reference run for the block; `Busy` if another holds it."""
    if not _lock.acquire(blocking=False):
        started, limit = _current.get("started"), _current.get("limit")
        elapsed = time.monotonic() - started if started is not None else 0.0
        left = f"; it stops within about {max(limit - elapsed, 0) + 5:.0f} s" if limit is not None else ""
        raise Busy(
            f"another reference run is under way in this process (started {elapsed:.0f} s ago{left}); runs "
            "are measured one at a time because each measures the whole process's memory and CPU: call again "
            "when it has finished"
        )
    try:
        _current.update(started=time.monotonic(), limit=max_seconds)
        yield
    finally:
        _current.clear()
        _lock.release()


@contextmanager
def temporary_folder() -> Iterator[Path]:
    """A private temporary folder for one run, named after this process, removed however the block ends."""
    remove_stale_folders()
    path = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def remove_stale_folders(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Remove the temporary folders of runs whose process is gone (killed with SIGKILL, or the machine
    lost power); folders of live processes and other users' folders are left alone. Returns those removed."""
    folder = Path(root or tempfile.gettempdir())
    removed = []
    try:
        candidates = list(folder.glob(f"{TEMP_PREFIX}*"))
    except OSError:
        return removed
    for path in candidates:
        pid = _pid_of(path.name)
        try:
            mine = path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid()
        except OSError:
            continue
        if pid is None or not mine or pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _pid_of(name: str) -> int | None:
    head = name.removeprefix(TEMP_PREFIX).split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user has that pid
        return True
    return True
