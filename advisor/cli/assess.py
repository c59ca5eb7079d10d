"""`advisor assess`: answers in (a file, stdin, a built-in example or the questionnaire), a decision out."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..assessment.contract import TRAIN_DECISIONS, Answers
from ..assessment.rubric import load_rubric
from ..assessment.service import assess as assess_answers
from ..assessment.service import parse_answers
from ..assessment.worked_examples import DEFAULT_EXAMPLE, example_path
from ..errors import FieldIssue, InvalidInput
from ..files import STDIN, dumps_json, ensure_writable, load_mapping, write_atomic
from ..reference import REFERENCE_RUN_COST


@click.command(short_help="Decide: train a LoRA adapter, use an alternative first, or fix blockers.")
@click.option(
    "--answers",
    "answers_file",
    metavar="FILE|-",
    help="Read answers from a YAML or JSON file (- for stdin); nothing is asked.",
)
@click.option("--example", metavar="NAME", help=f"Assess a built-in worked example (e.g. {DEFAULT_EXAMPLE}).")
@click.option(
    "--save-answers",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Questionnaire only: save answers as you go and resume from this file.",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    help="The training data (a file or folder, as for inspect-data): its measured answers are merged in, "
    "measured over stated, with every conflict listed.",
)
@click.option(
    "--eval-data",
    "eval_data_path",
    type=click.Path(path_type=Path),
    help="With --data: the evaluation set, checked for overlap with the training data.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the assessment as JSON on stdout.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write a markdown report to this path.")
@click.option("--force", is_flag=True, help="Replace an existing report.")
@click.option(
    "--reference-run",
    is_flag=True,
    help=(
        "When the decision is to train, measure it: a real, small run of full fine-tuning and LoRA on base_model "
        f"({REFERENCE_RUN_COST})."
    ),
)
@click.option(
    "--max-seconds",
    type=float,
    default=None,
    help="With --reference-run: stop the run after this long and report what was measured.",
)
def assess(
    answers_file: str | None,
    example: str | None,
    save_answers: Path | None,
    data_path: Path | None,
    eval_data_path: Path | None,
    as_json: bool,
    report: Path | None,
    force: bool,
    reference_run: bool,
    max_seconds: float | None,
) -> None:
    """Decide whether to train a LoRA adapter or use something cheaper first.

    On a terminal, without --answers or --example, asks the questions one by one
    (and offers the reference run when the answer is to train). Otherwise reads the
    answers (stdin when it is not a terminal) and asks nothing.
    """
    if report is not None:
        ensure_writable(report, force=force, field="--report")
    if eval_data_path is not None and data_path is None:
        raise InvalidInput(
            "--eval-data needs --data",
            fields=[FieldIssue(field="--eval-data", message="give the training data with --data too")],
        )
    interactive = answers_file is None and example is None and sys.stdin.isatty()
    answers = _answers(answers_file, example, save_answers)
    data = None
    if data_path is not None:
        from .inspect_data import run_inspection

        data = run_inspection(
            data_path, eval_path=eval_data_path, show_progress=not as_json, field="--data", eval_field="--eval-data"
        )
    assessment = assess_answers(answers, data=data)
    if not reference_run and interactive and assessment.decision in TRAIN_DECISIONS and answers.base_model:
        reference_run = click.confirm(
            f"\nTraining is recommended. Measure it now with a reference run on {answers.base_model} "
            f"({REFERENCE_RUN_COST})?",
            default=False,
            err=True,
        )
    if reference_run:
        assessment = _measured(assessment, max_seconds, show_progress=not as_json and sys.stderr.isatty())
    if report is not None:
        from ..report.render import render_report

        write_atomic(report, render_report(assessment), force=force, field="--report")
    if as_json:
        click.echo(dumps_json(assessment.model_dump(mode="json")), nl=False)
    else:
        from .summary import print_summary

        print_summary(assessment)
    if report is not None:
        click.echo(f"report written to {report}", err=True)


def _measured(assessment, max_seconds: float | None, *, show_progress: bool):
    from ..reference import measure_recommendation
    from .running import progress_bar, sigterm_interrupts

    with sigterm_interrupts(), progress_bar(enabled=show_progress) as progress:
        measured = measure_recommendation(assessment, max_seconds=max_seconds, progress=progress)
    if measured.reference_run_skipped:
        click.echo(f"no reference run: {measured.reference_run_skipped}", err=True)
    return measured


def _answers(answers_file: str | None, example: str | None, save_answers: Path | None) -> Answers:
    if answers_file is not None and example is not None:
        raise InvalidInput(
            "give --answers or --example, not both",
            fields=[FieldIssue(field="--answers", message="conflicts with --example")],
        )
    interactive = answers_file is None and example is None and sys.stdin.isatty()
    if save_answers is not None and not interactive:
        raise InvalidInput(
            "--save-answers applies to the interactive questionnaire only",
            fields=[FieldIssue(field="--save-answers", message="only with the questionnaire on a terminal")],
        )
    if interactive:
        from .questionnaire import run_questionnaire

        return run_questionnaire(load_rubric(), save_to=save_answers)
    if example is not None:
        return parse_answers(load_mapping(example_path(example), field="--example"))
    source = answers_file if answers_file is not None else STDIN
    return parse_answers(load_mapping(source, field="--answers"))
