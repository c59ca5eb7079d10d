"""`python -m advisor` and the `advisor` script: the command line, started with garbage collection paused.

Start-up builds tens of thousands of objects that live as long as the process (modules,
classes, pydantic validators, click commands). The cyclic collector would walk them
again at every collection while they are built, and once more at exit: about 8% of a
short command's instructions (`bench/cold_start.py`). So collection stays off until the
command's module is imported; `advisor.cli` then freezes what start-up built (moved out
of every later collection's reach) and turns collection back on, so a long command (a
reference run, the MCP server) collects its own garbage as usual.
"""

import gc


def main() -> None:
    gc.disable()
    from .cli import main as run

    run()


if __name__ == "__main__":
    main()
