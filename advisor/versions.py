"""Installed package versions, for stamping results and reports (read from metadata, never imported)."""

from __future__ import annotations

from functools import cache


@cache  # a process sees one installation; reading metadata parses files (milliseconds each)
def installed_version(distribution: str) -> str | None:
    """The installed version of `distribution`, or None when it is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def installed_versions(*distributions: str) -> dict[str, str]:
    """{name: version} for those of `distributions` that are installed."""
    return {name: v for name in distributions if (v := installed_version(name)) is not None}
