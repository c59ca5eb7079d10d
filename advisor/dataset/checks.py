"""The judgement `advisor inspect-data` applies, read from `rubrics/dataset_checks.yaml`."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import InvalidFile, invalid_input

CHECKS_FILE = "dataset_checks.yaml"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(_Data):
    max_line_bytes: int
    max_json_bytes: int
    max_depth: int
    max_listed: int


class TokenRules(_Data):
    chars_per_token: float
    approximate_basis: str
    approximate_source: str
    seq_lens: list[int]
    seq_len_quantile: float


class DuplicateRules(_Data):
    shingle_words: int
    threshold: float
    num_perm: int
    bands: int
    source: str


class QualityRules(_Data):
    opening_words: int
    short_tokens: int
    long_tokens: int
    bounds: dict[str, dict[str, float]]
    source: str


class PrivacyRules(_Data):
    personal_kinds: list[str]
    phone_region: str
    source: str


class Source(_Data):
    title: str
    kind: str
    url: str | None = None
    arxiv: str | None = None

    def cite(self) -> str:
        link = self.url or (f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else None)
        return f"{self.title} ({link})" if link else self.title


class DatasetChecks(_Data):
    id: str
    version: str
    limits: Limits
    tokens: TokenRules
    duplicates: DuplicateRules
    quality: QualityRules
    privacy: PrivacyRules
    sources: dict[str, Source]


@cache
def load_checks() -> DatasetChecks:
    """The shipped dataset checks (validated; a broken file is an InvalidFile naming the field)."""
    from ..files import load_mapping
    from ..package_data import data_dir

    path = data_dir("rubrics") / CHECKS_FILE
    data = load_mapping(path, field="dataset_checks", limit=256 * 1024)
    try:
        checks = DatasetChecks.model_validate(data)
    except ValidationError as exc:
        err = invalid_input(exc, what=f"dataset checks {path}", prefix="dataset_checks")
        raise InvalidFile(err.message, fields=err.fields) from None
    if checks.duplicates.num_perm % checks.duplicates.bands:
        raise InvalidFile(f"dataset checks {path}: duplicates.num_perm must be a multiple of duplicates.bands")
    cited = {
        "tokens.approximate_source": checks.tokens.approximate_source,
        "duplicates.source": checks.duplicates.source,
        "quality.source": checks.quality.source,
        "privacy.source": checks.privacy.source,
    }
    missing = [f"{where}: {sid}" for where, sid in cited.items() if sid not in checks.sources]
    if missing:
        raise InvalidFile(f"dataset checks {path}: sources not listed under sources: {', '.join(missing)}")
    return checks
