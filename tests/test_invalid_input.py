"""User mistakes exit 2 with a JSON error that names the field and what is allowed; no traceback."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_advisor


def assess_error(tmp_path, content: str | None, *extra: str, input: str | None = None) -> dict:
    args = ["assess", "--json", *extra]
    if content is not None:
        path = tmp_path / "answers.yaml"
        path.write_text(content, encoding="utf-8")
        args += ["--answers", str(path)]
    res = run_advisor(*args, input=input)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    return json.loads(res.stdout)["error"]


def fields(error: dict) -> dict[str, dict]:
    return {f["field"]: f for f in error["fields"]}


def test_wrong_enum_names_field_and_allowed_values(tmp_path):
    error = assess_error(tmp_path, "stability: sometimes\n")
    assert error["code"] == "invalid_input"
    issue = fields(error)["stability"]
    assert set(issue["allowed"]) == {"stable", "evolving", "volatile", "unknown"}
    assert "sometimes" in issue["message"]


def test_wrong_type_names_field(tmp_path):
    error = assess_error(tmp_path, "dataset_examples: lots\nbaseline_measured: perhaps\n")
    assert {"dataset_examples", "baseline_measured"} <= set(fields(error))


def test_out_of_range_number_names_field(tmp_path):
    error = assess_error(tmp_path, "dataset_examples: -3\nadapters: 0\n")
    assert {"dataset_examples", "adapters"} <= set(fields(error))


def test_unknown_key_names_field(tmp_path):
    error = assess_error(tmp_path, "change_kind: style\nstabilty: stable\n")
    assert fields(error)["stabilty"]["message"] == "unknown field"


def test_invalid_license_names_field(tmp_path):
    error = assess_error(tmp_path, "dataset_license: MIT AND\n")
    assert "not a valid license expression" in fields(error)["dataset_license"]["message"]
    error = assess_error(tmp_path, "dataset_license: made-up-license\n")
    assert "unknown license id" in fields(error)["dataset_license"]["message"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("change_kind: [style\n", "not valid YAML or JSON at line"),
        ("", "is empty"),
        ("   \n", "is empty"),
        ("- style\n- stable\n", "must hold a mapping"),
        ("a: &x 1\nb: *x\n", "aliases"),
    ],
    ids=["malformed", "empty", "blank", "list", "alias"],
)
def test_bad_files_name_the_option(tmp_path, content, message):
    error = assess_error(tmp_path, content)
    assert error["code"] == "invalid_file"
    assert message in error["message"]
    assert fields(error)["--answers"]


def test_missing_file(tmp_path):
    error = assess_error(tmp_path, None, "--answers", str(tmp_path / "nope.yaml"))
    assert error["code"] == "invalid_file"
    assert "no such file" in fields(error)["--answers"]["message"]


def test_binary_file(tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_bytes(b"\x00\x01binary")
    error = assess_error(tmp_path, None, "--answers", str(path))
    assert "binary" in error["message"]


def test_answers_from_stdin_are_validated_too(tmp_path):
    error = assess_error(tmp_path, None, "--answers", "-", input="eval_set: great\n")
    assert "eval_set" in fields(error)


def test_unknown_example_lists_the_examples(tmp_path):
    error = assess_error(tmp_path, None, "--example", "no-such-example")
    assert "support-tone" in fields(error)["--example"]["allowed"]


def test_answers_and_example_conflict(tmp_path):
    error = assess_error(tmp_path, "goal: x\n", "--example", "support-tone")
    assert "--answers" in fields(error)


def test_save_answers_needs_the_questionnaire(tmp_path):
    error = assess_error(tmp_path, "goal: x\n", "--save-answers", str(tmp_path / "saved.yaml"))
    assert "--save-answers" in fields(error)


def test_text_mode_error_goes_to_stderr_without_traceback(tmp_path):
    path = tmp_path / "answers.yaml"
    path.write_text("stability: sometimes\n", encoding="utf-8")
    res = run_advisor("assess", "--answers", str(path))
    assert res.returncode == 2
    assert res.stdout == ""
    assert "stability" in res.stderr and "allowed: stable, evolving, volatile, unknown" in res.stderr
    assert "Traceback" not in res.stderr


def test_text_mode_errors_cannot_drive_the_terminal(tmp_path):
    """A key or a file name can hold ESC sequences and bidi overrides; the error shows them as escapes."""
    path = tmp_path / "answers.yaml"
    path.write_text('"\\x1b[2Jevil": 1\n"\\u202egoal": 2\n', encoding="utf-8")
    res = run_advisor("assess", "--answers", str(path))
    assert res.returncode == 2
    assert "\\x1b[2Jevil: unknown field" in res.stderr and "\\u202egoal: unknown field" in res.stderr
    assert all(char.isprintable() for line in res.stderr.splitlines() for char in line)


def test_thousands_of_bad_fields_give_a_bounded_error():
    from advisor.errors import MAX_FIELD_ISSUES

    bad = 20_000
    answers = "\n".join(f"unknown_{i}: 1" for i in range(bad))
    res = run_advisor("assess", "--answers", "-", "--json", input=answers)
    assert res.returncode == 2
    fields = json.loads(res.stdout)["error"]["fields"]
    assert len(fields) == MAX_FIELD_ISSUES + 1
    assert fields[-1]["field"] == "(more)" and f"{bad - MAX_FIELD_ISSUES:,} more" in fields[-1]["message"]
