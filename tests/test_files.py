"""YAML is read safely with or without libyaml: no aliases, errors name the line."""

from __future__ import annotations

import json

import pytest

import advisor.files as files
from advisor.errors import InvalidFile


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


@pytest.mark.parametrize("depth", [files.MAX_YAML_DEPTH + 1, 200, 100_000])
def test_deep_nesting_is_refused(loader, depth):
    """Without the limit the pure-Python composer recurses until RecursionError (an internal error, exit 1),
    and libyaml accepts up to 1,000 levels (it refuses deeper ones itself)."""
    with pytest.raises(InvalidFile, match="nest"):
        files.parse_yaml("goal: " + "[" * depth + "]" * depth + "\n", field="f", name="n")
    block = "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, min(depth, 500)))
    with pytest.raises(InvalidFile, match=f"nested more than {files.MAX_YAML_DEPTH} levels"):
        files.parse_yaml(block, field="f", name="n")


def test_nesting_up_to_the_limit_parses(loader):
    depth = files.MAX_YAML_DEPTH
    nested = []
    for _ in range(depth - 1):
        nested = [nested]
    assert files.parse_yaml("[" * depth + "]" * depth, field="f", name="n") == nested


def test_json_surrogate_pairs_are_the_characters_they_encode(loader):
    """Python's json module writes an emoji as a surrogate pair; libyaml refuses the escape, PyYAML splits it."""
    text = json.dumps({"goal": "ship it 🚀", "nested": {"k": ["𝔘"]}})
    assert files.parse_yaml(text, field="f", name="n") == {"goal": "ship it 🚀", "nested": {"k": ["𝔘"]}}


@pytest.mark.parametrize("text", ['{"goal": "\\ud800"}', 'goal: "\\udc00x"\n', '{"a": 1, "goal": "x\\ud83d"}'])
def test_unpaired_surrogates_are_refused(loader, text):
    with pytest.raises(InvalidFile):
        files.parse_yaml(text, field="f", name="n")


def test_json_nested_too_deep_is_refused(loader):
    for depth in (files.MAX_YAML_DEPTH, 900, 100_000):
        with pytest.raises(InvalidFile, match="nest"):
            files.parse_yaml('{"goal": ' + "[" * depth + "]" * depth + "}", field="f", name="n")


def test_written_files_get_the_users_usual_mode(tmp_path):
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    target = files.write_atomic(tmp_path / "report.md", "# report\n")
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_a_name_at_the_file_systems_limit_is_written_though_its_temporary_name_is_longer(tmp_path):
    """The temporary file adds 14 characters to the name; a 255-byte name (legal) must still be written."""
    target = tmp_path / ("r" * 252 + ".md")
    files.write_atomic(target, "text\n")
    assert target.read_text() == "text\n" and [p.name for p in tmp_path.iterdir()] == [target.name]


def test_a_name_over_the_file_systems_limit_names_the_field(tmp_path):
    with pytest.raises(InvalidFile) as info:
        files.write_atomic(tmp_path / ("r" * 253 + ".md"), "text", field="report")
    assert info.value.fields[0].field == "report" and "256 bytes long" in info.value.message
    assert list(tmp_path.iterdir()) == []
