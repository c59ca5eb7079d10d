"""Throughput and peak memory of `advisor inspect-data` on a generated JSONL of chat records.

Writes a JSONL of chat records (system, user, assistant; ~1.3 kB each, random words, one in three with an
order number and a date, one in 200 with an e-mail address, one in 100 repeated exactly) of the size asked to a
temporary folder, runs `python -m advisor inspect-data FILE --json` on it in a fresh process, and prints the size,
wall time, MB/s, peak resident memory of that process (the kernel's ru_maxrss of the child) and the machine's load
average before and after, then deletes the file. Side by side, `json.loads` of every line of the same file in a
fresh process: the floor any JSONL reader in Python pays. Targets (issue 11): 1 GB in under 120 s, peak RSS under
1 GB.

    .venv/bin/python bench/inspect_data.py [--mb 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VOCAB = ["".join(random.Random(i).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(2 + i % 8)) for i in range(5000)]


def write_jsonl(path: Path, megabytes: float, seed: int = 0) -> int:
    """A JSONL of chat records of about `megabytes` MB; returns the number of records."""
    rng = random.Random(seed)
    target = int(megabytes * 1_000_000)
    written = records = 0
    previous = None
    with path.open("w", encoding="utf-8") as fh:
        while written < target:
            if previous is not None and records % 100 == 99:
                line = previous  # an exact repeat
            else:
                user = " ".join(rng.choices(VOCAB, k=40))
                if records % 3 == 0:  # numbers are common in chat data, and they wake the digit checks
                    user += (
                        f" my order {rng.randrange(10**6, 10**8)} from {rng.randrange(1, 29)}.{rng.randrange(1, 13)}"
                    )
                if records % 200 == 7:
                    user += f" write to user{records}@example.com"
                reply = " ".join(rng.choices(VOCAB, k=160))
                record = {
                    "messages": [
                        {"role": "system", "content": "You are a helpful support assistant."},
                        {"role": "user", "content": user},
                        {"role": "assistant", "content": reply},
                    ]
                }
                line = json.dumps(record) + "\n"
            fh.write(line)
            previous = line
            written += len(line)
            records += 1
    return records


def run_child(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, peak RSS in MiB of this child, the result): each child measured on its own, so the peak is
    the child's (ru_maxrss of RUSAGE_CHILDREN is the largest of the children waited for so far)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(after, before) / 1024, result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1024, help="size of the generated JSONL in MB (default 1024)")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="advisor-bench-") as tmp:
        path = Path(tmp) / "chat.jsonl"
        start = time.perf_counter()
        records = write_jsonl(path, args.mb)
        size = path.stat().st_size
        print(f"generated {size / 1e6:,.0f} MB, {records:,} chat records in {time.perf_counter() - start:.0f} s")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        floor = [sys.executable, "-c", f"import json\nfor line in open({str(path)!r}, 'rb'): json.loads(line)"]
        floor_s, floor_rss, _ = run_child(floor)
        inspect = [sys.executable, "-m", "advisor", "inspect-data", str(path), "--json"]
        os.environ.update(env)
        seconds, rss, result = run_child(inspect)
        if result.returncode != 0:
            raise SystemExit(f"inspect-data failed: {result.stdout[-2000:]} {result.stderr[-2000:]}")
        report = json.loads(result.stdout)
    load_after = os.getloadavg()
    figures = {
        "mb": size / 1e6,
        "records": records,
        "seconds": seconds,
        "mb_per_s": size / 1e6 / seconds,
        "peak_rss_mib": rss,
        "json_floor_seconds": floor_s,
        "load_before": load_before[0],
        "load_after": load_after[0],
        "cpus": os.cpu_count(),
    }
    print(
        f"inspect-data: {seconds:.1f} s for {size / 1e6:,.0f} MB = {figures['mb_per_s']:.1f} MB/s; "
        f"peak RSS {rss:,.0f} MiB"
    )
    print(
        f"json.loads of every line alone (the floor): {floor_s:.1f} s; inspect-data / floor = {seconds / floor_s:.1f}x"
    )
    print(
        f"found: {report['examples']:,} examples, {report['duplicates']['exact']:,} exact duplicates, "
        f"{report['duplicates']['near']:,} near, {report['pii']['email']:,} e-mail addresses"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        "(other processes share it)"
    )
    projected = seconds * 1000 / (size / 1e6)
    print(f"at this rate 1 GB takes {projected:.0f} s (target 120 s); peak RSS target 1024 MiB")
    return figures


if __name__ == "__main__":
    main()
