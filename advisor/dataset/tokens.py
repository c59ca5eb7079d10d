"""Token counts: the base model's own tokenizer when `--model` is a local folder holding one, else an
approximation labelled as such (`basis` says which)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from ..errors import FieldIssue, InvalidInput, MissingDependency
from .checks import TokenRules

Counter = Callable[[list[str]], list[int]]  # texts -> tokens of each


def token_counter(model: str | None, rules: TokenRules) -> tuple[Counter, str]:
    """A function counting tokens of a batch of texts, and its basis (`tokenizer: <folder>` or `approximate: ...`).

    A `--model` that is a folder with `tokenizer.json` is read with `tokenizers` (Rust, no code from the folder
    runs); a catalog id or a config file carries no tokenizer, so counts are approximate and say so."""
    if model is not None:
        folder = Path(model)
        if folder.is_dir():
            return _folder_tokenizer(folder)
        if not folder.exists() and ("/" in model or model.endswith(".json")):
            raise InvalidInput(
                f"--model: no such folder: {model}",
                fields=[FieldIssue(field="--model", message=f"no such folder: {model}")],
            )
    per = rules.chars_per_token
    return (lambda texts: [math.ceil(len(t) / per) for t in texts]), rules.approximate_basis


def _folder_tokenizer(folder: Path) -> tuple[Counter, str]:
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise InvalidInput(
            f"--model: {folder} has no tokenizer.json",
            fields=[
                FieldIssue(
                    field="--model",
                    message=f"{folder} has no tokenizer.json (a fast tokenizer saved by transformers); leave --model "
                    "out for approximate counts",
                )
            ],
        )
    try:
        from tokenizers import Tokenizer
    except ModuleNotFoundError:
        raise MissingDependency("counting tokens with a model's tokenizer needs `pip install tokenizers`") from None
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - the Rust library raises a bare Exception for a broken file
        raise InvalidInput(
            f"--model: {path} cannot be read as a tokenizer ({exc})",
            fields=[FieldIssue(field="--model", message=f"{path} is not a valid tokenizer.json")],
        ) from None

    def count(texts: list[str]) -> list[int]:
        return [len(encoding.ids) for encoding in tokenizer.encode_batch(texts, add_special_tokens=False)]

    return count, f"tokenizer: {folder.name}/tokenizer.json (the model's own; chat template tokens not counted)"
