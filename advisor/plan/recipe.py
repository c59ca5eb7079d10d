"""Launchable recipes: the fit search's plan as a TRL script, an axolotl YAML or a LLaMA-Factory YAML.

Each writer turns one `TrainingSettings` (and the gradient accumulation the fit search
chose) into the keys its framework documents (sources in `recipe_defaults.json`, named
in a comment at the top of each file). What a framework cannot express from its config
file is said in the file. Pure text: nothing here imports the frameworks.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, Field

from ..estimate.settings import LOSS_LABELS, METHOD_LABELS, TRL_TILES, TrainingSettings

DEFAULTS_FILE = Path(__file__).with_name("recipe_defaults.json")
RecipeFormat = Literal["trl", "axolotl", "llama-factory"]
FORMATS: tuple[str, ...] = get_args(RecipeFormat)

# TrainingSettings.optimizer -> each framework's optimizer name (transformers' OptimizerNames for TRL and
# LLaMA-Factory's `optim`; axolotl's `optimizer` takes the same names).
OPTIMIZERS = {"adamw": "adamw_torch", "adamw8bit": "adamw_bnb_8bit", "sgd": "sgd", "adafactor": "adafactor"}


@cache
def load_defaults() -> dict:
    return json.loads(DEFAULTS_FILE.read_text(encoding="utf-8"))


class Recipe(BaseModel):
    """One recipe file."""

    format: RecipeFormat
    filename: str = Field(description="A file name for it (train_lora.py, axolotl_qlora.yaml, ...).")
    content: str = Field(description="The file's text.")
    launch: str = Field(description="The command that runs it.")
    settings: TrainingSettings
    grad_accumulation: int
    notes: list[str] = Field(default=[])


def write_recipe(
    model: str, settings: TrainingSettings, *, grad_accumulation: int = 1, fmt: RecipeFormat = "trl"
) -> Recipe:
    """The recipe for `settings` in format `fmt`; `model` is what the framework loads (a hub id or a folder)."""
    writer = {"trl": _trl, "axolotl": _axolotl, "llama-factory": _llama_factory}[fmt]
    recipe = writer(model, settings, grad_accumulation)
    if settings.loss == "trl_chunked" and fmt != "trl":
        recipe.notes.append(
            f"the settings' estimate assumes TRL's fused LM head, which {fmt} does not run: "
            f"`advisor recipe --format {fmt}` plans with the losses it runs"
        )
    return recipe


def _common(s: TrainingSettings) -> dict:
    d = load_defaults()
    return {
        "learning_rate": d["learning_rate"][s.method],
        "epochs": d["epochs"],
        "lora_dropout": d["lora_dropout"],
    }


def _header(fmt: str, s: TrainingSettings, grad_accumulation: int, comment: str) -> str:
    d = load_defaults()
    lines = [
        f"Written by `advisor recipe --format {fmt}`: {METHOD_LABELS[s.method]}, micro-batch {s.batch} x "
        f"{s.seq} tokens, {grad_accumulation} accumulation step(s), {s.gpus} GPU(s), {s.optimizer}"
        f"{', gradient checkpointing' if s.grad_checkpointing else ''}"
        f"{', ' + LOSS_LABELS[s.loss] if LOSS_LABELS[s.loss] else ''}"
        f"{'' if s.sharding == 'none' else ', ' + s.sharding}.",
        f"Keys as documented by: {d['sources'][fmt]}.",
        f"Learning rate: {d['learning_rate_why']}",
    ]
    return "\n".join(f"{comment} {line}" for line in lines) + "\n"


def _comment(text: str) -> str:
    import textwrap

    return "".join(f"# {line}\n" for line in textwrap.wrap(text, 112))


def _trl(model: str, s: TrainingSettings, grad_accumulation: int) -> Recipe:
    c = _common(s)
    notes = []
    launch = "python train.py --dataset data.jsonl --output-dir adapter"
    if s.gpus > 1:
        launch = f"torchrun --nproc_per_node {s.gpus} train.py --dataset data.jsonl --output-dir adapter"
    if s.sharding == "zero2":
        notes.append("ZeRO-2 runs through DeepSpeed: pip install deepspeed")
    if s.method == "qlora" or s.optimizer == "adamw8bit":
        notes.append("needs a CUDA GPU and bitsandbytes (pip install bitsandbytes)")
    constants = {
        "MODEL": model,
        "METHOD": s.method,
        "RANK": s.rank,
        "ALPHA": s.lora_alpha,
        "TARGETS": s.targets if s.targets is not None else None,
        "LORA_DROPOUT": c["lora_dropout"],
        "MICRO_BATCH": s.batch,
        "GRAD_ACCUMULATION": grad_accumulation,
        "MAX_LENGTH": s.seq,
        "GRADIENT_CHECKPOINTING": s.grad_checkpointing,
        "OPTIM": OPTIMIZERS[s.optimizer],
        "PRECISION": s.precision,
        "LEARNING_RATE": c["learning_rate"],
        "EPOCHS": float(c["epochs"]),
        "SHARDING": s.sharding,
    }
    body = "\n".join(f"{k} = {v!r}" for k, v in constants.items())
    header = _header("trl", s, grad_accumulation, "#")
    if s.loss == "trl_chunked":
        header += _comment(
            "Loss: TRL 1.16's SFTTrainer always patches the model with its own fused LM head "
            "(trl.trainer.utils.add_fused_lm_head): the backbone runs without a KV cache, then the labelled positions "
            f"go through the LM head in {TRL_TILES} that yield per-token log-probabilities "
            "(and the entropy and top-1 accuracy it logs); the full logits are never built and are recomputed tile by "
            "tile in backward. The plan's memory estimate assumes this head "
            "(`advisor estimate --loss trl_chunked` replays it)."
        )
    elif s.loss == "standard":
        header += _comment(
            "Loss: TRL 1.16's SFTTrainer computes it with its own fused LM head (trl.trainer.utils.add_fused_lm_head) "
            "whatever this plan says; the plan's memory estimate assumes transformers' loss on the full logits: "
            "`advisor recipe --format trl` plans with TRL's head (`advisor estimate --loss trl_chunked`)."
        )
    if s.loss == "fused":
        header += _comment(
            "Loss: TRL 1.16's SFTTrainer computes it with its own chunked LM head "
            "(trl.trainer.utils.add_fused_lm_head: "
            "log-probabilities in tiles, no full logits) whatever this plan says, and rejects Liger-Kernel's fused "
            "linear cross-entropy (liger_kernel_config={'fused_linear_cross_entropy': True} raises; "
            "use_liger_kernel=True applies only Liger's layer kernels). The plan's memory estimate assumes Liger's "
            "fused loss; TRL's head is not modelled: for the loss the estimate assumes, write the plan for axolotl or "
            "LLaMA-Factory (they need the liger-kernel package)."
        )
        notes.append(
            "the fused loss: TRL's SFTTrainer always uses its own chunked LM head and cannot run Liger's fused linear "
            "cross-entropy; the axolotl and LLaMA-Factory recipes run the loss the estimate assumes"
        )
    if s.method == "qlora" and s.sharding == "fsdp":
        notes.append("FSDP-QLoRA: the 4-bit weights are stored in the compute dtype (bnb_4bit_quant_storage)")
    content = (
        "#!/usr/bin/env python\n"
        + header
        + f'"""Fine-tune with TRL\'s SFTTrainer and PEFT ({METHOD_LABELS[s.method]}).\n\n'
        f"    {launch}\n\n"
        "--dataset is a JSONL file whose rows hold `messages` (a chat), `prompt` and `completion`, or `text`.\n"
        "The adapter (or, for full fine-tuning, the model) is saved with save_pretrained into --output-dir.\n"
        '"""\n\n'
        "import argparse\n\n" + body + "\n" + _TRL_BODY
    )
    return Recipe(
        format="trl",
        filename=f"train_{s.method}.py",
        content=content,
        launch=launch,
        settings=s,
        grad_accumulation=grad_accumulation,
        notes=notes,
    )


_TRL_BODY = """

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="JSONL: messages, prompt/completion, or text per row")
    parser.add_argument("--model", default=MODEL, help="hub id or local folder of the base model")
    parser.add_argument("--output-dir", default="adapter", help="where the adapter is saved")
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps")
    args = parser.parse_args()

    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    cuda = torch.cuda.is_available()
    bf16 = PRECISION in ("bf16", "mixed") and cuda and torch.cuda.is_bf16_supported()
    fp16 = PRECISION == "fp16" and cuda
    dtype = torch.bfloat16 if bf16 else torch.float16 if fp16 else torch.float32
    model_kwargs = {"dtype": dtype}
    if METHOD == "qlora":
        if not cuda:
            raise SystemExit("QLoRA needs a CUDA GPU and bitsandbytes (pip install bitsandbytes)")
        from transformers import BitsAndBytesConfig

        model_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype,
            # FSDP flattens each wrapped module's parameters into one tensor of one dtype: the packed 4-bit weights
            # must be stored in the dtype of the others (bitsandbytes' and PEFT's FSDP-QLoRA guides)
            **({"bnb_4bit_quant_storage": dtype} if SHARDING == "fsdp" else {}),
        )
    model = AutoModelForCausalLM.from_pretrained(args.model, **model_kwargs)
    if METHOD == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=GRADIENT_CHECKPOINTING)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    peft_config = None
    if METHOD != "full":
        peft_config = LoraConfig(
            r=RANK,
            lora_alpha=ALPHA,
            lora_dropout=LORA_DROPOUT,
            target_modules=TARGETS,
            task_type="CAUSAL_LM",
        )
    sharding = {}
    if SHARDING == "fsdp":
        sharding = {"fsdp": "full_shard auto_wrap"}
    elif SHARDING == "zero2":
        sharding = {
            "deepspeed": {
                "zero_optimization": {"stage": 2},
                "bf16": {"enabled": "auto"},
                "fp16": {"enabled": "auto"},
                "train_micro_batch_size_per_gpu": "auto",
                "gradient_accumulation_steps": "auto",
            }
        }
    config = SFTConfig(
        output_dir=args.output_dir,
        max_steps=args.max_steps,
        num_train_epochs=EPOCHS,
        per_device_train_batch_size=MICRO_BATCH,
        gradient_accumulation_steps=GRAD_ACCUMULATION,
        gradient_checkpointing=GRADIENT_CHECKPOINTING,
        max_length=MAX_LENGTH,
        optim=OPTIM,
        learning_rate=LEARNING_RATE,
        bf16=bf16,
        fp16=fp16,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        **sharding,
    )
    dataset = load_dataset("json", data_files=args.dataset, split="train")
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
    )
    result = trainer.train()
    print(f"final training loss: {result.training_loss:.4f}")
    trainer.model.save_pretrained(args.output_dir)
    tokenizer.save_pretrained(args.output_dir)


if __name__ == "__main__":
    main()
"""


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _axolotl(model: str, s: TrainingSettings, grad_accumulation: int) -> Recipe:
    c = _common(s)
    notes = []
    data: dict = {"base_model": model}
    if s.method != "full":
        data["adapter"] = "qlora" if s.method == "qlora" else "lora"
        data["load_in_4bit"] = s.method == "qlora"
        data["lora_r"] = s.rank
        data["lora_alpha"] = s.lora_alpha
        data["lora_dropout"] = c["lora_dropout"]
        if s.targets == "all-linear" or s.targets is None:
            data["lora_target_linear"] = True
        else:
            data["lora_target_modules"] = list(s.targets)
    data.update(
        sequence_len=s.seq,
        micro_batch_size=s.batch,
        gradient_accumulation_steps=grad_accumulation,
        num_epochs=c["epochs"],
        optimizer=OPTIMIZERS[s.optimizer],
        learning_rate=c["learning_rate"],
        gradient_checkpointing=s.grad_checkpointing,
        bf16="auto" if s.precision in ("bf16", "mixed") else False,
        fp16=s.precision == "fp16",
        datasets=[{"path": "data.jsonl", "type": "chat_template", "field_messages": "messages"}],
        output_dir="./outputs/" + s.method,
    )
    if s.loss == "fused":
        # axolotl's Liger integration (src/axolotl/integrations/liger/README.md): only the fused linear
        # cross-entropy, the one kernel the estimate models
        data["plugins"] = ["axolotl.integrations.liger.LigerPlugin"]
        data["liger_fused_linear_cross_entropy"] = True
        notes.append("the fused loss needs the liger-kernel package (pip install liger-kernel) and a CUDA GPU")
    if s.sharding == "fsdp":
        data["fsdp"] = ["full_shard", "auto_wrap"]
        data["fsdp_config"] = {"fsdp_offload_params": False, "fsdp_use_orig_params": False}
    elif s.sharding == "zero2":
        data["deepspeed"] = "deepspeed_configs/zero2.json"
        notes.append("deepspeed points at the ZeRO-2 config shipped in axolotl's deepspeed_configs/")
    comment = _header("axolotl", s, grad_accumulation, "#")
    if s.method == "qlora":
        comment += "# QLoRA: axolotl loads the base in NF4 with double quantization (bitsandbytes, CUDA).\n"
    comment += "# datasets: point `path` at your JSONL; `type: chat_template` reads `messages` rows.\n"
    if s.loss == "fused":
        comment += _comment(
            "Fused loss: Liger-Kernel's fused linear cross-entropy through axolotl's Liger plugin; needs "
            "`pip install liger-kernel` and a CUDA GPU."
        )
    launch = "axolotl train axolotl.yaml"
    return Recipe(
        format="axolotl",
        filename=f"axolotl_{s.method}.yaml",
        content=comment + _yaml(data),
        launch=launch,
        settings=s,
        grad_accumulation=grad_accumulation,
        notes=notes,
    )


def _llama_factory(model: str, s: TrainingSettings, grad_accumulation: int) -> Recipe:
    c = _common(s)
    notes = []
    data: dict = {
        "model_name_or_path": model,
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "full" if s.method == "full" else "lora",
    }
    if s.method != "full":
        data["lora_rank"] = s.rank
        data["lora_alpha"] = s.lora_alpha
        data["lora_dropout"] = c["lora_dropout"]
        data["lora_target"] = "all" if s.targets in ("all-linear", None) else ",".join(s.targets)
    if s.method == "qlora":
        data["quantization_bit"] = 4
        data["quantization_method"] = "bitsandbytes"
    data.update(
        dataset="my_dataset",
        template="default",
        cutoff_len=s.seq,
        per_device_train_batch_size=s.batch,
        gradient_accumulation_steps=grad_accumulation,
        num_train_epochs=float(c["epochs"]),
        learning_rate=c["learning_rate"],
        optim=OPTIMIZERS[s.optimizer],
        bf16=s.precision in ("bf16", "mixed"),
        fp16=s.precision == "fp16",
        disable_gradient_checkpointing=not s.grad_checkpointing,
        output_dir="saves/" + s.method,
        logging_steps=10,
        report_to="none",
    )
    comment = _header("llama-factory", s, grad_accumulation, "#")
    comment += (
        "# dataset: register your JSONL in data/dataset_info.json under `my_dataset`; template: the model's chat "
        "template name.\n"
    )
    if s.loss == "fused":
        data["enable_liger_kernel"] = True
        comment += _comment(
            "Fused loss: enable_liger_kernel applies Liger-Kernel's kernels for the model with their defaults "
            "(src/llamafactory/model/model_utils/liger_kernel.py): the fused linear cross-entropy the estimate models, "
            "and RoPE, RMSNorm and SwiGLU kernels it does not (they save less than the modules they replace, so the "
            "estimate errs high). Needs `pip install liger-kernel` and a CUDA GPU."
        )
        notes.append("the fused loss needs the liger-kernel package (pip install liger-kernel) and a CUDA GPU")
    if s.sharding == "zero2":
        data["deepspeed"] = "examples/deepspeed/ds_z2_config.json"
    elif s.sharding == "fsdp":
        comment += (
            "# FSDP cannot be set in this file: LLaMA-Factory takes it from an accelerate config "
            "(examples/accelerate/fsdp_config.yaml, launched with `accelerate launch --config_file ...`).\n"
        )
        notes.append("FSDP comes from an accelerate config file, not from this YAML")
    launch = "llamafactory-cli train llama_factory.yaml"
    if s.gpus > 1:
        launch = f"FORCE_TORCHRUN=1 NPROC_PER_NODE={s.gpus} " + launch
    return Recipe(
        format="llama-factory",
        filename=f"llama_factory_{s.method}.yaml",
        content=comment + _yaml(data),
        launch=launch,
        settings=s,
        grad_accumulation=grad_accumulation,
        notes=notes,
    )


def model_reference(spec) -> str:
    """What a framework should load: the model folder, or the catalog entry's hub repository, or the spec."""
    from ..model_specs import catalog_entry

    if spec.folder:
        return spec.folder
    entry = catalog_entry(spec.spec) if spec.origin == "catalog" else None
    return (entry.repo if entry and entry.repo else None) or spec.spec
