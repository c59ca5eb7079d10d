"""Fuzzing the estimator's options on a small catalog model: any settings give either an estimate whose
components add up to its peak, or InvalidInput naming exactly the fields at fault; never another exception."""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

pytest.importorskip("torch")
pytest.importorskip("peft")

from advisor.errors import InvalidInput  # noqa: E402
from advisor.estimate import TrainingSettings, estimate_training_memory, training_settings  # noqa: E402
from advisor.files import dumps_json  # noqa: E402
from advisor.model_specs import resolve_model_spec  # noqa: E402
from tests.strategies import CASE_SECONDS, FUZZ  # noqa: E402

pytestmark = pytest.mark.fuzz
SPEC = resolve_model_spec("qwen2.5-0.5b")
FIELDS = list(TrainingSettings.model_fields)
MAX_TOKENS = 1 << 26  # batch x seq per GPU

# Ranks and targets are few: each combination builds the model once (the estimator keeps 32 builds).
VALID = {
    "method": st.sampled_from(["lora", "qlora", "full"]),
    "rank": st.sampled_from([4, 16]),
    "alpha": st.one_of(st.none(), st.floats(min_value=1e-9, max_value=1e9)),
    "targets": st.sampled_from([None, "all-linear", ["o_proj", "down_proj"]]),
    "batch": st.one_of(st.integers(1, 64), st.integers(1, 1 << 20)),
    "seq": st.one_of(st.integers(1, 4096), st.integers(1, 1 << 24)),
    "precision": st.sampled_from(["bf16", "fp16", "fp32", "mixed"]),
    "optimizer": st.sampled_from(["adamw", "adamw8bit", "sgd", "adafactor"]),
    "grad_checkpointing": st.booleans(),
    "gpus": st.one_of(st.integers(1, 8), st.integers(1, 65536)),
    "sharding": st.sampled_from(["none", "ddp", "zero2", "fsdp"]),
    "attention": st.sampled_from(["sdpa", "eager"]),
    "loss": st.sampled_from(["standard", "fused", "trl_chunked"]),
}
NOT_A_NAME = st.one_of(st.none(), st.integers(), st.text(max_size=12))
INVALID = {
    "method": st.one_of(
        st.sampled_from(["dora", "", "LORA", "full "]), NOT_A_NAME.filter(lambda v: v not in ("full", "lora", "qlora"))
    ),
    "rank": st.one_of(
        st.integers(max_value=0), st.integers(min_value=65537), st.sampled_from(["eight", 1.5, None, [8]])
    ),
    "alpha": st.one_of(st.floats(max_value=0), st.sampled_from([math.nan, math.inf, "big", [1.0]])),
    "targets": st.sampled_from(["", " , ", "q_proj,", [], [""], ["q_proj", 3], 5, {"q_proj": 1}, 2.5]),
    "batch": st.one_of(st.integers(max_value=0), st.integers(min_value=(1 << 20) + 1), st.sampled_from(["many", 0.5])),
    "seq": st.one_of(st.integers(max_value=0), st.integers(min_value=(1 << 24) + 1), st.sampled_from(["long", 1.5])),
    "precision": st.sampled_from(["bf32", "", "BF16", None, 16, "int4"]),
    "optimizer": st.sampled_from(["adam", "lion", "", None, 1]),
    "grad_checkpointing": st.sampled_from(["maybe", 2, None, [True], 0.5]),
    "gpus": st.one_of(st.integers(max_value=0), st.integers(min_value=65537), st.sampled_from(["two", 1.5])),
    "sharding": st.sampled_from(["zero3", "", "FSDP", None]),
    "attention": st.sampled_from(["flash", "", None]),
    "loss": st.sampled_from(["liger", "", "FUSED", None, 1]),
}
# Well-formed names that this model does not have, or modules PEFT cannot adapt: PEFT refuses them.
FOREIGN_TARGETS = st.sampled_from(["nope", ["mlp"], ".*", ["\x00"], "rotary_emb"])


@st.composite
def settings_values(draw) -> tuple[dict, set[str], bool]:
    """Keyword arguments for training_settings, the fields drawn invalid, and whether targets are foreign."""
    count = draw(st.sampled_from([0, 0, 0, 1, 2]))  # most cases well-typed
    spoiled = set(draw(st.lists(st.sampled_from(FIELDS), min_size=count, max_size=count, unique=True)))
    values = {}
    for name in FIELDS:
        if name in spoiled:
            values[name] = draw(INVALID[name])
        elif name == "method" or draw(st.booleans()):  # the others left at their defaults half the time
            values[name] = draw(VALID[name])
    foreign = "targets" not in spoiled and draw(st.integers(0, 9)) == 0
    if foreign:
        values["targets"] = draw(FOREIGN_TARGETS)
    if draw(st.integers(0, 9)) == 0:
        key = draw(st.sampled_from(["learning_rate", "lora_dropout", "Rank", "model"]))
        values[key] = 1
        spoiled.add(key)
    return values, spoiled, foreign


def expected_refusal(settings: TrainingSettings, foreign: bool) -> set[str]:
    """The fields a well-typed settings object is still refused for: cross-field limits and foreign targets."""
    if settings.method == "qlora" and settings.precision == "fp32":
        return {"precision"}
    if settings.batch * settings.seq > MAX_TOKENS:
        return {"seq"}
    if foreign and settings.method != "full":
        return {"targets"}
    return set()


@FUZZ
@given(settings_values())
def test_any_settings_give_a_consistent_estimate_or_name_the_field(case):
    values, spoiled, foreign = case
    start = time.perf_counter()
    if spoiled:
        event("refused by TrainingSettings")
        with pytest.raises(InvalidInput) as info:
            training_settings(**values)
        assert {issue.field for issue in info.value.fields} == spoiled
        return
    settings = training_settings(**values)
    refused = expected_refusal(settings, foreign)
    if refused:
        event(f"refused by the estimator: {', '.join(sorted(refused))}")
        with pytest.raises(InvalidInput) as info:
            estimate_training_memory(SPEC, settings)
        assert {issue.field for issue in info.value.fields} == refused
        return
    event(f"estimated: {settings.method}")
    est = estimate_training_memory(SPEC, settings)
    assert time.perf_counter() - start < CASE_SECONDS
    assert est.peak_bytes is not None and est.peak_bytes == max(est.phases.values()) > 0
    assert sum(est.components.values()) == est.peak_bytes
    for table in (est.components, est.sizes, est.phases):
        assert all(isinstance(v, int) and v >= 0 for v in table.values()), table
    assert 0 < est.trainable_params <= est.total_params
    assert (est.trainable_params == est.total_params) == (settings.method == "full")
    assert est.checkpoint_bytes > 0 and est.full_checkpoint_bytes > 0
    assert est.settings == settings
    dumps_json(est.model_dump(mode="json"))  # `advisor estimate --json` can always print it
