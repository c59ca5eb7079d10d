"""Dataset licenses: validate an SPDX expression or Hugging Face id, then classify it.

`license-expression` checks the syntax and the SPDX ids; what a license allows
(permissive, copyleft, non-commercial, ...) comes from `rubrics/licenses.yaml`.
Two steps, kept apart:

- `normalize_license` runs when answers are validated: it maps Hugging Face card
  ids to SPDX (`llama3.1` -> `LicenseRef-Llama-3.1-Community`), validates, and
  returns the canonical expression (`mit or apache-2.0` -> `MIT OR Apache-2.0`).
- `classify_license` is pure: it parses a canonical expression and combines the
  classes of its parts, OR taking the least restrictive (the user may choose) and
  AND the most restrictive (every part binds).
"""

from __future__ import annotations

import re
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
_HINT = (
    "give an SPDX expression (e.g. Apache-2.0, MIT OR CC-BY-4.0), a LicenseRef-... for other terms, "
    "a Hugging Face license id (e.g. cc-by-nc-4.0, llama3.1), or unknown"
)


class LicenseClass(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    label: str
    description: str


class LicenseTable(BaseModel):
    """`rubrics/licenses.yaml`: classes from least to most restrictive, and what belongs to each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    classes: list[LicenseClass] = Field(description="From the least to the most restrictive; the last is `unknown`.")
    licenses: dict[str, list[str]] = Field(description="Class id -> canonical SPDX ids or LicenseRefs in it.")
    hugging_face: dict[str, str] = Field(description="Hugging Face card id (lowercase) -> SPDX expression.")
    representatives: dict[str, str] = Field(description="Class id -> an expression of that class.")
    _class_by_id: dict[str, str] = PrivateAttr(default_factory=dict)
    _canonical_ids: dict[str, str] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: object) -> None:
        self._class_by_id.update({lic.casefold(): cls for cls, ids in self.licenses.items() for lic in ids})
        self._canonical_ids.update({lic.casefold(): lic for ids in self.licenses.values() for lic in ids})

    @property
    def class_ids(self) -> list[str]:
        return [c.id for c in self.classes]

    def class_of(self, license_id: str) -> str:
        """The class of one license id; `unknown` for ids the table does not list."""
        return self._class_by_id.get(license_id.casefold(), UNKNOWN)

    def canonical_id(self, license_id: str) -> str | None:
        """The table's spelling of `license_id` (ids ignore case), or None when it is not listed."""
        return self._canonical_ids.get(license_id.casefold())

    def label(self, class_id: str) -> str:
        return next((c.label for c in self.classes if c.id == class_id), class_id)


class LicensePart(BaseModel):
    license: str = Field(description="One license id of the expression (for `X WITH exception`, X).")
    license_class: str = Field(description="Its class in the license table.")


class LicenseFinding(BaseModel):
    """What the dataset's license allows, as far as the table can tell."""

    expression: str = Field(
        description="The canonical SPDX expression (Hugging Face ids already mapped), or `unknown`."
    )
    license_class: str = Field(description="permissive, copyleft, proprietary, non_commercial or unknown.")
    parts: list[LicensePart] = Field(description="Each license in the expression with its class.")
    explanation: str = Field(
        description="How the class was reached (OR: the least restrictive choice; AND: the most restrictive)."
    )


def load_license_table(path: Path | None = None) -> LicenseTable:
    """The license table at `path` (default: the one shipped next to the rubric)."""
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
    if text.casefold() == UNKNOWN:
        return UNKNOWN
    mapped = _TOKEN.sub(lambda m: table.hugging_face.get(m.group(0).casefold(), m.group(0)), text)
    known = _canonical_from_table(mapped, table)
    if known is not None:
        return known
    # The table's ids in its own spelling: license-expression knows SPDX ids in any case, not LicenseRefs.
    return _spdx_normalize(_TOKEN.sub(lambda m: table.canonical_id(m.group(0)) or m.group(0), mapped))


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


def classify_license(expression: str, table: LicenseTable) -> LicenseFinding:
    """Classify a canonical expression (from `normalize_license`) with the table."""
    if expression == UNKNOWN:
        return LicenseFinding(expression=UNKNOWN, license_class=UNKNOWN, parts=[], explanation="no license given")
    if _TOKEN.fullmatch(expression):  # a single id: nothing to combine, no parser needed
        license_class = table.class_of(expression)
        return LicenseFinding(
            expression=expression,
            license_class=license_class,
            parts=[LicensePart(license=expression, license_class=license_class)],
            explanation=_single_explanation(expression, license_class, table),
        )
    from license_expression import Licensing

    parts: list[LicensePart] = []
    order = table.class_ids

    def walk(node) -> str:
        operator = getattr(node, "operator", "").strip()
        if operator in ("AND", "OR"):
            classes = [walk(arg) for arg in node.args]
            pick = min if operator == "OR" else max
            return pick(classes, key=order.index)
        symbol = getattr(node, "license_symbol", node)  # `X WITH exception` is classified as X
        cls = table.class_of(symbol.key)
        parts.append(LicensePart(license=symbol.key, license_class=cls))
        return cls

    parsed = Licensing().parse(expression)
    license_class = walk(parsed)
    label = table.label(license_class)
    operators = {op for op in ("AND", "OR") if f" {op} " in f" {expression} "}
    if not operators:  # `X WITH exception`
        explanation = _single_explanation(parts[0].license, license_class, table)
    elif operators == {"OR"}:
        explanation = f"{expression}: you may choose any one, so the least restrictive applies ({label})"
    elif operators == {"AND"}:
        explanation = f"{expression}: every part binds, so the most restrictive applies ({label})"
    else:
        explanation = (
            f"{expression}: OR takes the least restrictive choice and AND the most restrictive, giving {label}"
        )
    return LicenseFinding(expression=expression, license_class=license_class, parts=parts, explanation=explanation)


def _single_explanation(license_id: str, license_class: str, table: LicenseTable) -> str:
    if license_class == UNKNOWN:
        return f"{license_id} is not in the license table, so it is not cleared"
    return f"{license_id} is {table.label(license_class)}"


def license_table_problems(table: LicenseTable) -> list[FieldIssue]:
    """Every way the table disagrees with itself or with SPDX; empty when it is sound."""
    problems: list[FieldIssue] = []

    def problem(field: str, message: str) -> None:
        problems.append(FieldIssue(field=f"license_table.{field}", message=message))

    ids = table.class_ids
    if len(set(ids)) != len(ids):
        problem("classes", "class ids must be unique")
    if not ids or ids[-1] != UNKNOWN:
        problem("classes", f"the last (most restrictive) class must be {UNKNOWN!r}: unlisted licenses fall into it")
    if table.licenses.get(UNKNOWN):
        problem(f"licenses.{UNKNOWN}", "list nothing under unknown: it holds every license the table does not list")
    seen: dict[str, str] = {}
    for cls, licenses in table.licenses.items():
        if cls not in ids:
            problem(f"licenses.{cls}", f"unknown class {cls!r} (classes: {', '.join(ids)})")
        for lic in licenses:
            where = f"licenses.{cls}.{lic}"
            if lic.casefold() in seen:
                problem(where, f"{lic} is listed twice (also under {seen[lic.casefold()]})")
            seen[lic.casefold()] = cls
            try:
                canonical = lic if _LICENSE_REF.fullmatch(lic) else _spdx_normalize(lic)
            except ValueError as exc:
                problem(where, str(exc))
                continue
            if canonical != lic:
                problem(where, f"write the canonical single id {canonical!r}")
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
