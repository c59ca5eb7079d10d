"""Measured answers meet stated ones: what `advisor assess --data` does with a `DatasetReport`.

The inspection settles some answer fields (`DatasetReport.answers`). Where the team stated nothing, the
measured value fills the field. Where the two agree, the field counts as measured. Where they disagree,
the measured value wins and a `Conflict` (`measured.<field>`) says what disagreed, with the figures:

- dataset_examples: the valid examples, exact duplicates removed, replace any stated count.
- privacy: personal data found makes `personal_data_uncleared`, unless the answers say it is cleared
  (clearance is a fact about consent and legal basis that no scan can see).
- dataset_license: the card's licence replaces a different stated one; a card that is silent changes nothing.
- seq_len: a stated length that truncates more examples than the rubric's share is raised to the measured one.
- dataset_quality: the measured signals cap it (a stated `curated` over `mixed` signals becomes `mixed`).
- dataset_tokens: filled when not stated.
An overlap between the training data and the evaluation set is a conflict with `eval_set` (the stated answer
stays; the evaluation cannot be trusted until the overlap is removed).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..fmt import fmt_int
from .contract import Answers, Conflict

if TYPE_CHECKING:
    from ..dataset.contract import DatasetReport

QUALITY_ORDER = ("raw", "mixed", "curated")


def merge_measured(
    answers: Answers, evidence: dict[str, str], report: DatasetReport
) -> tuple[Answers, dict[str, str], list[Conflict]]:
    """(answers with the measured fields merged, evidence per field, the conflicts between stated and measured)."""
    measured = report.answers
    evidence = dict(evidence)
    update: dict[str, Any] = {}
    conflicts: list[Conflict] = []
    where = f"{report.path}"

    def take(name: str, value: Any) -> None:
        update[name] = value
        evidence[name] = "measured"

    def conflict(name: str, text: str, resolution: str, sources: list[str], fields: list[str] | None = None) -> None:
        conflicts.append(
            Conflict(id=f"measured.{name}", fields=fields or [name], text=text, resolution=resolution, sources=sources)
        )

    stated = answers.dataset_examples
    if measured.dataset_examples is not None:
        if stated is not None and stated != measured.dataset_examples:
            conflict(
                "dataset_examples",
                f"Stated {fmt_int(stated)} training examples; {where} holds {fmt_int(measured.dataset_examples)} "
                f"valid examples without exact duplicates ({fmt_int(report.invalid)} invalid records, "
                f"{fmt_int(report.duplicates.exact)} exact duplicates).",
                "Assessed with the measured count; fix or remove the invalid records and duplicates.",
                ["google-vertex-tuning-data"],
            )
        take("dataset_examples", measured.dataset_examples)

    if measured.privacy == "personal_data_uncleared":
        found = ", ".join(f"{fmt_int(n)} {kind}" for kind, n in report.pii.items() if n and kind != "secret")
        if answers.privacy == "personal_data_cleared":
            pass  # found and said to be cleared: consistent; the dataset section lists what was found
        else:
            if answers.privacy == "no_personal_data":
                conflict(
                    "privacy",
                    f"Stated no_personal_data; the data holds personal data ({found}).",
                    "Assessed as personal_data_uncleared; remove or mask it, or document consent or a legal basis "
                    "and answer personal_data_cleared.",
                    ["carlini2021-extraction"],
                )
            take("privacy", "personal_data_uncleared")

    if measured.dataset_license is not None:
        if answers.dataset_license is not None and answers.dataset_license != measured.dataset_license:
            conflict(
                "dataset_license",
                f"Stated licence {answers.dataset_license}; the dataset card says {measured.dataset_license}.",
                "Assessed with the card's licence; if the team holds other terms (a contract), correct the card.",
                ["longpre2023-dpi"],
            )
        take("dataset_license", measured.dataset_license)

    if measured.seq_len is not None:
        if answers.seq_len is None:
            take("seq_len", measured.seq_len)
        elif answers.seq_len < report.tokens.p95:
            truncated = _truncated(report, answers.seq_len)
            conflict(
                "seq_len",
                f"Stated seq_len {answers.seq_len}; {truncated} of {fmt_int(report.examples)} examples are longer "
                f"(p95 {fmt_int(report.tokens.p95)} tokens, {report.tokens.basis.split(':')[0]}).",
                f"Assessed with seq_len {measured.seq_len}, which holds 95% of the examples.",
                [],
            )
            take("seq_len", measured.seq_len)

    if measured.dataset_tokens is not None and answers.dataset_tokens is None:
        take("dataset_tokens", measured.dataset_tokens)

    bound = measured.dataset_quality
    if bound is not None and answers.dataset_quality in ("curated", "mixed"):
        if QUALITY_ORDER.index(answers.dataset_quality) > QUALITY_ORDER.index(bound):
            from ..dataset.inspect import quality_reasons

            conflict(
                "dataset_quality",
                f"Stated {answers.dataset_quality}; the data measures as {bound} at best: "
                + "; ".join(quality_reasons(report))
                + ".",
                f"Assessed as {bound}; clean the data (remove invalid records and duplicates) and inspect it again.",
                ["longpre2023-dpi"],
            )
            take("dataset_quality", bound)

    if report.eval_overlap is not None and (report.eval_overlap.exact or report.eval_overlap.near):
        o = report.eval_overlap
        conflict(
            "eval_overlap",
            f"{fmt_int(o.exact)} evaluation examples appear in the training data and {fmt_int(o.near)} more "
            f"nearly (of {fmt_int(o.eval_examples)}): the evaluation would measure memory, not the task.",
            "eval_set assessed as stated; remove the overlapping examples from the training data before trusting "
            "the evaluation.",
            ["carlini2021-extraction"],
            fields=["eval_set"],
        )

    merged = answers.model_copy(update=update) if update else answers
    ordered = {name: evidence[name] for name in Answers.model_fields if name in evidence}  # the contract's order
    return merged, ordered, conflicts


def _truncated(report: DatasetReport, seq_len: int) -> str:
    exact = report.tokens.truncated.get(str(seq_len))
    return fmt_int(exact) if exact is not None else "more than 5%"
