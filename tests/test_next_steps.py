"""Next steps for every decision: concrete, ordered, sourced, and built from the answers."""

from __future__ import annotations

import pytest
import yaml

from advisor import assess
from advisor.assessment.next_steps import eval_items, load_next_steps, margin
from advisor.assessment.rubric import load_rubric
from advisor.assessment.worked_examples import example_names, example_path


@pytest.mark.parametrize("name", example_names())
def test_every_worked_example_gets_next_steps_with_known_sources(name):
    a = assess(yaml.safe_load(example_path(name).read_text()))
    assert a.next_steps, name
    sources = set(load_rubric().sources)
    for step in a.next_steps:
        assert step.text and step.sources and set(step.sources) <= sources, step
    kinds = [s.kind for s in a.next_steps]
    if a.decision in ("recommend_lora", "recommend_full_finetune"):
        assert "eval" in kinds and "recipe" in kinds
        assert kinds.index("eval") < kinds.index("recipe")
    elif a.decision == "use_alternative":
        assert set(kinds) == {"alternative"}
    else:
        assert set(kinds) == {"blocker"} and len(kinds) >= len({g.question for g in a.gates})


def test_the_held_out_split_is_sized_to_the_dataset():
    e = load_next_steps()["eval"]
    assert eval_items(None) == 385  # 1.96^2 x 0.25 / 0.05^2, rounded up
    assert margin(385) <= e["margin_of_error"]
    assert eval_items(1000) == 200  # at most a fifth of the data
    assert eval_items(100) == e["min_items"]


def test_no_eval_means_building_one_first():
    answers = yaml.safe_load(example_path("triage-no-evals").read_text())
    a = assess(answers)
    assert a.decision == "not_ready"
    assert a.next_steps[0].text.startswith("Build a production-like eval of ")


def test_many_adapters_get_serving_settings():
    answers = yaml.safe_load(example_path("support-tone").read_text())
    answers.update(serving_mode="runtime_switching", adapters=40)
    a = assess(answers)
    serving = [s.text for s in a.next_steps if s.kind == "serving"]
    assert serving and "--max-loras 8" in serving[0] and "--max-cpu-loras 40" in serving[0]


def test_the_eval_metric_follows_the_kind_of_change():
    from advisor.assessment.compute import assess_compute
    from advisor.assessment.contract import Answers
    from advisor.assessment.engine import decide
    from advisor.assessment.next_steps import next_steps

    texts = {}
    for kind in ("format", "style", "actions", "skill"):
        answers = Answers(change_kind=kind, dataset_examples=1000)
        compute = assess_compute(answers)
        levels = decide(answers, load_rubric(), compute).levels
        steps = next_steps(answers, "recommend_lora", "lora", levels, [], compute)
        texts[kind] = next(s.text for s in steps if s.kind == "eval")
    assert "schema-valid rate" in texts["format"] and "Hold out 200 of the 1,000 examples" in texts["format"]
    assert "pairwise preference" in texts["style"]
    assert "tool-name exact match" in texts["actions"]
    assert "task accuracy" in texts["skill"]


def test_without_hardware_the_recipe_step_runs_the_fit_search_the_trl_recipe_will_use():
    """No GPU in the answers: the step hands over `advisor fit` for the TRL script (its loss, the answers' shape),
    and the command, with a GPU named, answers what `advisor recipe --format trl` writes."""
    import json
    import shlex

    from click.testing import CliRunner

    from advisor.cli import cli
    from advisor.plan.fit import fit_training

    answers = yaml.safe_load(example_path("support-tone").read_text())
    for key in ("gpu", "gpu_memory_gib", "gpus"):
        answers.pop(key, None)
    a = assess(answers)
    (step,) = [s for s in a.next_steps if s.kind == "recipe"]
    args = shlex.split(step.command)
    assert args[:2] == ["advisor", "fit"] and args[-2:] == ["--format", "trl"] and "--gpu" in args
    args[args.index("--gpu") + 1] = "l4"
    res = CliRunner().invoke(cli, [*args[1:], "--json"])
    assert res.exit_code == 0, res.output
    model, seq, batch = answers["base_model"], answers["seq_len"], answers["batch_size"]
    expected = fit_training(model, gpu="l4", seq=seq, batch=batch, recipe_format="trl")
    assert json.loads(res.output) == expected.model_dump(mode="json")
