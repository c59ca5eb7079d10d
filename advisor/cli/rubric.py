"""`advisor rubric validate` and `advisor rubric compile`: check rubric data against the engine, and store it
compiled for fast starts."""

from __future__ import annotations

from pathlib import Path

import click

from ..assessment.rubric_check import validate_rubric
from ..files import dumps_json


@click.group()
def rubric() -> None:
    """Check rubric data against the engine, and compile it for fast starts.

    `advisor rubric validate` checks the shipped rubric; `advisor rubric validate PATH` checks your own.
    """


@rubric.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def validate(path: Path | None, as_json: bool) -> None:
    """Validate a rubric (default: the shipped one): its data against the engine and the Answers contract,
    its license table against SPDX, its rule cases (the cases/ folder beside it) and the worked examples'
    expected decisions. Exit 2 naming every problem."""
    checked = validate_rubric(path)
    r = checked.rubric
    counts = {
        "questions": len(r.questions),
        "criteria": len(r.criteria),
        "options": len(r.options),
        "rules": len(r.rules),
        "gates": len(r.gates),
        "cautions": len(r.cautions),
        "sources": len(r.sources),
        "rule cases": checked.cases,
        "worked examples": checked.examples,
    }
    if as_json:
        result = {"valid": True, "rubric": r.version_label, "path": str(checked.path), "counts": counts}
        click.echo(dumps_json(result), nl=False)
    else:
        click.echo(
            f"ok: rubric {r.version_label} ({checked.path}): " + ", ".join(f"{n} {k}" for k, n in counts.items())
        )


@rubric.command("compile")
@click.argument("path", required=False, type=click.Path(dir_okay=False, path_type=Path))
def compile_command(path: Path | None) -> None:
    """Validate a rubric (default: the shipped one) and write its compiled form beside it
    (lora_fit.yaml -> lora_fit.compiled.json). Every start then reads JSON instead of parsing YAML, for as long
    as the rubric and its license table are unchanged; after an edit it is ignored until compiled again."""
    from ..assessment.rubric import compile_rubric

    click.echo(f"wrote {compile_rubric(path)}")
