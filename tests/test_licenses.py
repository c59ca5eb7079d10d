"""License parsing (SPDX and Hugging Face ids) and classification from the table."""

from __future__ import annotations

import pytest

from advisor.assessment.licenses import _spdx_normalize, classify_license, load_license_table, normalize_license

TABLE = load_license_table()


@pytest.mark.parametrize(
    ("given", "canonical", "license_class"),
    [
        ("MIT", "MIT", "permissive"),
        ("apache-2.0", "Apache-2.0", "permissive"),
        ("cc-by-4.0", "CC-BY-4.0", "permissive"),
        ("cc-by-sa-4.0", "CC-BY-SA-4.0", "copyleft"),
        ("gpl-3.0", "GPL-3.0-only", "copyleft"),
        ("cc-by-nc-4.0", "CC-BY-NC-4.0", "non_commercial"),
        ("CC-BY-NC-SA-4.0", "CC-BY-NC-SA-4.0", "non_commercial"),
        ("LicenseRef-Proprietary", "LicenseRef-Proprietary", "proprietary"),
        ("unknown", "unknown", "unknown"),
        ("Unknown", "unknown", "unknown"),
        # Hugging Face card ids that are not SPDX ids
        ("llama2", "LicenseRef-Llama-2-Community", "proprietary"),
        ("llama3.1", "LicenseRef-Llama-3.1-Community", "proprietary"),
        ("gemma", "LicenseRef-Gemma", "proprietary"),
        ("openrail", "LicenseRef-OpenRAIL", "proprietary"),
        ("openrail++", "LicenseRef-OpenRAIL-plus-plus", "proprietary"),
        ("fair-noncommercial-research-license", "LicenseRef-FAIR-Noncommercial-Research", "non_commercial"),
        ("odc-by", "ODC-By-1.0", "permissive"),
        ("odbl", "ODbL-1.0", "copyleft"),
        ("other", "LicenseRef-Other", "unknown"),
        ("cc", "LicenseRef-CC-unspecified", "unknown"),
        # valid SPDX, but the table does not say what it allows: not cleared
        ("CC-BY-ND-4.0", "CC-BY-ND-4.0", "unknown"),
        ("LicenseRef-Our-Contract", "LicenseRef-Our-Contract", "unknown"),
    ],
)
def test_single_licenses(given, canonical, license_class):
    assert normalize_license(given, TABLE) == canonical
    assert classify_license(canonical, TABLE).license_class == license_class


@pytest.mark.parametrize(
    ("given", "license_class"),
    [
        ("MIT OR CC-BY-NC-4.0", "permissive"),  # OR: you may pick the permissive one
        ("CC-BY-NC-4.0 OR LicenseRef-Proprietary", "proprietary"),
        ("MIT AND CC-BY-NC-4.0", "non_commercial"),  # AND: every part binds
        ("Apache-2.0 AND CC-BY-SA-4.0", "copyleft"),
        ("MIT AND LicenseRef-Unlisted", "unknown"),  # an unclassified part binds too
        ("(MIT OR CC-BY-NC-4.0) AND CC-BY-SA-4.0", "copyleft"),
        ("mit or llama3.1", "permissive"),
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", "copyleft"),  # WITH: classified as its license
        # the table's LicenseRefs in any case, also beside an id the table does not list (found by fuzzing)
        ("licenseref-apple-ascl AND Beerware", "unknown"),
        ("LICENSEREF-GEMMA OR JSON", "proprietary"),
    ],
)
def test_expressions(given, license_class):
    finding = classify_license(normalize_license(given, TABLE), TABLE)
    assert finding.license_class == license_class
    assert finding.explanation


def test_or_and_explanations_say_which_rule_applied():
    assert "least restrictive" in classify_license("MIT OR CC-BY-NC-4.0", TABLE).explanation
    assert "most restrictive" in classify_license("MIT AND CC-BY-NC-4.0", TABLE).explanation
    assert [p.license for p in classify_license("MIT AND CC-BY-NC-4.0", TABLE).parts] == ["MIT", "CC-BY-NC-4.0"]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "  ",
        "MIT AND",
        "MIT OR OR Apache-2.0",
        "(MIT",
        "MIT WITH MIT",
        "not-a-license",
        "Classpath-exception-2.0",
        "()",
        "(())",
        "Beerware AND ()",
    ],
)  # the parser raises IndexError on these
def test_invalid_expressions_are_rejected(bad):
    with pytest.raises(ValueError):
        normalize_license(bad, TABLE)


@pytest.mark.parametrize("listed", sorted({lic for ids in TABLE.licenses.values() for lic in ids}))
def test_table_fast_path_agrees_with_spdx(listed):
    """normalize_license skips license-expression's full index for listed ids; both paths must agree."""
    assert normalize_license(listed.lower(), TABLE) == listed
    if not listed.startswith("LicenseRef-"):
        assert _spdx_normalize(listed.lower()) == listed


def test_every_hugging_face_mapping_is_valid_and_classified_as_the_table_says():
    listed = {lic: cls for cls, ids in TABLE.licenses.items() for lic in ids}
    for hf_id, expression in TABLE.hugging_face.items():
        assert normalize_license(hf_id, TABLE) == expression
        # the class the table lists the license under; one it does not list is not cleared
        assert classify_license(expression, TABLE).license_class == listed.get(expression, "unknown"), hf_id
