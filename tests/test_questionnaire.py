"""The interactive questionnaire, driven through a real pseudo-terminal."""

from __future__ import annotations

import io
import json
import os
import sys

import pexpect
import pytest
import yaml

import advisor
from tests.conftest import ROOT, default_sigint, run_advisor

RUBRIC = advisor.load_rubric()
TOTAL = len(RUBRIC.questions)
NUMBER = {q.id: number for number, q in enumerate(RUBRIC.questions, 1)}  # the order the questionnaire asks in


def spawn(*args: str, columns: int = 200, timeout: float = 30) -> pexpect.spawn:
    env = {**os.environ, "COLUMNS": str(columns), "TERM": "dumb"}
    return pexpect.spawn(
        sys.executable,
        ["-m", "advisor", "assess", *args],
        cwd=str(ROOT),
        env=env,
        encoding="utf-8",
        timeout=timeout,
        preexec_fn=default_sigint,
    )


def answer(child: pexpect.spawn, question: str | int, reply: str) -> None:
    """Wait for `question` (an id, or its number) and answer it."""
    number = NUMBER[question] if isinstance(question, str) else question
    child.expect_exact(f"[{number}/{TOTAL}]")
    child.expect_exact("Enter skips):")
    child.sendline(reply)


def skip_to_the_end(child: pexpect.spawn, after: str) -> None:
    for number in range(NUMBER[after] + 1, TOTAL + 1):
        answer(child, number, "")


def test_questionnaire_end_to_end(tmp_path):
    saved = tmp_path / "answers.yaml"
    child = spawn("--json", "--save-answers", str(saved))
    answer(child, "goal", "Draft support replies in our house tone")
    # `?` shows the help text and its sources, then asks again
    child.expect_exact(f"[{NUMBER['change_kind']}/{TOTAL}]")
    child.expect_exact("Enter skips):")
    child.sendline("?")
    child.expect_exact("Vendors recommend fine-tuning")
    child.expect_exact("Sources: ")
    child.expect_exact("Enter skips):")
    child.sendline("1")  # by number: style
    answer(child, "motive", "behavior")
    answer(child, "imitates", "")  # Enter skips: unknown
    answer(child, "person_consent", "")
    child.expect_exact(f"[{NUMBER['stability']}/{TOTAL}]")
    child.expect_exact("Enter skips):")
    child.sendline("sometimes")
    child.expect_exact("not accepted")
    child.expect_exact("allowed: stable, evolving, volatile, unknown")
    child.sendline("stable")
    for question, reply in (
        ("context_tried", "partly_works"),
        ("prompt_tokens", ""),
        ("requests_per_month", ""),
        ("tools_available", ""),
    ):
        answer(child, question, reply)
    child.expect_exact(f"[{NUMBER['dataset_examples']}/{TOTAL}]")
    child.sendline("lots")
    child.expect_exact("not accepted")
    child.sendline("1200")
    replies = {
        "dataset_tokens": "",
        "dataset_quality": "curated",
        "data_provenance": "human_written",
        "dataset_license": "LicenseRef-Proprietary",
        "commercial_use": "yes",
        "privacy": "no_personal_data",
        "serving_mode": "1",
        "adapters": "",
        "latency_budget_ms": "unknown",
        "eval_set": "production_like",
        "baseline_measured": "yes",
    }
    for question, reply in replies.items():
        answer(child, question, reply)
    skip_to_the_end(child, after="baseline_measured")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    output = child.before.replace("\r\n", "\n")
    result = json.loads(output[output.index("\n{") + 1 :])
    assert (result["decision"], result["primary"]) == ("recommend_lora", "lora")
    answers = result["answers"]
    assert answers["change_kind"] == "style" and answers["stability"] == "stable"
    assert answers["dataset_examples"] == 1200 and answers["serving_mode"] == "merged"
    assert answers["imitates"] is None and answers["latency_budget_ms"] is None
    # every answer was saved as it was given, skipped ones as null
    on_disk = yaml.safe_load(saved.read_text())
    assert len(on_disk) == TOTAL and on_disk["commercial_use"] is True and on_disk["imitates"] is None


def test_questionnaire_resumes_from_saved_answers(tmp_path):
    saved = tmp_path / "answers.yaml"
    saved.write_text("goal: Route tickets\nchange_kind: behavior\nmotive: null\nimitates: null\n", encoding="utf-8")
    child = spawn("--save-answers", str(saved))
    child.expect_exact("Resuming from")
    child.expect_exact(f"[{NUMBER['person_consent']}/{TOTAL}]")  # the first four were answered
    child.expect_exact("Enter skips):")
    child.sendline("")
    child.expect_exact(f"[{NUMBER['stability']}/{TOTAL}]")
    child.expect_exact("Enter skips):")
    child.sendline("evolving")
    child.expect_exact(f"[{NUMBER['context_tried']}/{TOTAL}]")
    child.sendeof()  # stop half-way: nothing is lost
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    on_disk = yaml.safe_load(saved.read_text())
    assert on_disk == {
        "goal": "Route tickets",
        "change_kind": "behavior",
        "motive": None,
        "imitates": None,
        "person_consent": None,
        "stability": "evolving",
    }


def test_no_terminal_means_answers_come_from_stdin():
    res = run_advisor("assess", "--json", input="change_kind: knowledge\nstability: evolving\n")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["primary"] == "retrieval"


@pytest.mark.parametrize("args", [["--example", "support-tone"], ["--answers", "examples/support-tone.yaml"]])
def test_a_terminal_with_answers_asks_nothing(args):
    child = spawn(*args, timeout=180)  # the example names a base model and GPU memory: the estimator runs (torch)
    child.expect_exact("Decision: recommend_lora")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "[1/" not in child.before


def transcript(child: pexpect.spawn) -> str:
    return child.logfile_read.getvalue().replace("\r\n", "\n")


def spawn_logged(*args: str, columns: int = 200) -> pexpect.spawn:
    child = spawn(*args, columns=columns)
    child.logfile_read = io.StringIO()
    return child


def test_going_back_prefixes_a_refused_base_model_and_ctrl_c_then_resume(tmp_path):
    saved = tmp_path / "answers.yaml"
    child = spawn_logged("--save-answers", str(saved))
    child.expect_exact("< or back returns to the previous question")  # the intro says how to go back
    answer(child, "goal", "Draft support replies in our house tone")
    answer(child, "change_kind", "sty")  # a unique prefix: style
    answer(child, "motive", "<")  # back to change_kind, which shows its answer
    child.expect_exact(f"[{NUMBER['change_kind']}/{TOTAL}]")
    child.expect_exact("Enter keeps style):")
    child.sendline("FORMAT")  # any case
    for question, reply in (
        ("motive", "beh"),
        ("imitates", "NONE"),
        ("person_consent", ""),
        ("stability", "STA"),
        ("context_tried", "partly"),
        ("prompt_tokens", ""),
        ("requests_per_month", ""),
        ("tools_available", ""),
        ("dataset_examples", "1,200"),
        ("dataset_tokens", "3_000_000"),
        ("dataset_quality", "cur"),
        ("data_provenance", "human"),
        ("dataset_license", "mit"),
        ("commercial_use", "Y"),
    ):
        answer(child, question, reply)
    answer(child, "privacy", "personal")
    child.expect_exact("could be personal_data_cleared or personal_data_uncleared")
    child.sendline("no")
    answer(child, "serving_mode", "merged")
    answer(child, "adapters", "1_000_000_000")  # more adapters than the contract allows
    child.expect_exact("not accepted: Input should be less than or equal to 1000000")
    child.sendline("2")
    for question, reply in (("latency_budget_ms", ""), ("eval_set", "prod"), ("baseline_measured", "yes")):
        answer(child, question, reply)
    answer(child, "base_model", "lama-3.1-8b")  # refused at its own prompt, with the catalog's suggestion
    child.expect_exact("not accepted: unknown model 'lama-3.1-8b'")
    child.expect_exact("close matches: llama-3.1-8b")
    child.expect_exact("Enter skips):")
    child.sendintr()  # Ctrl-C
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    said = " ".join(transcript(child).split())
    answered = NUMBER["base_model"] - 1
    hint = f"{answered} of {TOTAL} answers are saved in {saved}; resume with: advisor assess --save-answers {saved}"
    assert hint in said
    assert yaml.safe_load(saved.read_text())["change_kind"] == "format"
    assert "base_model" not in yaml.safe_load(saved.read_text())

    child = spawn("--json", "--save-answers", str(saved))  # the command the hint gave, with --json
    child.expect_exact(f"{answered} of {TOTAL} questions already answered")
    answer(child, "base_model", "llama-3.2-1b")
    skip_to_the_end(child, after="base_model")
    child.expect_exact("Measure it now with a reference run on llama-3.2-1b")  # the decision is to train
    child.sendline("n")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    output = child.before.replace("\r\n", "\n")
    answers = json.loads(output[output.index("\n{") + 1 :])["answers"]
    assert (answers["change_kind"], answers["imitates"], answers["stability"]) == ("format", "none", "stable")
    assert (answers["context_tried"], answers["dataset_quality"], answers["privacy"]) == (
        "partly_works",
        "curated",
        "no_personal_data",
    )
    assert (answers["dataset_examples"], answers["adapters"], answers["dataset_license"]) == (1200, 2, "MIT")
    assert (answers["commercial_use"], answers["eval_set"], answers["base_model"]) == (
        True,
        "production_like",
        "llama-3.2-1b",
    )
    assert (answers["data_provenance"], answers["dataset_tokens"]) == ("human_written", 3_000_000)


def test_ctrl_c_without_a_save_file_says_how_to_save():
    child = spawn_logged()
    answer(child, 1, "")
    child.expect_exact("Enter skips):")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    said = " ".join(transcript(child).split())
    assert "nothing was saved; to save answers as you go and resume later, run: advisor assess --save-answers" in said


def test_at_40_columns_prompts_choices_and_help_wrap_between_words():
    child = spawn_logged(columns=40)
    child.expect_exact(f"[1/{TOTAL}]")
    child.expect_exact("skips):")
    child.sendline("")
    child.expect_exact(f"[{NUMBER['change_kind']}/{TOTAL}]")
    child.expect_exact("skips):")
    child.sendline("?")
    child.expect_exact("Sources:")
    child.expect_exact("skips):")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    shown = transcript(child)
    questionnaire = shown[: shown.index("error: interrupted")].splitlines()
    assert all(len(line) <= 40 for line in questionnaire), [line for line in questionnaire if len(line) > 40]
    words = " ".join(questionnaire).split()
    rubric = {q.id: q for q in advisor.load_rubric().questions}
    for text in (rubric["change_kind"].help, rubric["change_kind"].text, *rubric["change_kind"].choices.values()):
        for word in text.split():
            assert word in words, word  # whole, never split across lines


@pytest.mark.parametrize(
    ("where", "says"),
    [("missing/answers.yaml", "does not exist"), ("config.json", "not an answers file"), (".", "directory")],
)
def test_a_bad_save_path_is_refused_before_the_first_question(tmp_path, where, says):
    (tmp_path / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    child = spawn_logged("--save-answers", str(tmp_path / where))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 2
    shown = transcript(child)
    assert "--save-answers" in shown and says in shown
    assert "[1/" not in shown
    assert (tmp_path / "config.json").read_text(encoding="utf-8") == '{"model_type": "llama"}'
