"""The rubric validator: the shipped rubric passes; each way data and engine can disagree fails, by name."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable

import pytest
import yaml

from advisor.assessment.rubric import default_rubric_path, load_rubric
from advisor.assessment.rubric_check import validate_rubric
from advisor.assessment.rule_cases import load_cases
from advisor.errors import InvalidFile
from tests.conftest import ROOT, run_advisor

RUBRICS = ROOT / "rubrics"


def question(data: dict, qid: str) -> dict:
    return next(q for q in data["questions"] if q["id"] == qid)


def write_rubric(
    tmp_path, mutate_rubric: Callable[[dict], None] | None = None, mutate_table: Callable[[dict], None] | None = None
):
    rubric = yaml.safe_load((RUBRICS / "lora_fit.yaml").read_text(encoding="utf-8"))
    table = yaml.safe_load((RUBRICS / "licenses.yaml").read_text(encoding="utf-8"))
    if mutate_rubric:
        mutate_rubric(rubric)
    if mutate_table:
        mutate_table(table)
    (tmp_path / "licenses.yaml").write_text(yaml.safe_dump(table, sort_keys=False), encoding="utf-8")
    shutil.copytree(RUBRICS / "cases", tmp_path / "cases", dirs_exist_ok=True)
    path = tmp_path / "lora_fit.yaml"
    path.write_text(yaml.safe_dump(rubric, sort_keys=False), encoding="utf-8")
    return path


def problems(path) -> list[tuple[str, str]]:
    with pytest.raises(InvalidFile) as info:
        validate_rubric(path, examples=False)
    return [(issue.field, issue.message) for issue in info.value.fields]


def test_shipped_rubric_is_valid():
    checked = validate_rubric()
    assert checked.rubric.id == "lora_fit"
    assert checked.cases == len(load_cases(RUBRICS / "cases")) > 0
    assert checked.examples == len(list((ROOT / "examples").glob("*.yaml"))) - 1  # all but expected.yaml


def test_copy_of_shipped_rubric_is_valid(tmp_path):
    assert validate_rubric(write_rubric(tmp_path), examples=False).rubric.version == load_rubric().version


def test_validate_runs_the_rule_cases_and_the_worked_examples(tmp_path):
    def flip(d):  # knowledge would now favour prompting: its cases and the policy-docs example disagree
        next(r for r in d["rules"] if r["id"] == "knowledge_belongs_in_retrieval")["fit"] = {"prompting": 6}

    with pytest.raises(InvalidFile) as info:
        validate_rubric(write_rubric(tmp_path, flip))
    fields = {issue.field for issue in info.value.fields}
    fired = {
        c.where
        for c in load_cases(RUBRICS / "cases")
        if c.case.rule == "knowledge_belongs_in_retrieval" and c.case.fires
    }
    assert fired and fired <= fields and "examples.policy-docs-qa" in fields


def test_validate_needs_rule_cases(tmp_path):
    path = write_rubric(tmp_path)
    shutil.rmtree(tmp_path / "cases")
    assert ("rubric.cases", f"no rule cases in {tmp_path / 'cases'}") in problems(path)


def test_rubric_validate_command():
    res = run_advisor("rubric", "validate", "--json")
    assert res.returncode == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)["valid"] is True
    res = run_advisor("rubric", "validate", str(default_rubric_path()))
    assert res.returncode == 0 and res.stdout.startswith("ok: rubric lora_fit")


def test_rubric_validate_command_reports_every_problem(tmp_path):
    def break_twice(d):
        question(d, "stability")["readiness"]["sometimes"] = 5
        d["gates"][0]["question"] = "nope"

    res = run_advisor("rubric", "validate", str(write_rubric(tmp_path, break_twice)), "--json")
    assert res.returncode == 2
    found = json.loads(res.stdout)["error"]["fields"]
    assert any(f["field"].endswith("stability.readiness.sometimes") for f in found)
    assert any(f["field"].endswith("gates.license_unknown.question") for f in found)


def _set(path: str, value):
    """A mutation setting `a.b.c` (list items by `id`) to value; `None` deletes it."""

    def mutate(data):
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = next(i for i in node if i.get("id") == key) if isinstance(node, list) else node[key]
        if value is None:
            if isinstance(node, list):
                node.remove(next(i for i in node if i.get("id") == last))
            else:
                del node[last]
        else:
            node[last] = value

    return mutate


def _apply(*mutations):
    def mutate(data):
        for m in mutations:
            m(data)

    return mutate


# (id, mutation of the rubric, expected field suffix, expected message fragment)
BROKEN_RUBRICS = [
    (
        "score-above-10",
        _set("questions.stability.readiness.stable", 11),
        "readiness.stable",
        "less than or equal to 10",
    ),
    (
        "score-below-0",
        _set("questions.stability.readiness.volatile", -1),
        "readiness.volatile",
        "greater than or equal to 0",
    ),
    (
        "score-for-unknown-answer",
        _set("questions.stability.readiness.sometimes", 5),
        "stability.readiness.sometimes",
        "not an answer",
    ),
    (
        "unknown-is-scored",
        _set("questions.stability.readiness.unknown", 0),
        "stability.readiness.unknown",
        "never graded",
    ),
    (
        "answer-without-grade",
        _set("questions.stability.readiness.evolving", None),
        "stability.readiness",
        "'evolving' has no readiness grade",
    ),
    (
        "weak-answer-without-remediation",
        _set("questions.stability.remediation.volatile", None),
        "stability.remediation",
        "'volatile' is weak",
    ),
    (
        "unknown-without-remediation",
        _set("questions.eval_set.remediation.unknown", None),
        "eval_set.remediation",
        "'unknown' is weak or open",
    ),
    (
        "remediation-for-unknown-answer",
        _set("questions.eval_set.remediation.partial", "x"),
        "eval_set.remediation.partial",
        "not an answer",
    ),
    (
        "choice-not-in-contract",
        _apply(
            _set("questions.stability.choices.sometimes", "now and then"),
            _set("questions.stability.readiness.sometimes", 5),
        ),
        "stability.choices.sometimes",
        "does not allow",
    ),
    (
        "contract-value-not-in-rubric",
        _apply(
            _set("questions.stability.choices.volatile", None),
            _set("questions.stability.readiness.volatile", None),
            _set("questions.stability.remediation.volatile", None),
        ),
        "stability.choices",
        "allows 'volatile'",
    ),
    (
        "unknown-listed-as-choice",
        _set("questions.stability.choices.unknown", "not sure"),
        "stability.choices.unknown",
        "always allowed",
    ),
    (
        "question-not-in-contract",
        lambda d: d["questions"].append({**copy.deepcopy(question(d, "imitates")), "id": "team_size"}),
        "questions.team_size",
        "no such field",
    ),
    ("contract-field-without-question", _set("questions.seq_len", None), "questions", "'seq_len' but no question"),
    (
        "type-disagrees-with-contract",
        _set("questions.dataset_examples.type", "number"),
        "dataset_examples.type",
        "contract field is integer",
    ),
    (
        "bands-not-increasing",
        _set(
            "questions.dataset_examples.bands",
            [{"level": "few", "max": 99}, {"level": "none", "max": 0}, {"level": "many"}],
        ),
        "dataset_examples.bands",
        "must increase",
    ),
    (
        "last-band-closed",
        _set(
            "questions.adapters.bands",
            [{"level": "one", "max": 1}, {"level": "several", "max": 25}, {"level": "many", "max": 99}],
        ),
        "adapters.bands",
        "the last has none",
    ),
    (
        "scored-without-criterion",
        _set("questions.stability.criterion", "cost"),
        "stability.criterion",
        "known criterion",
    ),
    (
        "criterion-without-question",
        _set("criteria.cost", {"title": "Cost", "help": "x", "sources": ["kb-2026-00004"]}),
        "criteria.cost",
        "no scored question",
    ),
    (
        "input-question-unused",
        _set("cautions.unmerged_latency.when", {"serving_mode": ["separate_adapters"]}),
        "questions.latency_budget_ms",
        "must be read",
    ),
    (
        "license-class-not-in-table",
        _set("questions.dataset_license.readiness.public_domain", 10),
        "dataset_license.readiness.public_domain",
        "not an answer",
    ),
    (
        "gate-unknown-question",
        _set("gates.license_unknown.question", "nope"),
        "gates.license_unknown.question",
        "unknown question",
    ),
    (
        "gate-question-not-in-condition",
        _set("gates.license_unknown.question", "privacy"),
        "gates.license_unknown.question",
        "must appear in its condition",
    ),
    (
        "gate-blocks-alternative",
        _set("gates.license_unknown.blocks", ["lora", "retrieval"]),
        "gates.license_unknown.blocks",
        "training options only",
    ),
    (
        "rule-unknown-question",
        _set("rules.curated_data.when", {"dataset_size": ["large"]}),
        "rules.curated_data.when.dataset_size",
        "unknown question",
    ),
    (
        "rule-unknown-answer",
        _set("rules.curated_data.when", {"dataset_quality": ["pristine"]}),
        "rules.curated_data.when.dataset_quality",
        "'pristine' is not an answer",
    ),
    (
        "rule-on-compute-question",
        _set("rules.curated_data.when", {"gpus": ["8"]}),
        "rules.curated_data.when.gpus",
        "unknown question or fact",
    ),
    (
        "rule-unknown-option",
        _set("rules.curated_data.fit", {"distillation": 1}),
        "rules.curated_data.fit.distillation",
        "unknown option",
    ),
    ("rule-delta-out-of-range", _set("rules.curated_data.fit", {"lora": 12}), "fit.lora", "less than or equal to 10"),
    ("duplicate-rule-id", _set("rules.raw_data.id", "curated_data"), "rules.curated_data", "id used twice"),
    (
        "caution-unknown-decision",
        _set("cautions.unmerged_latency.decisions", ["train_now"]),
        "cautions.unmerged_latency.decisions",
        "unknown decision",
    ),
    (
        "option-engine-does-not-know",
        _set(
            "options.distillation",
            {"label": "Distillation", "base": 1, "description": "x", "sources": ["kb-2026-00004"]},
        ),
        "options.distillation",
        "does not know",
    ),
    ("option-missing", _set("options.tool_access", None), "options", "'tool_access' is missing"),
    (
        "unknown-source-id",
        _set("rules.curated_data.sources", ["made-up-2025"]),
        "rules.curated_data.sources",
        "unknown source id",
    ),
    (
        "source-never-cited",
        _set("sources.uncited", {"title": "x", "kind": "paper", "arxiv": "2401.00001"}),
        "sources.uncited",
        "never cited",
    ),
    ("source-without-link", _set("sources.hu2021-lora.arxiv", None), "sources.hu2021-lora", "url or an arXiv id"),
    (
        "summary-unknown-placeholder",
        _set("decision.summaries.use_alternative", "Use {option}"),
        "decision.summaries.use_alternative",
        "unknown placeholder",
    ),
    (
        "summary-missing",
        _set("decision.summaries.not_ready", None),
        "decision.summaries",
        "no summary for decision 'not_ready'",
    ),
    (
        "confidence-unknown-level",
        _set("confidence.otherwise", "very_low"),
        "confidence.otherwise",
        "unknown confidence level",
    ),
    ("unknown-top-level-key", _set("weights", {"a": 1}), "rubric.weights", "unknown field"),
]


@pytest.mark.parametrize(
    ("mutate", "field", "message"), [case[1:] for case in BROKEN_RUBRICS], ids=[case[0] for case in BROKEN_RUBRICS]
)
def test_broken_rubric_fails_by_name(tmp_path, mutate, field, message):
    found = problems(write_rubric(tmp_path, mutate))
    assert any(f.endswith(field) and message in m for f, m in found), found


BROKEN_TABLES = [
    (
        "non-canonical-id",
        lambda t: t["licenses"].update({"bsd-2-clause-patent": ["attribution"]}),
        "licenses.bsd-2-clause-patent",
        "canonical",
    ),
    (
        "not-a-license",
        lambda t: t["licenses"].update({"NotALicense": ["attribution"]}),
        "licenses.NotALicense",
        "unknown license id",
    ),
    ("listed-twice", lambda t: t["licenses"].update({"mit": ["share_alike"]}), "licenses.mit", "listed twice"),
    (
        "unknown-term",
        lambda t: t["licenses"].update({"MIT": ["public_domain"]}),
        "licenses.MIT",
        "unknown term",
    ),
    (
        "class-with-unknown-term",
        lambda t: t["classes"][2]["terms"].append("viral"),
        "classes.copyleft.terms",
        "unknown term",
    ),
    ("unknown-not-last", lambda t: t["classes"].reverse(), "license_table.classes", "must be 'unknown'"),
    (
        "uppercase-hf-id",
        lambda t: t["hugging_face"].update({"Llama2": "LicenseRef-Llama-2-Community"}),
        "hugging_face.Llama2",
        "lowercase",
    ),
    (
        "hf-id-maps-to-invalid",
        lambda t: t["hugging_face"].update({"foo": "Foo-1.0"}),
        "hugging_face.foo",
        "unknown license id",
    ),
    (
        "wrong-representative",
        lambda t: t["representatives"].update({"permissive": "CC-BY-NC-4.0"}),
        "representatives.permissive",
        "classifies as non_commercial",
    ),
    (
        "missing-representative",
        lambda t: t["representatives"].pop("copyleft"),
        "license_table.representatives",
        "class 'copyleft'",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "field", "message"), [case[1:] for case in BROKEN_TABLES], ids=[case[0] for case in BROKEN_TABLES]
)
def test_broken_license_table_fails_by_name(tmp_path, mutate, field, message):
    found = problems(write_rubric(tmp_path, mutate_table=mutate))
    assert any(f.endswith(field) and message in m for f, m in found), found


def test_missing_license_table_is_reported(tmp_path):
    path = write_rubric(tmp_path)
    (tmp_path / "licenses.yaml").unlink()
    with pytest.raises(InvalidFile, match="no such file"):
        load_rubric(path)


def test_rubric_without_license_table_key(tmp_path):
    with pytest.raises(InvalidFile, match="license_table"):
        load_rubric(write_rubric(tmp_path, _set("license_table", None)))


def test_installed_layout_is_found(tmp_path, monkeypatch):
    """In a wheel the data sits inside the package (hatch force-include); `data_dir` looks there first."""
    import advisor.package_data as data

    package = tmp_path / "advisor"
    shutil.copytree(RUBRICS, package / "rubrics")
    monkeypatch.setattr(data, "PACKAGE_DIR", package)
    assert data.data_dir("rubrics") == package / "rubrics"
    monkeypatch.setattr(data, "PACKAGE_DIR", tmp_path / "elsewhere" / "advisor")
    with pytest.raises(Exception, match="reinstall advisor"):
        data.data_dir("rubrics")


# The compiled rubric (`advisor rubric compile`): read instead of the YAML while the YAML is unchanged.


def test_the_shipped_compiled_rubric_is_current():
    from advisor.assessment.rubric import _from_compiled, compiled_path

    assert compiled_path(default_rubric_path()).is_file()
    assert _from_compiled(default_rubric_path()) is not None, (
        "rubrics/lora_fit.compiled.json was compiled from other files than rubrics/lora_fit.yaml and "
        "rubrics/licenses.yaml as they are now: run `advisor rubric compile`"
    )


def test_the_compiled_rubric_is_the_rubric_the_yaml_holds():
    from advisor.assessment.rubric import _from_compiled, _from_yaml

    # dumps, not the models: a model's == also compares private caches (the licence table's findings)
    compiled, from_yaml = _from_compiled(default_rubric_path()), _from_yaml(default_rubric_path())
    assert compiled.model_dump() == from_yaml.model_dump()


def test_an_edited_rubric_is_read_from_its_yaml_until_compiled_again(tmp_path):
    path = write_rubric(tmp_path)
    res = run_advisor("rubric", "compile", str(path))
    assert res.returncode == 0, res.stderr
    compiled = tmp_path / "lora_fit.compiled.json"
    assert res.stdout.strip() == f"wrote {compiled}"
    assert load_rubric(path).title == yaml.safe_load(path.read_text(encoding="utf-8"))["title"]

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["title"] = "Edited after compiling"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    from advisor.assessment.rubric import _from_compiled, _load_rubric

    assert _from_compiled(path) is None
    _load_rubric.cache_clear()
    assert load_rubric(path).title == "Edited after compiling"


def test_an_edited_license_table_makes_the_compiled_rubric_stale(tmp_path):
    from advisor.assessment.rubric import _from_compiled, compile_rubric

    path = write_rubric(tmp_path)
    compile_rubric(path)
    assert _from_compiled(path) is not None
    table = tmp_path / "licenses.yaml"
    table.write_text(table.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert _from_compiled(path) is None


@pytest.mark.parametrize(
    "content",
    ["", "not json", "[]", '{"inputs": {}}', '{"inputs": {"lora_fit.yaml": "0"}, "rubric": {}}', '{"rubric": 1}'],
)
def test_a_broken_compiled_rubric_is_ignored(tmp_path, content):
    from advisor.assessment.rubric import _from_compiled, _load_rubric

    path = write_rubric(tmp_path)
    (tmp_path / "lora_fit.compiled.json").write_text(content, encoding="utf-8")
    assert _from_compiled(path) is None
    _load_rubric.cache_clear()
    assert load_rubric(path).id == "lora_fit"


def test_a_compiled_rubric_that_disagrees_with_the_engine_is_still_refused(tmp_path):
    """The compiled form spares the YAML parse, never the check against the engine (which may have changed)."""
    from advisor.assessment.rubric import _load_rubric, compile_rubric

    path = write_rubric(tmp_path)
    compile_rubric(path)
    compiled = tmp_path / "lora_fit.compiled.json"
    data = json.loads(compiled.read_text(encoding="utf-8"))
    data["rubric"]["rules"][0]["when"] = [{"no_such_question": ["x"]}]
    compiled.write_text(json.dumps(data), encoding="utf-8")
    _load_rubric.cache_clear()
    with pytest.raises(InvalidFile, match="disagrees with the engine"):
        load_rubric(path)
