"""`inspect_dataset(path) -> DatasetReport`: one streaming pass over the data (and one over --eval first).

Records are read one at a time (advisor.dataset.readers), validated (records), scanned for personal data
and secrets (pii), and gathered into batches for token counts (tokens) and duplicate signatures
(duplicates). What is kept per record is a few numbers (token count, digests, signature), never its text,
so memory grows by about 350 bytes a record whatever the size of the records.
"""

from __future__ import annotations

import math
import re
from array import array
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from ..errors import FieldIssue, InvalidFile
from .checks import DatasetChecks, load_checks
from .contract import (
    PII_KINDS,
    DatasetReport,
    DuplicateCounts,
    EvalOverlap,
    InvalidExample,
    MeasuredAnswers,
    PiiLocation,
    Quality,
    TokenStats,
)
from .pii import might_hold_findings
from .readers import BadRecord, discover, file_error, read_records
from .records import Invalid, to_example

BATCH = 1024
Progress = Callable[[int], None]

_SCRIPTS = [
    ("Latin", re.compile(r"[A-Za-z\u00c0-\u024f]")),
    ("Cyrillic", re.compile(r"[\u0400-\u04ff]")),
    ("Greek", re.compile(r"[\u0370-\u03ff]")),
    ("Arabic", re.compile(r"[\u0600-\u06ff]")),
    ("Hebrew", re.compile(r"[\u0590-\u05ff]")),
    ("Devanagari", re.compile(r"[\u0900-\u097f]")),
    ("Thai", re.compile(r"[\u0e00-\u0e7f]")),
    ("Han", re.compile(r"[\u4e00-\u9fff]")),
    ("Kana", re.compile(r"[\u3040-\u30ff]")),
    ("Hangul", re.compile(r"[\uac00-\ud7af]")),
]


def script_of(text: str) -> str:
    """The writing system most of the first 200 characters are in (a script count, not a language detector)."""
    head = text[:200]
    if head.isascii():
        return "Latin" if any(c.isalpha() for c in head) else "none"
    counts = [(len(pattern.findall(head)), name) for name, pattern in _SCRIPTS]
    best = max(counts)
    return best[1] if best[0] else "other"


class _Pass:
    """What one pass over a set of files gathers."""

    def __init__(self, checks: DatasetChecks, signer, count_tokens, scanner, *, root: Path, field: str, full: bool):
        from .duplicates import Store

        self.checks, self.signer, self.count_tokens, self.scanner = checks, signer, count_tokens, scanner
        self.root, self.field, self.full = root, field, full
        self.store = Store()
        self.records = self.invalid = self.examples = 0
        self.invalid_examples: list[InvalidExample] = []
        self.formats: Counter[str] = Counter()
        self.tokens = array("Q")
        self.openings = array("Q")
        self.pii: Counter[str] = Counter()
        self.secret_types: Counter[str] = Counter()
        self.pii_examples: list[PiiLocation] = []
        self.scripts: Counter[str] = Counter()
        self.empty_fields = self.turns = self.characters = 0
        self.eval_index = None
        self._batch: list[str] = []
        self._encoded: list[bytes] = []

    def run(self, files: list[Path], progress: Progress) -> None:
        for file in files:
            name = file.name if file == self.root else str(file.relative_to(self.root))
            for line, record in read_records(file, name, self.checks.limits, field=self.field, progress=progress):
                self.records += 1
                if isinstance(record, BadRecord):
                    self._invalid(name, line, record.message)
                    continue
                try:
                    example = to_example(record)
                except Invalid as exc:
                    self._invalid(name, line, str(exc))
                    continue
                self._example(example, name, line)
        self._flush()

    def _invalid(self, name: str, line: int, message: str) -> None:
        self.invalid += 1
        if len(self.invalid_examples) < self.checks.limits.max_listed:
            self.invalid_examples.append(InvalidExample(line=line, message=message, file=name))

    def _example(self, example, name: str, line: int) -> None:
        from .duplicates import digest, normalise

        joined = "\n".join(text for _, text in example.texts)
        normal = normalise(joined)
        try:
            encoded = normal.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise file_error(
                self.field, f"{name} line {line}: a lone surrogate (\\u{ord(exc.object[exc.start]):04x}), not text"
            ) from None
        self.examples += 1
        self.formats[example.kind] += 1
        self._batch.append(joined)
        self._encoded.append(encoded)
        if self.full:
            self.turns += example.turns
            self.characters += len(joined)
            self.empty_fields += example.empty_field
            self.scripts[script_of(joined)] += 1
            opening = " ".join(normalise(example.target[:400]).split(" ")[: self.checks.quality.opening_words])
            self.openings.append(digest(opening.encode("utf-8")))
            for where, text in example.texts if might_hold_findings(joined) else ():
                for kind, subtype, masked in self.scanner.scan(text):
                    self.pii[kind] += 1
                    if kind == "secret":
                        self.secret_types[subtype] += 1
                    if len(self.pii_examples) < self.checks.limits.max_listed:
                        label = f"secret ({subtype})" if kind == "secret" else kind
                        self.pii_examples.append(
                            PiiLocation(kind=label, file=name, line=line, field=where, masked=masked)
                        )
        if len(self._batch) >= BATCH:
            self._flush()

    def _flush(self) -> None:
        import numpy as np

        from .duplicates import digest

        if not self._batch:
            return
        if self.full:
            self.tokens.extend(self.count_tokens(self._batch))
        digests = np.array([digest(e) for e in self._encoded], dtype=np.uint64)
        signatures, keys = self.signer.sign(self._encoded, digests)
        self.store.add(digests, signatures, keys)
        if self.eval_index is not None:
            self.eval_index.match(digests, signatures, keys)
        self._batch, self._encoded = [], []


def inspect_dataset(
    path: str | Path,
    *,
    eval_path: str | Path | None = None,
    model: str | None = None,
    card: str | Path | None = None,
    seq_len: int | None = None,
    progress: Progress | None = None,
    field: str = "PATH",
    eval_field: str = "--eval",
) -> DatasetReport:
    """Measure a dataset: formats, validity, tokens, duplicates, overlap with an evaluation set, personal data and
    secrets (masked), the card's licence, quality signals, and the answer fields they settle."""
    import numpy as np

    from .. import __version__
    from .card import card_license
    from .duplicates import EvalIndex, Signer, within
    from .pii import Scanner
    from .tokens import token_counter

    checks = load_checks()
    progress = progress or (lambda n: None)
    root = Path(path)
    files, found_card = discover(root, field=field)
    count_tokens, basis = token_counter(model, checks.tokens)
    signer = Signer(checks.duplicates)
    scanner = Scanner(checks.privacy.phone_region)
    base = root if root.is_dir() else root.parent
    notes: list[str] = []

    eval_index = None
    if eval_path is not None:
        eval_root = Path(eval_path)
        eval_files, _ = discover(eval_root, field=eval_field)
        eval_pass = _Pass(
            checks,
            signer,
            count_tokens,
            scanner,
            root=eval_root if eval_root.is_dir() else eval_root.parent,
            field=eval_field,
            full=False,
        )
        eval_pass.run(eval_files, progress)
        if eval_pass.examples == 0:
            raise file_error(eval_field, f"{eval_root}: no valid examples to compare with")
        eval_index = EvalIndex(eval_pass.store, signer)
        if eval_pass.invalid:
            notes.append(f"{eval_pass.invalid} invalid records in the evaluation data were left out of the overlap.")

    main = _Pass(checks, signer, count_tokens, scanner, root=base, field=field, full=True)
    main.eval_index = eval_index
    main.run(files, progress)
    if main.records == 0:
        raise file_error(field, f"{root}: no records (the file or folder is empty)")
    if main.examples == 0:
        first = main.invalid_examples[0]
        raise InvalidFile(
            f"{root}: no valid examples among {main.records} records",
            fields=[
                FieldIssue(field=field, message=f"{e.file} line {e.line}: {e.message}")
                for e in main.invalid_examples[:5]
            ]
            or [FieldIssue(field=field, message=first.message)],
        )

    exact, near = within(main.store, signer)
    tokens = np.frombuffer(main.tokens, dtype=np.uint64) if len(main.tokens) else np.zeros(1, np.uint64)
    lengths = sorted({*checks.tokens.seq_lens, *([seq_len] if seq_len else [])})
    token_stats = TokenStats(
        min=int(tokens.min()),
        p50=int(np.percentile(tokens, 50, method="inverted_cdf")),
        p95=int(np.percentile(tokens, 95, method="inverted_cdf")),
        max=int(tokens.max()),
        total=int(tokens.sum()),
        basis=basis,
        truncated={str(n): int((tokens > n).sum()) for n in lengths},
    )
    openings = np.frombuffer(main.openings, dtype=np.uint64)
    _, counts = np.unique(openings, return_counts=True)
    quality = Quality(
        empty_fields=main.empty_fields,
        short_examples=int((tokens < checks.quality.short_tokens).sum()),
        long_examples=int((tokens > checks.quality.long_tokens).sum()),
        repeated_openings=int(counts[counts > 1].sum()),
        top_opening_share=round(float(counts.max()) / main.examples, 4),
        scripts=dict(main.scripts.most_common()),
        turns=main.turns,
        characters=main.characters,
    )

    card_path = Path(card) if card is not None else found_card
    license_expression = None
    if card_path is not None:
        license_expression, said = card_license(card_path, field="--card" if card is not None else field)
        notes.append(said[0].upper() + said[1:] + ".")
    else:
        notes.append("No dataset card (README.md) beside the data and no --card: the licence is unknown.")

    duplicates = DuplicateCounts(
        exact=exact,
        near=near,
        threshold=checks.duplicates.threshold,
        method=(
            f"MinHash ({checks.duplicates.num_perm} values, one-permutation hashing) over word "
            f"{checks.duplicates.shingle_words}-grams of the normalised text, LSH with {checks.duplicates.bands} "
            f"bands; a candidate counts when its estimated Jaccard similarity with the earliest record sharing a "
            f"band is at least {checks.duplicates.threshold}"
        ),
    )
    overlap = None
    if eval_index is not None:
        overlap_exact, overlap_near = eval_index.counts()
        overlap = EvalOverlap(
            exact=overlap_exact, near=overlap_near, eval_examples=eval_index.size, threshold=checks.duplicates.threshold
        )
    pii = {kind: main.pii.get(kind, 0) for kind in PII_KINDS}
    answers = measured_answers(main, checks, exact, near, token_stats, pii, license_expression)
    notes.append(
        "Personal data checked: e-mail addresses, phone numbers, payment cards (Luhn), IBANs (mod 97), US SSNs, IP "
        "addresses; secrets with detect-secrets' pattern plugins. Names, postal addresses and other identifiers are "
        "not detected, so finding none does not prove there are none."
    )
    notes.append("Token counts are of the text fields only (no chat template or special tokens).")
    if model is not None and basis == checks.tokens.approximate_basis:
        notes.append(f"--model {model} is not a local folder with a tokenizer, so token counts are approximate.")
    sources = {
        sid: checks.sources[sid].cite()
        for sid in (
            checks.tokens.approximate_source,
            checks.duplicates.source,
            checks.privacy.source,
            "longpre2023-dpi",
        )
    }
    return DatasetReport(
        path=str(root),
        files=[f.name if f == root else str(f.relative_to(base)) for f in files],
        format=next(iter(main.formats)) if len(main.formats) == 1 else "mixed",
        formats=dict(main.formats),
        examples=main.examples,
        records=main.records,
        invalid=main.invalid,
        invalid_examples=main.invalid_examples,
        tokens=token_stats,
        duplicates=duplicates,
        eval_overlap=overlap,
        pii=pii,
        pii_examples=main.pii_examples,
        secret_types=dict(main.secret_types),
        license=license_expression,
        card=str(card_path) if card_path is not None else None,
        quality=quality,
        answers=answers,
        notes=notes,
        sources=sources,
        version=f"{__version__}; {checks.id} {checks.version}",
    )


def measured_answers(main: _Pass, checks: DatasetChecks, exact: int, near: int, tokens: TokenStats, pii, license):
    """The answer fields the measurements settle (see `MeasuredAnswers`)."""
    import numpy as np

    personal = sum(pii[kind] for kind in checks.privacy.personal_kinds)
    values = np.frombuffer(main.tokens, dtype=np.uint64)
    holding = int(np.quantile(values, checks.tokens.seq_len_quantile, method="inverted_cdf")) if len(values) else 0
    from ..estimate.settings import MAX_SEQ

    seq_len = min(MAX_SEQ, 1 << max(0, math.ceil(math.log2(max(1, holding)))))  # the estimator's bound
    shares = {
        "invalid_share": main.invalid / main.records,
        "exact_duplicate_share": exact / main.examples,
        "near_duplicate_share": near / main.examples,
        "empty_field_share": main.empty_fields / main.examples,
        "top_opening_share": 0.0,
    }
    openings = np.frombuffer(main.openings, dtype=np.uint64)
    if len(openings):
        _, counts = np.unique(openings, return_counts=True)
        shares["top_opening_share"] = float(counts.max()) / main.examples
    quality = None
    for level in ("raw", "mixed"):
        limits = checks.quality.bounds.get(level, {})
        if any(shares.get(name, 0.0) > limit for name, limit in limits.items()):
            quality = level
            break
    return MeasuredAnswers(
        dataset_examples=main.examples - exact,
        dataset_tokens=tokens.total,
        privacy="personal_data_uncleared" if personal else None,
        dataset_license=license,
        seq_len=seq_len,
        dataset_quality=quality,
    )


def quality_reasons(report: DatasetReport) -> list[str]:
    """The measured shares behind a dataset_quality bound, in words (for conflicts)."""
    checks = load_checks()
    shares = {
        "invalid_share": report.invalid / max(1, report.records),
        "exact_duplicate_share": report.duplicates.exact / report.examples,
        "near_duplicate_share": report.duplicates.near / report.examples,
        "empty_field_share": report.quality.empty_fields / report.examples,
        "top_opening_share": report.quality.top_opening_share,
    }
    level = report.answers.dataset_quality
    limits = checks.quality.bounds.get(level or "", {})
    return [
        f"{name.removesuffix('_share').replace('_', ' ')} {shares[name]:.1%} (over {limit:.0%})"
        for name, limit in limits.items()
        if shares.get(name, 0.0) > limit
    ]
