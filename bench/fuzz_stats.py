"""How many fuzz cases the test suite tries, and how many fail.

Runs the tests marked `fuzz` (`pytest -m fuzz`: the Hypothesis properties of
tests/test_fuzz_*.py and the hostile-file runs) in this process (its report goes to stderr). Hypothesis reports every
case it runs to an observability callback; each case is counted under its test, as
passed, failed, or invalid (a draw Hypothesis discarded, not a run of the test). A test
without Hypothesis (one hostile file in a fresh process) counts as one case.

    .venv/bin/python bench/fuzz_stats.py [--json]

From the bench runner: `fuzz_statistics()` returns a `FuzzStats` (`.cases`, `.failed`,
`.tests`, `.seconds`, `.exit_code`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TestStats:
    test: str
    passed: int = 0
    failed: int = 0
    invalid: int = 0
    outcome: str = "not run"

    @property
    def cases(self) -> int:
        return self.passed + self.failed


@dataclass
class FuzzStats:
    tests: list[TestStats] = field(default_factory=list)
    seconds: float = 0.0
    exit_code: int = 0

    @property
    def cases(self) -> int:
        return sum(t.cases for t in self.tests)

    @property
    def failed(self) -> int:
        return sum(t.failed for t in self.tests)

    def as_dict(self) -> dict:
        return {"cases": self.cases, "failed": self.failed, "seconds": round(self.seconds, 1), "exit_code": self.exit_code,
                "tests": [{**asdict(t), "cases": t.cases} for t in self.tests]}


def fuzz_statistics(pytest_args: tuple[str, ...] = ()) -> FuzzStats:
    """Run `pytest -m fuzz` here and count the cases of each test."""
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
        exit_code = pytest.main(["-m", "fuzz", "-q", "-p", "no:cacheprovider", str(ROOT / "tests"), *pytest_args],
                                plugins=[Counting()])
    stats = FuzzStats(seconds=time.perf_counter() - start, exit_code=int(exit_code))
    for nodeid, outcome in outcomes.items():
        counts = observed.get(nodeid)
        if counts is None:  # not a Hypothesis test: one case
            counts = Counter({"passed": int(outcome == "passed"), "failed": int(outcome != "passed")})
        stats.tests.append(TestStats(test=nodeid, passed=counts["passed"], failed=counts["failed"],
                                     invalid=counts["gave_up"], outcome=outcome))
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print the statistics as JSON.")
    args = parser.parse_args()
    stats = fuzz_statistics()
    if args.json:
        print(json.dumps(stats.as_dict(), indent=2))
    else:
        width = max(len(t.test) for t in stats.tests)
        print(f"{'test':<{width}}  {'cases':>6}  {'failed':>6}  {'invalid':>7}  outcome")
        for t in stats.tests:
            print(f"{t.test:<{width}}  {t.cases:>6}  {t.failed:>6}  {t.invalid:>7}  {t.outcome}")
        print(f"fuzz: {stats.cases} cases, {stats.failed} failed, in {len(stats.tests)} tests ({stats.seconds:.0f} s)")
    sys.exit(stats.exit_code)


if __name__ == "__main__":
    main()
