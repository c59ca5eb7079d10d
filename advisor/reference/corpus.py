"""The text a reference run trains on, turned into token ids.

A dataset is a local JSONL file (one object a line, with a `text` field or
`prompt` and `completion` fields) or a plain text file; without one, the built-in
corpus shipped with advisor (a few KB of prose about LoRA). Texts are tokenized with
the model folder's own `tokenizer.json` when there is one (the `tokenizers` library,
which runs no model code), else byte by byte: each UTF-8 byte becomes the token id
`byte % vocab_size`, deterministic and inside the vocabulary of any model.

Every step reads the next `batch x seq` tokens of the stream, starting again at the
beginning when the text runs out, so a run is the same for the same file and seed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from ..errors import FieldIssue, InvalidFile, InvalidInput
from ..files import read_text
from ..model_specs import ModelSpec
from .result import DatasetInfo

MAX_DATASET_BYTES = 64 << 20
JSONL_SUFFIXES = (".jsonl", ".ndjson")
RECORD_SEPARATOR = "\n\n"
FIELD = "dataset"


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    source: str
    format: Literal["builtin", "text", "jsonl"]


@dataclass(frozen=True)
class TokenStream:
    ids: list[int]
    tokenizer: str


def load_corpus(path: str | os.PathLike[str] | None) -> Corpus:
    """The texts of `path` (JSONL or plain text), or the built-in corpus when `path` is None."""
    if path is None:
        text = (resources.files("advisor.reference") / "corpus.txt").read_text(encoding="utf-8")
        return Corpus([text], "built-in corpus", "builtin")
    text = read_text(path, field=FIELD, limit=MAX_DATASET_BYTES)
    if not text.strip():
        raise _error(f"{path} is empty")
    if Path(path).suffix.lower() in JSONL_SUFFIXES:
        return Corpus(_jsonl_texts(text, str(path)), str(path), "jsonl")
    return Corpus([text], str(path), "text")


def _jsonl_texts(text: str, name: str) -> list[str]:
    texts = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _error(f"{name} line {number} is not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise _error(f"{name} line {number} must be a JSON object, not {type(record).__name__}")
        text = _record_text(record, f"{name} line {number}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _error(
                f"{name} line {number} holds an unpaired surrogate escape ({text[exc.start]!r} at character "
                f"{exc.start}), which is not text"
            ) from None
        texts.append(text)
    if not texts:
        raise _error(f"{name} has no records")
    return texts


def _record_text(record: dict, where: str) -> str:
    if "text" in record:
        value = record["text"]
        if not isinstance(value, str) or not value.strip():
            raise _error(f"{where}: `text` must be a non-empty string")
        return value
    if "prompt" in record and "completion" in record:
        prompt, completion = record["prompt"], record["completion"]
        if not isinstance(prompt, str) or not isinstance(completion, str) or not (prompt + completion).strip():
            raise _error(f"{where}: `prompt` and `completion` must be strings, not both empty")
        return prompt + completion
    fields = ", ".join(sorted(map(str, record))) or "none"
    raise _error(f"{where} needs a `text` field, or `prompt` and `completion` fields (it has: {fields})")


def tokenize(corpus: Corpus, spec: ModelSpec, vocab_size: int, needed: int) -> TokenStream:
    """At least `needed` token ids when the text has that many (else all of them), inside the vocabulary."""
    text = RECORD_SEPARATOR.join(corpus.texts)
    tokenizer_file = Path(spec.folder) / "tokenizer.json" if spec.folder else None
    if tokenizer_file is not None and tokenizer_file.is_file():
        encode = _tokenizer_from(tokenizer_file)
        label = f"tokenizer.json from {spec.folder}"
    else:
        encode = _bytes_encoder(vocab_size)
        label = f"byte-level fallback (UTF-8 byte % {vocab_size}): the model has no tokenizer.json"
    # A long file: tokenize a prefix that is long enough for the run (tokenizers pack
    # far fewer than 16 characters into a token of prose), the whole text only if not.
    prefix = needed * 16
    ids = encode(text[:prefix])
    if len(ids) < needed and len(text) > prefix:
        ids = encode(text)
    if not ids:
        raise _error(f"{corpus.source} gives no tokens")
    largest = max(ids)
    if largest >= vocab_size:
        raise InvalidInput(
            f"the tokenizer gives token id {largest}, outside the model's vocabulary of {vocab_size}",
            fields=[FieldIssue(field="model", message=f"tokenizer.json does not match vocab_size {vocab_size}")],
        )
    return TokenStream(ids, label)


def _tokenizer_from(path: Path):
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # noqa: BLE001 - tokenizers raises its own kinds for a bad file
        raise InvalidFile(
            f"{path} is not a tokenizers file: {exc}",
            fields=[FieldIssue(field="model", message=f"bad tokenizer.json: {exc}")],
        ) from None
    return lambda text: tokenizer.encode(text, add_special_tokens=False).ids


def _bytes_encoder(vocab_size: int):
    return lambda text: [byte % vocab_size for byte in text.encode("utf-8")]


def batches(stream: TokenStream, *, batch: int, seq: int, steps: int) -> list[list[list[int]]]:
    """`steps` batches of `batch` rows of `seq` consecutive tokens, read in order and wrapping around."""
    ids, n = stream.ids, len(stream.ids)
    out, position = [], 0
    for _ in range(steps):
        rows = []
        for _ in range(batch):
            rows.append([ids[(position + i) % n] for i in range(seq)])
            position += seq
        out.append(rows)
    return out


def dataset_info(corpus: Corpus, stream: TokenStream, *, batch: int, seq: int, steps: int) -> DatasetInfo:
    per_step = batch * seq
    return DatasetInfo(
        source=corpus.source,
        format=corpus.format,
        records=len(corpus.texts),
        characters=sum(len(t) for t in corpus.texts),
        tokenizer=stream.tokenizer,
        tokens=len(stream.ids),
        tokens_per_step=per_step,
        passes=per_step * steps / len(stream.ids),
    )


def _error(message: str) -> InvalidFile:
    return InvalidFile(message, fields=[FieldIssue(field=FIELD, message=message)])
