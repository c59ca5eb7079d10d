"""The reference run: real training of tiny configs on the CPU, checked against exact arithmetic.

The runs here are real (transformers models, PEFT adapters, torch AdamW, the profiler's
allocator events); the configs are tiny so the file runs in well under a minute.
Subprocesses run with one thread: on a busy two-core machine OpenMP's second thread
turns millisecond steps into hundreds of milliseconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.fmt import MISSING, fmt_bytes, fmt_count, fmt_number, fmt_pct, fmt_ratio, fmt_seconds
from tests.conftest import ROOT, default_sigint, run_advisor

pytest.importorskip("peft")

TINY = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "vocab_size": 512,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "tie_word_embeddings": False,
    "max_position_embeddings": 256,
}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
CLI_STEPS = 6  # the steps of the `cli_run` fixture's runs


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(folder: Path, **changes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps({**TINY, **changes}))
    return path


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """`advisor reference-run --model <tiny config.json> --json`, once, as a user or an agent runs it."""
    folder = tmp_path_factory.mktemp("tiny")
    config = tiny_config(folder)
    report = folder / "run.md"
    res = run_advisor(
        "reference-run",
        "--model",
        str(config),
        "--targets",
        "all-linear",
        "--rank",
        "8",
        "--steps",
        str(CLI_STEPS),
        "--json",
        "--report",
        str(report),
        env=ONE_THREAD,
    )
    assert res.returncode == 0, res.stderr + res.stdout
    return json.loads(res.stdout), report


def test_lora_trainable_params_equal_the_estimators_exact_count(cli_run):
    from advisor.estimate import TrainingSettings, estimate_training_memory
    from advisor.model_specs import resolve_model_spec

    run, _ = cli_run
    spec = resolve_model_spec(run["model"]["spec"])
    est = estimate_training_memory(spec, TrainingSettings(method="lora", rank=8, targets="all-linear"))
    lora = run["lora"]["figures"]
    assert lora["trainable_params"]["measured"] == est.trainable_params
    # every linear of a layer: q, k, v, o (64 -> 64, 64 -> 32 twice, 64 -> 64), gate, up (64 -> 128), down (128 -> 64)
    shapes = [(64, 64), (64, 32), (64, 32), (64, 64), (64, 128), (64, 128), (128, 64)]
    assert est.trainable_params == 2 * sum(8 * (i + o) for i, o in shapes)
    assert run["full"]["figures"]["trainable_params"]["measured"] == est.total_params


def test_adapter_checkpoint_is_trainable_params_times_fp32_plus_the_header(cli_run):
    run, _ = cli_run
    lora = run["lora"]["runs"][0]
    ckpt = lora["figures"]["checkpoint_bytes"]["measured"]
    tensors = lora["figures"]["trainable_params"]["measured"] * 4  # PEFT keeps adapters in fp32
    assert ckpt - tensors == lora["checkpoint_header_bytes"]
    assert 0 < lora["checkpoint_header_bytes"] < 64 * 1024
    full = run["full"]["figures"]
    assert (
        full["checkpoint_bytes"]["measured"] == full["weight_bytes"]["measured"] == full["total_params"]["measured"] * 2
    )


def test_gradients_and_adamw_states_are_trainable_params_times_their_dtype(cli_run):
    run, _ = cli_run
    for method, size in (("full", 2), ("lora", 4)):  # bf16 weights trained in full; fp32 adapters
        figures = run[method]["figures"]
        n = figures["trainable_params"]["measured"]
        assert figures["gradient_bytes"]["measured"] == n * size
        assert figures["optimizer_state_bytes"]["measured"] == 2 * n * size  # exp_avg and exp_avg_sq
        assert figures["gradient_bytes"]["error"] == 0 and figures["optimizer_state_bytes"]["error"] == 0


def test_loss_decreases_on_the_built_in_corpus(cli_run):
    run, _ = cli_run
    assert run["dataset"]["source"] == "built-in corpus"
    for method in ("full", "lora"):
        result = run[method]
        losses = [s["loss"] for s in result["runs"][-1]["steps"]]
        assert len(losses) == CLI_STEPS
        assert result["loss_last"] < result["loss_first"], losses


def test_merged_and_unmerged_outputs_agree(cli_run):
    run, _ = cli_run
    serving = run["serving"]
    assert serving["outputs_match"] is True
    for m in serving["measurements"]:
        # the agreement means something only if the trained adapter changes the outputs far more than merging does
        assert m["merged_max_abs_diff"] < 0.1 * m["adapter_max_abs_diff"]
        assert m["base_seconds"] > 0 and m["unmerged_seconds"] > 0 and m["merged_seconds"] > 0


def test_the_tiny_model_runs_whole_and_its_peak_matches_the_estimator(cli_run):
    run, _ = cli_run
    assert run["scale"]["kind"] == "full" and run["scale"]["depths"] == [2]
    assert run["complete"] is True
    for method in ("full", "lora"):
        figures = run[method]["figures"]
        assert run[method]["basis"] == "measured"
        assert abs(figures["peak_bytes"]["error"]) < 0.05
        assert figures["weight_bytes"]["error"] == 0
        assert all(s["peak_bytes"] > 0 for s in run[method]["runs"][0]["steps"])


# mermaid's xychart lexer (packages/mermaid/src/diagrams/xychart/parser/xychart.jison): a number in a data list
# or an axis range is NUMBER_WITH_DECIMAL, with no exponent and no thousands separator.
XYCHART_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)")


def parse_xychart(block: str) -> dict:
    """The statements of an xychart block as mermaid's grammar reads them; fails on what it would not parse."""
    lines = [line.strip() for line in block.strip().splitlines()]
    assert lines[0] == "xychart-beta"
    chart = {"bars": [], "lines": []}

    def numbers(inner: str) -> list[float]:
        tokens = [t.strip() for t in inner.split(",")]
        assert all(XYCHART_NUMBER.fullmatch(t) for t in tokens), tokens
        return [float(t) for t in tokens]

    for line in lines[1:]:
        if m := re.fullmatch(r'title "([^"]*)"', line):
            chart["title"] = m[1]
        elif m := re.fullmatch(r"x-axis \[(.*)\]", line):
            chart["x"] = re.findall(r'"([^"]*)"', m[1])
            assert ", ".join(f'"{x}"' for x in chart["x"]) == m[1]
        elif m := re.fullmatch(r'y-axis "([^"]*)" (\S+) --> (\S+)', line):
            chart["y"] = (m[1], *numbers(f"{m[2]}, {m[3]}"))
        elif m := re.fullmatch(r"(bar|line)(?: \"[^\"]*\")? \[(.*)\]", line):
            chart[m[1] + "s"].append(numbers(m[2]))
        else:
            raise AssertionError(f"not an xychart statement: {line!r}")
    return chart


def memory_chart_of(report: str) -> dict:
    blocks = re.findall(r"```mermaid\n(.*?)```", report, re.S)
    assert len(blocks) == 1
    return parse_xychart(blocks[0])


def test_report_has_the_table_and_a_mermaid_memory_chart(cli_run):
    run, report = cli_run
    text = report.read_text()
    assert text.startswith("## Reference run: ")
    assert fmt_count(run["lora"]["figures"]["trainable_params"]["measured"]) in text
    chart = memory_chart_of(text)
    # one series, each method's bar in a category of its own: neither can hide the other
    assert len(chart["bars"]) == 1 and not chart["lines"]
    names = ("weight_bytes", "gradient_bytes", "optimizer_state_bytes", "activation_bytes", "peak_bytes")
    expected = [run[method]["figures"][name]["measured"] for name in names for method in ("full", "lora")]
    assert len(chart["x"]) == len(chart["bars"][0]) == len(expected) == len(set(chart["x"]))
    assert all(label.endswith((", full", ", LoRA")) for label in chart["x"])
    unit = chart["y"][0]
    size = {"GiB": 1 << 30, "MiB": 1 << 20, "KiB": 1 << 10, "bytes": 1}[unit]
    assert max(expected) / size >= 1 and (unit == "GiB" or max(expected) / size < 1024)
    for drawn, measured in zip(chart["bars"][0], expected, strict=True):
        assert drawn == pytest.approx(measured / size, rel=5e-3, abs=1e-9)
    assert chart["y"][1] == 0 and chart["y"][2] >= max(chart["bars"][0])


@pytest.mark.parametrize("scale", [1e-6, 1e6, 1e9])
def test_the_chart_stays_plain_decimals_whatever_the_models_size(cli_run, scale):
    """Terabytes (an 8B+ model extrapolated) and a few bytes alike: no `1.61e+03`, which xychart cannot read."""
    from advisor.reference import ReferenceRun
    from advisor.report.render import render_reference_run

    data = json.loads(json.dumps(cli_run[0]))
    for method in ("full", "lora"):
        for figure in data[method]["figures"].values():
            if isinstance(figure, dict) and isinstance(figure.get("measured"), int):
                figure["measured"] = round(figure["measured"] * scale)
    text = render_reference_run(ReferenceRun.model_validate(data))
    chart = memory_chart_of(text)
    assert "e+" not in text.split("```mermaid")[1].split("```")[0]
    assert 1 <= max(chart["bars"][0]) < 1024 * 1.01 or chart["y"][0] == "GiB"


def test_report_renders_from_the_models_json_alone(cli_run):
    from advisor.reference import ReferenceRun
    from advisor.report.render import render_reference_run

    run, report = cli_run
    assert render_reference_run(ReferenceRun.model_validate_json(json.dumps(run))) == report.read_text()


# --- the terminal table: `advisor reference-run` without --json, and `advisor assess --reference-run` ---

# The rows print_run_table prints, by label: the figure each shows and how advisor.fmt writes it.
TABLE_ROWS = {
    "trainable params": ("trainable_params", fmt_count),
    "weights": ("weight_bytes", fmt_bytes),
    "gradients": ("gradient_bytes", fmt_bytes),
    "AdamW states": ("optimizer_state_bytes", fmt_bytes),
    "activations": ("activation_bytes", fmt_bytes),
    "outputs held": ("output_bytes", fmt_bytes),
    "peak of a step": ("peak_bytes", fmt_bytes),
    "checkpoint": ("checkpoint_bytes", fmt_bytes),
}
LABELS = (*TABLE_ROWS, "step time", "loss first->last")
WIDE = "200"  # COLUMNS of a terminal wide enough for every cell


def run_table(run, capsys) -> tuple[dict[str, list[str]], str]:
    """What print_run_table prints: the table's cells by row label (blank cells dropped), and the whole
    output as one line of words (rich wraps the lines under the table at the console's width)."""
    from advisor.cli.reference import print_run_table

    print_run_table(run)
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        cells = re.split(r"\s{2,}", line.strip())  # rich sets columns apart by two spaces or more
        if cells[0] in LABELS:
            rows[cells[0]] = cells[1:]
    return rows, " ".join(out.split())


def expected_rows(run) -> dict[str, list[str]]:
    """Each row: measured, estimated and error for full fine-tuning, then for LoRA, then full / LoRA measured
    for the figures the run compares (those of `Savings`)."""
    from advisor.reference.result import Savings

    full, lora = run.full.figures, run.lora.figures
    rows = {}
    for label, (name, fmt) in TABLE_ROWS.items():
        cells = []
        for figures in (full, lora):
            c = getattr(figures, name) if figures else None
            cells += [fmt(c.measured), fmt(c.estimated), fmt_pct(c.error, signed=True)] if c else [MISSING] * 3
        compared = full and lora and name in Savings.model_fields
        cells.append(fmt_ratio(getattr(full, name).measured / getattr(lora, name).measured if compared else None))
        rows[label] = cells
    steps = [f.step_seconds if f else None for f in (full, lora)]
    ratio = steps[0] / steps[1] if None not in steps else None  # an extrapolation withheld has no ratio
    rows["step time"] = [fmt_seconds(steps[0]), fmt_seconds(steps[1]), fmt_ratio(ratio)]
    rows["loss first->last"] = [
        f"{fmt_number(r.loss_first)} -> {fmt_number(r.loss_last)}" for r in (run.full, run.lora)
    ]
    return rows


def test_the_run_table_prints_every_figure_measured_beside_its_estimate(cli_run, capsys, monkeypatch):
    from advisor.reference import ReferenceRun

    monkeypatch.setenv("COLUMNS", WIDE)
    run = ReferenceRun.model_validate(cli_run[0])
    rows, text = run_table(run, capsys)
    assert rows == expected_rows(run)
    # the LoRA figures that are exact arithmetic (see the tests above): 2 layers x rank 8 x (in + out) of
    # every linear, fp32 gradients, and AdamW's two fp32 states
    lora_params = 2 * 8 * (128 + 96 + 96 + 128 + 192 + 192 + 192)
    assert rows["trainable params"][3:5] == [fmt_count(lora_params)] * 2 == ["16.4 K"] * 2
    assert rows["gradients"][3:5] == [fmt_bytes(4 * lora_params)] * 2 == ["64.00 KiB"] * 2
    assert rows["AdamW states"][3:5] == [fmt_bytes(8 * lora_params)] * 2 == ["128.00 KiB"] * 2
    model = run.model
    assert text.startswith(f"Reference run: {model.id} ({model.model_type}, 2 layers) on CPU, the whole model ")
    sv = run.serving
    assert sv.outputs_match is True
    x = sv.measurements[0]
    assert sv.base_seconds == statistics.median(x.base_samples) and len(x.base_samples) == x.rounds >= 7
    lo, hi = x.merged_overhead_interval

    def pct(v):
        return fmt_pct(v, 0, signed=True)

    assert (
        f"Serving (batch {sv.batch} x {sv.seq} tokens, measured, medians of {x.rounds} interleaved rounds; 90% "
        f"intervals): base {fmt_seconds(sv.base_seconds)} ({fmt_seconds(sv.base_interval[0])} to "
        f"{fmt_seconds(sv.base_interval[1])}), unmerged adapter {fmt_seconds(sv.unmerged_seconds)} "
        f"({pct(sv.unmerged_overhead)}, {pct(x.unmerged_overhead_interval[0])} to "
        f"{pct(x.unmerged_overhead_interval[1])}), merged {fmt_seconds(sv.merged_seconds)} "
        f"({pct(sv.merged_overhead)}, {pct(lo)} to {pct(hi)}); merged outputs match unmerged: yes; merged times "
        f"like base: {'yes' if sv.merged_times_like_base else 'NO: a measurement problem, see the notes'}"
    ) in text
    full, lora = run.full.figures, run.lora.figures
    assert (
        f"Step times (median after warm-up, measured; 90% intervals): full {fmt_seconds(full.step_seconds)} "
        f"({fmt_seconds(full.step_seconds_interval[0])} to {fmt_seconds(full.step_seconds_interval[1])}), LoRA "
        f"{fmt_seconds(lora.step_seconds)} ({fmt_seconds(lora.step_seconds_interval[0])} to "
        f"{fmt_seconds(lora.step_seconds_interval[1])}), full/LoRA {fmt_ratio(run.savings.step_seconds, 2)} "
        f"({fmt_ratio(run.savings.step_seconds_interval[0], 2)} to "
        f"{fmt_ratio(run.savings.step_seconds_interval[1], 2)})"
    ) in text
    assert f"Scale: {run.scale.reason}" in text and run.scale.reason == "whole model: it has 2 layers"
    assert f"Measured with {run.device.memory_mechanism}; {run.device.optimizer}; {fmt_seconds(run.seconds)}." in text
    assert run.notes and all(f"- {' '.join(note.split())}" in text for note in run.notes)


def test_the_run_table_cuts_no_figure_at_its_narrowest(cli_run, capsys, monkeypatch):
    from advisor.reference import ReferenceRun

    monkeypatch.setenv("COLUMNS", "80")
    run = ReferenceRun.model_validate(cli_run[0])
    rows, _ = run_table(run, capsys)
    assert rows == expected_rows(run)
    # the widest figures a run can print: terabytes, trillions of parameters, a long error
    data = json.loads(json.dumps(cli_run[0]))
    for method in ("full", "lora"):
        for figure in data[method]["figures"].values():
            if isinstance(figure, dict) and isinstance(figure.get("measured"), int):
                figure["measured"] = figure["measured"] * 10**9 + 123_456_789
                figure["error"] = -0.999
    run = ReferenceRun.model_validate(data)
    rows, text = run_table(run, capsys)
    assert rows == expected_rows(run) and "…" not in text


def test_the_run_table_prints_a_model_id_with_brackets_as_it_is(cli_run, capsys, monkeypatch):
    """Rich reads "[/v2]" as a closing markup tag (MarkupError) and "[bold]" as a style: neither is ours."""
    from advisor.reference import ReferenceRun

    monkeypatch.setenv("COLUMNS", WIDE)
    data = json.loads(json.dumps(cli_run[0]))
    data["model"]["id"] = "ckpt[/v2][bold]x"
    data["notes"] = [*data["notes"], "a note with [/] and [red]markup[/red]"]
    data["scale"]["reason"] = "whole model [/it] has 2 layers"
    run = ReferenceRun.model_validate(data)
    rows, text = run_table(run, capsys)
    assert rows == expected_rows(run)
    assert "Reference run: ckpt[/v2][bold]x (" in text
    assert "- a note with [/] and [red]markup[/red]" in text and "Scale: whole model [/it] has 2 layers" in text


# --- bad input: exit 2 with a JSON error naming the field ---------------------


def _invoke(*args, env: dict | None = None):
    from click.testing import CliRunner

    from advisor.cli import cli

    res = CliRunner().invoke(cli, list(args), env=env)
    return res.exit_code, res.output


def _error(output: str) -> dict:
    return json.loads(output)["error"]


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("missing.jsonl", None, "no such file"),
        ("empty.txt", b"  \n", "is empty"),
        ("binary.txt", b"\x00\x01\x02", "binary"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not UTF-8"),
        ("bad.jsonl", b'{"text": "ok"}\n{not json}\n', "line 2 is not valid JSON"),
        ("fields.jsonl", b'{"body": "no text field"}\n', "needs a `text` field"),
        ("array.jsonl", b'["a list"]\n', "must be a JSON object"),
        ("numbers.jsonl", b'{"prompt": 1, "completion": "x"}\n', "must be strings"),
        ("surrogate.jsonl", b'{"text": "ok"}\n{"text": "half a pair \\ud800 here"}\n', "line 2 holds an unpaired"),
        ("pair.jsonl", b'{"prompt": "\\udc00", "completion": "x"}\n', "line 1 holds an unpaired"),
    ],
)
def test_bad_dataset_files_exit_2_naming_the_field(tmp_path, name, content, expected):
    config = tiny_config(tmp_path / "m")
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, out = _invoke("reference-run", "--model", str(config), "--dataset", str(path), "--json")
    assert code == 2, out
    err = _error(out)
    assert err["code"] == "invalid_file"
    assert err["fields"][0]["field"] == "dataset"
    assert expected in err["message"]


@pytest.mark.parametrize(
    "content",
    [b"\x10\x00\x00\x00\x00\x00\x00\x00not json header", b"", b"\xff" * 64],
    ids=["bad-header", "empty", "garbage"],
)
def test_a_corrupt_model_safetensors_exits_2_naming_the_model(tmp_path, content):
    folder = tmp_path / "model"
    tiny_config(folder)
    (folder / "model.safetensors").write_bytes(content)
    code, out = _invoke("reference-run", "--model", str(folder), "--steps", "2", "--json")
    assert code == 2, out
    err = _error(out)
    assert err["code"] == "invalid_file" and err["fields"][0]["field"] == "model"
    assert "cannot be loaded" in err["message"] and str(folder) in err["message"]


def test_a_truncated_model_safetensors_exits_2_naming_the_model(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    folder = tmp_path / "model"
    AutoModelForCausalLM.from_config(
        LlamaConfig(**{k: v for k, v in TINY.items() if k != "model_type"}), dtype=torch.bfloat16
    ).save_pretrained(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, out = _invoke("reference-run", "--model", str(folder), "--steps", "2", "--json")
    assert code == 2, out
    assert _error(out)["fields"][0]["field"] == "model"


def test_a_report_name_too_long_for_the_file_system_exits_2_before_the_run(tmp_path):
    report = tmp_path / ("r" * 300 + ".md")
    started = time.monotonic()
    code, out = _invoke("reference-run", "--model", str(tiny_config(tmp_path)), "--report", str(report), "--json")
    assert code == 2, out
    err = _error(out)
    assert err["fields"][0]["field"] == "report" and "303 bytes long" in err["message"]
    assert time.monotonic() - started < 5 and [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_dataset_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    from advisor.reference import corpus

    monkeypatch.setattr(corpus, "MAX_DATASET_BYTES", 100)
    path = tmp_path / "big.txt"
    path.write_text("x" * 200)
    with pytest.raises(Exception) as info:
        corpus.load_corpus(path)
    assert info.value.fields[0].field == "dataset" and "limit" in info.value.message


@pytest.mark.parametrize(
    "args, field, expected",
    [
        (["--model", "no-such-model"], "model", "unknown model"),
        (["--model", "roberta-base"], "model", "encoder"),
        (["--model", "{config}", "--method", "qlora", "--device", "cpu"], "method", "QLoRA needs a CUDA GPU"),
        (["--model", "{config}", "--rank", "0"], "rank", "greater than or equal to 1"),
        (["--model", "{config}", "--targets", "no_such_proj"], "targets", "do not match"),
        (["--model", "{config}", "--steps", "1"], "steps", "first step warms up"),
        (["--model", "{config}", "--max-seconds", "0"], "max_seconds", "positive"),
        (["--model", "{config}", "--method", "full"], "--method", "full"),
        (["--model", "{config}", "--seq", "300"], "seq", "longer than the 256 positions"),
    ],
)
def test_bad_requests_exit_2_naming_the_field(tmp_path, args, field, expected):
    config = tiny_config(tmp_path / "m")
    code, out = _invoke("reference-run", *[a.format(config=config) for a in args], "--json")
    assert code == 2, out
    err = _error(out)
    assert field in [f["field"] for f in err["fields"]], err
    assert expected in json.dumps(err)


def test_cuda_without_a_gpu_is_refused(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    code, out = _invoke("reference-run", "--model", str(tiny_config(tmp_path)), "--device", "cuda", "--json")
    assert code == 2 and _error(out)["fields"][0]["field"] == "device"


def test_an_existing_report_is_refused_before_the_run(tmp_path):
    report = tmp_path / "r.md"
    report.write_text("keep me")
    started = time.monotonic()
    code, out = _invoke("reference-run", "--model", str(tiny_config(tmp_path)), "--report", str(report), "--json")
    assert code == 2 and _error(out)["fields"][0]["field"] == "report"
    assert report.read_text() == "keep me" and time.monotonic() - started < 5


def test_preflight_refuses_a_run_that_does_not_fit_with_the_numbers(tmp_path):
    free = 100_000
    code, out = _invoke(
        "reference-run", "--model", str(tiny_config(tmp_path)), "--json", env={"ADVISOR_FREE_MEMORY_BYTES": str(free)}
    )
    assert code == 2, out
    err = _error(out)
    assert err["code"] == "refused"
    assert (
        "would not fit" in err["message"]
        and f"{fmt_bytes(free)} is free" in err["message"]
        and "ADVISOR_FREE_MEMORY_BYTES" in err["message"]
    )


# --- the Python API: proxies, budgets, real weights --------------------------


def test_max_seconds_stops_cleanly_and_says_what_was_not_measured(tmp_path, capsys, monkeypatch):
    from advisor.reference import default_settings, reference_run

    started = time.monotonic()
    run = reference_run(str(tiny_config(tmp_path)), default_settings(), steps=10_000, max_seconds=1.5)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5 + 5  # the step under way finishes, then the run stops
    assert run.complete is False and "not measured" in run.cut_short
    full = run.full.runs[0]
    assert 0 < len(full.steps) < 10_000 and full.steps_planned == 10_000
    assert run.lora.runs == [] and run.savings is None and run.serving.measurements == []
    # the table shows dashes where LoRA did not run, and no serving line
    monkeypatch.setenv("COLUMNS", WIDE)
    rows, text = run_table(run, capsys)
    assert rows == expected_rows(run)
    assert all(cells[3:] == [MISSING] * 4 for label, cells in rows.items() if label in TABLE_ROWS)
    assert "Serving" not in text


def test_a_run_report_shows_the_versions_the_run_had_not_those_of_the_machine_rendering_it(tmp_path, monkeypatch):
    """A stored run renders the same anywhere (its report needs no versions stub); a new run records what is
    installed, here a faked peft."""
    import advisor.versions
    from advisor.reference import default_settings, reference_run
    from advisor.report.render import render_reference_run

    real = advisor.versions.installed_version
    monkeypatch.setattr(advisor.versions, "installed_version", lambda name: "9.9.9" if name == "peft" else real(name))
    run = reference_run(str(tiny_config(tmp_path)), default_settings(), steps=2, max_seconds=0.5)
    assert run.versions["peft"] == "9.9.9" and real("peft") != "9.9.9"
    report = render_reference_run(run)
    assert report.splitlines()[-1].startswith("Versions: ") and "peft 9.9.9" in report.splitlines()[-1]
    monkeypatch.undo()
    assert render_reference_run(run) == report


def test_a_deep_model_runs_as_proxies_and_extrapolates_exactly_where_the_arithmetic_is_exact(
    tmp_path, monkeypatch, capsys
):
    from advisor.estimate import estimate_training_memory
    from advisor.model_specs import resolve_model_spec
    from advisor.reference import default_settings, reference_run
    from advisor.reference.model import at_depth

    config = tiny_config(tmp_path, num_hidden_layers=6)
    spec = resolve_model_spec(str(config))
    settings = default_settings(targets="all-linear")
    # Free memory between what the 2-layer proxy needs and what the whole model needs: proxies only.
    full = settings.model_copy(update={"method": "full"})
    proxy = estimate_training_memory(at_depth(spec, 2), full)
    whole = estimate_training_memory(spec, full)
    proxy_needs = 1.25 * proxy.peak_bytes + proxy.sizes["weights"]  # the starting weights stay in host memory
    assert proxy_needs + 1024 < 1.25 * whole.peak_bytes + whole.sizes["weights"]
    monkeypatch.setenv("ADVISOR_FREE_MEMORY_BYTES", str(int(proxy_needs) + 1024))
    run = reference_run(spec, settings, steps=3)
    assert run.scale.kind == "proxy" and run.scale.depths == [1, 2] and run.scale.target_layers == 6
    assert "MiB is free" in run.scale.reason and "q(6) = q(1)" in run.scale.extrapolation
    for method in ("full", "lora"):
        result = getattr(run, method)
        assert result.basis == "extrapolated"
        for name in ("total_params", "trainable_params", "weight_bytes", "gradient_bytes", "optimizer_state_bytes"):
            figure = getattr(result.figures, name)
            assert figure.measured == figure.estimated, (method, name)
        assert abs(result.figures.peak_bytes.error) < 0.05
    monkeypatch.setenv("COLUMNS", WIDE)
    rows, text = run_table(run, capsys)
    assert rows == expected_rows(run)
    assert f"({spec.model_type}, 6 layers) on CPU, proxy: measured at 1 and 2 layers, extrapolated to 6 " in text


def test_a_deep_model_that_fits_runs_whole_after_the_proxies(tmp_path):
    from advisor.reference import default_settings, reference_run

    run = reference_run(str(tiny_config(tmp_path, num_hidden_layers=3)), default_settings(), steps=2, max_seconds=120)
    assert run.scale.kind == "full" and run.scale.depths == [1, 2, 3]
    assert run.full.basis == "measured" and [r.layers for r in run.full.runs] == [1, 2, 3]
    assert any(n.startswith("check of the proxy method") for n in run.notes)


def test_a_model_folder_trains_its_own_weights_with_its_own_tokenizer(tmp_path):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, LlamaConfig

    from advisor.reference import default_settings, reference_run

    folder = tmp_path / "model"
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_config(
        LlamaConfig(**{k: v for k, v in TINY.items() if k != "model_type"}), dtype=torch.bfloat16
    )
    model.save_pretrained(folder)
    words = sorted(set((Path(__file__).parents[1] / "advisor/reference/corpus.txt").read_text().split()))
    vocab = {"[UNK]": 0, **{w: i + 1 for i, w in enumerate(words[:500])}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    dataset = tmp_path / "data.jsonl"
    dataset.write_text(
        "\n".join(
            json.dumps({"prompt": "Low-rank adaptation ", "completion": f"keeps weights frozen {i}."})
            for i in range(20)
        )
    )

    run = reference_run(str(folder), default_settings(), steps=2, dataset=dataset)
    assert run.model.weights.startswith("pretrained")
    assert (
        run.dataset.tokenizer.startswith("tokenizer.json")
        and run.dataset.format == "jsonl"
        and run.dataset.records == 20
    )
    # the first loss is the saved model's own on this data: rebuild it and compute the same number
    from advisor.model_specs import resolve_model_spec
    from advisor.reference.corpus import batches, load_corpus, tokenize

    ids = batches(
        tokenize(load_corpus(dataset), resolve_model_spec(str(folder)), 512, needed=64), batch=1, seq=64, steps=1
    )[0]
    x = torch.tensor(ids)
    expected = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)(input_ids=x, labels=x).loss.item()
    assert run.full.runs[0].steps[0].loss == pytest.approx(expected, rel=1e-3)


# --- interrupts --------------------------------------------------------------


def test_sigint_and_sigterm_stop_cleanly_with_no_output_files_and_no_temp_dirs(tmp_path):
    """Ctrl-C exits 130, SIGTERM 143; both mid-training, both leave nothing behind. The two run side by side."""
    runs = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        folder = tmp_path / sig.name
        temp = folder / "tmp"
        temp.mkdir(parents=True)
        report = folder / "run.md"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "advisor",
                "reference-run",
                "--model",
                str(tiny_config(folder)),
                "--steps",
                "10000",
                "--json",
                "--report",
                str(report),
            ],
            cwd=ROOT,
            env={**os.environ, **ONE_THREAD, "TMPDIR": str(temp)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=default_sigint,
        )
        runs[sig] = (proc, temp, report)
    try:
        for sig, (proc, temp, _) in runs.items():
            deadline = time.monotonic() + 60
            while not any(temp.glob("advisor-reference-*")):  # the runs have begun
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(1)
            proc.send_signal(sig)
        for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
            proc, temp, report = runs[sig]
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == code, err
            assert json.loads(out)["error"]["code"] == "interrupted"
            assert not report.exists() and not list(report.parent.glob(".run.md.*"))
            assert list(temp.iterdir()) == []
    finally:
        for proc, _, _ in runs.values():
            if proc.poll() is None:
                proc.kill()


def test_the_cli_imports_no_torch():
    code = "import sys, advisor.cli, advisor.cli.reference, advisor.reference; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert res.stdout.strip() == "False", res.stderr


def test_a_run_stopped_before_any_depth_still_prints_and_reports(tmp_path):
    """--max-seconds can run out while the weights are prepared, before the first proxy depth: the table and the
    report say so (they indexed the last depth measured, and failed with an internal error)."""
    config = tiny_config(tmp_path / "m", num_hidden_layers=4)
    report = tmp_path / "run.md"
    table = run_advisor("reference-run", "--model", str(config), "--max-seconds", "0.001")
    assert table.returncode == 0, table.stderr
    assert "stopped before any depth was measured" in " ".join(table.stdout.split())
    res = run_advisor(
        "reference-run", "--model", str(config), "--max-seconds", "0.001", "--json", "--report", str(report)
    )
    assert res.returncode == 0, res.stderr
    run = json.loads(res.stdout)
    assert (run["complete"], run["scale"]["depths"]) == (False, [])
    assert "**Proxy:** stopped before any depth was measured" in report.read_text()


@pytest.mark.parametrize("loss", ["fused", "trl_chunked"])
def test_a_loss_the_run_does_not_measure_is_refused(tmp_path, loss):
    """The training forward computes transformers' own loss: a fused or TRL head would be estimated for a loss the
    run does not measure. The CLI has no --loss for reference-run; the Python API and MCP take settings whole."""
    from advisor.errors import InvalidInput
    from advisor.reference import default_settings, reference_run

    with pytest.raises(InvalidInput) as info:
        reference_run(str(tiny_config(tmp_path)), default_settings(loss=loss))
    assert [(f.field, f.allowed) for f in info.value.fields] == [("loss", ["standard"])]


def test_memory_is_recorded_over_the_first_steps_and_later_steps_add_nothing_to_the_peak(tmp_path, monkeypatch):
    """The run records memory over its first TRACKED_STEPS steps only (the CPU profiler's analysis grows with every
    step it records); recording every step of a longer run finds no later step above them, and the same peak."""
    import advisor.reference.train
    from advisor.reference import default_settings, reference_run
    from advisor.reference.measure import TRACKED_STEPS

    config, steps = tiny_config(tmp_path), TRACKED_STEPS + 4
    short = reference_run(str(config), default_settings(), steps=steps)
    monkeypatch.setattr(advisor.reference.train, "TRACKED_STEPS", steps)
    every = reference_run(str(config), default_settings(), steps=steps)
    for method in ("full", "lora"):
        recorded = [s.peak_bytes for s in getattr(every, method).runs[0].steps]
        assert len(recorded) == steps and all(p > 0 for p in recorded)
        assert max(recorded[TRACKED_STEPS:]) <= max(recorded[:TRACKED_STEPS])
        first = [s.peak_bytes for s in getattr(short, method).runs[0].steps]
        assert first[:TRACKED_STEPS] == recorded[:TRACKED_STEPS] and first[TRACKED_STEPS:] == [None] * 4
        assert getattr(short, method).figures.peak_bytes.measured == max(recorded)
