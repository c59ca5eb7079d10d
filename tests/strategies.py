"""Hypothesis strategies for the fuzz tests (`tests/test_fuzz_*.py`): valid and invalid answers read from the
Answers contract, answers at a given level of a rubric fact, and compute facts.

There is no oracle here that recomputes the engine: the fuzz tests state what the article's criteria require
of any decision (tests/test_fuzz_answers.py) and how a decision must move when one answer changes
(tests/test_fuzz_monotonic.py). `FUZZ` is the budget every property runs with: 500 examples, the same ones on
every run (derandomized), no per-example deadline.
"""

from __future__ import annotations

import math
import string
import types
import typing
from typing import Any, Literal, get_args, get_origin

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import advisor
from advisor.assessment.contract import TRAINING_OPTIONS, Answers, ComputeAssessment
from advisor.assessment.rubric import BASE_MODEL_NAMED, LICENSE_FIELDS
from advisor.model_specs import load_catalog
from tests.conftest import ROOT

FUZZ_EXAMPLES = 500
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
# A generous bound for one example: every case takes milliseconds, the slowest (an estimator
# build with all-linear targets) about a second.
CASE_SECONDS = 20.0

RUBRIC = advisor.load_rubric()
TABLE = RUBRIC.licenses
UNKNOWN = "unknown"
COMPUTE_STATUSES = ["fits", "does_not_fit", "not_assessed"]
FIELDS = list(Answers.model_fields)
QUESTIONS = {q.id: q for q in RUBRIC.questions}
# Base models the advisor resolves offline: catalog ids, in any case, and the hub repos the catalog names.
BASE_MODELS = sorted({*load_catalog(), *(entry.repo for entry in load_catalog().values() if entry.repo)})

# Valid SPDX ids and LicenseRefs the table does not list: they classify as unknown.
UNLISTED_LICENSES = [
    "Beerware",
    "JSON",
    "Vim",
    "X11",
    "curl",
    "Unicode-DFS-2016",
    "LicenseRef-Custom-Terms",
    "LicenseRef-X.1",
]
WITH_EXCEPTIONS = ["GPL-2.0-only WITH Classpath-exception-2.0", "Apache-2.0 WITH LLVM-exception"]
# A base model outside the catalog (a real folder, since every door resolves base_model): its licence is
# whatever base_model_license says. Catalog ids and hub repos in any case resolve too.
LOCAL_MODEL = str(ROOT / "tests" / "data" / "local-base")
# GPUs from the hardware catalog (ids, an alias, an Apple and the CPU-only entry).
GPU_NAMES = ["h100-sxm", "a100-40gb", "rtx-4090", "l4", "t4", "cpu", "H100", "apple-m3-max"]
BASE_MODELS = sorted({*load_catalog(), *(entry.repo for entry in load_catalog().values() if entry.repo)})


# --- the Answers contract, read from the model ------------------------------------------


def _branches(name: str) -> list[Any]:
    """The types a field accepts, without None and the `unknown` every field accepts, bounds unwrapped."""
    annotation = Answers.model_fields[name].annotation
    args = get_args(annotation) if get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    return [a for a in args if a is not type(None) and not (get_origin(a) is Literal and get_args(a) == (UNKNOWN,))]


def field_kind(name: str) -> str:
    """choice, int, float, bool, text or license: how the contract types the field."""
    if name in LICENSE_FIELDS:
        return "license"
    inner = _branches(name)[0]
    if get_origin(inner) is Literal:
        return "choice"
    base = get_args(inner)[0] if get_origin(inner) is typing.Annotated else inner
    return {int: "int", float: "float", bool: "bool", str: "text"}[base]


def field_bound(name: str, attribute: str) -> Any:
    """A constraint of the field or of its number (ge, gt, le, max_length), or None."""
    inner = _branches(name)[0]
    metadata = [*Answers.model_fields[name].metadata]
    if get_origin(inner) is typing.Annotated:
        for item in get_args(inner)[1:]:
            metadata += [item, *getattr(item, "metadata", [])]
    return next((getattr(m, attribute) for m in metadata if getattr(m, attribute, None) is not None), None)


def choices(name: str) -> list[str]:
    return list(get_args(_branches(name)[0]))


# --- valid answers ------------------------------------------------------------------------


def _case(text: str):
    return st.sampled_from([text, text.lower(), text.upper()])


def _license_leaf():
    listed = st.sampled_from(sorted(TABLE.licenses)).flatmap(_case)
    hugging_face = st.sampled_from(sorted(TABLE.hugging_face))
    return st.one_of(listed, hugging_face, st.sampled_from(UNLISTED_LICENSES), st.sampled_from(WITH_EXCEPTIONS))


def _render_license(tree, top: bool = True) -> str:
    if isinstance(tree, str):
        return tree
    operator, left, right = tree
    text = f"{_render_license(left, False)} {operator} {_render_license(right, False)}"
    return text if top else f"({text})"


def licenses():
    """Licence expressions: table ids in any case, Hugging Face ids, unlisted ids, WITH, AND/OR trees."""
    tree = st.recursive(_license_leaf(), lambda sub: st.tuples(st.sampled_from(["AND", "OR"]), sub, sub), max_leaves=4)
    return st.one_of(st.sampled_from(["unknown", "Unknown", "NOASSERTION"]), tree.map(_render_license))


def _band_values(name: str):
    """Integers or floats around every band edge of the question, and anywhere between its bounds."""
    low = field_bound(name, "ge")
    if low is None:  # gt=0
        low = 0
    high = field_bound(name, "le")
    question = QUESTIONS[name]
    edges = [band.max for band in question.bands if band.max is not None]
    if field_kind(name) == "int":
        near = [int(e) + d for e in edges for d in (-1, 0, 1) if low <= int(e) + d <= high]
        return st.one_of(st.sampled_from(near or [low]), st.integers(low, min(100_000, high)), st.integers(low, high))
    near = [e + d for e in edges for d in (-0.5, 0.0, 0.5) if low < e + d <= high]
    anywhere = st.floats(min_value=low, max_value=high, exclude_min=True, allow_nan=False)
    return st.one_of(st.sampled_from(near), anywhere) if near else anywhere


def _text(max_length: int):
    """Any text within the limit, from short to the limit itself."""
    return st.one_of(
        st.text(max_size=80),
        st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(1, max_length)),
    )


@st.composite
def valid_answers(draw) -> dict[str, Any]:
    """A mapping the contract accepts, each field left out half the time (or answered `unknown`)."""
    data: dict[str, Any] = {}
    for name in FIELDS:
        if draw(st.booleans()):
            continue
        kind = field_kind(name)
        if kind != "text" and draw(st.integers(0, 9)) == 0:
            data[name] = UNKNOWN
        elif kind == "choice":
            data[name] = draw(st.sampled_from(choices(name)))
        elif kind == "bool":
            data[name] = draw(st.booleans())
        elif kind in ("int", "float"):
            if QUESTIONS[name].bands:
                data[name] = draw(_band_values(name))
            elif kind == "int":
                data[name] = draw(st.integers(field_bound(name, "ge"), field_bound(name, "le") or 10**12))
            else:
                high = field_bound(name, "le") or 1e12
                data[name] = draw(st.floats(min_value=0, max_value=high, exclude_min=True, allow_nan=False))
        elif kind == "license":
            data[name] = draw(licenses())
        elif name == "base_model":
            data[name] = draw(st.one_of(st.just(LOCAL_MODEL), st.sampled_from(BASE_MODELS).flatmap(_case)))
        elif name == "gpu":  # names from the hardware catalog, in any case, or an alias
            data[name] = draw(st.sampled_from(GPU_NAMES).flatmap(_case))
        else:
            data[name] = draw(_text(field_bound(name, "max_length")))
    return data


@st.composite
def computes(draw) -> ComputeAssessment:
    """Any combination of the compute facts the rubric reads, with figures for the assessed ones."""
    options = {option: draw(st.sampled_from(COMPUTE_STATUSES)) for option in TRAINING_OPTIONS}
    assessed = {option: status for option, status in options.items() if status != "not_assessed"}
    return ComputeAssessment(
        status="assessed" if assessed else "not_assessed",
        reason="fuzzed compute facts",
        options=options,
        option_details={option: f"{option} needs 9 GiB per GPU of 8 GiB" for option in assessed},
        details=[f"{option}: {status}" for option, status in assessed.items()],
    )


def _licences_where(term: str, held: bool) -> list[str]:
    """Licences of the table that carry (or do not carry) `term`."""
    return sorted(lic for lic, terms in TABLE.licenses.items() if (term in terms) == held)


@st.composite
def answer_at_level(draw, fact: str, level: str) -> dict[str, Any]:
    """Answers that put a rubric fact at `level`: the answer itself for a question; for a licence term
    (`dataset_license.share_alike`) a licence that carries it or not; for `base_model.named`, a base model or
    none. Compute facts are not answers (see `computes`)."""
    if fact == BASE_MODEL_NAMED:
        return {"base_model": LOCAL_MODEL if level == "true" else None}
    if "." in fact:
        question, term = fact.split(".", 1)
        if level == UNKNOWN:
            return {question: draw(st.sampled_from([None, UNKNOWN, *UNLISTED_LICENSES]))}
        return {question: draw(st.sampled_from(_licences_where(term, level == "true")))}
    return {fact: draw(_value_at_level(fact, level))}


@st.composite
def _value_at_level(draw, name: str, level: str) -> Any:
    kind = field_kind(name)
    if level == UNKNOWN:
        return draw(st.sampled_from([None, UNKNOWN]))
    if kind == "choice":
        return level
    if kind == "bool":
        return level == "true"
    if kind == "license":
        members = sorted(lic for lic, terms in TABLE.licenses.items() if TABLE.class_of(terms) == level)
        return draw(st.sampled_from(members)) if members else TABLE.representatives[level]
    bands = QUESTIONS[name].bands
    index = [band.level for band in bands].index(level)
    low = bands[index - 1].max if index else None
    high = bands[index].max
    ceiling = field_bound(name, "le")
    if kind == "int":
        low = field_bound(name, "ge") if low is None else int(low) + 1
        return draw(st.integers(low, int(high) if high is not None else (ceiling or 10**12)))
    low = 0.0 if low is None else low
    top = high if high is not None else (ceiling or 1e12)
    return draw(st.floats(min_value=low, max_value=top, exclude_min=True, allow_nan=False))


# --- invalid values: wrong types, out of range, NaN/inf, too long, unknown keys ------------

LETTERS = st.text(alphabet=string.ascii_letters, min_size=1, max_size=20).filter(lambda s: s != UNKNOWN)
JUNK = st.one_of(st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
# The strings pydantic reads as booleans (lax mode).
BOOLEAN_WORDS = {"0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes"}
INVALID_LICENSES = [
    "MIT AND",
    "AND",
    "OR MIT",
    "MIT (",
    "()",
    "MIT WITH",
    "MIT OR OR Apache-2.0",
    "licenseref-lowercase",
    "made-up-license",
    "",
    "   ",
    "MIT\nAND",
    "GPL-2.0-only WITH MIT",
]


def _non_integral(x: float) -> bool:
    return not math.isfinite(x) or x != int(x)


def invalid_value(name: str):
    """Values the contract refuses for `name`, whatever the YAML or JSON round trip does to them."""
    kind = field_kind(name)
    if kind == "choice":
        allowed = set(choices(name))
        return st.one_of(
            st.text(max_size=40).filter(lambda s: s not in allowed), st.integers(), st.booleans(), st.floats(), JUNK
        )
    if kind == "int":
        low, high = field_bound(name, "ge"), field_bound(name, "le")
        return st.one_of(
            st.integers(max_value=low - 1),
            st.just(-(10**40)),
            st.integers(min_value=high + 1),
            st.floats().filter(_non_integral),
            LETTERS,
            JUNK,
        )
    if kind == "float":
        ge = field_bound(name, "ge")  # gpu_memory_gib takes 0 (CPU only); the other amounts must be above 0
        return st.one_of(
            st.floats(max_value=0) if ge is None else st.floats(max_value=ge, exclude_max=True),
            st.floats(min_value=field_bound(name, "le"), exclude_min=True, allow_infinity=False),
            st.sampled_from([math.nan, math.inf, -math.inf]),
            st.integers(max_value=0 if ge is None else -1),
            st.integers(min_value=2**1024, max_value=2**1100),
            LETTERS,
            JUNK,
        )
    if kind == "bool":
        return st.one_of(
            st.integers().filter(lambda i: i not in (0, 1)),
            st.floats().filter(lambda x: x not in (0.0, 1.0)),
            LETTERS.filter(lambda s: s.lower() not in BOOLEAN_WORDS),
            JUNK,
        )
    limit = field_bound(name, "max_length")
    too_long = st.builds(lambda c, n: c * n, st.characters(codec="utf-8"), st.integers(limit + 1, 4 * limit))
    wrong_type = st.one_of(st.integers(), st.floats(), st.booleans(), JUNK)
    made_up = LETTERS.map(lambda s: f"made-up-{s}")
    if kind == "license":
        return st.one_of(st.sampled_from(INVALID_LICENSES), made_up, too_long, wrong_type)
    if name == "gpu":  # a GPU the catalog does not name
        return st.one_of(made_up, too_long, wrong_type)
    if name == "base_model":  # a name the advisor cannot resolve, a path that does not exist
        return st.one_of(made_up, made_up.map(lambda s: f"./{s}/config.json"), too_long, wrong_type)
    return st.one_of(too_long, wrong_type)


UNKNOWN_KEYS = st.one_of(
    st.text(min_size=1, max_size=60).filter(lambda k: k not in Answers.model_fields), st.integers()
)


@st.composite
def invalid_answers(draw) -> tuple[dict[Any, Any], set[str]]:
    """Valid answers with one to three fields spoiled or unknown keys added, and the field names to expect."""
    data = draw(valid_answers())
    spoiled = draw(st.lists(st.sampled_from(FIELDS), min_size=0, max_size=3, unique=True))
    for name in spoiled:
        data[name] = draw(invalid_value(name))
    extra = draw(st.lists(UNKNOWN_KEYS, min_size=0 if spoiled else 1, max_size=2, unique_by=str))
    for key in extra:
        data[key] = draw(st.one_of(st.integers(), st.text(max_size=10), st.none()))
    return data, {*spoiled, *(str(key) for key in extra)}
