"""The models a reference run trains: the user's architecture, at its depth or cut to fewer layers.

Every run starts from the same weights: they are made once, in host memory, for the
deepest depth to be measured (transformers' own random initialisation under the run's
seed, or the model folder's safetensors read by `from_pretrained` with local files only),
and each run builds its model empty on the device and copies them in (a shallower proxy
takes the layers it has). Made outside the measured runs and kept until they end, they
never appear in a run's memory figures. The config is the one the estimator builds
(`build_config`), so the run and the estimate describe one model.
"""

from __future__ import annotations

from ..errors import FieldIssue, InvalidFile, InvalidInput
from ..hf import build_config, quiet
from ..model_specs import ModelSpec

# Config keys that hold one entry per layer and must be cut with the layer count.
PER_LAYER_LISTS = ("layer_types",)


def at_depth(spec: ModelSpec, layers: int) -> ModelSpec:
    """`spec` with its first `layers` layers: every layer, embedding and head keeps its exact shape."""
    config = build_config(spec)
    key = config.attribute_map.get("num_hidden_layers", "num_hidden_layers")
    values = dict(spec.config)
    values[key] = layers
    # a config may give the depth under its own name and the standard one both (GPT-2's n_layer beside
    # num_hidden_layers); transformers takes the standard one, so every name the config uses is cut
    for name in ("num_hidden_layers", key):
        if name in values:
            values[name] = layers
    for name in PER_LAYER_LISTS:
        if isinstance(values.get(name), list):
            values[name] = values[name][:layers]
    return spec.model_copy(update={"config": values})


# Config keys that list layer indices (membership is the layer's kind, the index itself is not).
LAYER_INDEX_SETS = ("moe_layers", "mlp_only_layers")


def layer_kinds(spec: ModelSpec) -> list[str]:
    """Each decoder layer's kind, for choosing proxy depths (`plan.proxy_plan`): what the config says per layer
    (`layer_types`, `no_rope_layers` and any other list with one entry per layer; membership of `moe_layers` or
    `mlp_only_layers`) and which modules the layer is built of (dense MLP or experts, as DeepSeek's
    first_k_dense_replace or Qwen3-MoE's decoder_sparse_step decide), read off the model built on the meta device.

    A sliding-window layer stays its own kind even when its window covers the sequence (no mask then): its
    position embeddings may differ (Gemma 3's local RoPE base) and with them what is saved."""
    from ..estimate.architecture import _decoder_layers
    from ..hf import build_meta_model

    config = build_config(spec)
    count = int(config.num_hidden_layers)
    values = config.to_dict()
    parts: list[list[str]] = [[] for _ in range(count)]
    for name, value in sorted(values.items()):
        if name in LAYER_INDEX_SETS and isinstance(value, list):
            for i in range(count):
                parts[i].append(name if i in value else f"not {name}")
        elif (
            isinstance(value, list)
            and len(value) == count
            and count > 1
            and name not in ("architectures",)
            and all(isinstance(x, (str, bool, int, float)) for x in value)
        ):
            for i, entry in enumerate(value):
                parts[i].append(str(entry) if name == "layer_types" else f"{name}={entry}")
    layers = _decoder_layers(build_meta_model(spec, config))
    if len(layers) == count:
        children = [{name: _structure(child) for name, child in layer.named_children()} for layer in layers]
        shapes = [tuple(sorted(c.items())) for c in children]
        if len(set(shapes)) > 1:
            names = set().union(*children)
            varying = sorted(n for n in names if len({c.get(n) for c in children}) > 1)
            labels: dict[tuple, str] = {}
            for i, layer in enumerate(layers):
                label = "/".join(type(getattr(layer, n, None)).__name__ for n in varying)
                if shapes[i] not in labels:  # two structures of one label (same classes, other shapes) stay apart
                    taken = sum(1 for x in labels.values() if x.split(" #")[0] == label)
                    labels[shapes[i]] = label + (f" #{taken + 1}" if taken else "")
                parts[i].append(labels[shapes[i]])
    # keep an entry only where it tells layers apart that the entries kept before it do not (what every layer
    # shares, or what follows from another entry, as Llama 4's no_rope_layers from its layer_types, says nothing)
    keep: list[int] = []
    for j in range(len(parts[0]) if parts else 0):
        before = len({tuple(p[k] for k in keep) for p in parts})
        if len({tuple(p[k] for k in [*keep, j]) for p in parts}) > before:
            keep.append(j)
    return ["/".join(p[j] for j in keep) or "layer" for p in parts]


def _structure(module) -> tuple:
    """A module's submodules and parameter shapes, whatever its layer's index."""
    return tuple(
        (name, type(m).__name__, tuple((n, tuple(p.shape)) for n, p in m.named_parameters(recurse=False)))
        for name, m in module.named_modules()
    )


def make_base_weights(spec: ModelSpec, *, pretrained: bool, seed: int, dtype, attention: str = "sdpa") -> dict:
    """The weights every run of `spec` (or of a shallower cut of it) starts from, on the CPU, by name."""
    import torch

    config = build_config(spec)
    with quiet():
        if pretrained:
            model = _load_pretrained(spec.folder, config, dtype)
        else:
            torch.manual_seed(seed)
            model = _empty_model(config, torch.device("cpu"), dtype, attention)
            model.init_weights()  # transformers' own initialisation for this architecture, and the tying
    return model.state_dict()


def _load_pretrained(folder, config, dtype):
    """The folder's weights through transformers; a corrupt or mismatched file is the user's to fix."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(
            folder, config=config, dtype=dtype, local_files_only=True, use_safetensors=True
        )
    except (SafetensorError, OSError, ValueError, RuntimeError, KeyError) as exc:
        # safetensors refuses a bad header or a truncated file; transformers a tensor whose shape does not
        # match config.json (RuntimeError), a missing or unreadable file (OSError)
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        message = f"the weights in {folder} cannot be loaded: {detail}"
        raise InvalidFile(message, fields=[FieldIssue(field="model", message=message)]) from None


def build_model(spec: ModelSpec, weights: dict, *, device, dtype, attention: str = "sdpa"):
    """`spec`'s model on `device`, allocated once and never randomly initialised, with `weights` copied in."""
    import torch

    model = _empty_model(build_config(spec), device, dtype, attention)
    model.tie_weights()
    targets = model.state_dict(keep_vars=True)
    missing = [name for name in targets if name not in weights]
    if missing:
        raise RuntimeError(f"the starting weights lack {len(missing)} of the model's tensors, e.g. {missing[:3]}")
    with torch.no_grad():
        for name, target in targets.items():
            target.copy_(weights[name])
    return model


def _empty_model(config, device, dtype, attention: str = "sdpa"):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.initialization import no_init_weights

    # transformers picks SDPA where the architecture supports it; eager only when asked.
    extra = {"attn_implementation": "eager"} if attention == "eager" else {}
    try:
        with torch.device(device), no_init_weights(), quiet():
            return AutoModelForCausalLM.from_config(config, dtype=dtype, **extra)
    except ValueError as exc:
        raise InvalidInput(
            f"transformers cannot build a causal LM from this {config.model_type} config: {exc}",
            fields=[FieldIssue(field="model", message=str(exc)[:300])],
        ) from None
