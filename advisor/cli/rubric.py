"""`advisor rubric validate`: check that rubric data and the engine agree."""

from __future__ import annotations

from pathlib import Path

import click

from ..files import dumps_json
from ..rubric import default_rubric_path, validate_rubric


@click.group()
def rubric() -> None:
    """Check rubric data against the engine."""


@rubric.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def validate(path: Path | None, as_json: bool) -> None:
    """Validate a rubric (default: the shipped one) and its license table; exit 2 naming every problem."""
    checked = validate_rubric(path)
    where = path or default_rubric_path()
    counts = {
        "questions": len(checked.questions),
        "criteria": len(checked.criteria),
        "options": len(checked.options),
        "rules": len(checked.rules),
        "gates": len(checked.gates),
        "cautions": len(checked.cautions),
        "sources": len(checked.sources),
    }
    if as_json:
        click.echo(dumps_json({"valid": True, "rubric": checked.version_label, "path": str(where), "counts": counts}), nl=False)
    else:
        click.echo(f"ok: rubric {checked.version_label} ({where}): " + ", ".join(f"{n} {k}" for k, n in counts.items()))
