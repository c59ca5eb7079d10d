"""`advisor recipe`: a TRL script that trains for real on the CPU, and YAML files with their frameworks' keys."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

pytest.importorskip("torch")
pytest.importorskip("peft")

from advisor.cli import cli  # noqa: E402
from advisor.estimate import TrainingSettings  # noqa: E402
from advisor.plan.recipe import write_recipe  # noqa: E402

WORDS = "the clause shall survive termination of this agreement for any reason whatsoever and bind the parties".split()


def invoke(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def tiny_model_folder(folder):
    """A Llama-shaped model with random safetensors weights and a word-level tokenizer built offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    specials = ["<unk>", "<s>", "</s>", "<pad>"]
    vocab = {token: i for i, token in enumerate(specials + sorted(set(WORDS)))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(folder, safe_serialization=True)
    assert (folder / "model.safetensors").is_file()


def test_the_trl_script_trains_a_tiny_model_for_two_steps_on_the_cpu(tmp_path):
    pytest.importorskip("trl")
    model = tmp_path / "tiny"
    model.mkdir()
    tiny_model_folder(model)
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"text": " ".join(WORDS[i:] + WORDS[:i])}) + "\n" for i in range(12)))
    script = tmp_path / "train.py"
    res = invoke(
        "recipe",
        "--model",
        str(model),
        "--gpu-memory-gib",
        "8",
        "--method",
        "lora",
        "--format",
        "trl",
        "--output",
        str(script),
        "--effective-batch",
        "2",
    )
    assert res.exit_code == 0, res.output
    text = script.read_text()
    assert "LoraConfig(" in text and "SFTTrainer(" in text and "save_pretrained(args.output_dir)" in text
    out = tmp_path / "adapter"
    run = subprocess.run(
        [
            sys.executable,
            str(script),
            "--dataset",
            str(data),
            "--model",
            str(model),
            "--output-dir",
            str(out),
            "--max-steps",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""},
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "'loss'" in run.stdout + run.stderr or "final training loss" in run.stdout
    loss = float(run.stdout.split("final training loss: ")[1].split()[0])
    assert loss > 0
    assert (out / "adapter_config.json").is_file() and (out / "adapter_model.safetensors").is_file()
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 16


def test_the_qlora_script_sets_up_4bit_nf4():
    s = TrainingSettings(method="qlora", rank=16, targets="all-linear", batch=1, seq=512, grad_checkpointing=True)
    text = write_recipe("meta-llama/Llama-3.1-8B", s, grad_accumulation=8, fmt="trl").content
    compile(text, "train.py", "exec")
    for needle in (
        "BitsAndBytesConfig(",
        'bnb_4bit_quant_type="nf4"',
        "bnb_4bit_use_double_quant=True",
        "prepare_model_for_kbit_training",
        "GRAD_ACCUMULATION = 8",
        "MAX_LENGTH = 512",
    ):
        assert needle in text


# Documented keys (sources named in each file's first comment lines and in recipe_defaults.json).
AXOLOTL_KEYS = {
    "base_model",
    "adapter",
    "load_in_4bit",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_linear",
    "lora_target_modules",
    "sequence_len",
    "micro_batch_size",
    "gradient_accumulation_steps",
    "num_epochs",
    "optimizer",
    "learning_rate",
    "gradient_checkpointing",
    "bf16",
    "fp16",
    "datasets",
    "output_dir",
    "fsdp",
    "fsdp_config",
    "deepspeed",
    "plugins",
    "liger_fused_linear_cross_entropy",
}
LLAMA_FACTORY_KEYS = {
    "model_name_or_path",
    "stage",
    "do_train",
    "finetuning_type",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "lora_target",
    "quantization_bit",
    "quantization_method",
    "dataset",
    "template",
    "cutoff_len",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "num_train_epochs",
    "learning_rate",
    "optim",
    "bf16",
    "fp16",
    "disable_gradient_checkpointing",
    "output_dir",
    "logging_steps",
    "report_to",
    "deepspeed",
    "enable_liger_kernel",
}


@pytest.mark.parametrize("method", ["lora", "qlora", "full"])
def test_the_yaml_files_parse_with_documented_keys_and_the_fit_values(method, tmp_path):
    for fmt, keys in (("axolotl", AXOLOTL_KEYS), ("llama-factory", LLAMA_FACTORY_KEYS)):
        path = tmp_path / f"{fmt}-{method}.yaml"
        res = invoke(
            "recipe",
            "--model",
            "llama-3.1-8b",
            "--gpu",
            "a100-40gb",
            "--method",
            method,
            "--format",
            fmt,
            "--output",
            str(path),
            "--json",
            "--gpus",
            "2" if method == "full" else "1",
        )
        assert res.exit_code == 0, res.output
        recipe = json.loads(res.output)
        s = recipe["settings"]
        text = path.read_text()
        assert text.startswith("# Written by `advisor recipe") and "Keys as documented by" in text
        data = yaml.safe_load(text)
        assert set(data) <= keys, set(data) - keys
        if fmt == "axolotl":
            assert (data["micro_batch_size"], data["sequence_len"]) == (s["batch"], s["seq"])
            assert data["gradient_accumulation_steps"] == recipe["grad_accumulation"]
            assert data["gradient_checkpointing"] == s["grad_checkpointing"]
            assert data.get("adapter") == {"lora": "lora", "qlora": "qlora", "full": None}[method]
            assert data.get("load_in_4bit", False) == (method == "qlora")
            fused = s["loss"] == "fused"
            assert data.get("liger_fused_linear_cross_entropy", False) == fused
            assert (data.get("plugins") == ["axolotl.integrations.liger.LigerPlugin"]) == fused
        else:
            assert (data["per_device_train_batch_size"], data["cutoff_len"]) == (s["batch"], s["seq"])
            assert data["disable_gradient_checkpointing"] == (not s["grad_checkpointing"])
            assert data["finetuning_type"] == ("full" if method == "full" else "lora")
            assert ("quantization_bit" in data) == (method == "qlora")
            assert data.get("enable_liger_kernel", False) == (s["loss"] == "fused")


def test_the_fused_loss_in_each_format():
    s = TrainingSettings(method="lora", rank=16, targets="all-linear", batch=1, seq=4096, loss="fused")
    axolotl = yaml.safe_load(write_recipe("meta-llama/Llama-3.1-8B", s, fmt="axolotl").content)
    assert axolotl["plugins"] == ["axolotl.integrations.liger.LigerPlugin"]
    assert axolotl["liger_fused_linear_cross_entropy"] is True
    assert not any(k.startswith("liger_") and k != "liger_fused_linear_cross_entropy" for k in axolotl)
    factory = write_recipe("meta-llama/Llama-3.1-8B", s, fmt="llama-factory")
    assert yaml.safe_load(factory.content)["enable_liger_kernel"] is True
    assert "liger-kernel" in factory.content
    trl = write_recipe("meta-llama/Llama-3.1-8B", s, fmt="trl")
    compile(trl.content, "train.py", "exec")
    # TRL 1.16's SFTTrainer rejects Liger's fused linear cross-entropy and runs its own chunked LM head: the script
    # sets no Liger key and says so
    assert "use_liger_kernel=True," not in trl.content and "add_fused_lm_head" in trl.content
    standard = write_recipe("meta-llama/Llama-3.1-8B", s.model_copy(update={"loss": "standard"}), fmt="axolotl")
    assert not any("liger" in k or "plugins" in k for k in yaml.safe_load(standard.content))


def test_a_trl_recipe_is_planned_with_trls_head_and_advisor_estimate_replays_it(tmp_path):
    """`advisor recipe --format trl` plans with the loss TRL runs (its fused LM head), says so at the top of the
    script, and `advisor estimate --loss trl_chunked` with the recipe's settings gives the fit search's figure."""
    from advisor.plan.fit import GIB, fit_training

    args = ["--model", "llama-3.1-8b", "--gpu-memory-gib", "12", "--seq", "1024"]
    res = invoke("recipe", *args, "--format", "trl", "--json")
    assert res.exit_code == 0, res.output
    recipe = json.loads(res.output)
    s = recipe["settings"]
    assert s["loss"] == "trl_chunked"
    assert "add_fused_lm_head" in recipe["content"] and "--loss trl_chunked" in recipe["content"]
    assert "TRL chunked LM head" in recipe["content"].splitlines()[1]
    flags = []
    for name, value in s.items():
        if value is None or value is False:
            continue
        flag = f"--{name.replace('_', '-')}"
        flags += [flag] if value is True else [flag, ",".join(value) if isinstance(value, list) else str(value)]
    est = invoke("estimate", "--model", "llama-3.1-8b", *flags, "--json")
    assert est.exit_code == 0, est.output
    replay = json.loads(est.output)
    assert replay["settings"] == s
    fit = fit_training("llama-3.1-8b", gpu_memory_gib=12, seq=1024, recipe_format="trl")
    chosen = fit.to_write(None)
    assert chosen.settings.model_dump() == s and replay["peak_bytes"] == chosen.peak_bytes
    assert replay["peak_bytes"] + replay["cuda_context_bytes"] + replay["allocator_slack_bytes"] <= 12 * GIB
    assert any("TRL's fused LM head" in a for a in replay["assumptions"])
    axolotl = json.loads(invoke("recipe", *args, "--format", "axolotl", "--json").output)
    assert axolotl["settings"]["loss"] in ("standard", "fused")


def test_a_trl_head_plan_written_for_another_framework_says_it_does_not_run_there():
    s = TrainingSettings(method="lora", rank=16, targets="all-linear", loss="trl_chunked")
    assert not write_recipe("meta-llama/Llama-3.1-8B", s, fmt="trl").notes
    for fmt in ("axolotl", "llama-factory"):
        assert any("does not run" in n for n in write_recipe("meta-llama/Llama-3.1-8B", s, fmt=fmt).notes)


def test_fsdp_qlora_stores_the_4bit_weights_in_the_compute_dtype():
    s = TrainingSettings(method="qlora", rank=16, targets="all-linear", gpus=2, sharding="fsdp")
    text = write_recipe("meta-llama/Llama-3.1-8B", s, fmt="trl").content
    assert '**({"bnb_4bit_quant_storage": dtype} if SHARDING == "fsdp" else {})' in text
    assert "SHARDING = 'fsdp'" in text


def test_recipe_exit_codes():
    nothing = invoke("recipe", "--model", "llama-3.1-70b", "--gpu", "t4", "--method", "full", "--format", "trl")
    assert nothing.exit_code == 3
    bad = invoke("recipe", "--model", "llama-3.1-8b", "--gpu", "t4", "--format", "nope", "--json")
    assert bad.exit_code == 2
