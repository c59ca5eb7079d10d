"""Fuzzing the answers contract: any valid answers give a decision the article's criteria allow; any invalid
answers or answer file give exit 2 with the field at fault, in bounded time (and, end to end, bounded memory)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from advisor.assessment.contract import TRAIN_DECISIONS, TRAINING_OPTIONS
from advisor.assessment.engine import evaluate
from advisor.assessment.service import installed_versions, looked_up, parse_answers
from advisor.cli import cli
from advisor.errors import InvalidInput
from advisor.files import MAX_ANSWERS_BYTES, MAX_YAML_DEPTH
from tests.conftest import ROOT
from tests.strategies import CASE_SECONDS, FUZZ, RUBRIC, computes, invalid_answers, valid_answers

pytestmark = pytest.mark.fuzz
VERSIONS = installed_versions(RUBRIC)
# The least data a change of each kind needs before training (the rubric's minimums, from OpenAI, Google and Azure).
MINIMUM_EXAMPLES = {"style": 50, "format": 50, "knowledge": 16}


def assess(data: dict, compute):
    answers, evidence = looked_up(parse_answers(data, rubric=RUBRIC), RUBRIC)
    return answers, evaluate(answers, RUBRIC, compute=compute, versions=VERSIONS, evidence=evidence)


@FUZZ
@given(valid_answers(), computes())
def test_valid_answers_give_a_decision_the_articles_criteria_allow(data, compute):
    """What the article's four questions and the vendors' minimums require of every decision, whatever the
    rubric's weights: never train without a cleared dataset, an evaluation of the production task, a stable
    behavior and enough examples; the decision, primary and blockers agree with the options and gates."""
    start = time.perf_counter()
    answers, result = assess(data, compute)
    assert time.perf_counter() - start < CASE_SECONDS
    trains = result.decision in TRAIN_DECISIONS
    fits = {o.option: o for o in result.options}

    # Is there a high-quality dataset with licensing and privacy clearance?
    if trains:
        assert result.license is not None and result.license.license_class != "unknown"
        assert answers.privacy in ("no_personal_data", "personal_data_cleared")
        assert answers.data_provenance not in (None, "closed_model_outputs")
        assert answers.dataset_examples is not None
        assert answers.dataset_examples >= MINIMUM_EXAMPLES.get(answers.change_kind, 100)
        assert not (answers.commercial_use is not False and "non_commercial" in result.license.terms)
        if answers.base_model:
            assert result.base_model_license is not None and result.base_model_license.license_class != "unknown"
            assert not (answers.commercial_use is not False and "non_commercial" in result.base_model_license.terms)
        if answers.imitates == "person":
            assert answers.person_consent is True
    # Does the evaluation set measure the actual production task?
    if trains:
        assert answers.eval_set == "production_like" and answers.baseline_measured is True
    # Is the target behavior stable enough to justify training?
    if answers.stability == "volatile":
        assert not trains
    # Could context alone supply it? Knowledge goes to retrieval and live data to tools before any training.
    if answers.change_kind == "knowledge":
        assert result.primary not in TRAINING_OPTIONS or result.decision == "not_ready"
        assert not trains
    if answers.change_kind == "actions" and answers.tools_available is not True:
        assert not trains

    # The decision agrees with the options, the gates and the blockers.
    if trains:
        assert fits[result.primary].training and not fits[result.primary].blocked_by
        assert (result.decision == "recommend_full_finetune") == (result.primary == "full_finetune")
    elif result.decision == "not_ready":
        assert fits[result.primary].training and result.blockers == fits[result.primary].blocked_by
    else:
        assert not fits[result.primary].training and result.blockers == []
    assert result.training_blockers == fits[result.training_target()].blocked_by
    assert set(result.training_blockers) <= {g.question for g in result.gates}
    # Confidence is never high with an open conflict, nor for training on data nobody measured.
    if result.confidence.level == "high":
        assert not result.conflicts
        assert not trains or set(RUBRIC.confidence.data_answers) <= set(result.confidence.measured)
    json.dumps(result.model_dump(mode="json"), allow_nan=False)  # the JSON door can always print it


def _invoke(args: list[str], stdin: bytes | None = None):
    start = time.perf_counter()
    result = CliRunner().invoke(cli, args, input=stdin)
    elapsed = time.perf_counter() - start
    assert elapsed < CASE_SECONDS, f"took {elapsed:.1f}s"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def _assess_error(content: bytes, via_stdin: bool) -> dict:
    if via_stdin:
        result = _invoke(["assess", "--answers", "-", "--json"], stdin=content)
    else:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "answers.yaml"
            path.write_bytes(content)
            result = _invoke(["assess", "--answers", str(path), "--json"])
    assert result.exit_code == 2, result.output[:2000]
    return json.loads(result.stdout)["error"]


def _serialize(data: dict, as_json: bool) -> bytes:
    if as_json:
        return json.dumps({str(k): v for k, v in data.items()}).encode()  # NaN, Infinity: words YAML reads as text
    return yaml.safe_dump(data, sort_keys=False).encode()


@FUZZ
@given(invalid_answers(), st.booleans(), st.booleans())
def test_invalid_answers_exit_2_naming_each_bad_field(drawn, as_json, via_stdin):
    data, bad_fields = drawn
    with pytest.raises(InvalidInput) as info:  # the API door
        parse_answers(data)
    assert {issue.field for issue in info.value.fields} == bad_fields
    content = _serialize(data, as_json)
    error = _assess_error(content, via_stdin)  # the CLI door, from the file
    assert error["code"] == "invalid_input"
    assert {issue["field"] for issue in error["fields"]} == bad_fields
    assert all(issue["message"] for issue in error["fields"])
    text = _invoke(["assess", "--answers", "-"], stdin=content)  # and in words, for a terminal
    assert text.exit_code == 2 and text.stdout == ""
    assert all(char.isprintable() for line in text.stderr.splitlines() for char in line), text.stderr


# --- files that are not answers at all ---------------------------------------------------

# Small expansions (at most 5**5 nodes): refused for the alias, not for the size, and quick even unguarded.
# The billion laughs themselves run end to end below, in a process with a memory limit.
LAUGHS = st.builds(
    lambda levels, width: "".join(
        f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width) if i else 'lol'}]\n" for i in range(levels)
    ),
    st.integers(2, 5),
    st.integers(2, 5),
)
NESTED = st.builds(
    lambda depth, open_, close: open_ * depth + close * depth,
    st.integers(MAX_YAML_DEPTH + 1, 100_000),
    st.just("["),
    st.just("]"),
) | st.builds(
    lambda depth: "goal:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, depth)),
    st.integers(MAX_YAML_DEPTH + 2, 300),
)
PYTHON_TAGS = st.sampled_from(
    [
        "goal: !!python/object/apply:os.getcwd []\n",
        "goal: !!python/name:os.system\n",
        "goal: !!python/module:os\n",
        "goal: !!python/object/new:builtins.dict {}\n",
        "goal: !!python/tuple [1, 2]\n",
        "goal: !custom tag\n",
    ]
)
MALFORMED = st.sampled_from(
    [
        "change_kind: [style\n",
        "a: b: c\n",
        "{\n",
        "goal: 'open\n",
        "- a\nb: c\n",
        "\tgoal: x\n",
        "? [a, b]\n: c\n",
        'goal: "\\q"\n',
        "%YAML 9.9\n---\na: 1\n",
    ]
)
NOT_A_MAPPING = st.one_of(
    st.lists(st.integers(), min_size=1),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(min_size=1).filter(lambda s: s.strip()),
    st.booleans(),
    st.none(),
)


def file_cases():
    """(content, a phrase the error must contain): each guard's own refusal."""
    return st.one_of(
        st.sampled_from([b"", b"   \n", b"\n\n\t\n", b"\xef\xbb\xbf"]).map(lambda b: (b, "is empty")),
        st.binary(max_size=200).map(lambda b: (b + b"\x00" + b, "binary")),
        st.binary(max_size=200).map(lambda b: (b"goal: " + b.replace(b"\x00", b"") + b"\xff\xfe", "not UTF-8")),
        st.integers(1, 4096).map(lambda n: (b"goal: x\n" + b"#" * (MAX_ANSWERS_BYTES + n), "limit")),
        NOT_A_MAPPING.map(lambda v: (yaml.safe_dump(v).encode(), "must hold a mapping")),
        LAUGHS.map(lambda text: (text.encode(), "aliases")),
        NESTED.map(lambda text: (text.encode(), "nest")),
        PYTHON_TAGS.map(lambda text: (text.encode(), "not valid YAML")),
        MALFORMED.map(lambda text: (text.encode(), "not valid YAML")),
    )


@FUZZ
@given(file_cases(), st.booleans())
def test_files_that_are_not_answers_exit_2_naming_the_option(case, via_stdin):
    content, phrase = case
    error = _assess_error(content, via_stdin)
    assert error["code"] == "invalid_file"
    assert phrase in error["message"]
    assert [issue["field"] for issue in error["fields"]] == ["--answers"]


# --- end to end: a fresh process, a memory limit, a time limit ---------------------------

MEMORY_LIMIT = 512 << 20  # python -m advisor assess needs about 60 MiB here


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def billion_laughs() -> str:
    """Nine levels of ten: a billion strings once expanded, and `goal` makes the error message print it."""
    lines = ["l0: &l0 lol"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\ngoal: *l9\n"


END_TO_END = {
    "billion-laughs": (billion_laughs(), "aliases"),
    "nested-100000": ("goal: " + "[" * 100_000 + "]" * 100_000 + "\n", "nest"),
    "over-the-limit": ("goal: x\n" + "#" * MAX_ANSWERS_BYTES, "limit"),
    "python-tag": ("goal: !!python/object/apply:os.system ['echo pwned']\n", "not valid YAML"),
    "binary": ("\x00\x01\x02", "binary"),
}


@pytest.mark.parametrize("via_stdin", [False, True], ids=["file", "stdin"])
@pytest.mark.parametrize("name", sorted(END_TO_END))
def test_hostile_answer_files_exit_2_within_memory_and_time(tmp_path, name, via_stdin):
    content, phrase = END_TO_END[name]
    path = tmp_path / "answers.yaml"
    path.write_text(content, encoding="utf-8")
    source = "-" if via_stdin else str(path)
    start = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "advisor", "assess", "--answers", source, "--json"],
        input=content.encode() if via_stdin else None,
        capture_output=True,
        timeout=60,
        cwd=ROOT,
        preexec_fn=_limit_memory,
    )
    assert time.perf_counter() - start < 30
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    error = json.loads(res.stdout)["error"]
    assert phrase in error["message"] and error["fields"][0]["field"] == "--answers"
    assert b"Traceback" not in res.stderr and b"pwned" not in res.stdout + res.stderr
