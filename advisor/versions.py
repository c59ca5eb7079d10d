"""Installed package versions, for stamping results and reports (read from metadata, never imported).

A distribution installed by pip or uv has a `<name>-<version>.dist-info` folder on sys.path, so its version
is read from the folder's name; `importlib.metadata` (which parses the METADATA file and costs tens of
milliseconds to import) is the fallback for anything installed another way.
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache

_DIST_INFO = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)\.dist-info$")


@cache  # a process sees one installation
def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None when it is not installed."""
    wanted = _normalized(distribution)
    for folder in sys.path:
        for entry in _entries(folder or "."):
            match = _DIST_INFO.match(entry)
            if match and _normalized(match["name"]) == wanted:
                return match["version"]
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def installed_versions(*distributions: str) -> dict[str, str]:
    """{name: version} for those of `distributions` that are installed."""
    return {name: v for name in distributions if (v := installed_version(name)) is not None}


@cache
def _entries(folder: str) -> tuple[str, ...]:
    try:
        return tuple(name for name in os.listdir(folder) if name.endswith(".dist-info"))
    except OSError:
        return ()


def _normalized(name: str) -> str:
    """PEP 503 normalisation: case and runs of `-`, `_` and `.` do not matter."""
    return re.sub(r"[-_.]+", "-", name).lower()
