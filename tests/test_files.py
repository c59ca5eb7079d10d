"""YAML is read safely with or without libyaml: no aliases, errors name the line."""

from __future__ import annotations

import pytest

import advisor.files as files
from advisor.errors import InvalidFile


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request, monkeypatch):
    if request.param == "pure-python":
        monkeypatch.setattr(files, "_CSafeLoader", None)
    elif files._CSafeLoader is None:
        pytest.skip("libyaml is not available")


def test_mappings_parse(loader):
    assert files.parse_yaml("a: 1\nb: [x, y]\n", field="f", name="n") == {"a": 1, "b": ["x", "y"]}


def test_aliases_are_refused(loader):
    with pytest.raises(InvalidFile, match=r"aliases \(\*x\)"):
        files.parse_yaml("a: &x [1, 2]\nb: *x\n", field="f", name="n")


def test_syntax_errors_name_the_line(loader):
    with pytest.raises(InvalidFile, match="at line 3, column 2"):
        files.parse_yaml("a: 1\nb: [x\nc: 2\n", field="f", name="n")


def test_python_tags_are_refused(loader):
    with pytest.raises(InvalidFile):
        files.parse_yaml("a: !!python/object/apply:os.system ['true']\n", field="f", name="n")
