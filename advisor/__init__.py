"""advisor: decide whether to adapt a model with LoRA, or use something cheaper first.

The public API. Every door (the CLI, the MCP server, the reports) calls these
functions and returns the same pydantic models.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("advisor")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
