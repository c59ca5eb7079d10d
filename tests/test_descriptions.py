"""Architecture descriptions as data: the shipped ones equal a fresh meta-device build, the cache is keyed right,
and an estimate from a description imports no torch and equals the one from a build."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from advisor.estimate import TrainingSettings, architecture, descriptions, estimate_training_memory  # noqa: E402
from advisor.model_specs import load_catalog, resolve_model_spec  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

CATALOG = sorted(load_catalog())


@pytest.mark.parametrize("model_id", CATALOG)
def test_every_shipped_description_equals_a_fresh_build(model_id):
    path = descriptions.shipped_dir() / f"{model_id}.json"
    assert path.is_file(), f"no shipped description: run `python -m advisor.estimate.descriptions {model_id}`"
    shipped = json.loads(path.read_text(encoding="utf-8"))
    rebuilt = descriptions.build_shipped(model_id)
    assert (shipped["transformers"], shipped["peft"]) == (rebuilt["transformers"], rebuilt["peft"])
    assert set(shipped["variants"]) == set(rebuilt["variants"])
    for key, data in rebuilt["variants"].items():
        assert shipped["variants"][key] == json.loads(json.dumps(data)), key


def _fresh(monkeypatch, tmp_path):
    monkeypatch.setenv("ADVISOR_CACHE_DIR", str(tmp_path / "cache"))
    architecture._DESCRIBED.clear()


def test_a_description_read_back_gives_the_same_estimate(monkeypatch, tmp_path):
    _fresh(monkeypatch, tmp_path)
    config = dict(load_catalog()["qwen2.5-0.5b"].config, num_hidden_layers=3)
    path = tmp_path / "small-qwen.json"
    path.write_text(json.dumps(config))
    for settings in (
        TrainingSettings(method="lora", rank=12, targets="all-linear", batch=2, seq=64),
        TrainingSettings(method="qlora", rank=4, targets=["q_proj", "v_proj"]),
        TrainingSettings(method="full", precision="mixed", optimizer="adafactor"),
    ):
        architecture._DESCRIBED.clear()
        built = estimate_training_memory(str(path), settings)
        assert len(list((tmp_path / "cache" / "descriptions").glob("*.json"))) >= 1
        architecture._DESCRIBED.clear()
        read = estimate_training_memory(str(path), settings)
        assert read.model_dump() == built.model_dump()


def test_the_cache_key_follows_config_adapter_and_versions(monkeypatch):
    spec = resolve_model_spec("qwen2.5-0.5b")
    key = descriptions.description_key(spec, "lora", 8, None)
    assert key == descriptions.description_key(spec, "qlora", 8, None)  # QLoRA builds LoRA's modules
    assert key != descriptions.description_key(spec, "lora", 16, None)
    assert key != descriptions.description_key(spec, "lora", 8, ["q_proj"])
    assert key != descriptions.description_key(spec, "full", 0, None)
    other = spec.model_copy(update={"config": dict(spec.config, num_hidden_layers=2)})
    assert key != descriptions.description_key(other, "lora", 8, None)
    monkeypatch.setattr(descriptions, "installed_version", lambda name: "0.0.0" if name == "peft" else "9")
    assert key != descriptions.description_key(spec, "lora", 8, None)


def test_a_cold_catalog_estimate_imports_no_torch():
    code = (
        "import sys, json\n"
        "from advisor.estimate import estimate_training_memory, TrainingSettings\n"
        "e = estimate_training_memory('llama-3.1-8b')\n"
        "r = estimate_training_memory('llama-3.1-8b', TrainingSettings(rank=16, targets='all-linear'))\n"
        "print(json.dumps([sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules), e.peak_bytes]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    heavy, peak = json.loads(out.stdout)
    assert heavy == []
    architecture._DESCRIBED.clear()
    assert peak == estimate_training_memory("llama-3.1-8b").peak_bytes


def test_a_user_config_estimated_before_imports_no_torch(tmp_path):
    """The description and transformers' table of model types are cached: a second cold estimate stays light."""
    import os

    config = tmp_path / "my-llama.json"
    config.write_text(json.dumps(dict(load_catalog()["llama-3.2-1b"].config, num_hidden_layers=2)))
    code = (
        "import sys, json\n"
        "from advisor.estimate import estimate_training_memory\n"
        f"e = estimate_training_memory({str(config)!r})\n"
        "print(json.dumps([sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules), e.peak_bytes]))\n"
    )
    env = {**os.environ, "ADVISOR_CACHE_DIR": str(tmp_path / "cache")}
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs[0][0] == ["peft", "torch", "transformers"] and runs[1][0] == []
    assert runs[0][1] == runs[1][1]
