"""The licence a Hugging Face dataset card declares: `license:` in the YAML front matter of its README.md,
read with the same licence code as the answers (`advisor.assessment.licenses.normalize_license`)."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidFile

MAX_CARD_BYTES = 1 << 20


def card_license(card: Path, *, field: str) -> tuple[str | None, str]:
    """(the card's licence as canonical SPDX or None, a sentence saying what was found)."""
    from ..assessment.licenses import normalize_license
    from ..assessment.rubric import load_rubric
    from ..files import read_text
    from ..yaml_loader import YAMLError, load_yaml

    text = read_text(card, field=field, limit=MAX_CARD_BYTES)
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None, f"the card {card.name} has no YAML front matter, so no licence: unknown"
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    except StopIteration:
        return None, f"the card {card.name} opens YAML front matter and never closes it: licence unknown"
    try:
        meta = load_yaml("\n".join(lines[1:end]))
    except YAMLError as exc:
        raise InvalidFile(f"{field}: the front matter of {card} is not valid YAML{exc.where}: {exc.problem}") from None
    value = meta.get("license") if isinstance(meta, dict) else None
    if value is None:
        return None, f"the card {card.name} states no licence: unknown (audits find most cards omit it)"
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and value:
        expression = " AND ".join(value)  # several licences listed: all of them bind
    elif isinstance(value, str):
        expression = value
    else:
        return None, f"the card {card.name} has a license field that is not text: unknown"
    if expression.strip().lower() == "other":
        name = meta.get("license_name")
        expression = f"LicenseRef-{name}" if isinstance(name, str) and name.replace("-", "").isalnum() else "other"
    try:
        canonical = normalize_license(expression, load_rubric().licenses)
    except ValueError as exc:
        return None, f"the card {card.name} says license: {expression!r}, which cannot be read ({exc}): unknown"
    if canonical == "unknown":
        return None, f"the card {card.name} says license: {expression!r}: unknown"
    return canonical, f"the card {card.name} says license: {expression!r} ({canonical})"
