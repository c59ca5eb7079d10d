"""`advisor questions`: the questionnaire as data, for agents and forms to discover."""

from __future__ import annotations

import click

from ..assessment.service import questionnaire
from ..files import dumps_json


@click.command(short_help="List the questions and their allowed answers.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print questions, allowed answers, sources and the Answers JSON Schema."
)
def questions(as_json: bool) -> None:
    """List the questions the advisor asks, with their allowed answers."""
    data = questionnaire()
    if as_json:
        click.echo(dumps_json(data.model_dump(mode="json")), nl=False)
        return
    click.echo(f"{data.title} ({data.rubric})")
    for number, question in enumerate(data.questions, 1):
        click.echo(f"\n{number}. {question.id} [{question.type}, {question.role}]: {question.text}")
        for choice in question.choices:
            click.echo(f"     {choice.value:<24} {choice.label}")
        for band in question.bands:
            low = "" if band.above is None else f"> {band.above:g}"
            high = "" if band.max is None else f"<= {band.max:g}"
            click.echo(f"     {band.level:<24} {' and '.join(p for p in (low, high) if p)}")
    click.echo("\nEvery question also accepts unknown (or can be left out).")
