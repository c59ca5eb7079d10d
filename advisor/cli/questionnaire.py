"""The interactive questionnaire: click prompts on the terminal, one question at a time.

Prompts go to stderr, so `--json` output on stdout stays clean. Every answer is
checked against the Answers contract as it is typed; `?` prints the help text,
Enter or `unknown` skips. With a save file, each answer is written as it is given
and a later run resumes after the last one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from ..assessment.contract import Answers
from ..assessment.rubric import Question, Rubric
from ..assessment.service import parse_answers
from ..errors import InvalidInput
from ..files import load_mapping, write_atomic

SKIP = ("", "unknown")
SAVE_HEADER = "# advisor answers, saved as you go; resume with: advisor assess --save-answers {path}\n"


def run_questionnaire(rubric: Rubric, *, save_to: Path | None = None) -> Answers:
    """Ask every question not yet answered in `save_to`, saving after each answer."""
    given: dict[str, Any] = {}
    if save_to is not None and save_to.exists():
        saved = load_mapping(save_to, field="--save-answers")
        given = parse_answers(saved, rubric=rubric).model_dump(include=set(saved))
        click.echo(
            f"Resuming from {save_to}: {len(given)} of {len(rubric.questions)} questions already answered.", err=True
        )
    click.echo(
        f"{rubric.title}\nAnswer with a number or a value; ? shows why a question matters; Enter skips (unknown).",
        err=True,
    )
    total = len(rubric.questions)
    for number, question in enumerate(rubric.questions, 1):
        if question.id in given:
            continue
        given[question.id] = ask(question, number, total, rubric)
        if save_to is not None:
            write_atomic(
                save_to,
                SAVE_HEADER.format(path=save_to) + yaml.safe_dump(given, sort_keys=False, allow_unicode=True),
                force=True,
                field="--save-answers",
            )
    return parse_answers(given, rubric=rubric)


def ask(question: Question, number: int, total: int, rubric: Rubric) -> Any:
    """One question, asked until the answer is valid; None for unknown."""
    click.echo(f"\n[{number}/{total}] {question.text}", err=True)
    choices = list(question.choices)
    for index, value in enumerate(choices, 1):
        click.echo(f"  {index}. {value:<24} {question.choices[value]}", err=True)
    hint = {
        "choice": f"1-{len(choices)} or a value",
        "boolean": "yes or no",
        "integer": question.unit or "a whole number",
        "number": question.unit or "a number",
        "license": "SPDX, Hugging Face id or LicenseRef-...",
        "text": "text",
    }[question.type]
    while True:
        raw = click.prompt(f"  answer ({hint}; ? help; Enter skips)", default="", show_default=False, err=True).strip()
        if raw == "?":
            click.echo(_help(question, rubric), err=True)
            continue
        if raw.lower() in SKIP:
            return None
        value: Any = (
            choices[int(raw) - 1]
            if question.type == "choice" and raw.isdigit() and 1 <= int(raw) <= len(choices)
            else raw
        )
        try:
            return getattr(parse_answers({question.id: value}, rubric=rubric), question.id)
        except InvalidInput as exc:
            for issue in exc.fields:
                allowed = f" (allowed: {', '.join(issue.allowed)})" if issue.allowed else ""
                click.echo(f"  not accepted: {issue.message}{allowed}", err=True)


def _help(question: Question, rubric: Rubric) -> str:
    sources = "; ".join(rubric.sources[s].title for s in question.sources)
    return f"  {question.help}\n  Sources: {sources}"
