"""Build the real architecture on the meta device and read off what the estimator needs.

transformers builds the model from its config with no memory allocated; PEFT injects
LoRA into it the same way it would on a GPU. Parameter counts, which modules LoRA
wraps, and every linear layer's shape therefore come from the libraries themselves,
exactly, for any architecture transformers implements.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field

from ..errors import FieldIssue, InvalidInput
from ..hf import build_config, build_meta_model, default_lora_targets, inject_lora, is_linear
from ..model_specs import ModelSpec
from .activations import LinearInfo


@dataclass
class ParamGroup:
    module: str
    modules: int = 0
    params: int = 0
    trainable: int = 0


@dataclass
class Architecture:
    """What the memory model needs to know about one model under one adaptation method."""

    model_type: str
    task: str
    total_params: int  # the base model's parameters
    trainable_params: int
    adapter_params: int  # LoRA's A and B matrices (0 for full fine-tuning)
    params_by_module: list[ParamGroup]
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    linear_params_in_layers: int  # what QLoRA quantizes
    layer_linears: list[dict[str, LinearInfo]]  # per layer: relative module name -> info
    layer_wrapped: list[dict[str, tuple[int, int]]] = field(default_factory=list)  # per layer: PEFT-parametrized params
    targets: list[str] = field(default_factory=list)  # LoRA target module names as PEFT resolved them
    config: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def describe(
    spec: ModelSpec, *, method: str, rank: int, alpha: float, targets, weights: str, others: str | None
) -> Architecture:
    """Build `spec` on the meta device, apply the method, and describe it.

    `weights` is the stored dtype of the base linear weights ("bf16", "fp32", or "nf4"
    under QLoRA); `others` the dtype of everything else when it differs. Results are
    cached per process: building a 405B model and injecting LoRA takes seconds.
    """
    key = (
        spec.model_dump_json(),
        method,
        rank if method != "full" else 0,
        json.dumps(targets if method != "full" else None),
        weights,
    )
    if key not in _DESCRIBED:
        if len(_DESCRIBED) >= 32:
            _DESCRIBED.pop(next(iter(_DESCRIBED)))
        _DESCRIBED[key] = _stored_or_built(spec, method, rank, alpha, targets, weights)
    return _DESCRIBED[key]


def _stored_or_built(spec: ModelSpec, method: str, rank: int, alpha: float, targets, weights: str) -> Architecture:
    """A shipped or cached description when one matches (no torch imported), else a build, then cached."""
    from . import descriptions

    rank = rank if method != "full" else 0
    targets = targets if method != "full" else None
    arch = descriptions.load(spec, method, rank, targets, weights)
    if arch is None:
        arch = _describe(spec, method, rank, alpha, targets, weights)
        descriptions.store(spec, method, rank, targets, arch)
    return arch


_DESCRIBED: dict[tuple, Architecture] = {}


def _describe(spec: ModelSpec, method: str, rank: int, alpha: float, targets, weights: str) -> Architecture:
    config = build_config(spec)
    model = build_meta_model(spec, config)
    base_total = sum(p.numel() for p in model.parameters())
    notes = list(spec.notes)
    resolved_targets: list[str] = []
    if method in ("lora", "qlora"):
        import torch

        # PEFT creates each adapter's nn.Linear on the default device and then moves it to
        # the base layer's: without this, every lora_A/lora_B is allocated and initialised
        # in host memory first (gigabytes, and minutes, for a large rank on a large model).
        if targets is None:
            targets, default_note = default_lora_targets(model, spec)
            if default_note:
                notes.append(default_note)
        with torch.device("meta"):
            model = inject_lora(model, spec, rank=rank, alpha=alpha, targets=targets, init=False)
        peft_cfg = model.peft_config["default"]
        resolved_targets = (
            sorted(peft_cfg.target_modules)
            if isinstance(peft_cfg.target_modules, (set, list))
            else [str(peft_cfg.target_modules)]
        )
        trainable, _ = model.get_nb_trainable_parameters()
        adapter = trainable
    else:
        trainable, adapter = base_total, 0

    layers = _decoder_layers(model)
    head = _output_head(model)
    embed = _input_embedding(model)
    tied = head is not None and embed is not None and head.weight is embed.weight
    layer_linears = [_linears(layer, method, weights) for layer in layers]
    layer_wrapped = [_wrapped_params(layer) for layer in layers]
    linear_in_layers = sum(info.in_features * info.out_features for ll in layer_linears for info in ll.values())

    return Architecture(
        model_type=spec.model_type,
        task=spec.task,
        total_params=base_total,
        trainable_params=trainable,
        adapter_params=adapter,
        params_by_module=_params_by_module(model),
        layers=len(layers),
        hidden=_cfg(config, "hidden_size", "n_embd", "d_model"),
        heads=_cfg(config, "num_attention_heads", "n_head"),
        kv_heads=_cfg(config, "num_key_value_heads", default=None) or _cfg(config, "num_attention_heads", "n_head"),
        head_dim=_cfg(config, "head_dim", default=None)
        or _cfg(config, "hidden_size", "n_embd") // _cfg(config, "num_attention_heads", "n_head"),
        vocab=_cfg(config, "vocab_size"),
        tied_embeddings=tied,
        linear_params_in_layers=linear_in_layers,
        layer_linears=layer_linears,
        layer_wrapped=layer_wrapped,
        targets=resolved_targets,
        config=config.to_dict(),
        notes=notes,
    )


def _linears(layer, method: str, weights: str) -> dict[str, LinearInfo]:
    infos = {}
    for name, module in layer.named_modules():
        base = getattr(module, "base_layer", None)
        if base is not None and is_linear(base):
            adapted, target = True, base
        elif is_linear(module) and not _inside_lora(name):
            if any(name.startswith(prefix + ".") for prefix in infos):  # the base_layer of a wrapped module
                continue
            adapted, target = False, module
        else:
            continue
        in_f, out_f = _features(target)
        infos[name.replace(".base_layer", "")] = LinearInfo(
            in_features=in_f,
            out_features=out_f,
            trainable=method == "full",
            adapted=adapted,
            weight_dtype=weights,
        )
    return infos


def _wrapped_params(layer) -> dict[str, tuple[int, int]]:
    """Parameters PEFT adapts in place (its ParamWrapper, e.g. Mixtral's 3-D experts and router):
    relative name -> (the parameter's numel, the adapter's numel)."""
    out = {}
    for name, module in layer.named_modules():
        if type(module).__name__ != "ParamWrapper":
            continue
        param = module.get_param()
        adapter = sum(p.numel() for p in (*module.lora_A.parameters(), *module.lora_B.parameters()))
        owner = name.split(".base_layer")[0]
        out[f"{owner.split('.')[-1]}.{module.parameter_name}"] = (param.numel(), adapter)
    return out


def _inside_lora(name: str) -> bool:
    return bool(re.search(r"\.(lora_[AB]|lora_embedding_[AB]|lora_dropout|lora_magnitude_vector)(\.|$)", name))


def _features(module) -> tuple[int, int]:
    if type(module).__name__ == "Conv1D":  # GPT-2 stores (in, out)
        return module.weight.shape[0], module.weight.shape[1]
    return module.in_features, module.out_features


def _decoder_layers(model):
    import torch.nn as nn

    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) > 0]
    if not lists:
        raise InvalidInput(
            "cannot find the model's layers", fields=[FieldIssue(field="model", message="no layer list")]
        )
    return max(lists, key=lambda m: sum(p.numel() for p in m.parameters()))


def _output_head(model):
    get = getattr(model, "get_output_embeddings", None)
    return get() if get else None


def _input_embedding(model):
    get = getattr(model, "get_input_embeddings", None)
    return get() if get else None


def _params_by_module(model) -> list[ParamGroup]:
    groups: dict[str, ParamGroup] = {}
    seen_modules: dict[str, set[str]] = defaultdict(set)
    seen_params: set[int] = set()
    for full_name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in seen_params:
            continue
        seen_params.add(id(param))
        parts = full_name.split(".")[:-1]  # drop weight/bias
        parts = [p for p in parts if p not in ("default", "base_layer")]
        key = _module_key(parts)
        group = groups.setdefault(key, ParamGroup(module=key))
        owner = ".".join(parts)
        if owner not in seen_modules[key]:
            seen_modules[key].add(owner)
            group.modules += 1
        group.params += param.numel()
        if param.requires_grad:
            group.trainable += param.numel()
    return sorted(groups.values(), key=lambda g: -g.params)


def _module_key(parts: list[str]) -> str:
    if len(parts) >= 2 and parts[-1] in ("lora_A", "lora_B"):
        return f"{parts[-2]}.{parts[-1]}"
    # experts stored as 3-D parameters (Mixtral) have the parameter name as their only identity
    return parts[-1] if parts else "(root)"


def _cfg(config, *names, default=...):
    for name in names:
        value = getattr(config, name, None)
        if value is not None:
            return value
    if default is ...:
        raise InvalidInput(
            f"config lacks {names[0]}", fields=[FieldIssue(field="model", message=f"config has no {' / '.join(names)}")]
        )
    return default
