"""The CLI stays light: no torch, transformers or peft (nor rich or jinja2 for --json) at start-up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("torch", "transformers", "peft")
# The dataset inspection's libraries: loaded by `inspect-data` and `assess --data` only.
DATA_LIBRARIES = ("numpy", "pyarrow", "phonenumbers", "detect_secrets", "datasketch", "scipy", "tokenizers")


def loaded_modules(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)), file=sys.__stderr__)"
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    return set(json.loads(res.stderr.strip().splitlines()[-1]))


def test_importing_the_cli_does_not_import_heavy_packages():
    modules = loaded_modules("import advisor.cli")
    assert not [m for m in modules if m.split(".")[0] in HEAVY]


def test_assess_json_imports_neither_heavy_packages_nor_printing_libraries():
    # sql-dialect names no base model, so compute feasibility (the estimator) is not run.
    code = (
        "from advisor.cli import cli\n"
        "cli.main(['assess', '--answers', 'examples/sql-dialect.yaml', '--json'], standalone_mode=False)"
    )
    modules = loaded_modules(code)
    assert not [m for m in modules if m.split(".")[0] in (*HEAVY, *DATA_LIBRARIES, "rich", "jinja2")]


def test_public_api():
    import advisor

    for name in advisor.__all__:
        assert hasattr(advisor, name), name
    assert {"assess", "load_rubric", "Answers", "Assessment"} <= set(advisor.__all__)


def test_json_answers_do_not_import_yaml():
    """PyYAML's import is a fifth of the start-up floor; answers given as JSON (agents, every MCP call) skip it,
    and the shipped rubric is read from its compiled JSON form."""
    code = (
        "import io, sys\n"
        'sys.stdin = io.TextIOWrapper(io.BytesIO(b\'{"change_kind": "knowledge"}\'))\n'
        "from advisor.cli import cli\n"
        "cli.main(['assess', '--answers', '-', '--json'], standalone_mode=False)"
    )
    assert "yaml" not in loaded_modules(code)


def test_the_cli_leaves_pydantic_plugins_off_unless_told_otherwise():
    assert "PYDANTIC_DISABLE_PLUGINS" not in loaded_environment("import advisor")
    assert loaded_environment("import advisor.cli")["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    assert loaded_environment("import advisor.cli", PYDANTIC_DISABLE_PLUGINS="")["PYDANTIC_DISABLE_PLUGINS"] == ""


@pytest.mark.parametrize("command", [["questions", "--json"], ["--version"]])
def test_the_entry_point_pauses_collection_only_for_start_up(command):
    """`advisor` (and `python -m advisor`) start with the cyclic collector off; once a command's module is imported,
    what start-up built is frozen and collection is on again for the command's own garbage. A command line that
    runs no command (`--version`) ends with collection still off: it had nothing else to do."""
    script = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('collecting', gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr))\n"
        f"sys.argv = ['advisor', *{command!r}]\n"
        "from advisor.__main__ import main\n"
        "main()"
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0, res.stderr
    ran_a_command = command[0] != "--version"
    assert res.stderr.strip().splitlines()[-1] == f"collecting {ran_a_command} {ran_a_command}"


def loaded_environment(code: str, **env: str) -> dict[str, str]:
    import os

    script = f"import os, json\n{code}\nprint(json.dumps(dict(os.environ)))"
    full_env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"} | env
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60, env=full_env
    )
    return json.loads(res.stdout)


@pytest.mark.parametrize(
    "distribution", ["pydantic", "PyYAML", "pyyaml", "typing_extensions", "typing-extensions", "torch", "advisor"]
)
def test_versions_read_from_folder_names_match_the_package_metadata(distribution):
    """`installed_version` reads `<name>-<version>.dist-info` folder names instead of parsing metadata; any
    spelling of a name (case, `-`, `_`) finds the same version importlib.metadata reports."""
    from importlib.metadata import version

    from advisor.versions import installed_version

    assert installed_version(distribution) == version(distribution)


def test_a_distribution_that_is_not_installed_has_no_version():
    from advisor.versions import installed_version

    assert installed_version("no-such-distribution-advisor-test") is None
