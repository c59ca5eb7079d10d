"""How many fuzz cases the test suite tries, and how many fail.

Runs the tests marked `fuzz` (`pytest -m fuzz`: the Hypothesis properties of
tests/test_fuzz_*.py and the hostile-file runs); pytest's own report goes to stderr.
Hypothesis reports every case it runs to an observability callback; each case is counted
under its test as passed, failed, or invalid (a draw Hypothesis discarded, not a run of
the test). A test without Hypothesis (one hostile file in a fresh process) is one case.

    .venv/bin/python bench/fuzz_stats.py [--json]

`measure()` runs it in a fresh interpreter and returns the JSON as a dict: `cases`,
`failed`, `seconds`, `exit_code` and, per test, `test`, `cases`, `passed`, `failed`,
`invalid` and `outcome`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure() -> dict:
    """The fuzz statistics, from `bench/fuzz_stats.py --json` in a fresh interpreter."""
    res = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--json"], cwd=ROOT, capture_output=True, text=True
    )
    if not res.stdout.strip():
        raise RuntimeError(f"bench/fuzz_stats.py printed nothing (exit {res.returncode}): {res.stderr[-2000:]}")
    return json.loads(res.stdout)


def fuzz_statistics() -> dict:
    """Run `pytest -m fuzz` in this process and count the cases of each test."""
    import pytest

    observed: dict[str, Counter] = {}
    outcomes: dict[str, str] = {}

    def on_observation(observation) -> None:
        if observation.type == "test_case":
            observed.setdefault(observation.property, Counter())[observation.status] += 1

    class Counting:
        """A pytest plugin: listens to Hypothesis (imported once pytest can rewrite its asserts) and to each test."""

        def pytest_sessionstart(self, session) -> None:
            from hypothesis.internal import observability

            observability.OBSERVABILITY_COLLECT_COVERAGE = False  # tracing every line would slow the cases down
            observability.add_observability_callback(on_observation)

        def pytest_sessionfinish(self, session) -> None:
            from hypothesis.internal import observability

            observability.remove_observability_callback(on_observation)

        def pytest_runtest_logreport(self, report) -> None:
            if report.when == "call" or report.outcome != "passed":
                outcomes[report.nodeid] = report.outcome

    start = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # pytest's own report; stdout is for the statistics
        exit_code = pytest.main(
            # -n 0: in this process (pyproject's addopts ask for xdist workers, whose cases this plugin cannot see)
            ["-m", "fuzz", "-q", "-n", "0", "-p", "no:cacheprovider", str(ROOT / "tests")],
            plugins=[Counting()],
        )
    tests = []
    for nodeid, outcome in outcomes.items():
        counts = observed.get(nodeid) or Counter(
            {"passed": int(outcome == "passed"), "failed": int(outcome != "passed")}
        )
        tests.append(
            {
                "test": nodeid,
                "cases": counts["passed"] + counts["failed"],
                "passed": counts["passed"],
                "failed": counts["failed"],
                "invalid": counts["gave_up"],
                "outcome": outcome,
            }
        )
    return {
        "cases": sum(t["cases"] for t in tests),
        "failed": sum(t["failed"] for t in tests),
        "seconds": round(time.perf_counter() - start, 1),
        "exit_code": int(exit_code),
        "tests": tests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print the statistics as JSON.")
    args = parser.parse_args()
    stats = fuzz_statistics()
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        width = max(len(t["test"]) for t in stats["tests"])
        print(f"{'test':<{width}}  {'cases':>6}  {'failed':>6}  {'invalid':>7}  outcome")
        for t in stats["tests"]:
            print(f"{t['test']:<{width}}  {t['cases']:>6}  {t['failed']:>6}  {t['invalid']:>7}  {t['outcome']}")
        print(
            (
                f"fuzz: {stats['cases']} cases, {stats['failed']} failed, in {len(stats['tests'])} tests "
                f"({stats['seconds']:.0f} s)"
            )
        )
    sys.exit(stats["exit_code"])


if __name__ == "__main__":
    main()
