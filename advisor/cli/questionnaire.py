"""The interactive questionnaire: one question at a time on the terminal.

Prompts go to stderr, so `--json` output on stdout stays clean, and are word-wrapped to the
terminal's width. A typed line is read by plain functions before the Answers contract sees it
(`read_reply`, `match_choice`, `parse_yes_no`, `parse_count`, `parse_number`): replies are
case-insensitive, a unique prefix picks a choice (`sta` for stable), counts and numbers may group
their digits (`1,200`, `1_200`), `<` or `back` returns to the previous question, `?` prints the
help and Enter or `unknown` skips (on a question already answered, Enter keeps the answer). The
value is then checked as every door checks it (`parse_answers`: bounds, licences, a base model
that resolves), so a mistake is refused at its own prompt, never after the last question.

With a save file, the path is checked before the first question, each answer is written as it
is given, and a later run resumes after the last one; a saved answer that no longer passes (a
model since removed, a bound since added) is dropped, said, and asked again. Ctrl-C says where
the answers are and the command that resumes.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import click
import yaml

from ..assessment.contract import Answers
from ..assessment.rubric import Question, Rubric
from ..assessment.service import UNKNOWN, parse_answers
from ..errors import FieldIssue, Interrupted, InvalidFile, InvalidInput
from ..files import ensure_writable, load_mapping, write_atomic

HELP = "?"
BACK = ("<", "back")
YES, NO = ("yes", "y", "true"), ("no", "n", "false")
SAVE_FIELD = "--save-answers"
RESUME_COMMAND = "advisor assess --save-answers {path}"
SAVE_HEADER = f"# advisor answers, saved as you go; resume with: {RESUME_COMMAND}\n"
INTRO = (
    "Answer with a number or a value (a unique prefix will do: sta for stable; 1,200 or 1_200 for a count); "
    "? shows why a question matters; < or back returns to the previous question; Enter skips (unknown)."
)
_GROUPED = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")  # 1,200 or 1,200.5: commas between groups of three
_WHOLE = re.compile(r"[+-]?\d+(?:_\d+)*")  # 1200 or 1_200
_NUMBER = re.compile(r"[+-]?(?:\d+(?:_\d+)*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class NotAccepted(ValueError):
    """A typed line that names no answer; `allowed` lists what would be accepted."""

    def __init__(self, message: str, allowed: list[str] | None = None):
        super().__init__(message)
        self.message = message
        self.allowed = allowed


@dataclass(frozen=True)
class Reply:
    """What a typed line asks for: an answer (`value`, None for unknown), the help, going back, or keeping the
    answer the question already has."""

    action: Literal["answer", "help", "back", "keep"]
    value: Any = None


def read_reply(question: Question, line: str, *, answered: bool = False) -> Reply:
    """The meaning of `line` typed at `question`; raises NotAccepted when it names no answer of its type."""
    text = line.strip()
    word = text.lower()
    if word == HELP:
        return Reply("help")
    if word in BACK:
        return Reply("back")
    if not text:
        return Reply("keep") if answered else Reply("answer")
    if word == UNKNOWN:
        return Reply("answer")
    if question.type == "choice":
        return Reply("answer", match_choice(text, list(question.choices)))
    if question.type == "boolean":
        return Reply("answer", parse_yes_no(text))
    if question.type == "integer":
        return Reply("answer", parse_count(text))
    if question.type == "number":
        return Reply("answer", parse_number(text))
    return Reply("answer", text)


def match_choice(text: str, choices: list[str]) -> str:
    """The choice `text` names: its number from 1, the value in any case (spaces or hyphens for underscores),
    or a prefix no other choice starts with."""
    allowed = [*choices, UNKNOWN, f"a number 1-{len(choices)}"]
    if text.isdigit():
        if 1 <= int(text) <= len(choices):
            return choices[int(text) - 1]
        raise NotAccepted(f"there is no choice {text}", allowed)
    key = re.sub(r"[\s-]+", "_", text.strip().lower())
    if key in choices:
        return key
    matches = [choice for choice in choices if choice.startswith(key)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise NotAccepted(f"{text!r} could be {' or '.join(matches)}; type more of it")
    raise NotAccepted(repr(text), allowed)


def parse_yes_no(text: str) -> bool:
    """yes, y or true; no, n or false; in any case."""
    word = text.strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise NotAccepted(f"{text!r} is not yes or no", ["yes", "no", UNKNOWN])


def parse_count(text: str) -> int:
    """A whole number, its digits grouped by commas (1,200) or underscores (1_200) or not at all."""
    digits = _ungrouped(text)
    if not _WHOLE.fullmatch(digits):
        raise NotAccepted(f"{text!r} is not a whole number; write digits, e.g. 1200, 1,200 or 1_200")
    try:
        return int(digits)
    except ValueError:  # more digits than Python converts (4,300): far past any bound
        raise NotAccepted(f"a number of {len(digits):,} digits is far too large") from None


def parse_number(text: str) -> float:
    """A number: 24, 0.5, 1,200.5, 1_200 or 1e3."""
    digits = _ungrouped(text)
    if not _NUMBER.fullmatch(digits):
        raise NotAccepted(f"{text!r} is not a number; write e.g. 24, 0.5, 1,200 or 1_200")
    return float(digits)


def _ungrouped(text: str) -> str:
    text = text.strip()
    return text.replace(",", "") if _GROUPED.fullmatch(text) else text


def run_questionnaire(rubric: Rubric, *, save_to: Path | None = None) -> Answers:
    """Ask every question not yet answered in `save_to`, saving after each answer."""
    given = load_saved_answers(save_to, rubric) if save_to is not None else {}
    questions = rubric.questions
    total = len(questions)
    say(rubric.title)
    say(INTRO)
    index = _next_open(questions, given, 0)
    furthest = index  # the furthest question asked: after going back, every question up to it is asked again
    try:
        while index < total:
            furthest = max(furthest, index)
            question = questions[index]
            reply = ask(
                question, index + 1, total, rubric, answered=question.id in given, current=given.get(question.id)
            )
            if reply.action == "back":
                index -= 1
                continue
            if reply.action == "answer":
                given[question.id] = reply.value
                if save_to is not None:
                    save_answers(save_to, given, rubric)
            index = index + 1 if index + 1 <= furthest else _next_open(questions, given, index + 1)
    except (click.Abort, KeyboardInterrupt):
        click.echo(err=True)  # the prompt's line was left open
        raise Interrupted(interrupted_message(save_to, len(given), total)) from None
    return parse_answers(given, rubric=rubric)


def _next_open(questions: list[Question], given: dict[str, Any], start: int) -> int:
    return next((i for i in range(start, len(questions)) if questions[i].id not in given), len(questions))


def ask(question: Question, number: int, total: int, rubric: Rubric, *, answered: bool = False, current: Any = None):
    """One question, asked until the reply is an answer the contract accepts, `back` or `keep`."""
    click.echo(err=True)
    say(f"[{number}/{total}] {question.text}", hang=" " * len(f"[{number}/{total}] "))
    for line in choice_lines(question, terminal_width()):
        click.echo(line, err=True)
    *head, prompt = wrap(f"answer ({_hint(question, answered, current)})", indent="  ").splitlines()
    while True:
        for line in head:  # a hint wider than the terminal: all but its last line, which is the prompt
            click.echo(line, err=True)
        line = click.prompt(prompt, default="", show_default=False, err=True)
        try:
            reply = read_reply(question, line, answered=answered)
        except NotAccepted as exc:
            not_accepted(exc.message, exc.allowed)
            continue
        if reply.action == "help":
            say(question.help, indent="  ")
            say(f"Sources: {'; '.join(rubric.sources[s].title for s in question.sources)}", indent="  ")
            continue
        if reply.action == "back" and number == 1:
            say("This is the first question.", indent="  ")
            continue
        if reply.action != "answer" or reply.value is None:
            return reply
        try:
            return Reply("answer", getattr(parse_answers({question.id: reply.value}, rubric=rubric), question.id))
        except InvalidInput as exc:
            for issue in exc.fields:
                not_accepted(issue.message, issue.allowed)


def _hint(question: Question, answered: bool, current: Any) -> str:
    unit = f" of {question.unit}" if question.unit else ""
    kind = {
        "choice": f"1-{len(question.choices)} or a value",
        "boolean": "yes or no",
        "integer": f"a whole number{unit}",
        "number": f"a number, in {question.unit}" if question.unit else "a number",
        "license": "SPDX, Hugging Face id or LicenseRef-...",
        "text": "text",
    }[question.type]
    enter = f"Enter keeps {_shown(current)}" if answered else "Enter skips"
    return f"{kind}; ? help; < back; {enter}"


def _shown(value: Any) -> str:
    if value is None:
        return UNKNOWN
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, (int, float)) else str(value)


def choice_lines(question: Question, width: int) -> list[str]:
    """The numbered choices, each label wrapped beside its value, or under it where the column would be narrow."""
    values = list(question.choices)
    if not values:
        return []
    column = max(len(value) for value in values) + 2
    lines = []
    for number, value in enumerate(values, 1):
        head = f"  {number}. "
        label = question.choices[value]
        if len(head) + column <= width // 2:
            text = f"{head}{value:<{column}}{label}"
            lines.extend(wrap(text, width=width, hang=" " * (len(head) + column)).splitlines())
        else:
            lines.append(f"{head}{value}")
            lines.extend(wrap(label, width=width, indent=" " * (len(head) + 2)).splitlines())
    return lines


def not_accepted(message: str, allowed: list[str] | None) -> None:
    """One line saying why a reply was refused, with the allowed values once."""
    say(f"not accepted: {message}" + (f"; allowed: {', '.join(allowed)}" if allowed else ""), indent="  ", hang="    ")


def say(text: str, *, indent: str = "", hang: str | None = None) -> None:
    click.echo(wrap(text, indent=indent, hang=hang), err=True)


def wrap(text: str, *, indent: str = "", hang: str | None = None, width: int | None = None) -> str:
    """`text` word-wrapped to the terminal: words are never split, a word longer than a line stands alone."""
    return textwrap.fill(
        text,
        width=width or terminal_width(),
        initial_indent=indent,
        subsequent_indent=indent if hang is None else hang,
        break_long_words=False,
        break_on_hyphens=False,
    )


def terminal_width() -> int:
    """The columns of the terminal the prompts go to (stderr): $COLUMNS when set, else its own width, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.stderr.fileno()).columns
        except (OSError, ValueError):
            columns = 0
    return max(columns, 20) if columns > 0 else 80


def check_save_path(path: Path) -> None:
    """Refuse, before the first question, a save path the answers could not be written to: a folder, a file in a
    missing or read-only folder. (An existing file is read by `load_saved_answers`.)"""
    ensure_writable(path, force=True, field=SAVE_FIELD)
    folder = path.parent
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        message = f"cannot write in folder {folder}: {exc.strerror or exc}"
        raise InvalidFile(message, fields=[FieldIssue(field=SAVE_FIELD, message=message)]) from None


def load_saved_answers(path: Path, rubric: Rubric) -> dict[str, Any]:
    """The answers saved in `path` (none when it does not exist yet or is empty), once the path is checked.

    A file that holds anything but answers is refused (exit 2 naming --save-answers): saving would overwrite it.
    A saved answer the contract no longer accepts is dropped with a message, so its question is asked again."""
    check_save_path(path)
    if not path.exists() or path.stat().st_size == 0:
        return {}
    saved = load_mapping(path, field=SAVE_FIELD)
    strangers = [str(key) for key in saved if key not in Answers.model_fields]
    if strangers:
        message = (
            f"{path} is not an answers file (it holds {', '.join(strangers[:5])}"
            f"{', ...' if len(strangers) > 5 else ''}); give a new file or one saved by the questionnaire"
        )
        raise InvalidFile(message, fields=[FieldIssue(field=SAVE_FIELD, message=message)])
    given = {}
    for question in rubric.questions:
        if question.id not in saved:
            continue
        try:
            given[question.id] = getattr(parse_answers({question.id: saved[question.id]}, rubric=rubric), question.id)
        except InvalidInput as exc:
            reasons = "; ".join(issue.message for issue in exc.fields)
            say(f"The saved answer to {question.id} is no longer accepted ({reasons}); it is asked again.")
    say(f"Resuming from {path}: {len(given)} of {len(rubric.questions)} questions already answered.")
    return given


def save_answers(path: Path, given: dict[str, Any], rubric: Rubric) -> None:
    """Write the answers so far, in question order, atomically."""
    ordered = {q.id: given[q.id] for q in rubric.questions if q.id in given}
    text = SAVE_HEADER.format(path=shlex.quote(str(path))) + yaml.safe_dump(
        ordered, sort_keys=False, allow_unicode=True
    )
    write_atomic(path, text, force=True, field=SAVE_FIELD)


def interrupted_message(save_to: Path | None, answered: int, total: int) -> str:
    """What Ctrl-C leaves behind, and the command that carries on from there."""
    if save_to is None:
        return (
            "interrupted: nothing was saved; to save answers as you go and resume later, run: "
            + RESUME_COMMAND.format(path="answers.yaml")
        )
    return f"interrupted: {answered} of {total} answers are saved in {save_to}; resume with: " + RESUME_COMMAND.format(
        path=shlex.quote(str(save_to))
    )
