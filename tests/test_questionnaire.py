"""The interactive questionnaire, driven through a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import sys

import pexpect
import pytest
import yaml

from advisor.assessment.rubric import load_rubric
from tests.conftest import ROOT, run_advisor

TOTAL = len(load_rubric().questions)  # the questionnaire asks every question of the rubric


def spawn(*args: str) -> pexpect.spawn:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    return pexpect.spawn(
        sys.executable, ["-m", "advisor", "assess", *args], cwd=str(ROOT), env=env, encoding="utf-8", timeout=30
    )


def answer(child: pexpect.spawn, number: int, reply: str) -> None:
    child.expect_exact(f"[{number}/{TOTAL}]")
    child.expect_exact("Enter skips):")
    child.sendline(reply)


def test_questionnaire_end_to_end(tmp_path):
    saved = tmp_path / "answers.yaml"
    child = spawn("--json", "--save-answers", str(saved))
    answer(child, 1, "Draft support replies in our house tone")
    # `?` shows the help text and its sources, then asks again
    child.expect_exact(f"[2/{TOTAL}]")
    child.expect_exact("Enter skips):")
    child.sendline("?")
    child.expect_exact("Vendors recommend fine-tuning")
    child.expect_exact("Sources: ")
    child.expect_exact("Enter skips):")
    child.sendline("1")  # by number: style
    answer(child, 3, "")  # Enter skips: unknown
    child.expect_exact(f"[4/{TOTAL}]")
    child.expect_exact("Enter skips):")
    child.sendline("sometimes")
    child.expect_exact("not accepted")
    child.expect_exact("allowed: stable, evolving, volatile, unknown")
    child.sendline("stable")
    answer(child, 5, "partly_works")
    child.expect_exact(f"[6/{TOTAL}]")
    child.sendline("lots")
    child.expect_exact("not accepted")
    child.sendline("1200")
    for number, reply in enumerate(
        ["curated", "LicenseRef-Proprietary", "yes", "no_personal_data", "1", "", "unknown", "production_like", "yes"],
        start=7,
    ):
        answer(child, number, reply)
    for number in range(16, TOTAL + 1):
        answer(child, number, "")
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
    saved.write_text("goal: Route tickets\nchange_kind: behavior\nimitates: null\n", encoding="utf-8")
    child = spawn("--save-answers", str(saved))
    child.expect_exact("Resuming from")
    child.expect_exact(f"[4/{TOTAL}]")  # the first three were answered
    child.expect_exact("Enter skips):")
    child.sendline("evolving")
    child.expect_exact(f"[5/{TOTAL}]")
    child.sendeof()  # stop half-way: nothing is lost
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130
    on_disk = yaml.safe_load(saved.read_text())
    assert on_disk == {"goal": "Route tickets", "change_kind": "behavior", "imitates": None, "stability": "evolving"}


def test_no_terminal_means_answers_come_from_stdin():
    res = run_advisor("assess", "--json", input="change_kind: knowledge\nstability: evolving\n")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["primary"] == "retrieval"


@pytest.mark.parametrize("args", [["--example", "support-tone"], ["--answers", "examples/support-tone.yaml"]])
def test_a_terminal_with_answers_asks_nothing(args):
    child = spawn(*args)
    child.expect_exact("Decision: recommend_lora")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "[1/" not in child.before
