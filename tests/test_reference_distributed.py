"""`advisor reference-run --nproc 2 --sharding ddp|fsdp`: two real processes under torch.distributed (gloo on the
CPU), each rank measured beside the estimator's per-GPU peak."""

from __future__ import annotations

import json

import pytest

from advisor.reference.control import TEMP_PREFIX
from tests.conftest import run_advisor
from tests.test_reference_run import ONE_THREAD, tiny_config

pytest.importorskip("peft")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    config = tiny_config(folder)
    data = folder / "data.jsonl"
    data.write_text(
        "".join(json.dumps({"text": f"record {i}: some words to train on, again and again"}) + "\n" for i in range(20))
    )
    out = {}
    for sharding in ("ddp", "fsdp"):
        # ddp on a JSONL dataset; fsdp on the built-in corpus, with a markdown report
        extra = ["--dataset", str(data)] if sharding == "ddp" else ["--report", str(folder / "fsdp.md")]
        res = run_advisor(
            "reference-run",
            "--model",
            str(config),
            "--targets",
            "all-linear",
            "--nproc",
            "2",
            "--sharding",
            sharding,
            "--steps",
            "3",
            *extra,
            "--json",
            env=ONE_THREAD,
            timeout=300,  # two processes importing torch, transformers and peft on a busy machine
        )
        assert res.returncode == 0, res.stdout + res.stderr
        out[sharding] = json.loads(res.stdout)
    out["report"] = (folder / "fsdp.md").read_text()
    return out


def test_every_rank_of_both_methods_is_measured_beside_the_estimators_per_gpu_peak(runs):
    for sharding, run in ((s, runs[s]) for s in ("ddp", "fsdp")):
        assert run["nproc"] == 2 and run["backend"] == "gloo" and run["sharding"] == sharding
        assert run["complete"] and run["cut_short"] is None
        assert run["dataset"]["format"] == ("jsonl" if sharding == "ddp" else "builtin")
        for method in run["methods"]:
            assert [r["rank"] for r in method["ranks"]] == [0, 1]
            assert all(r["peak_bytes"] > 0 and len(r["losses"]) == 3 and r["steps"] == 3 for r in method["ranks"])
            assert method["estimated_peak_bytes"] > 0
            # The estimator within 5% of the smaller rank's peak (issue 13), and never above a rank's by more: gloo's
            # own collective buffers are left out of the peak (NCCL allocates none) and reported beside it. A tensor
            # FSDP hands to gloo (an all-gather output, a reduce-scatter input) is at times freed on gloo's thread,
            # unseen by the profiler, and counts on that rank until its address is reused (measure.py): it only adds,
            # seen up to 14% on one rank of this tiny model, so every rank is held to -20%..+5%.
            errors = method["errors"]
            smaller = min(range(2), key=lambda r: method["ranks"][r]["peak_bytes"])
            assert abs(errors[smaller]) < 0.05, (sharding, method["method"], errors)
            assert all(-0.20 < e < 0.05 for e in errors), (sharding, method["method"], errors)
            staged = [r["collective_staging_bytes"] for r in method["ranks"]]
            # FSDP's reduce-scatter goes through gloo's clone of its input: found and left out
            assert all(b is not None and (b > 0 or sharding == "ddp") for b in staged), (sharding, staged)


def test_fsdp_shards_what_ddp_replicates(runs):
    """Full fine-tuning: FSDP keeps half the weights, gradients and AdamW states per rank, DDP all of them, and the
    measured saving is the one the estimator predicts. Each side's smaller rank: a tensor freed on gloo's thread can
    count on one rank for a while (see above), which once put FSDP's larger rank at 0.82 of DDP's."""
    full = {s: next(m for m in runs[s]["methods"] if m["method"] == "full") for s in ("ddp", "fsdp")}
    measured = {s: min(r["peak_bytes"] for r in method["ranks"]) for s, method in full.items()}
    estimated = {s: method["estimated_peak_bytes"] for s, method in full.items()}
    assert measured["fsdp"] < 0.8 * measured["ddp"], (measured, estimated)
    assert measured["fsdp"] / measured["ddp"] == pytest.approx(estimated["fsdp"] / estimated["ddp"], rel=0.1)


def test_the_report_has_every_rank_beside_the_estimate(runs):
    report = runs["report"]
    assert report.startswith("## Multi-process reference run:")
    for method in runs["fsdp"]["methods"]:
        for rank in method["ranks"]:
            assert f"| {method['method']} | {rank['rank']} | 3 |" in report
    assert "`advisor estimate --gpus 2 --sharding fsdp`" in report


def test_ddp_ranks_start_from_the_same_weights_on_different_tokens(runs):
    full = next(m for m in runs["ddp"]["methods"] if m["method"] == "full")
    first = [r["losses"][0] for r in full["ranks"]]
    assert first[0] != first[1]  # each rank reads its own slice of the tokens


def test_max_seconds_stops_every_rank_cleanly_and_says_so(tmp_path):
    """A limit that passes while the processes start: both methods stop before their first step, exit 0, the
    run says what was skipped, and no temporary folder is left."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    args = ["--model", str(tiny_config(tmp_path)), "--nproc", "2", "--sharding", "ddp", "--max-seconds", "0.5"]
    res = run_advisor("reference-run", *args, "--json", env={**ONE_THREAD, "TMPDIR": str(tmp)}, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    run = json.loads(res.stdout)
    assert not run["complete"] and "full trained 0 of 4 steps" in run["cut_short"]
    assert all(m["ranks"] == [] and m["errors"] == [] for m in run["methods"])
    assert "cut short" in res.stderr
    assert list(tmp.glob(f"{TEMP_PREFIX}*")) == []


@pytest.mark.parametrize(
    "args, field",
    [
        (["--nproc", "2"], "--sharding"),
        (["--sharding", "ddp"], "--sharding"),
        (["--nproc", "9"], "--nproc"),
        (["--nproc", "2", "--sharding", "ddp", "--max-seconds", "0"], "max_seconds"),
        (["--nproc", "2", "--sharding", "ddp", "--dataset", "missing.jsonl"], "dataset"),
        (["--nproc", "2", "--sharding", "fsdp", "--report", "README.md"], "report"),  # exists, no --force
    ],
)
def test_a_multi_process_run_needs_both_flags(tmp_path, args, field):
    res = run_advisor("reference-run", "--model", str(tiny_config(tmp_path)), *args, "--json")
    assert res.returncode == 2, res.stdout + res.stderr
    assert field in [f["field"] for f in json.loads(res.stdout)["error"]["fields"]]
