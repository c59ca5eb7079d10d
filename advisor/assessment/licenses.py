"""Licences of the training data and of the base model: validate an SPDX expression or Hugging Face id,
then read the terms it carries.

`license-expression` checks the syntax and the SPDX ids; what a licence requires or
restricts (attribution, share-alike, non-commercial, custom terms, ...) comes from
`rubrics/licenses.yaml`. Two steps, kept apart:

- `normalize_license` runs when answers are parsed: it maps Hugging Face card ids to
  SPDX (`llama3.1` -> `LicenseRef-Llama-3.1-Community`), validates (an exception must
  follow a licence it belongs to), and returns the canonical expression
  (`mit or apache-2.0` -> `MIT OR Apache-2.0`). SPDX's NOASSERTION and NONE mean unknown.
- `classify_license` is pure: it parses a canonical expression and combines the terms
  of its parts. AND adds them up (every part binds); OR takes the least restrictive
  alternative that allows the intended use (the user may choose, but a non-commercial
  alternative is no choice for a commercial use). The summary class of the result is
  its most restrictive class.
"""

# Written for start-up like the contract's models: see the docstring of advisor/assessment/contract.py.

import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from ..errors import FieldIssue, InvalidFile, invalid_input

UNKNOWN = "unknown"
LICENSE_TABLE_FILE = "licenses.yaml"
# SPDX: "LicenseRef-" followed by letters, digits, "." and "-" names terms outside the list.
_LICENSE_REF = re.compile(r"LicenseRef-[A-Za-z0-9.\-]+")
# A token of an expression: anything between spaces and parentheses (ids, AND/OR/WITH).
_TOKEN = re.compile(r"[^\s()]+")
_OPERATORS = frozenset({"AND", "OR"})
# SPDX's special values: the author made no assertion, or there is no licence. Neither clears anything.
_SPDX_UNKNOWN = frozenset({"noassertion", "none"})
_HINT = (
    "give an SPDX expression (e.g. Apache-2.0, MIT OR CC-BY-4.0), a LicenseRef-... for other terms, "
    "a Hugging Face license id (e.g. cc-by-nc-4.0, llama3.1), or unknown"
)


class LicenseTerm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    description: str
    sources: list[str] = Field(min_length=1)


class LicenseClass(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    label: str
    description: str
    terms: list[str] = Field(
        description="A set of terms holding any of these belongs to this class (or a stricter one)."
    )
    exclusive: bool = Field(default=False, description="Matches only a set holding nothing but these terms.")


class LicenseTable(BaseModel):
    """`rubrics/licenses.yaml`: the terms a licence can carry, the terms of each licence, and summary classes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    terms: dict[str, LicenseTerm] = Field(description="Term id -> what it requires or restricts.")
    classes: list[LicenseClass] = Field(description="From the least to the most restrictive; the last is `unknown`.")
    licenses: dict[str, list[str]] = Field(description="Canonical SPDX id or LicenseRef -> the terms it carries.")
    exceptions: dict[str, list[str]] = Field(
        default={}, description="SPDX exception id -> the licences it may follow in `X WITH exception`."
    )
    hugging_face: dict[str, str] = Field(description="Hugging Face card id (lowercase) -> SPDX expression.")
    representatives: dict[str, str] = Field(description="Class id -> an expression of that class.")
    _terms_by_id: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)
    _findings: "dict[tuple[str, bool | None], LicenseFinding]" = PrivateAttr(default_factory=dict)
    _canonical_ids: dict[str, str] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: object) -> None:
        self._terms_by_id.update({lic.casefold(): tuple(terms) for lic, terms in self.licenses.items()})
        self._canonical_ids.update({lic.casefold(): lic for lic in self.licenses})

    @property
    def class_ids(self) -> list[str]:
        return [c.id for c in self.classes]

    def terms_of(self, license_id: str) -> tuple[str, ...] | None:
        """The terms one licence carries; None for a licence the table does not list (unknown)."""
        return self._terms_by_id.get(license_id.casefold())

    def canonical_id(self, license_id: str) -> str | None:
        """The table's spelling of `license_id` (ids ignore case), or None when it is not listed."""
        return self._canonical_ids.get(license_id.casefold())

    def class_of(self, terms: Iterable[str] | None) -> str:
        """The summary class of a set of terms: the most restrictive class holding one of them; None is unknown."""
        if terms is None:
            return UNKNOWN
        held = set(terms)
        for cls in reversed(self.classes):
            own = set(cls.terms)
            if cls.id != UNKNOWN and (held and held <= own if cls.exclusive else held & own):
                return cls.id
        return "permissive"

    def severity(self, terms: Iterable[str] | None) -> tuple[int, int]:
        """How restrictive a set of terms is: its class's rank, then how many terms it holds."""
        return self.class_ids.index(self.class_of(terms)), len(set(terms)) if terms is not None else 0

    def label(self, class_id: str) -> str:
        return next((c.label for c in self.classes if c.id == class_id), class_id)

    def ordered(self, terms: Iterable[str]) -> list[str]:
        """`terms` in the table's order (for stable output)."""
        held = set(terms)
        return [term for term in self.terms if term in held]


class LicensePart(BaseModel):
    license: str = Field(description="One licence of the expression (for `X WITH exception`, X).")
    license_class: str = Field(description="Its summary class in the licence table.")
    terms: list[str] | None = Field(description="The terms it carries; null when the table does not list it.")


class LicenseFinding(BaseModel):
    """What a licence expression requires and restricts, as far as the table can tell."""

    expression: str = Field(
        description="The canonical SPDX expression (Hugging Face ids already mapped), or `unknown`."
    )
    license_class: str = Field(
        description="The summary class: own, permissive, copyleft, custom_terms, no_derivatives, non_commercial or "
        "unknown."
    )
    terms: list[str] = Field(
        description="Every term that binds (attribution, share_alike, non_commercial, no_derivatives, research_only, "
        "custom_terms, use_policy, user_threshold, llama_model, llama_outputs_for_llama_only, llama_naming, own); "
        "empty when unknown."
    )
    parts: list[LicensePart] = Field(description="Each licence in the expression with its class and terms.")
    notes: list[str] = Field(default=[], description="What each binding term requires or restricts.")
    explanation: str = Field(
        description="How the terms were combined (AND adds them; OR takes the least restrictive "
        "alternative that allows the intended use)."
    )


def load_license_table(path: Path | None = None) -> LicenseTable:
    """The licence table at `path` (default: the one shipped next to the rubric)."""
    from ..package_data import data_dir

    return _load_license_table((path or data_dir("rubrics") / LICENSE_TABLE_FILE).resolve())


@cache
def _load_license_table(path: Path) -> LicenseTable:
    from ..files import load_mapping

    data = load_mapping(path, field="license_table", limit=256 * 1024)
    try:
        return LicenseTable.model_validate(data)
    except ValidationError as exc:
        err = invalid_input(exc, what=f"license table {path}", prefix="license_table")
        raise InvalidFile(err.message, fields=err.fields) from None


def normalize_license(text: str, table: LicenseTable) -> str:
    """The canonical SPDX expression for `text`; raises ValueError saying what is wrong."""
    text = text.strip()
    if not text:
        raise ValueError(f"the license is empty; {_HINT}")
    if text.casefold() == UNKNOWN or text.casefold() in _SPDX_UNKNOWN:
        return UNKNOWN
    mapped = _TOKEN.sub(lambda m: table.hugging_face.get(m.group(0).casefold(), m.group(0)), text)
    mapped = _TOKEN.sub(lambda m: _SPDX_SPECIAL_REF if m.group(0).casefold() in _SPDX_UNKNOWN else m.group(0), mapped)
    known = _canonical_from_table(mapped, table)
    if known is not None:
        return known
    # The table's ids in its own spelling: license-expression knows SPDX ids in any case, not LicenseRefs.
    canonical = _spdx_normalize(_TOKEN.sub(lambda m: table.canonical_id(m.group(0)) or m.group(0), mapped))
    _check_exceptions(canonical, table)
    return canonical


# NOASSERTION or NONE inside a longer expression: a part that clears nothing (not listed, so unknown).
_SPDX_SPECIAL_REF = "LicenseRef-SPDX-NOASSERTION"


def _check_exceptions(expression: str, table: LicenseTable) -> None:
    """An exception the table pairs with certain licences may follow only those (no `MIT WITH Classpath-...`)."""
    if " WITH " not in expression:
        return
    from license_expression import Licensing

    for node in Licensing().parse(expression).get_symbols():
        exception = getattr(node, "exception_symbol", None)
        if exception is None:
            continue
        allowed = table.exceptions.get(exception.key)
        if allowed is not None and node.license_symbol.key not in allowed:
            raise ValueError(
                f"not a valid license expression ({exception.key} applies to {', '.join(allowed)}, "
                f"not {node.license_symbol.key}); {_HINT}"
            )


def _spdx_normalize(expression: str) -> str:
    """Validate with license-expression's SPDX index and return the canonical rendering."""
    licensing = _spdx_licensing()
    try:
        parsed = licensing.parse(expression, validate=False, strict=True)
    except Exception as exc:  # noqa: BLE001 - see _invalid_expression
        raise _invalid_expression(exc) from None
    if parsed is None:
        raise ValueError(f"the license is empty; {_HINT}")
    unknown = [key for key in licensing.unknown_license_keys(parsed) if not _LICENSE_REF.fullmatch(key)]
    if unknown:
        raise ValueError(f"unknown license id {', '.join(repr(k) for k in unknown)}; {_HINT}")
    return parsed.render()


def _canonical_from_table(expression: str, table: LicenseTable) -> str | None:
    """The canonical expression when every id in it is listed in the table, else None.

    A fast path, not a shortcut: the table's ids are themselves checked against SPDX
    (`license_table_problems`), so this skips only building license-expression's full
    index (tens of milliseconds at every start). A single id needs no parsing; the
    syntax of anything longer is still checked by license-expression's parser.
    """
    from_table = table.canonical_id(expression)
    if from_table is not None:
        return from_table
    from license_expression import Licensing

    tokens = []
    for token in _TOKEN.findall(expression):
        if token.upper() in _OPERATORS:
            tokens.append(token.upper())
        elif table.canonical_id(token) is not None:
            tokens.append(table.canonical_id(token))
        else:
            return None
    canonical = _TOKEN.sub(lambda m: tokens.pop(0), expression)
    try:
        parsed = Licensing().parse(canonical, strict=True)
    except Exception as exc:  # noqa: BLE001 - see _invalid_expression
        raise _invalid_expression(exc) from None
    return parsed.render()


def _invalid_expression(exc: Exception) -> ValueError:
    """license-expression's parser raises ExpressionError, and for some input other errors: IndexError for
    '()' or '(())'. Any of them means the text is not an expression."""
    from license_expression import ExpressionError

    reason = str(exc) if isinstance(exc, ExpressionError) else f"the parser failed with {type(exc).__name__}"
    return ValueError(f"not a valid license expression ({reason}); {_HINT}")


@cache
def _spdx_licensing():
    """license-expression's SPDX index, built once (it reads a large JSON file)."""
    from license_expression import get_spdx_licensing

    return get_spdx_licensing()


def classify_license(expression: str, table: LicenseTable, *, commercial_use: bool | None = None) -> LicenseFinding:
    """The terms a canonical expression (from `normalize_license`) carries, for the intended use. Pure, so the
    table keeps each finding: what_would_change asks about the same expressions dozens of times."""
    key = (expression, commercial_use)
    if key not in table._findings:
        table._findings[key] = _classify(expression, table, commercial_use)
    return table._findings[key]


def _classify(expression: str, table: LicenseTable, commercial_use: bool | None) -> LicenseFinding:
    if expression == UNKNOWN:
        return LicenseFinding(
            expression=UNKNOWN, license_class=UNKNOWN, terms=[], parts=[], explanation="no license given"
        )
    parts: list[LicensePart] = []

    def part(key: str) -> tuple[str, ...] | None:
        terms = table.terms_of(key)
        parts.append(
            LicensePart(
                license=key, license_class=table.class_of(terms), terms=None if terms is None else table.ordered(terms)
            )
        )
        return terms

    if _TOKEN.fullmatch(expression):  # a single id: nothing to combine, no parser needed
        terms = part(expression)
        return _finding(expression, terms, parts, table, _single_explanation(expression, terms, table))

    from license_expression import Licensing

    choices: list[str] = []

    def walk(node) -> tuple[str, ...] | None:
        operator = getattr(node, "operator", "").strip()
        if operator == "AND":
            sets = [walk(arg) for arg in node.args]
            return None if any(s is None for s in sets) else tuple(dict.fromkeys(t for s in sets for t in s))
        if operator == "OR":
            sets = [walk(arg) for arg in node.args]
            known = [s for s in sets if s is not None]
            usable = [s for s in known if not (commercial_use and _forbids_commercial(s))] or known
            if not usable:
                return None
            chosen = min(usable, key=table.severity)
            choices.append(table.label(table.class_of(chosen)))
            return chosen
        symbol = getattr(node, "license_symbol", node)  # `X WITH exception` carries X's terms
        return part(symbol.key)

    terms = walk(Licensing().parse(expression))
    operators = {op for op in ("AND", "OR") if f" {op} " in f" {expression} "}
    label = table.label(table.class_of(terms))
    if not operators:  # `X WITH exception`
        explanation = _single_explanation(parts[0].license, terms, table)
    elif terms is None:
        unlisted = ", ".join(p.license for p in parts if p.terms is None)
        explanation = f"{expression}: {unlisted} is not in the license table, and every part of AND binds, so unknown"
    elif operators == {"OR"}:
        use = " that allows commercial use" if commercial_use else ""
        explanation = f"{expression}: you may choose any one, so the least restrictive{use} applies ({label})"
    elif operators == {"AND"}:
        explanation = f"{expression}: every part binds, so their terms add up ({label})"
    else:
        explanation = (
            f"{expression}: OR takes the least restrictive alternative ({', '.join(choices)}) and AND adds "
            f"up the terms of every part, giving {label}"
        )
    return _finding(expression, terms, parts, table, explanation)


def _forbids_commercial(terms: tuple[str, ...]) -> bool:
    return bool({"non_commercial", "research_only"} & set(terms))


def _finding(expression: str, terms, parts: list[LicensePart], table: LicenseTable, explanation: str) -> LicenseFinding:
    return LicenseFinding(
        expression=expression,
        license_class=table.class_of(terms),
        terms=[] if terms is None else table.ordered(terms),
        parts=parts,
        notes=[f"{table.terms[t].label}: {table.terms[t].description}" for t in table.ordered(terms or ())],
        explanation=explanation,
    )


def _single_explanation(license_id: str, terms, table: LicenseTable) -> str:
    if terms is None:
        return f"{license_id} is not in the license table, so it is not cleared"
    carried = ", ".join(table.terms[t].label for t in table.ordered(terms)) or "no conditions"
    return f"{license_id} is {table.label(table.class_of(terms))} ({carried})"


def license_table_problems(table: LicenseTable) -> list[FieldIssue]:
    """Every way the table disagrees with itself or with SPDX; empty when it is sound. (That its terms cite
    known sources is checked with the rubric, which holds the sources.)"""
    problems: list[FieldIssue] = []

    def problem(field: str, message: str) -> None:
        problems.append(FieldIssue(field=f"license_table.{field}", message=message))

    ids = table.class_ids
    if len(set(ids)) != len(ids):
        problem("classes", "class ids must be unique")
    if not ids or ids[-1] != UNKNOWN:
        problem("classes", f"the last (most restrictive) class must be {UNKNOWN!r}: unlisted licenses fall into it")
    if "permissive" not in ids:
        problem("classes", "a 'permissive' class is needed: a set of terms in no other class belongs to it")
    for cls in table.classes:
        for term in cls.terms:
            if term not in table.terms:
                problem(f"classes.{cls.id}.terms", f"unknown term {term!r}")
    seen: dict[str, str] = {}
    for lic, terms in table.licenses.items():
        where = f"licenses.{lic}"
        if lic.casefold() in seen:
            problem(where, f"{lic} is listed twice (also as {seen[lic.casefold()]})")
        seen[lic.casefold()] = lic
        for term in terms:
            if term not in table.terms:
                problem(where, f"unknown term {term!r}")
        try:
            canonical = lic if _LICENSE_REF.fullmatch(lic) else _spdx_normalize(lic)
        except ValueError as exc:
            problem(where, str(exc))
            continue
        if canonical != lic:
            problem(where, f"write the canonical single id {canonical!r}")
    for exception, licenses in table.exceptions.items():
        for lic in licenses:
            if table.canonical_id(lic) != lic:
                problem(f"exceptions.{exception}", f"{lic} is not a licence of the table in its canonical spelling")
    for hf_id, expression in table.hugging_face.items():
        if hf_id != hf_id.casefold():
            problem(f"hugging_face.{hf_id}", "Hugging Face ids are lowercase")
        try:
            _spdx_normalize(expression)
        except ValueError as exc:
            problem(f"hugging_face.{hf_id}", str(exc))
    for cls in ids:
        expression = table.representatives.get(cls)
        if expression is None:
            problem("representatives", f"no representative expression for class {cls!r}")
            continue
        try:
            found = classify_license(normalize_license(expression, table), table).license_class
        except ValueError as exc:
            problem(f"representatives.{cls}", str(exc))
            continue
        if found != cls:
            problem(f"representatives.{cls}", f"{expression} classifies as {found}, not {cls}")
    for cls in table.representatives:
        if cls not in ids:
            problem(f"representatives.{cls}", f"unknown class {cls!r}")
    return problems
