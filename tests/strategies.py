"""Hypothesis strategies and independent oracles for the fuzz tests (`tests/test_fuzz_*.py`).

The oracles recompute what the rubric data says (levels, gates, fits, the decision rule
in the rubric's header) without calling the engine, so a test compares two readings of
the same data. `FUZZ` is the budget every property runs with: 500 examples, the same
ones on every run (derandomized), no per-example deadline.
"""

from __future__ import annotations

import math
import string
from typing import Any, Literal, get_args

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import advisor
from advisor.assessment.contract import TRAINING_OPTIONS, Answers, ComputeAssessment
from advisor.model_specs import load_catalog

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
CLASS_ORDER = [c.id for c in TABLE.classes]  # least to most restrictive
CLASS_OF = {lic.casefold(): cls for cls, ids in TABLE.licenses.items() for lic in ids}
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
WITH_EXCEPTIONS = [
    ("GPL-2.0-only WITH Classpath-exception-2.0", "copyleft"),
    ("Apache-2.0 WITH LLVM-exception", "permissive"),
]


# --- the Answers contract, read from the model ------------------------------------------


def field_kind(name: str) -> str:
    """choice, int, float, bool, text or license: how the contract types the field."""
    if name == "dataset_license":
        return "license"
    inner = next(a for a in get_args(Answers.model_fields[name].annotation) if a is not type(None))
    if getattr(inner, "__origin__", None) is Literal:
        return "choice"
    return {int: "int", float: "float", bool: "bool", str: "text"}[inner]


def field_bound(name: str, attribute: str) -> Any:
    """A constraint of the field (ge, gt, le, max_length), or None."""
    return next((getattr(m, attribute) for m in Answers.model_fields[name].metadata if hasattr(m, attribute)), None)


def choices(name: str) -> list[str]:
    inner = next(a for a in get_args(Answers.model_fields[name].annotation) if a is not type(None))
    return list(get_args(inner))


# --- valid answers, with the license class the table gives them -------------------------


def _case(text: str):
    return st.sampled_from([text, text.lower(), text.upper()])


def _license_leaf():
    listed = st.sampled_from([(lic, cls) for cls, ids in TABLE.licenses.items() for lic in ids]).flatmap(
        lambda pair: _case(pair[0]).map(lambda text: (text, pair[1]))
    )
    hugging_face = st.sampled_from(sorted(TABLE.hugging_face.items())).map(
        lambda pair: (pair[0], CLASS_OF.get(pair[1].casefold(), UNKNOWN))
    )
    unlisted = st.sampled_from(UNLISTED_LICENSES).map(lambda text: (text, UNKNOWN))
    return st.one_of(listed, hugging_face, unlisted, st.sampled_from(WITH_EXCEPTIONS))


def _license_tree():
    return st.recursive(_license_leaf(), lambda sub: st.tuples(st.sampled_from(["AND", "OR"]), sub, sub), max_leaves=4)


def _render_license(tree, top: bool = True) -> tuple[str, str]:
    """The expression's text and its class: OR takes the least restrictive class, AND the most."""
    if len(tree) == 2:
        return tree
    operator, left, right = tree
    (lt, lc), (rt, rc) = _render_license(left, False), _render_license(right, False)
    pick = min if operator == "OR" else max
    text = f"{lt} {operator} {rt}"
    return (text if top else f"({text})"), pick(lc, rc, key=CLASS_ORDER.index)


def licenses():
    """(expression, class) pairs: table ids in any case, Hugging Face ids, unlisted ids, WITH, AND/OR trees."""
    return st.one_of(
        st.sampled_from([("unknown", UNKNOWN), ("Unknown", UNKNOWN)]),
        _license_tree().map(_render_license),
    )


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
def valid_answers(draw) -> tuple[dict[str, Any], str]:
    """A mapping the contract accepts (each field left out half the time), and its license class."""
    data: dict[str, Any] = {}
    license_class = UNKNOWN
    for name in FIELDS:
        if draw(st.booleans()):
            continue
        kind = field_kind(name)
        if kind == "choice":
            data[name] = draw(st.sampled_from(choices(name)))
        elif kind == "bool":
            data[name] = draw(st.booleans())
        elif kind in ("int", "float"):
            if QUESTIONS[name].bands:
                data[name] = draw(_band_values(name))
            elif kind == "int":
                data[name] = draw(st.integers(field_bound(name, "ge"), field_bound(name, "le")))
            else:
                data[name] = draw(
                    st.floats(min_value=0, max_value=field_bound(name, "le"), exclude_min=True, allow_nan=False)
                )
        elif kind == "license":
            data[name], license_class = draw(licenses())
        elif name == "base_model":
            data[name] = draw(st.sampled_from(BASE_MODELS).flatmap(_case))
        else:
            data[name] = draw(_text(field_bound(name, "max_length")))
    return data, license_class


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


# --- the oracle: what the rubric data says, computed without the engine -------------------


def level_of(name: str, value: Any, license_class: str) -> str:
    if value is None or value == UNKNOWN:
        return UNKNOWN
    kind = field_kind(name)
    if kind == "license":
        return license_class
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("int", "float"):
        return next(band.level for band in QUESTIONS[name].bands if band.max is None or value <= band.max)
    return value


def expected_levels(data: dict[str, Any], license_class: str, compute: ComputeAssessment) -> dict[str, str]:
    levels = {q.id: level_of(q.id, data.get(q.id), license_class) for q in RUBRIC.questions if RUBRIC.levels(q)}
    levels.update({f"compute.{option}": status for option, status in compute.options.items()})
    return levels


def holds(when: list[dict[str, list[str]]], levels: dict[str, str]) -> bool:
    return any(all(levels[fact] in allowed for fact, allowed in condition.items()) for condition in when)


def expected_verdict(levels: dict[str, str]) -> dict[str, Any]:
    """Fits, gates, decision, primary and blockers as the rubric's header states the rule."""
    fits = {option: definition.base for option, definition in RUBRIC.options.items()}
    for rule in RUBRIC.rules:
        if holds(rule.when, levels):
            for option, delta in rule.fit.items():
                fits[option] += delta
    fits = {option: min(10.0, max(0.0, fit)) for option, fit in fits.items()}
    gates = [gate for gate in RUBRIC.gates if holds(gate.when, levels)]
    blocked_by = {option: {g.question for g in gates if option in g.blocks} for option in RUBRIC.options}
    order = list(RUBRIC.options)
    ranked = sorted(order, key=lambda option: (-fits[option], order.index(option)))
    alternative = next(option for option in ranked if option not in TRAINING_OPTIONS)
    winners = [
        o for o in ranked if o in TRAINING_OPTIONS and fits[o] >= fits[alternative] + RUBRIC.decision.training_margin
    ]
    free = [option for option in winners if not blocked_by[option]]
    if free:
        primary = free[0]
        decision = "recommend_full_finetune" if primary == "full_finetune" else "recommend_lora"
    elif winners:
        decision, primary = "not_ready", winners[0]
    else:
        decision, primary = "use_alternative", alternative
    blockers = [q.id for q in RUBRIC.questions if q.id in blocked_by[primary]] if decision == "not_ready" else []
    return {
        "fits": fits,
        "gates": [g.id for g in gates],
        "blocked_by": blocked_by,
        "decision": decision,
        "primary": primary,
        "blockers": blockers,
    }


@st.composite
def answer_at_level(draw, name: str, level: str) -> Any:
    """A value of question `name` whose level is `level` (a compute fact's level is the level itself)."""
    kind = field_kind(name)
    if level == UNKNOWN:
        return draw(st.sampled_from([None, UNKNOWN])) if kind in ("choice", "license") else None
    if kind == "choice":
        return level
    if kind == "bool":
        return level == "true"
    if kind == "license":
        members = TABLE.licenses.get(level, [])
        return draw(st.sampled_from(members)) if members else TABLE.representatives[level]
    bands = QUESTIONS[name].bands
    index = [band.level for band in bands].index(level)
    low = bands[index - 1].max if index else None
    high = bands[index].max
    high = high if high is not None else field_bound(name, "le")
    if kind == "int":
        low = field_bound(name, "ge") if low is None else int(low) + 1
        return draw(st.integers(low, int(high)))
    low = 0.0 if low is None else low
    return draw(st.floats(min_value=low, max_value=high, exclude_min=True, allow_nan=False))


# --- invalid values: wrong types, out of range, NaN/inf, too long, unknown keys ------------

LETTERS = st.text(alphabet=string.ascii_letters, min_size=1, max_size=20)
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
        return st.one_of(
            st.floats(max_value=0),
            st.floats(min_value=field_bound(name, "le"), exclude_min=True, allow_infinity=False),
            st.sampled_from([math.nan, math.inf, -math.inf]),
            st.integers(max_value=0),
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
    if name == "base_model":  # a name the advisor cannot resolve, a path that does not exist
        return st.one_of(made_up, made_up.map(lambda s: f"./{s}/config.json"), too_long, wrong_type)
    return st.one_of(too_long, wrong_type)


UNKNOWN_KEYS = st.one_of(
    st.text(min_size=1, max_size=60).filter(lambda k: k not in Answers.model_fields), st.integers()
)


@st.composite
def invalid_answers(draw) -> tuple[dict[Any, Any], set[str]]:
    """Valid answers with one to three fields spoiled or unknown keys added, and the field names to expect."""
    data, _ = draw(valid_answers())
    spoiled = draw(st.lists(st.sampled_from(FIELDS), min_size=0, max_size=3, unique=True))
    for name in spoiled:
        data[name] = draw(invalid_value(name))
    extra = draw(st.lists(UNKNOWN_KEYS, min_size=0 if spoiled else 1, max_size=2, unique_by=str))
    for key in extra:
        data[key] = draw(st.one_of(st.integers(), st.text(max_size=10), st.none()))
    return data, {*spoiled, *(str(key) for key in extra)}
