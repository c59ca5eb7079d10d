"""Helpers for commands that run for a while (the reference run): SIGTERM like Ctrl-C, a progress bar."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

from ..errors import EXIT_SIGTERM, Interrupted


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises `Interrupted` (exit 143) where the program is, so cleanup runs as for Ctrl-C."""

    def stop(signum, frame):
        raise Interrupted("terminated (SIGTERM)", exit_code=EXIT_SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def progress_bar(enabled: bool):
    """A rich progress bar on stderr, as a `progress(description, done, total)` callback; None when disabled."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("reference run", total=None)

        def update(description: str, done: int, total: int) -> None:
            bar.update(task, description=description, completed=done, total=total)

        yield update
