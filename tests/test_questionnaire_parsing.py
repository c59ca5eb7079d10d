"""The questionnaire's plain parts: reading a typed line, the contract's bounds, wrapping, and the save file."""

from __future__ import annotations

from pathlib import Path

import pytest

import advisor
from advisor.assessment.contract import Answers
from advisor.cli.questionnaire import (
    NotAccepted,
    Reply,
    check_save_path,
    choice_lines,
    interrupted_message,
    load_saved_answers,
    match_choice,
    parse_count,
    parse_number,
    parse_yes_no,
    read_reply,
    wrap,
)
from advisor.errors import InvalidInput
from advisor.estimate.settings import TrainingSettings
from tests.strategies import field_bound

RUBRIC = advisor.load_rubric()
QUESTIONS = {q.id: q for q in RUBRIC.questions}
STABILITY = ["stable", "evolving", "volatile"]
PRIVACY = list(QUESTIONS["privacy"].choices)


@pytest.mark.parametrize(
    ("typed", "choice"),
    [
        ("stable", "stable"),
        ("STABLE", "stable"),
        ("  Evolving ", "evolving"),
        ("sta", "stable"),
        ("V", "volatile"),
        ("2", "evolving"),
        ("3", "volatile"),
    ],
)
def test_a_choice_by_value_in_any_case_by_unique_prefix_or_by_number(typed, choice):
    assert match_choice(typed, STABILITY) == choice


def test_a_choice_with_spaces_or_hyphens_for_underscores():
    assert match_choice("partly works", list(QUESTIONS["context_tried"].choices)) == "partly_works"
    assert match_choice("Brand-or-asset", list(QUESTIONS["imitates"].choices)) == "brand_or_asset"
    assert match_choice("sty", list(QUESTIONS["change_kind"].choices)) == "style"


def test_an_ambiguous_prefix_lists_its_matches_and_nothing_else():
    with pytest.raises(NotAccepted) as err:
        match_choice("personal_data", PRIVACY)
    assert "personal_data_cleared or personal_data_uncleared" in err.value.message
    assert err.value.allowed is None  # the matches are the list; the full list is not repeated


@pytest.mark.parametrize("typed", ["sometimes", "0", "4", "stablex", "s t"])
def test_a_reply_that_names_no_choice_lists_the_allowed_values_once(typed):
    with pytest.raises(NotAccepted) as err:
        match_choice(typed, STABILITY)
    assert err.value.allowed == [*STABILITY, "unknown", "a number 1-3"]
    assert "evolving" not in err.value.message  # the values are listed once, in `allowed`


@pytest.mark.parametrize(
    ("typed", "value"), [("yes", True), ("Y", True), ("TRUE", True), ("no", False), ("n", False), ("False", False)]
)
def test_yes_and_no_in_any_case(typed, value):
    assert parse_yes_no(typed) is value


@pytest.mark.parametrize("typed", ["maybe", "yess", "1", "oui"])
def test_anything_else_is_not_yes_or_no(typed):
    with pytest.raises(NotAccepted) as err:
        parse_yes_no(typed)
    assert err.value.allowed == ["yes", "no", "unknown"]


@pytest.mark.parametrize(
    ("typed", "count"),
    [("1200", 1200), ("1,200", 1200), ("1_200", 1200), ("12,345,678", 12_345_678), (" 0 ", 0), ("-3", -3)],
)
def test_counts_with_or_without_digit_groups(typed, count):
    assert parse_count(typed) == count


@pytest.mark.parametrize("typed", ["lots", "12,00", "1,2000", "1.5", "1e3", "1__200", "_1200", "1,200.0", ","])
def test_what_is_not_a_whole_number(typed):
    with pytest.raises(NotAccepted) as err:
        parse_count(typed)
    assert "1,200 or 1_200" in err.value.message


def test_a_count_too_long_to_convert_is_refused_with_a_message():
    with pytest.raises(NotAccepted, match="far too large"):
        parse_count("9" * 5000)


@pytest.mark.parametrize(
    ("typed", "number"), [("24", 24.0), ("0.5", 0.5), (".5", 0.5), ("1,200.5", 1200.5), ("1_000", 1000.0)]
)
def test_numbers_with_or_without_digit_groups(typed, number):
    assert parse_number(typed) == number


@pytest.mark.parametrize("typed", ["fast", "1,2", "24 GiB", "inf", "nan", "1.2.3"])
def test_what_is_not_a_number(typed):
    with pytest.raises(NotAccepted):
        parse_number(typed)


def test_read_reply_knows_help_back_skip_and_keep():
    stability = QUESTIONS["stability"]
    assert read_reply(stability, "?") == Reply("help")
    assert read_reply(stability, "<") == read_reply(stability, " BACK ") == Reply("back")
    assert read_reply(stability, "") == read_reply(stability, "Unknown") == Reply("answer", None)
    assert read_reply(stability, "", answered=True) == Reply("keep")  # Enter keeps an answer given before going back
    assert read_reply(stability, "unknown", answered=True) == Reply("answer", None)
    assert read_reply(stability, "ST") == Reply("answer", "stable")
    assert read_reply(QUESTIONS["dataset_examples"], "1,200") == Reply("answer", 1200)
    assert read_reply(QUESTIONS["commercial_use"], "Y") == Reply("answer", True)
    assert read_reply(QUESTIONS["gpu_memory_gib"], "80") == Reply("answer", 80.0)
    assert read_reply(QUESTIONS["base_model"], " llama-3.1-8b ") == Reply("answer", "llama-3.1-8b")


# --- the bounds are the contract's, so every door refuses the same sizes ----------------

BOUNDS = {
    "dataset_examples": 10**12,
    "adapters": 10**6,
    "latency_budget_ms": 86_400_000,
    "gpu_memory_gib": 4096,
    "gpus": 65536,
    "batch_size": 1 << 20,
    "seq_len": 1 << 24,
}


def upper_bound(model, name: str):
    """The field's `le`, also when it bounds the number in an answer that may be `unknown` instead."""
    if model is Answers:
        return field_bound(name, "le")
    return next(m.le for m in model.model_fields[name].metadata if hasattr(m, "le"))


@pytest.mark.parametrize("name", sorted(BOUNDS))
def test_absurd_sizes_are_refused_by_the_contract_naming_the_field(name):
    assert upper_bound(Answers, name) == BOUNDS[name]
    assert getattr(advisor.parse_answers({name: BOUNDS[name]}), name) == BOUNDS[name]  # the bound itself is allowed
    with pytest.raises(InvalidInput) as err:
        advisor.parse_answers({name: BOUNDS[name] * 10})
    assert [issue.field for issue in err.value.fields] == [name]
    assert "less than or equal to" in err.value.fields[0].message


def test_compute_bounds_are_the_estimators():
    for answer, setting in (("gpus", "gpus"), ("batch_size", "batch"), ("seq_len", "seq")):
        assert upper_bound(Answers, answer) == upper_bound(TrainingSettings, setting)


# --- wrapping to the terminal ---------------------------------------------------------


def words_kept_whole(lines: list[str], text: str, width: int) -> None:
    assert all(len(line) <= width for line in lines), lines
    assert " ".join(" ".join(lines).split()) == " ".join(text.split())  # no word split, none lost


def test_help_wraps_at_40_columns_without_splitting_words():
    help_text = QUESTIONS["change_kind"].help
    lines = wrap(help_text, indent="  ", width=40).splitlines()
    words_kept_whole(lines, help_text, 40)
    assert len(lines) > 3


def test_choices_wrap_beside_their_value_or_under_it():
    wide = choice_lines(QUESTIONS["context_tried"], 100)
    assert wide[2].split() == ["3.", "partly_works", *QUESTIONS["context_tried"].choices["partly_works"].split()]
    narrow = choice_lines(QUESTIONS["imitates"], 40)
    assert all(len(line) <= 40 for line in narrow)
    assert narrow[:2] == ["  1. person", "       a specific person's voice or"]
    for value, label in QUESTIONS["privacy"].choices.items():
        assert value in " ".join(choice_lines(QUESTIONS["privacy"], 40))
        assert " ".join(label.split()) in " ".join(" ".join(choice_lines(QUESTIONS["privacy"], 40)).split())


# --- the save file: checked before the first question, resumed without bad answers -------


def refused(path) -> InvalidInput:
    with pytest.raises(InvalidInput) as err:
        load_saved_answers(path, RUBRIC)
    assert [issue.field for issue in err.value.fields] == ["--save-answers"]
    return err.value


def test_a_save_path_in_a_folder_that_does_not_exist_is_refused(tmp_path):
    assert "does not exist" in refused(tmp_path / "no" / "answers.yaml").message


def test_a_save_path_that_is_a_folder_is_refused(tmp_path):
    assert "is a folder" in refused(tmp_path).message


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_save_path_in_a_folder_that_cannot_be_written_is_refused():
    # /proc refuses new files even to root, for whom permission bits do not count
    assert "cannot write" in refused(Path("/proc/answers.yaml")).message


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("model_type: llama\nhidden_size: 4096\n", "not an answers file"),
        ("- a\n- b\n", "mapping"),
        ("stability: [unclosed\n", "not valid YAML"),
    ],
)
def test_an_existing_file_that_is_not_answers_is_refused_not_overwritten(tmp_path, content, says):
    path = tmp_path / "config.yaml"
    path.write_text(content, encoding="utf-8")
    assert says in refused(path).message
    assert path.read_text(encoding="utf-8") == content


def test_a_new_or_empty_save_file_holds_no_answers(tmp_path):
    assert load_saved_answers(tmp_path / "new.yaml", RUBRIC) == {}
    (tmp_path / "empty.yaml").touch()
    assert load_saved_answers(tmp_path / "empty.yaml", RUBRIC) == {}


def test_saved_answers_that_no_longer_pass_are_dropped_and_said(tmp_path, capsys):
    path = tmp_path / "answers.yaml"
    path.write_text(
        "goal: Route tickets\nstability: sometimes\nbase_model: lama-3.1-8b\ndataset_examples: 1200\nimitates: null\n"
    )
    assert load_saved_answers(path, RUBRIC) == {"goal": "Route tickets", "imitates": None, "dataset_examples": 1200}
    said = " ".join(capsys.readouterr().err.split())
    assert "The saved answer to stability is no longer accepted" in said
    assert "The saved answer to base_model is no longer accepted" in said and "llama-3.1-8b" in said
    assert f"3 of {len(RUBRIC.questions)} questions already answered" in said


def test_check_save_path_accepts_a_new_file_in_a_writable_folder(tmp_path):
    check_save_path(tmp_path / "answers.yaml")
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind


def test_interrupted_says_where_the_answers_are_and_how_to_resume(tmp_path):
    saved = tmp_path / "my answers.yaml"
    message = interrupted_message(saved, 5, 20)
    assert f"5 of 20 answers are saved in {saved}" in message
    assert message.endswith(f"resume with: advisor assess --save-answers '{saved}'")
    unsaved = interrupted_message(None, 5, 20)
    assert "nothing was saved" in unsaved and unsaved.endswith("advisor assess --save-answers answers.yaml")


# --- a base model that does not resolve is refused by every door that parses answers -------


@pytest.mark.parametrize("extra", [{}, {"gpu_memory_gib": 24}], ids=["without-gpu-memory", "with-gpu-memory"])
def test_the_python_api_refuses_an_unknown_base_model(extra):
    with pytest.raises(InvalidInput) as err:
        advisor.assess({"change_kind": "style", "base_model": "lama-3.1-8b", **extra})
    assert [issue.field for issue in err.value.fields] == ["base_model"]
    assert "close matches: llama-3.1-8b" in err.value.fields[0].message


def test_base_model_unknown_means_not_known():
    assert advisor.parse_answers({"base_model": "Unknown"}).base_model is None


def test_the_agent_tool_refuses_an_unknown_base_model():
    from advisor.agents.tools import call_tool

    with pytest.raises(InvalidInput) as err:
        call_tool("assess_lora_fit", {"answers": {"base_model": "lama-3.1-8b"}})
    assert [issue.field for issue in err.value.fields] == ["answers.base_model"]
