"""The file guards: what advisor reads is size-limited and never executed (no YAML python tags, no remote
code, no pickles); what it writes appears whole, at the path asked and nowhere else, or not at all."""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import advisor.files as files
from advisor.cli import cli
from advisor.errors import InvalidFile, InvalidInput
from tests.conftest import ROOT

PACKAGE = ROOT / "advisor"


# --- reading -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        "!!python/object/apply:builtins.open [{marker}, w]",
        "!!python/object/apply:os.mkdir [{marker}]",
        "!!python/object/apply:subprocess.run [[touch, {marker}]]",
    ],
    ids=["open", "mkdir", "subprocess"],
)
def test_yaml_python_tags_run_nothing(loader, tmp_path, payload):
    marker = tmp_path / "marker"
    with pytest.raises(InvalidFile, match="not valid YAML"):
        files.parse_yaml(
            "goal: " + payload.format(marker=json.dumps(str(marker))) + "\n", field="--answers", name="a.yaml"
        )
    assert not marker.exists()


def test_model_configs_over_their_limit_are_refused(tmp_path):
    from advisor.model_specs import MAX_CONFIG_BYTES, resolve_model_spec

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "llama", "padding": "x" * MAX_CONFIG_BYTES}))
    with pytest.raises(InvalidFile, match="limit"):
        resolve_model_spec(str(config))
    with pytest.raises(InvalidFile, match="limit"):
        resolve_model_spec(str(tmp_path))  # the folder's config.json


def _model_folder(tmp_path: Path, marker: Path, model_type: str) -> Path:
    """A model folder with remote code and pickled weights that each create `marker` if executed."""
    from advisor.model_specs import load_catalog

    folder = tmp_path / "hostile-model"
    folder.mkdir()
    config = dict(
        load_catalog()["qwen2.5-0.5b"].config,
        model_type=model_type,
        auto_map={"AutoConfig": "configuration_evil.EvilConfig", "AutoModelForCausalLM": "modeling_evil.EvilModel"},
    )
    (folder / "config.json").write_text(json.dumps(config))
    code = f"open({str(marker)!r}, 'w').write('remote code ran')\n"
    (folder / "modeling_evil.py").write_text(code)
    (folder / "configuration_evil.py").write_text(code)

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("pytorch_model.bin", "model.pt", "training_args.bin"):
        (folder / name).write_bytes(pickle.dumps(Payload()))
    return folder


def test_a_folder_needing_remote_code_is_refused_without_running_it(tmp_path):
    pytest.importorskip("transformers")
    from advisor.model_specs import resolve_model_spec

    marker = tmp_path / "marker"
    folder = _model_folder(tmp_path, marker, model_type="evil_model")
    with pytest.raises(InvalidInput, match="never runs"):
        resolve_model_spec(str(folder))
    assert not marker.exists()


def test_a_known_architecture_is_built_from_transformers_not_the_folder(tmp_path):
    """auto_map is ignored for a model_type transformers implements; pickled weights are listed, never loaded."""
    pytest.importorskip("torch")
    pytest.importorskip("peft")
    from advisor.estimate import TrainingSettings, estimate_training_memory
    from advisor.model_specs import load_catalog, resolve_model_spec

    marker = tmp_path / "marker"
    folder = _model_folder(tmp_path, marker, model_type="qwen2")
    spec = resolve_model_spec(str(folder))
    assert spec.weight_files == []
    assert any("pickle weights" in note for note in spec.notes) and any("auto_map" in note for note in spec.notes)
    estimate = estimate_training_memory(spec, TrainingSettings())
    assert estimate.total_params == load_catalog()["qwen2.5-0.5b"].published_params == 494_032_768
    (folder / "model.safetensors").write_bytes(b"")
    assert resolve_model_spec(str(folder)).weight_files == ["model.safetensors"]
    assert not marker.exists()


def _calls(tree: ast.AST):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def test_the_package_never_trusts_remote_code_or_unpickles():
    """No `trust_remote_code` other than False, no pickle loaders, and every from_pretrained reads safetensors only."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        if "trust_remote_code=True" in source.replace(" ", ""):
            problems.append(f"{where}: trust_remote_code=True")
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if (
                        isinstance(key, ast.Constant)
                        and key.value == "trust_remote_code"
                        and not (isinstance(value, ast.Constant) and value.value is False)
                    ):
                        problems.append(f"{where}:{node.lineno}: trust_remote_code in a dict")
        for call in _calls(tree):
            keywords = {k.arg: k.value for k in call.keywords}
            if "trust_remote_code" in keywords and not (
                isinstance(keywords["trust_remote_code"], ast.Constant) and keywords["trust_remote_code"].value is False
            ):
                problems.append(f"{where}:{call.lineno}: trust_remote_code")
            name = _dotted(call.func)
            if name in ("torch.load", "pickle.load", "pickle.loads", "joblib.load", "dill.load", "cloudpickle.load"):
                problems.append(f"{where}:{call.lineno}: {name}")
            if name.endswith("from_pretrained"):
                flag = keywords.get("use_safetensors")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    problems.append(f"{where}:{call.lineno}: {name} without use_safetensors=True")
    assert problems == []


# --- writing -------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _fail(error: type[BaseException]):
    def fail(*args, **kwargs):
        raise error("disk gone")

    return fail


def _half_writes(monkeypatch):
    """Files opened by os.fdopen write half of what they are given, then fail."""
    real_fdopen = os.fdopen

    class HalfFile:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, text):
            self.fh.write(text[: len(text) // 2])
            self.fh.flush()
            raise OSError("disk full")

    monkeypatch.setattr(os, "fdopen", lambda *args, **kwargs: HalfFile(real_fdopen(*args, **kwargs)))


@pytest.mark.parametrize("fail_at", ["write", "fsync", "replace", "interrupt"])
def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path, monkeypatch, fail_at):
    error = KeyboardInterrupt if fail_at == "interrupt" else OSError
    if fail_at == "write":
        _half_writes(monkeypatch)
    elif fail_at == "replace":
        monkeypatch.setattr(os, "replace", _fail(error))
    else:
        monkeypatch.setattr(os, "fsync", _fail(error))
    with pytest.raises(error):
        files.write_atomic(tmp_path / "report.md", "x" * 100)
    assert _leftovers(tmp_path) == []


def test_a_failed_write_keeps_the_old_report(tmp_path, monkeypatch):
    target = tmp_path / "report.md"
    target.write_text("the old report", encoding="utf-8")
    _half_writes(monkeypatch)
    with pytest.raises(OSError):
        files.write_atomic(target, "the new report", force=True)
    assert target.read_text(encoding="utf-8") == "the old report"
    assert _leftovers(tmp_path) == ["report.md"]


def test_a_report_that_fails_to_render_writes_nothing(tmp_path, monkeypatch):
    import advisor.report.render

    def broken(*args, **kwargs):
        raise RuntimeError("template bug")

    monkeypatch.setattr(advisor.report.render, "render_report", broken)
    target = tmp_path / "report.md"
    result = CliRunner().invoke(cli, ["assess", "--example", "sql-dialect", "--report", str(target), "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["error"]["code"] == "internal"
    assert _leftovers(tmp_path) == []
    target.write_text("the old report", encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["assess", "--example", "sql-dialect", "--report", str(target), "--force", "--json"]
    )
    assert result.exit_code == 1 and target.read_text(encoding="utf-8") == "the old report"
    assert _leftovers(tmp_path) == ["report.md"]


def _tree(*folders: Path) -> set[str]:
    return {str(p) for folder in folders for p in folder.rglob("*")}


def test_a_report_is_written_where_asked_and_nowhere_else(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    out.mkdir()
    home = Path(os.environ["HOME"])
    before = _tree(tmp_path, home)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "advisor",
            "assess",
            "--example",
            "sql-dialect",
            "--report",
            str(out / "advice.md"),
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert _tree(tmp_path, home) - before == {str(out / "advice.md")}
    assert (out / "advice.md").read_text(encoding="utf-8").startswith("# LoRA advice")


def test_a_report_path_that_is_a_link_replaces_the_link_not_its_target(tmp_path):
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("not yours", encoding="utf-8")
    link = tmp_path / "advice.md"
    link.symlink_to(elsewhere)
    args = ["assess", "--example", "sql-dialect", "--report", str(link), "--json"]
    refused = CliRunner().invoke(cli, args)
    assert refused.exit_code == 2 and "--force" in refused.stdout
    assert CliRunner().invoke(cli, [*args, "--force"]).exit_code == 0
    assert not link.is_symlink() and link.read_text(encoding="utf-8").startswith("# LoRA advice")
    assert elsewhere.read_text(encoding="utf-8") == "not yours"
    dangling = tmp_path / "dangling.md"
    dangling.symlink_to(tmp_path / "missing" / "target.md")
    assert (
        CliRunner().invoke(cli, ["assess", "--example", "sql-dialect", "--report", str(dangling), "--json"]).exit_code
        == 0
    )
    assert not dangling.is_symlink() and not (tmp_path / "missing").exists()
