"""Shared test fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Point user directories (HF cache, home) at a temp folder: tests never touch the user's files or the hub."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


# The smallest Llama config the doors train in a test (a reference run of it takes a second).
TINY_LLAMA = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": 256,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "max_position_embeddings": 128,
}


def default_sigint() -> None:
    """`preexec_fn` for a child a test interrupts: Ctrl-C reaches it even when this test process was started
    with SIGINT ignored (a non-interactive shell's `cmd &` does that, and an ignored SIGINT is inherited,
    so Python in the child would ignore it too)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_advisor(*args: str, input: str | None = None, timeout: float = 120, env: dict | None = None):
    """Run `python -m advisor` in a subprocess, the way a user or an agent does."""
    import subprocess

    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "advisor", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=full_env,
    )


@pytest.fixture(params=["libyaml", "pure-python"])
def loader(request, monkeypatch):
    """Run a test with libyaml's loader and with PyYAML's pure-Python one: both must refuse the same things."""
    from advisor import yaml_loader

    if request.param == "pure-python":
        monkeypatch.setattr(yaml_loader, "_CSafeLoader", None)
    elif yaml_loader._CSafeLoader is None:
        pytest.skip("libyaml is not available")
