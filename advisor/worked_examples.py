"""The worked examples shipped with advisor: answer files and their expected outcomes.

`examples/<name>.yaml` holds a team's answers; `examples/expected.yaml` holds the
decision and primary option each one must produce (checked by the tests). The
README's main command assesses `DEFAULT_EXAMPLE`. (The module is not called
`examples` so that it cannot be confused with a wheel's `advisor/examples` folder.)
"""

from __future__ import annotations

from pathlib import Path

from .data import data_dir
from .errors import FieldIssue, InvalidInput

EXPECTED_FILE = "expected.yaml"
DEFAULT_EXAMPLE = "support-tone"


def example_names() -> list[str]:
    """Every worked example, by name (the answer file's stem)."""
    return sorted(p.stem for p in data_dir("examples").glob("*.yaml") if p.name != EXPECTED_FILE)


def example_path(name: str) -> Path:
    """The answer file of example `name`; raises InvalidInput listing the examples."""
    names = example_names()
    if name not in names:
        raise InvalidInput(f"no example named {name!r}", fields=[FieldIssue(field="--example", message=f"unknown example {name!r}", allowed=names)])
    return data_dir("examples") / f"{name}.yaml"


def expected_outcomes() -> dict[str, dict[str, str]]:
    """Example name -> {"decision": ..., "primary": ...}, from `examples/expected.yaml`."""
    from .files import load_mapping

    return load_mapping(data_dir("examples") / EXPECTED_FILE, field="expected")
