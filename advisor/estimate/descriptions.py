"""Architecture descriptions as data, so an estimate need not import torch, transformers and peft.

What the memory model reads from the meta-device build (`architecture.Architecture`: parameter
groups, every layer's linear shapes, what LoRA wraps) is plain data. It is stored as JSON:

- shipped with the package for catalog models under the settings an estimate starts from
  (`SHIPPED_VARIANTS`: full fine-tuning, PEFT's default targets at rank 8, all-linear at rank 16),
  in `advisor/catalog/descriptions/<id>.json`, written by `python -m advisor.estimate.descriptions`
  and checked by `tests/test_descriptions.py`, which rebuilds every one on the meta device and
  requires equality;
- cached after a build for anything else (user configs, other ranks and targets) in
  `$ADVISOR_CACHE_DIR` or `~/.cache/advisor/descriptions/`.

Either is keyed by the config's content, the task, the adaptation (full, or LoRA with its rank and
targets: QLoRA builds the same modules as LoRA) and the installed transformers and peft versions,
so a change in any of them rebuilds. The dtype of the base linears is not part of the key: it is
the one field that follows the precision, and it is filled in when a description is read.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

from ..versions import installed_version
from .activations import LinearInfo
from .architecture import Architecture, ParamGroup

FORMAT = 1
# (method, rank, targets) built and shipped for every catalog model: the estimate's defaults (LoRA r8 with PEFT's
# targets), the starting recipe (all-linear r16) and full fine-tuning.
SHIPPED_VARIANTS: tuple[tuple[str, int, object], ...] = (
    ("lora", 8, None),
    ("lora", 16, "all-linear"),
    ("full", 0, None),
)
_WEIGHTS_PLACEHOLDER = "bf16"


def description_key(spec, method: str, rank: int, targets) -> str:
    """A stable key over everything the description depends on."""
    adapted = method in ("lora", "qlora")
    payload = {
        "format": FORMAT,
        "config": spec.config,
        "model_type": spec.model_type,
        "task": spec.task,
        "adapter": {"rank": rank, "targets": targets} if adapted else None,
        "transformers": installed_version("transformers"),
        "peft": installed_version("peft"),
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def to_data(arch: Architecture, spec_notes: list[str]) -> dict:
    """An Architecture as JSON-ready data (identical layers stored once)."""
    templates: list[dict] = []
    index: list[int] = []
    seen: dict[str, int] = {}
    for linears, wrapped in zip(arch.layer_linears, arch.layer_wrapped, strict=True):
        layer = {
            "linears": {name: {**asdict(info), "weight_dtype": None} for name, info in linears.items()},
            "wrapped": {name: list(v) for name, v in wrapped.items()},
        }
        text = json.dumps(layer, sort_keys=True)
        if text not in seen:
            seen[text] = len(templates)
            templates.append(layer)
        index.append(seen[text])
    data = {k: v for k, v in asdict(arch).items() if k not in ("layer_linears", "layer_wrapped", "notes", "model_type")}
    data["params_by_module"] = [asdict(g) for g in arch.params_by_module]
    data["notes"] = [n for n in arch.notes if n not in spec_notes]  # notes the build added
    data["layer_templates"] = templates
    data["layer_index"] = index
    return data


def from_data(data: dict, spec, weights: str) -> Architecture:
    """The Architecture a description holds, for `spec` and the base linears' dtype `weights`."""
    templates = [
        (
            {name: LinearInfo(**{**info, "weight_dtype": weights}) for name, info in t["linears"].items()},
            {name: tuple(v) for name, v in t["wrapped"].items()},
        )
        for t in data["layer_templates"]
    ]
    fields = {
        k: v
        for k, v in data.items()
        if k not in ("layer_templates", "layer_index", "notes", "params_by_module", "model_type")
    }
    return Architecture(
        model_type=spec.model_type,
        params_by_module=[ParamGroup(**g) for g in data["params_by_module"]],
        layer_linears=[dict(templates[i][0]) for i in data["layer_index"]],
        layer_wrapped=[dict(templates[i][1]) for i in data["layer_index"]],
        notes=[*spec.notes, *data["notes"]],
        **fields,
    )


def with_weights(arch: Architecture, weights: str) -> Architecture:
    return replace(
        arch,
        layer_linears=[{n: replace(i, weight_dtype=weights) for n, i in layer.items()} for layer in arch.layer_linears],
    )


def shipped_dir() -> Path:
    from ..package_data import PACKAGE_DIR

    return PACKAGE_DIR / "catalog" / "descriptions"


def cache_dir() -> Path:
    from ..cache import cache_root

    return cache_root() / "descriptions"


def load(spec, method: str, rank: int, targets, weights: str) -> Architecture | None:
    """A stored description for these settings (shipped, then cached), or None."""
    key = description_key(spec, method, rank, targets)
    if spec.origin == "catalog":
        path = shipped_dir() / f"{spec.id}.json"
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8")).get("variants", {}).get(key)
            if data is not None:
                return from_data(data, spec, weights)
    path = cache_dir() / f"{key}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    try:
        return from_data(data, spec, weights)
    except (KeyError, TypeError, ValueError):
        return None  # an unreadable cache entry is rebuilt


def store(spec, method: str, rank: int, targets, arch: Architecture) -> None:
    """Cache a freshly built description; a cache that cannot be written is no error."""
    from ..cache import write_json

    key = description_key(spec, method, rank, targets)
    write_json(cache_dir() / f"{key}.json", to_data(arch, spec.notes))


def build_shipped(model_id: str) -> dict:
    """Build every shipped variant of a catalog model on the meta device."""
    from ..model_specs import resolve_model_spec
    from .architecture import _describe

    spec = resolve_model_spec(model_id)
    variants = {}
    for method, rank, targets in SHIPPED_VARIANTS:
        arch = _describe(spec, method, rank, 2.0 * rank, targets, _WEIGHTS_PLACEHOLDER)
        variants[description_key(spec, method, rank, targets)] = to_data(arch, spec.notes)
    return {
        "model": model_id,
        "transformers": installed_version("transformers"),
        "peft": installed_version("peft"),
        "variants": variants,
    }


def main() -> None:  # python -m advisor.estimate.descriptions [ids...]: rewrite the shipped descriptions
    import sys

    from ..model_specs import load_catalog

    ids = sys.argv[1:] or sorted(load_catalog())
    folder = shipped_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for model_id in ids:
        data = build_shipped(model_id)
        (folder / f"{model_id}.json").write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
        print(model_id, flush=True)


if __name__ == "__main__":
    main()
