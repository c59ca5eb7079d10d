"""Model specs: which architecture the user means, from a catalog id, a config.json or a model folder.

A spec resolves to the architecture's published `config.json` values and where they
came from. Nothing here runs code from a model: `auto_map` (remote code) is refused
unless transformers implements the `model_type` itself, and weights are only ever
read as safetensors. A Hugging Face Hub id is fetched only when the hub is reachable.
"""

from __future__ import annotations

import copy
import json
import os
import re
from difflib import get_close_matches
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from .errors import FieldIssue, InvalidFile, InvalidInput, MissingDependency
from .files import read_text

MAX_CONFIG_BYTES = 4 << 20
# The meta-device build costs time per module, not per byte: a 1,024-layer config takes about 8 s here (2 shared
# cores), eight times the depth of the deepest published LLM (Llama 3.1 405B, 126 layers). Deeper configs, and more
# experts than any published MoE (Kimi K2: 384), would take minutes, so they are refused as invalid input.
MAX_LAYERS = 1024
MAX_EXPERTS = 4096
LAYER_KEYS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
EXPERT_KEYS = ("num_local_experts", "num_experts", "n_routed_experts")
Task = Literal["causal-lm", "encoder"]
SAFE_WEIGHTS = ("*.safetensors",)
PICKLE_WEIGHTS = ("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class CatalogEntry(BaseModel):
    """A published architecture we ship: its config.json values and where they come from."""

    id: str
    name: str
    source: str = Field(description="Where the config values were published.")
    task: Task
    published_params: int | None = Field(
        default=None, description="Parameter count the publisher states, to check our build against."
    )
    note: str | None = None
    license: str | None = Field(
        default=None,
        description="The model's own licence as an SPDX expression or LicenseRef in the licence table's spelling "
        "(e.g. Apache-2.0, LicenseRef-Llama-3.1-Community, LicenseRef-Qwen-Research); null when not yet recorded.",
    )
    license_source: str | None = Field(
        default=None, description="An https link to the licence as its publisher states it."
    )
    aliases: list[str] = Field(
        default_factory=list, description="Other hub ids with the same architecture (instruct and chat variants)."
    )
    config: dict[str, Any]

    @property
    def repo(self) -> str | None:
        match = re.match(r"https://huggingface.co/([^/]+/[^/]+)/", self.source)
        return match.group(1) if match else None


class ModelSpec(BaseModel):
    """A resolved model: the config to build it from and its provenance."""

    spec: str = Field(description="What the user asked for.")
    id: str = Field(description="A short name for reports and tables.")
    origin: Literal["catalog", "config", "folder", "hub"]
    task: Task
    task_from: Literal["catalog", "architectures", "model_type"] = Field(
        "catalog",
        description="What decided the task: the catalog entry, the config's `architectures`, or (without that key) "
        "the model type's place in transformers' task mappings (masked LM for encoders, causal LM for decoders).",
    )
    model_type: str
    config: dict[str, Any]
    source: str = Field(description="URL or path the config came from.")
    folder: str | None = Field(default=None, description="Model folder, when the spec is one.")
    weight_files: list[str] = Field(default_factory=list, description="safetensors files in the folder.")
    notes: list[str] = Field(default_factory=list)


def catalog_dir() -> Path:
    return Path(str(resources.files("advisor") / "catalog"))


@cache
def load_catalog() -> dict[str, CatalogEntry]:
    entries = {}
    for path in sorted(catalog_dir().glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        entries[path.stem] = CatalogEntry(id=path.stem, **data)
    return entries


def catalog_entry(spec: str) -> CatalogEntry | None:
    """The catalog entry `spec` names (its id, its hub repo or an alias, in any case), or None."""
    key = spec.strip().lower()
    catalog = load_catalog()
    return catalog.get(key) or next(
        (e for e in catalog.values() if key in {n.lower() for n in (e.repo, *e.aliases) if n}), None
    )


def resolve_model_spec(spec: str, *, field: str = "model") -> ModelSpec:
    """Resolve a catalog id, a path to config.json, a model folder, or (online only) a hub id."""
    if not isinstance(spec, str) or not spec.strip():
        raise _spec_error(field, "give a catalog id (see `advisor models`), a config.json path or a model folder")
    spec = spec.strip()
    entry = catalog_entry(spec)
    if entry is not None:
        return _from_config(
            spec,
            entry.id,
            "catalog",
            entry.task,
            copy.deepcopy(entry.config),  # the catalog is shared by the process: a spec gets its own values
            entry.source,
            field=field,
            notes=[entry.note] if entry.note else [],
        )
    path = Path(os.path.expanduser(spec))
    if path.is_dir():
        return _from_folder(spec, path, field)
    if path.is_file():
        config = _read_config(path, field)
        return _from_config(spec, _config_file_id(path), "config", None, config, str(path), field=field)
    looks_like_path = spec.endswith(".json") or spec.startswith((".", "/", "~"))
    if _HUB_ID.match(spec) and not looks_like_path:
        return _from_hub(spec, field)
    if looks_like_path or os.sep in spec:
        raise _spec_error(field, f"no such file or folder: {spec}")
    close = (
        get_close_matches(spec.lower(), load_catalog(), n=5, cutoff=0.6)
        or [k for k in load_catalog() if spec.lower().split("-")[0] in k][:5]
    )
    hint = f"; close matches: {', '.join(close)}" if close else "; run `advisor models` for the catalog"
    raise _spec_error(field, f"unknown model {spec!r}: not a catalog id, a config.json or a model folder{hint}")


def _from_folder(spec: str, folder: Path, field: str) -> ModelSpec:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise _spec_error(field, f"{folder} has no config.json")
    config = _read_config(config_path, field)
    weights = sorted(str(p.name) for pattern in SAFE_WEIGHTS for p in folder.glob(pattern))
    notes = []
    pickled = sorted(str(p.name) for pattern in PICKLE_WEIGHTS for p in folder.glob(pattern))
    if pickled and not weights:
        notes.append(
            f"{folder} holds only pickle weights ({', '.join(pickled[:3])}); advisor reads safetensors only, "
            "so runs use random weights of the same architecture"
        )
    return _from_config(
        spec,
        folder.name,
        "folder",
        None,
        config,
        str(config_path),
        field=field,
        folder=str(folder),
        weight_files=weights,
        notes=notes,
    )


def _from_hub(spec: str, field: str) -> ModelSpec:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise _spec_error(
            field,
            f"{spec!r} is not in the catalog or on disk, and the Hugging Face Hub is offline (HF_HUB_OFFLINE); "
            "download its config.json and pass the path",
        )
    if not _hub_reachable():
        raise _spec_error(
            field,
            f"{spec!r} is not in the catalog or on disk, and the Hugging Face Hub is not reachable; "
            "download its config.json and pass the path",
        )
    try:
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(spec, "config.json")
    except ImportError:
        raise _spec_error(field, f"{spec!r} looks like a hub id, but huggingface_hub is not installed") from None
    except Exception as exc:  # noqa: BLE001 - any network or hub failure is the same answer for the user
        raise _spec_error(
            field,
            f"{spec!r} is not in the catalog or on disk, and the Hugging Face Hub could not be reached "
            f"({type(exc).__name__}); download its config.json and pass the path",
        ) from None
    config = _read_config(Path(path), field)
    return _from_config(spec, spec.split("/")[-1], "hub", None, config, f"https://huggingface.co/{spec}", field=field)


def _hub_reachable(timeout: float = 2.0) -> bool:
    """One quick connection attempt, so an offline machine answers at once instead of after retries."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _from_config(
    spec, id_, origin, task, config, source, *, field, folder=None, weight_files=(), notes=()
) -> ModelSpec:
    model_type = config.get("model_type")
    if not isinstance(model_type, str) or not model_type:
        raise _spec_error(field, f"{source}: config has no model_type")
    notes = list(notes)
    text = config.get("text_config")
    if isinstance(text, dict) and "hidden_size" not in config:
        config = _text_model(text, source, field)
        notes.append(
            f"{model_type} is multimodal: its text model is estimated and built ({config['model_type']}, from "
            "text_config); the vision tower and projector are left out: text-only fine-tuning leaves them as they are"
        )
        model_type = config["model_type"]
    _check_sizes(config, source, field)
    # The catalog's types are transformers' own (tests/test_estimate.py builds every entry), so a catalog id resolves
    # without importing transformers, whose config table imports torch: checking a base model stays light.
    known = _known_model_types() if origin != "catalog" else frozenset({model_type})
    if model_type not in known:
        if config.get("auto_map"):
            raise _spec_error(
                field,
                f"{source}: model_type {model_type!r} needs code from the model repository "
                "(auto_map, trust_remote_code), which advisor never runs",
            )
        raise _spec_error(
            field,
            f"{source}: unknown model_type {model_type!r}; this transformers knows {len(known)} types "
            "(e.g. llama, qwen2, mistral, gemma2, phi3, gpt2)",
        )
    if config.get("auto_map"):
        notes.append(f"config has auto_map; built with transformers' own {model_type} implementation, no remote code")
    task_from = "catalog"
    if task is None:
        task, task_from = _task_of(config)
    return ModelSpec(
        spec=spec,
        id=id_,
        origin=origin,
        task=task,
        task_from=task_from,
        model_type=model_type,
        config=config,
        source=source,
        folder=folder,
        weight_files=list(weight_files),
        notes=notes,
    )


def _text_model(text: dict[str, Any], source: str, field: str) -> dict[str, Any]:
    """The text model of a multimodal config (Gemma 3 4B and up, Llama 4, ...): its `text_config`, built as its own
    model type, with the task read from that type (the catalog's Gemma 3 text models are made the same way)."""
    if not isinstance(text.get("model_type"), str) or not text["model_type"]:
        raise _spec_error(
            field,
            f"{source}: a multimodal config whose text_config has no model_type; add the text model's type "
            "(e.g. gemma3_text, llama4_text) to text_config, or pass the text model's own config.json",
        )
    return {k: v for k, v in text.items() if k != "architectures"}


def _check_sizes(config: dict[str, Any], source: str, field: str) -> None:
    """Refuse configs that build no layers or whose meta-device build would take minutes, naming the key."""
    for keys, limit, what in ((LAYER_KEYS, MAX_LAYERS, "layers"), (EXPERT_KEYS, MAX_EXPERTS, "experts")):
        for key in keys:
            value = config.get(key)
            if value is None or isinstance(value, bool) or not isinstance(value, int):
                continue
            if what == "layers" and value < 1:
                raise _spec_error(
                    field, f"{source}: {key} is {value}: a model needs at least one layer to estimate or train"
                )
            if value > limit:
                raise _spec_error(
                    field,
                    f"{source}: {key} is {value:,}; advisor builds at most {limit:,} {what} (building more on the "
                    "meta device would take minutes; the largest published models have far fewer)",
                )


def _read_config(path: Path, field: str) -> dict[str, Any]:
    text = read_text(path, field=field, limit=MAX_CONFIG_BYTES)
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidFile(
            f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})",
            fields=[FieldIssue(field=field, message=f"malformed JSON at line {exc.lineno}")],
        ) from None
    if not isinstance(config, dict):
        raise _spec_error(field, f"{path} must hold a JSON object")
    return config


def _config_file_id(path: Path) -> str:
    """A config file is named for itself (`qwen3-small.json` -> qwen3-small): a folder of configs shares its parent's
    name. Only a file called config.json takes its folder's name, the folder being what names the model then."""
    if path.stem == "config" and path.parent.name:
        return path.parent.name
    return path.stem


def _task_of(config: dict[str, Any]) -> tuple[Task, Literal["architectures", "model_type"]]:
    """The task, from `architectures` when present, else from transformers' task mappings for the model type: a type
    with a masked-LM class is an encoder (BERT, RoBERTa and DeBERTa also have causal-LM heads, for use as decoders in
    encoder-decoder models, but are pretrained as masked LMs) unless its config is an encoder-decoder or a decoder."""
    archs = config.get("architectures") or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs):
        return "causal-lm", "architectures"
    if any(a.endswith(("ForMaskedLM", "ForSequenceClassification", "ForTokenClassification", "Model")) for a in archs):
        return "encoder", "architectures"
    masked, _ = _task_mappings()
    model_type = config.get("model_type")
    decoder = config.get("is_decoder") or config.get("is_encoder_decoder") or _is_encoder_decoder_type(model_type)
    if model_type in masked and not decoder:
        return "encoder", "model_type"
    return "causal-lm", "model_type"


def _task_mappings() -> tuple[frozenset[str], frozenset[str]]:
    """transformers' model types with a masked-LM class and with a causal-LM class (names only)."""
    tables = _transformers_tables()
    return frozenset(tables["masked"]), frozenset(tables["causal"])


@cache
def _is_encoder_decoder_type(model_type) -> bool:
    """Whether transformers' config class for the type defaults to an encoder-decoder (BART, mBART)."""
    if not isinstance(model_type, str):
        return False
    try:
        from transformers import AutoConfig

        return bool(AutoConfig.for_model(model_type).is_encoder_decoder)
    except Exception:  # noqa: BLE001 - an unknown type is refused later with its own message
        return False


@cache
def _known_model_types() -> frozenset[str]:
    return frozenset(_transformers_tables()["model_types"])


@cache
def _transformers_tables() -> dict[str, list[str]]:
    """transformers' model types and which have masked-LM and causal-LM classes: names only, cached per installed
    transformers version (reading them imports transformers, and with it torch)."""
    from .cache import cache_root, read_json, write_json
    from .versions import installed_version

    path = cache_root() / f"transformers-{installed_version('transformers')}-model-types.json"
    tables = read_json(path)
    if isinstance(tables, dict) and all(isinstance(tables.get(k), list) for k in ("model_types", "masked", "causal")):
        return tables
    try:
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
            MODEL_FOR_MASKED_LM_MAPPING_NAMES,
        )
    except ImportError as exc:
        from .hf import LORA_INSTALL

        raise MissingDependency(
            f"reading a model's config needs transformers ({exc.name} is missing): run `{LORA_INSTALL}`"
        ) from None
    tables = {
        "model_types": sorted(CONFIG_MAPPING_NAMES),
        "masked": sorted(MODEL_FOR_MASKED_LM_MAPPING_NAMES),
        "causal": sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES),
    }
    write_json(path, tables)
    return tables


def _spec_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, fields=[FieldIssue(field=field, message=message)])
