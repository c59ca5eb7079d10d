"""Licences (SPDX and Hugging Face ids) read as the terms they carry: validation, AND and OR, the intended use."""

from __future__ import annotations

import itertools

import pytest

from advisor.assessment.licenses import _spdx_normalize, classify_license, load_license_table, normalize_license

TABLE = load_license_table()
CLASSES = [c for c in TABLE.class_ids if c != "unknown"]  # least to most restrictive


def terms(given: str, commercial_use: bool | None = None) -> tuple[str, list[str]]:
    finding = classify_license(normalize_license(given, TABLE), TABLE, commercial_use=commercial_use)
    return finding.license_class, finding.terms


@pytest.mark.parametrize(
    ("given", "canonical", "license_class", "carried"),
    [
        ("MIT", "MIT", "permissive", ["attribution"]),
        ("apache-2.0", "Apache-2.0", "permissive", ["attribution"]),
        ("cc0-1.0", "CC0-1.0", "permissive", []),
        ("cc-by-4.0", "CC-BY-4.0", "permissive", ["attribution"]),
        ("cc-by-sa-4.0", "CC-BY-SA-4.0", "copyleft", ["attribution", "share_alike"]),
        ("gpl-3.0", "GPL-3.0-only", "copyleft", ["attribution", "share_alike"]),
        ("cc-by-nc-4.0", "CC-BY-NC-4.0", "non_commercial", ["attribution", "non_commercial"]),
        ("CC-BY-NC-SA-4.0", "CC-BY-NC-SA-4.0", "non_commercial", ["attribution", "share_alike", "non_commercial"]),
        ("cc-by-nc-nd-4.0", "CC-BY-NC-ND-4.0", "non_commercial", ["attribution", "no_derivatives", "non_commercial"]),
        # ids the table did not classify before the terms model
        ("cc-by-nd-4.0", "CC-BY-ND-4.0", "no_derivatives", ["attribution", "no_derivatives"]),
        ("LPPL-1.3c", "LPPL-1.3c", "permissive", ["attribution"]),
        ("CC-PDDC", "CC-PDDC", "permissive", []),
        ("c-uda", "C-UDA-1.0", "permissive", ["attribution"]),
        # the team's own data and a third party's contract are different things
        ("LicenseRef-Proprietary", "LicenseRef-Proprietary", "own", ["own"]),
        ("LicenseRef-Contract", "LicenseRef-Contract", "custom_terms", ["custom_terms"]),
        # Hugging Face card ids that are not SPDX ids
        (
            "llama2",
            "LicenseRef-Llama-2-Community",
            "custom_terms",
            [
                "attribution",
                "custom_terms",
                "use_policy",
                "user_threshold",
                "llama_model",
                "llama_outputs_for_llama_only",
            ],
        ),
        (
            "llama3",
            "LicenseRef-Llama-3-Community",
            "custom_terms",
            [
                "attribution",
                "custom_terms",
                "use_policy",
                "user_threshold",
                "llama_model",
                "llama_outputs_for_llama_only",
                "llama_naming",
            ],
        ),
        (
            "llama3.1",
            "LicenseRef-Llama-3.1-Community",
            "custom_terms",
            ["attribution", "custom_terms", "use_policy", "user_threshold", "llama_model", "llama_naming"],
        ),
        ("gemma", "LicenseRef-Gemma", "custom_terms", ["custom_terms", "use_policy"]),
        (
            "qwen-research",
            "LicenseRef-Qwen-Research",
            "non_commercial",
            ["non_commercial", "research_only", "custom_terms"],
        ),
        ("qwen", "LicenseRef-Qwen", "custom_terms", ["attribution", "custom_terms", "user_threshold"]),
        ("openrail", "LicenseRef-OpenRAIL", "custom_terms", ["attribution", "custom_terms", "use_policy"]),
        (
            "fair-noncommercial-research-license",
            "LicenseRef-FAIR-Noncommercial-Research",
            "non_commercial",
            ["non_commercial", "research_only", "custom_terms"],
        ),
        ("odbl", "ODbL-1.0", "copyleft", ["attribution", "share_alike"]),
        ("other", "LicenseRef-Other", "unknown", []),
        ("cc", "LicenseRef-CC-unspecified", "unknown", []),
        # SPDX's special values clear nothing
        ("NOASSERTION", "unknown", "unknown", []),
        ("none", "unknown", "unknown", []),
        ("unknown", "unknown", "unknown", []),
        # valid SPDX or LicenseRef, but the table does not say what it allows: not cleared
        ("Beerware", "Beerware", "unknown", []),
        ("LicenseRef-Our-Contract", "LicenseRef-Our-Contract", "unknown", []),
    ],
)
def test_single_licences(given, canonical, license_class, carried):
    assert normalize_license(given, TABLE) == canonical
    assert terms(canonical) == (license_class, carried)


@pytest.mark.parametrize(
    ("given", "commercial_use", "license_class", "carried"),
    [
        # AND adds up the terms: nothing is lost to a single ordered scale
        (
            "CC-BY-SA-4.0 AND llama3.1",
            None,
            "custom_terms",
            [
                "attribution",
                "share_alike",
                "custom_terms",
                "use_policy",
                "user_threshold",
                "llama_model",
                "llama_naming",
            ],
        ),
        (
            "GPL-3.0-only AND LicenseRef-Gemma",
            None,
            "custom_terms",
            ["attribution", "share_alike", "custom_terms", "use_policy"],
        ),
        ("CC-BY-SA-4.0 AND LicenseRef-Proprietary", None, "copyleft", ["attribution", "share_alike", "own"]),
        ("MIT AND LicenseRef-Proprietary", None, "permissive", ["attribution", "own"]),  # the MIT part is not own
        ("MIT AND CC-BY-NC-4.0", None, "non_commercial", ["attribution", "non_commercial"]),
        ("MIT AND LicenseRef-Unlisted", None, "unknown", []),  # an unclassified part binds too
        ("MIT AND NOASSERTION", None, "unknown", []),
        # a non-commercial licence keeps its other terms whatever the use
        ("cc-by-nc-sa-4.0", False, "non_commercial", ["attribution", "share_alike", "non_commercial"]),
        ("cc-by-nc-nd-4.0", False, "non_commercial", ["attribution", "no_derivatives", "non_commercial"]),
        # OR takes the least restrictive alternative that allows the intended use
        ("MIT OR CC-BY-NC-4.0", None, "permissive", ["attribution"]),
        ("CC-BY-NC-4.0 OR GPL-3.0-only", True, "copyleft", ["attribution", "share_alike"]),
        ("CC-BY-NC-4.0 OR LicenseRef-Proprietary", None, "own", ["own"]),
        ("CC-BY-NC-4.0 OR CC-BY-NC-SA-4.0", True, "non_commercial", ["attribution", "non_commercial"]),  # no choice
        ("(MIT OR CC-BY-NC-4.0) AND CC-BY-SA-4.0", None, "copyleft", ["attribution", "share_alike"]),
        ("mit or llama3.1", None, "permissive", ["attribution"]),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", None, "copyleft", ["attribution", "share_alike"]),
        # the table's LicenseRefs in any case, also beside an id the table does not list (found by fuzzing)
        ("licenseref-apple-ascl AND Beerware", None, "unknown", []),
        ("LICENSEREF-GEMMA OR JSON", None, "custom_terms", ["custom_terms", "use_policy"]),
    ],
)
def test_expressions(given, commercial_use, license_class, carried):
    assert terms(given, commercial_use) == (license_class, carried)
    assert classify_license(normalize_license(given, TABLE), TABLE).explanation


@pytest.mark.parametrize(("left", "right"), list(itertools.product(CLASSES, repeat=2)))
def test_every_class_combination_under_and_and_or(left, right):
    """AND binds both: the union of the terms, in the stricter class. OR may choose: the less restrictive
    alternative, unless the use is commercial and only the other one allows it."""
    a, b = (normalize_license(TABLE.representatives[c], TABLE) for c in (left, right))
    ta, tb = (set(terms(x)[1]) for x in (a, b))
    stricter, looser = sorted((left, right), key=CLASSES.index, reverse=True)
    both = classify_license(f"{a} AND {b}", TABLE)
    assert set(both.terms) == ta | tb
    assert both.license_class == TABLE.class_of(ta | tb)
    assert CLASSES.index(both.license_class) >= CLASSES.index(stricter)
    either = classify_license(f"{a} OR {b}", TABLE)
    assert either.license_class == looser
    commercial = classify_license(f"{a} OR {b}", TABLE, commercial_use=True)
    allowed = [c for c in (left, right) if c != "non_commercial"] or [left, right]
    assert commercial.license_class == min(allowed, key=CLASSES.index)


def test_explanations_say_which_rule_applied():
    assert "least restrictive" in classify_license("MIT OR CC-BY-NC-4.0", TABLE).explanation
    assert (
        "that allows commercial use" in classify_license("MIT OR CC-BY-NC-4.0", TABLE, commercial_use=True).explanation
    )
    assert "terms add up" in classify_license("MIT AND CC-BY-NC-4.0", TABLE).explanation
    assert [p.license for p in classify_license("MIT AND CC-BY-NC-4.0", TABLE).parts] == ["MIT", "CC-BY-NC-4.0"]
    finding = classify_license("CC-BY-SA-4.0", TABLE)
    assert any(note.startswith("share-alike:") for note in finding.notes)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "  ",
        "MIT AND",
        "MIT OR OR Apache-2.0",
        "(MIT",
        "MIT WITH MIT",
        "MIT WITH Classpath-exception-2.0",  # the Classpath exception belongs to the GPL
        "Apache-2.0 WITH GCC-exception-3.1",
        "not-a-license",
        "Classpath-exception-2.0",
        "()",
        "(())",
        "Beerware AND ()",
    ],
)  # the parser raises IndexError on some of these
def test_invalid_expressions_are_rejected(bad):
    with pytest.raises(ValueError):
        normalize_license(bad, TABLE)


@pytest.mark.parametrize("listed", sorted(TABLE.licenses))
def test_table_fast_path_agrees_with_spdx(listed):
    """normalize_license skips license-expression's full index for listed ids; both paths must agree."""
    assert normalize_license(listed.lower(), TABLE) == listed
    if not listed.startswith("LicenseRef-"):
        assert _spdx_normalize(listed.lower()) == listed


def test_every_hugging_face_mapping_is_valid_and_classified_as_the_table_says():
    for hf_id, expression in TABLE.hugging_face.items():
        assert normalize_license(hf_id, TABLE) == expression
        finding = classify_license(expression, TABLE)
        # the terms the table lists the licence with, in the table's order; one it does not list is not cleared
        if expression in TABLE.licenses:
            assert finding.terms == [t for t in TABLE.terms if t in TABLE.licenses[expression]], hf_id
        else:
            assert finding.license_class == "unknown", hf_id


def test_every_catalog_licence_is_canonical_listed_and_sourced():
    """A catalog model's own licence is in the table's spelling and classified (not unknown), with an https source;
    only a model whose weights were never released (the GPT-3 175B shape) has none."""
    from advisor.model_specs import load_catalog

    unlicensed = []
    for model_id, entry in load_catalog().items():
        if entry.license is None:
            unlicensed.append(model_id)
            continue
        assert normalize_license(entry.license, TABLE) == entry.license, model_id
        assert classify_license(entry.license, TABLE).license_class != "unknown", model_id
        assert (entry.license_source or "").startswith("https://"), model_id
    assert unlicensed == ["gpt3-175b"]
