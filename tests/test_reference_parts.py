"""The reference run's parts: the CPU memory tracker, the data, the extrapolation."""

from __future__ import annotations

import json

import pytest

from advisor.model_specs import resolve_model_spec
from advisor.reference import corpus, plan, spread

pytest.importorskip("torch")


def test_cpu_tracker_counts_allocations_and_frees_to_the_byte():
    import torch

    from advisor.reference.measure import CpuMemoryTracker

    with CpuMemoryTracker() as tracker:
        with tracker.window("a"):
            x = torch.empty(1_000_000, dtype=torch.uint8)
            y = torch.empty(2_000_000, dtype=torch.uint8)
            del x
            z = torch.empty(3_000_000, dtype=torch.uint8)
        with tracker.window("b"):
            w = y.float()  # a kernel's output: 4 bytes per element
            del w
        del y, z
    a, b = tracker.windows["a"], tracker.windows["b"]
    assert (a.start_bytes, a.peak_bytes) == (0, 5_000_000)
    assert (b.start_bytes, b.peak_bytes) == (5_000_000, 13_000_000)


def test_saved_for_backward_counts_each_storage_once_and_skips_parameters():
    import torch

    from advisor.reference.measure import SavedForBackward

    weight = torch.nn.Parameter(torch.randn(8, 4))
    saved = SavedForBackward([weight])
    x = torch.randn(3, 8, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(saved.pack, saved.unpack):
        y = torch.sin(x)  # saves x
        z = (y * y) @ weight  # mul saves y (once, as both operands); mm saves y*y and the weight
    z.sum().backward()
    assert saved.bytes == 3 * (3 * 8 * 4)


def test_builtin_corpus_is_prose_shipped_with_the_package():
    texts = corpus.load_corpus(None)
    assert texts.format == "builtin" and 3000 < len(texts.texts[0]) < 20000
    assert "LoRA" in texts.texts[0]


def test_jsonl_takes_text_or_prompt_and_completion(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"text": "one"}) + "\n\n" + json.dumps({"prompt": "two ", "completion": "three"}) + "\n")
    assert corpus.load_corpus(path).texts == ["one", "two three"]


def test_plain_text_is_one_record(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text('{"text": "not parsed"}\nsecond line')
    texts = corpus.load_corpus(path)
    assert texts.format == "text" and texts.texts == ['{"text": "not parsed"}\nsecond line']


def test_byte_fallback_maps_utf8_bytes_into_the_vocabulary(tmp_path):
    spec = resolve_model_spec("gpt2")
    stream = corpus.tokenize(corpus.Corpus(["aé"], "x", "text"), spec, vocab_size=200, needed=3)
    assert stream.ids == [ord("a"), 0xC3 % 200, 0xA9 % 200]
    assert stream.tokenizer.startswith("byte-level fallback")


def test_batches_read_in_order_and_wrap_around():
    stream = corpus.TokenStream(ids=list(range(5)), tokenizer="t")
    assert corpus.batches(stream, batch=2, seq=3, steps=2) == [[[0, 1, 2], [3, 4, 0]], [[1, 2, 3], [4, 0, 1]]]


def test_extrapolation_is_the_line_through_two_depths():
    to_16, to_3 = plan.proxy_plan(["alike"] * 16), plan.proxy_plan(["alike"] * 3)
    assert to_16.depths == (1, 2) and to_16.combine([10, 13]) == 55
    assert to_16.combine([None, 13]) is None
    # times: a deeper model measured faster is noise, not a slope (withheld); a clear slope is extrapolated
    assert spread.combined_median([[2.0, 2.01, 1.99], [1.5, 1.51, 1.49]], to_16.weights) == (None, None)
    value, interval = spread.combined_median([[1.0, 1.01, 0.99], [1.5, 1.51, 1.49]], to_3.weights)
    assert value == 2.0 and interval[0] <= 2.0 <= interval[1]


def test_at_depth_keeps_every_shape_and_cuts_per_layer_lists():
    from advisor.reference.model import at_depth

    spec = resolve_model_spec("gpt2")
    cut = at_depth(spec, 2)
    assert cut.config["n_layer"] == 2 and cut.config["n_embd"] == spec.config["n_embd"]
    qwen = resolve_model_spec("qwen2.5-0.5b")
    layers = ["full_attention"] * qwen.config["num_hidden_layers"]
    qwen = qwen.model_copy(update={"config": {**qwen.config, "layer_types": layers}})
    assert at_depth(qwen, 1).config["layer_types"] == ["full_attention"]


def test_the_fused_optimizer_prediction_drops_only_foreach_temporaries():
    from advisor.estimate import TrainingSettings, estimate_training_memory

    est = estimate_training_memory("qwen2.5-0.5b", TrainingSettings(method="full", seq=64))
    fused = plan.predicted_peak(est, fused_optimizer=True)
    phases = dict(est.phases)
    phases["optimizer_step"] -= est.sizes["optimizer_step_temporaries"]
    assert fused == max(phases.values()) < est.peak_bytes == plan.predicted_peak(est, fused_optimizer=False)
