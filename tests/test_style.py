"""The code stays as the linter and formatter configured in pyproject.toml want it (ruff: 120 columns)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff_is_clean(command):
    res = subprocess.run(
        [sys.executable, "-m", "ruff", *command], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
