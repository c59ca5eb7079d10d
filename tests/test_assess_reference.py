"""`advisor assess --reference-run`: a recommendation to train, measured on the base model."""

from __future__ import annotations

import json
import re

import pytest
import yaml

pytest.importorskip("torch")

from markdown_it import MarkdownIt  # noqa: E402

from advisor.assessment.worked_examples import example_path  # noqa: E402
from advisor.estimate import estimate_training_memory, training_settings  # noqa: E402
from advisor.fmt import fmt_bytes, fmt_count  # noqa: E402
from tests.conftest import TINY_LLAMA, run_advisor  # noqa: E402

ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def answers_file(tmp_path, example: str, **changes) -> str:
    answers = yaml.safe_load(example_path(example).read_text())
    answers.update(changes)
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(answers))
    return str(path)


def test_a_recommendation_is_measured_and_reported(tmp_path):
    folder = tmp_path / "tiny | `model`"  # a path with Markdown in it must not break the report
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_LLAMA))
    report = tmp_path / "advice.md"
    res = run_advisor(
        "assess",
        "--answers",
        answers_file(tmp_path, "support-tone", base_model=str(folder), base_model_license="Apache-2.0"),
        "--reference-run",
        "--json",
        "--report",
        str(report),
        env=ONE_THREAD,
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["decision"] == "recommend_lora" and data["reference_run_skipped"] is None
    run = data["reference_run"]
    estimate = estimate_training_memory(
        str(folder), training_settings(method="lora", targets="all-linear", rank=16, seq=64)
    )
    assert run["lora"]["figures"]["trainable_params"]["measured"] == estimate.trainable_params
    assert run["settings"]["targets"] == "all-linear" and run["settings"]["rank"] == 16

    text = report.read_text()
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    headings = [
        "".join(child.content for child in tokens[i + 1].children)
        for i, t in enumerate(tokens)
        if t.type == "heading_open" and t.tag == "h2"
    ]
    assert "Reference run: tiny | `model`" in headings
    fences = [t for t in tokens if t.type == "fence"]
    assert [f.info for f in fences] == ["mermaid"] and "xychart-beta" in fences[0].content
    assert not [t for t in tokens if t.type in ("html_block", "html_inline")]


def test_the_terminal_summary_ends_with_the_run_table(tmp_path):
    """`advisor assess --reference-run` on a terminal: the summary (cli/summary.py), then print_run_table."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY_LLAMA))
    res = run_advisor(
        "assess",
        "--answers",
        answers_file(tmp_path, "support-tone", base_model=str(folder), base_model_license="Apache-2.0"),
        "--reference-run",
        env={**ONE_THREAD, "COLUMNS": "200"},  # wide enough that rich cuts no cell
    )
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert out.startswith("Decision: recommend_lora")
    assert out.index("Compute feasibility:") < out.index(
        "Reference run: tiny (llama, 2 layers) on CPU, the whole model"
    )
    rows = {}
    for line in out[out.index("Reference run: ") :].splitlines():
        cells = re.split(r"\s{2,}", line.strip())  # rich sets columns apart by two spaces or more
        rows.setdefault(cells[0], cells[1:])
    lora = estimate_training_memory(
        str(folder), training_settings(method="lora", targets="all-linear", rank=16, seq=64)
    )
    # columns: full measured, estimated, error; LoRA measured, estimated, error; full / LoRA
    assert rows["trainable params"][3:5] == [fmt_count(lora.trainable_params)] * 2
    assert rows["gradients"][3:5] == [fmt_bytes(lora.sizes["gradients"])] * 2
    for label in ("weights", "AdamW states", "activations", "outputs held", "peak of a step", "checkpoint"):
        assert len(rows[label]) == 7, (label, rows[label])
    assert "Serving (batch " in out and "merged outputs match unmerged: yes" in " ".join(out.split())


def test_no_run_when_the_decision_is_not_to_train(tmp_path):
    res = run_advisor("assess", "--answers", answers_file(tmp_path, "policy-docs-qa"), "--reference-run", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["reference_run"] is None and "use_alternative" in data["reference_run_skipped"]
    assert "no reference run" in res.stderr


def test_a_run_needs_the_base_model(tmp_path):
    answers = yaml.safe_load(example_path("support-tone").read_text())
    for key in ("base_model", "gpu_memory_gib", "gpus", "batch_size", "seq_len"):
        answers.pop(key)
    path = tmp_path / "answers.yaml"
    path.write_text(yaml.safe_dump(answers))
    res = run_advisor("assess", "--answers", str(path), "--reference-run", "--json")
    assert res.returncode == 2
    assert json.loads(res.stdout)["error"]["fields"][0]["field"] == "base_model"
