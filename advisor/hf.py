"""The one place advisor meets transformers and peft: config and model building, LoRA injection, quiet logs.

Every model advisor builds comes from transformers' own class for the config's
`model_type` (never remote code), and LoRA is always PEFT's `get_peft_model`, so the
estimator's meta-device model and the reference run's real one are the same
architecture. torch, transformers and peft are imported inside these functions:
importing this module costs nothing.
"""

from __future__ import annotations

import copy
import warnings
from contextlib import contextmanager

from .errors import FieldIssue, InvalidInput, MissingDependency
from .model_specs import ModelSpec

LORA_INSTALL = "pip install 'advisor[lora]' -c constraints.txt"


def require_lora_stack():
    """Import torch, transformers and peft, or say how to install them."""
    try:
        import peft  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependency(
            f"this needs torch, transformers and peft ({exc.name} is missing): run `{LORA_INSTALL}`"
        ) from None


def build_config(spec: ModelSpec, *, field_name: str = "model"):
    """The transformers config for a spec: transformers' own class for its model_type, never remote code."""
    require_lora_stack()
    from transformers import AutoConfig

    # A deep copy: transformers rewrites nested values in place (rope_scaling into rope_parameters), which would
    # change the spec's config, and the catalog entry it shares, under the caller.
    values = copy.deepcopy(
        {k: v for k, v in spec.config.items() if k not in ("model_type", "auto_map", "transformers_version")}
    )
    try:
        with quiet():
            config = AutoConfig.for_model(spec.model_type, **values)
    except Exception as exc:  # noqa: BLE001 - transformers raises many kinds for a bad config
        raise InvalidInput(
            f"{spec.source}: transformers cannot build a {spec.model_type} config: {exc}",
            fields=[FieldIssue(field=field_name, message=str(exc)[:300])],
        ) from None
    return config


def auto_class_name(spec: ModelSpec) -> str:
    """The transformers auto class a spec is built with: a causal LM with its head, or an encoder's backbone
    (AutoModel, as the LoRA paper counts RoBERTa and DeBERTa: the task heads are the user's own)."""
    return "AutoModelForCausalLM" if spec.task == "causal-lm" else "AutoModel"


def build_meta_model(spec: ModelSpec, config=None, *, dtype=None):
    """The model with every parameter on the meta device (nothing allocated), in bf16 unless `dtype` says."""
    require_lora_stack()
    import torch
    import transformers

    config = config or build_config(spec)
    auto = getattr(transformers, auto_class_name(spec))
    try:
        with torch.device("meta"), quiet():
            model = auto.from_config(config, dtype=dtype or torch.bfloat16)
    except Exception as exc:  # noqa: BLE001
        raise InvalidInput(
            f"{spec.source}: transformers cannot build this {spec.model_type} model: {exc}",
            fields=[FieldIssue(field="model", message=str(exc)[:300])],
        ) from None
    return model


def lora_config(spec: ModelSpec, *, rank: int, alpha: float, targets, dropout: float = 0.0, init: bool = True):
    """PEFT's LoraConfig for `spec`. `init=False` skips initialising the adapter weights
    (meaningless on the meta device, and most of PEFT's time on large models)."""
    from peft import LoraConfig

    task_type = "CAUSAL_LM" if spec.task == "causal-lm" else "FEATURE_EXTRACTION"
    return LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        task_type=task_type,
        init_lora_weights=init,
    )


# Where PEFT has no default LoRA targets for a model type (Qwen3-MoE, OLMo 2, DeepSeek-V3, gpt-oss, Llama 4 in
# peft 0.21), advisor adapts the attention's query and value projections, found by name, as PEFT's defaults do for
# most decoders and as the LoRA paper did; a model with no such pair gets every linear layer (all-linear).
# Multi-head latent attention (DeepSeek-V2/V3) has no value projection of its own: its values come out of the
# key-value up-projection `kv_b_proj`, beside the query's (`q_b_proj`, or `q_proj` without a query LoRA rank).
# all-linear there would reach every expert's 3-D weights (W + BA built per expert in each forward: 1.3 TB of
# activations for DeepSeek-V3 at the default shape), which no one means by a default.
DEFAULT_QUERY_VALUE = (
    ("q_proj", "v_proj"),
    ("query", "value"),
    ("query_proj", "value_proj"),
    ("q", "v"),
    ("q_b_proj", "kv_b_proj"),
    ("q_proj", "kv_b_proj"),
)


def default_lora_targets(model, spec: ModelSpec) -> tuple[list[str] | str | None, str | None]:
    """The targets to use when the user named none: PEFT's own default when PEFT has one for the model type, else
    advisor's documented default, with a note saying which."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    if PEFT_DEFAULTS.get(spec.model_type):
        # PEFT's own default, passed explicitly: for some types (Mixtral in peft 0.21) PEFT finds its default only
        # when no 3-D parameters could be targeted, and otherwise refuses a config without targets.
        return list(PEFT_DEFAULTS[spec.model_type]), None
    names = linear_module_names(model)
    for pair in DEFAULT_QUERY_VALUE:
        if set(pair) <= names:
            return list(pair), (
                f"PEFT has no default LoRA targets for {spec.model_type}: advisor's default, the attention query and "
                f"value projections ({', '.join(pair)})"
            )
    return "all-linear", (
        f"PEFT has no default LoRA targets for {spec.model_type} and it has no query/value projections by name: "
        "advisor's default, all-linear"
    )


def inject_lora(model, spec: ModelSpec, *, rank: int, alpha: float, targets, init: bool = True):
    """PEFT's get_peft_model, with its errors turned into field errors. Targets None means PEFT's default for the
    model type, or advisor's (`default_lora_targets`) where PEFT has none."""
    from peft import get_peft_model

    if targets is None:
        targets, _ = default_lora_targets(model, spec)

    try:
        with quiet():
            return get_peft_model(model, lora_config(spec, rank=rank, alpha=alpha, targets=targets, init=init))
    except ValueError as exc:
        message = str(exc)
        if "target_modules" in message or "Target module" in message or "not found" in message:
            names = sorted(linear_module_names(model))
            raise InvalidInput(
                f"LoRA targets {targets!r} do not match this {spec.model_type} model",
                fields=[
                    FieldIssue(field="targets", message=message.splitlines()[0][:300], allowed=["all-linear", *names])
                ],
            ) from None
        raise InvalidInput(
            f"PEFT refused the LoRA config: {message[:300]}",
            fields=[FieldIssue(field="targets", message=message[:300])],
        ) from None


def linear_module_names(model) -> set[str]:
    """The last names of every linear layer (what `--targets` accepts)."""
    return {name.split(".")[-1] for name, module in model.named_modules() if is_linear(module) and name}


def is_linear(module) -> bool:
    import torch.nn as nn

    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


@contextmanager
def quiet():
    """transformers and peft warn about things that do not concern an estimate or a measurement
    (meta tensors, unused checkpoint keys of a layer-cut proxy, deprecations), and draw progress bars."""
    import logging

    from transformers.utils import logging as hf_logging

    logger = logging.getLogger("transformers")
    level = logger.level
    bars = hf_logging.is_progress_bar_enabled()
    logger.setLevel(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()


def returned_cache(out):
    """The KV cache a forward returned, or None. transformers 5 names it `cache`; asking an output that has that
    field for `past_key_values`, its old name, logs a deprecation warning, so the old name is read only from outputs
    without the new field (a model's own output class may still use it)."""
    if "cache" in getattr(type(out), "__dataclass_fields__", {}):
        return out.get("cache", None)
    return out.get("past_key_values", None)
