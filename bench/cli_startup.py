"""How long `infraops --help` takes, against a bare interpreter start.

Goal: under 0.3 s of wall time. The ratio to `python -c pass`, measured in
the same run, says how much of that is ours.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 15
GOAL_SECONDS = 0.3


def wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def median_of(argv: list[str]) -> float:
    wall(argv)  # warm the page cache
    return statistics.median(wall(argv) for _ in range(RUNS))


def main() -> int:
    baseline = median_of([sys.executable, "-c", "pass"])
    help_time = median_of([sys.executable, "-m", "infraops", "--help"])
    print(f"python -c pass:       {baseline * 1000:7.1f} ms (median of {RUNS})")
    print(f"infraops --help:      {help_time * 1000:7.1f} ms (median of {RUNS})")
    print(f"ratio to bare start:  {help_time / baseline:7.2f}x")
    verdict = "met" if help_time < GOAL_SECONDS else "MISSED"
    print(f"goal < {GOAL_SECONDS} s:        {verdict}")
    return 0 if help_time < GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
