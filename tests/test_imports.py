"""The CLI stays light: no torch, transformers or peft (nor rich or jinja2 for --json) at start-up."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("torch", "transformers", "peft")


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
    assert not [m for m in modules if m.split(".")[0] in (*HEAVY, "rich", "jinja2")]


def test_public_api():
    import advisor

    for name in advisor.__all__:
        assert hasattr(advisor, name), name
    assert {"assess", "load_rubric", "Answers", "Assessment"} <= set(advisor.__all__)
