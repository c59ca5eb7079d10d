"""The contract of `advisor inspect-data`: the `DatasetReport` every door returns.

Field names are an agent-facing contract read by tools outside this repository: `examples`, `format`,
`invalid`, `invalid_examples`, `tokens`, `duplicates`, `eval_overlap`, `pii`, `license` and `answers`
keep their names and meanings. Personal data and secrets appear in it masked, never as read.

The assessment embeds it (`Assessment.dataset`), so this module imports nothing but pydantic.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DatasetFormat = Literal["chat", "prompt_completion", "text", "mixed"]
PII_KINDS: tuple[str, ...] = ("email", "phone", "credit_card", "iban", "us_ssn", "ip_address", "secret")


class InvalidExample(BaseModel):
    line: int = Field(
        description="The line of the record in its file (JSONL, CSV), or its 1-based record number (JSON array, "
        "Parquet, Arrow)."
    )
    message: str = Field(description="What is wrong with the record.")
    file: str = Field(description="The file it is in (relative to the inspected path).")


class TokenStats(BaseModel):
    min: int = Field(description="Fewest tokens in one valid example.")
    p50: int = Field(description="Median tokens per example.")
    p95: int = Field(description="95th percentile of tokens per example.")
    max: int = Field(description="Most tokens in one example.")
    total: int = Field(description="Tokens of all valid examples together.")
    basis: str = Field(
        description="How tokens were counted: `tokenizer: <name>` (the base model's own) or `approximate: ...`."
    )
    truncated: dict[str, int] = Field(
        description="Sequence length -> how many examples are longer than it (would be truncated)."
    )


class DuplicateCounts(BaseModel):
    exact: int = Field(description="Records whose normalised text equals an earlier record's.")
    near: int = Field(
        description="Records (not exact duplicates) whose estimated Jaccard similarity with an earlier record is at "
        "or above `threshold`."
    )
    threshold: float = Field(description="The Jaccard threshold for near duplicates.")
    method: str = Field(description="How near duplicates are found, in a sentence.")


class EvalOverlap(BaseModel):
    exact: int = Field(description="Evaluation records whose normalised text equals a training record's.")
    near: int = Field(description="Evaluation records (not exact) with a near duplicate in the training data.")
    eval_examples: int = Field(description="Valid records in the evaluation file.")
    threshold: float = Field(description="The Jaccard threshold for near duplicates.")


class PiiLocation(BaseModel):
    kind: str = Field(description="email, phone, credit_card, iban, us_ssn, ip_address or secret (with its type).")
    file: str = Field(description="The file (relative to the inspected path).")
    line: int = Field(description="Line (JSONL, CSV) or record number (JSON array, Parquet, Arrow).")
    field: str = Field(description="Where in the record, e.g. messages[1].content.")
    masked: str = Field(description="The value, masked: never the value itself.")


class Quality(BaseModel):
    empty_fields: int = Field(description="Examples with an empty or whitespace-only text field.")
    short_examples: int = Field(description="Examples under the rubric's short length, in tokens.")
    long_examples: int = Field(description="Examples over the rubric's long length, in tokens.")
    repeated_openings: int = Field(
        description="Examples whose target (reply, completion or text) opens with the same words as another's."
    )
    top_opening_share: float = Field(description="Share of examples holding the most common opening, 0-1.")
    scripts: dict[str, int] = Field(
        description="Examples by the main writing system of their first 200 letters (a script count, not a "
        "language detector)."
    )
    turns: int = Field(description="Messages in all chat examples together (0 without chat examples).")
    characters: int = Field(description="Characters of text in all valid examples.")


class MeasuredAnswers(BaseModel):
    """Answer fields of `advisor assess` that the data settles; null where the scan cannot tell."""

    model_config = ConfigDict(extra="forbid")

    dataset_examples: int | None = Field(description="Valid examples, exact duplicates removed.")
    dataset_tokens: int | None = Field(description="Tokens of all valid examples.")
    privacy: Literal["personal_data_uncleared"] | None = Field(
        description="personal_data_uncleared when personal data was found (cleared stays cleared in assess); null "
        "when none was found: a scan cannot prove there is none."
    )
    dataset_license: str | None = Field(description="The dataset card's licence (canonical SPDX), or null.")
    seq_len: int | None = Field(
        description="The smallest power of two that holds the rubric's share (95%) of the examples, in tokens."
    )
    dataset_quality: Literal["raw", "mixed"] | None = Field(
        description="The best quality the measured signals allow (raw or mixed); null when they bound nothing."
    )


class DatasetReport(BaseModel):
    """What `advisor inspect-data` measured in a dataset."""

    path: str = Field(description="The inspected file or folder.")
    files: list[str] = Field(description="The data files read, relative to path.")
    format: DatasetFormat = Field(description="chat, prompt_completion or text; mixed when records differ.")
    formats: dict[str, int] = Field(description="Valid examples per format.")
    examples: int = Field(description="Valid examples.")
    records: int = Field(description="Records read (valid and invalid).")
    invalid: int = Field(description="Invalid records.")
    invalid_examples: list[InvalidExample] = Field(description="The first invalid records (capped; all counted).")
    tokens: TokenStats = Field(description="Tokens per valid example.")
    duplicates: DuplicateCounts = Field(description="Exact and near duplicates within the data.")
    eval_overlap: EvalOverlap | None = Field(description="Overlap with --eval; null without it.")
    pii: dict[str, int] = Field(
        description="Personal data and secrets found: kind -> count (email, phone, credit_card, iban, us_ssn, "
        "ip_address, secret)."
    )
    pii_examples: list[PiiLocation] = Field(description="The first findings with their locations, masked (capped).")
    secret_types: dict[str, int] = Field(description="Secrets by type (detect-secrets plugin names).")
    license: str | None = Field(
        description="The dataset card's `license:` as a canonical SPDX expression; null when no card or no licence."
    )
    card: str | None = Field(description="The dataset card read (README.md with YAML front matter), or null.")
    quality: Quality = Field(description="Quality signals.")
    answers: MeasuredAnswers = Field(description="The answer fields the data settles, for `advisor assess --data`.")
    notes: list[str] = Field(description="What was and was not checked, in sentences.")
    sources: dict[str, str] = Field(description="Source id -> title (with link) behind the thresholds used.")
    version: str = Field(description="`<advisor version>; dataset_checks <version>`.")
