"""The worked examples shipped with advisor: answer files and their expected outcomes.

`examples/<name>.yaml` holds a team's answers; `examples/expected.yaml` holds the
decision and primary option each one must produce (checked by the tests). The
README's main command assesses `DEFAULT_EXAMPLE`. (The module is not called
`examples` so that it cannot be confused with a wheel's `advisor/examples` folder.)
"""

from __future__ import annotations

from pathlib import Path

from ..errors import FieldIssue, InvalidInput
from ..package_data import data_dir

EXPECTED_FILE = "expected.yaml"
DEFAULT_EXAMPLE = "support-tone"


def example_names() -> list[str]:
    """Every worked example, by name (the answer file's stem)."""
    return sorted(p.stem for p in data_dir("examples").glob("*.yaml") if p.name != EXPECTED_FILE)


def example_path(name: str) -> Path:
    """The answer file of example `name`; raises InvalidInput listing the examples."""
    names = example_names()
    if name not in names:
        raise InvalidInput(
            f"no example named {name!r}",
            fields=[FieldIssue(field="--example", message=f"unknown example {name!r}", allowed=names)],
        )
    return data_dir("examples") / f"{name}.yaml"


def expected_outcomes() -> dict[str, dict[str, str]]:
    """Example name -> {"decision": ..., "primary": ...}, from `examples/expected.yaml`."""
    from ..files import load_mapping

    return load_mapping(data_dir("examples") / EXPECTED_FILE, field="expected")


def example_problems(rubric=None) -> list[FieldIssue]:
    """Every worked example whose decision or primary option differs from `examples/expected.yaml`
    under `rubric` (default: the shipped one), and every example without an expectation."""
    from ..files import load_mapping
    from .service import assess

    expected = expected_outcomes()
    problems = [
        FieldIssue(field=f"examples.{name}", message="no expected outcome in examples/expected.yaml")
        for name in example_names()
        if name not in expected
    ]
    for name, outcome in expected.items():
        where = f"examples.{name}"
        try:
            result = assess(load_mapping(example_path(name), field=where), rubric=rubric)
        except InvalidInput as exc:
            problems.append(FieldIssue(field=where, message=f"cannot be assessed: {exc}"))
            continue
        got = {"decision": result.decision, "primary": result.primary}
        if got != {"decision": outcome.get("decision"), "primary": outcome.get("primary")}:
            problems.append(
                FieldIssue(
                    field=where,
                    message=f"gives {got['decision']} with primary {got['primary']}; "
                    f"expected {outcome.get('decision')} with primary {outcome.get('primary')}",
                )
            )
    return problems
