"""Quiet against busy: the seed pair's speedup and verdict with and without CPU hogs beside it.

    python tests/bench_busy.py [--runs 3] [--hogs 2] [--min-time 0.3]

Runs ``dsconv compare --format json`` on the quiet machine, then with ``--hogs`` busy-looping Python
processes beside it, alternating (quiet, busy, quiet, busy, ...), and prints each run's median speedup,
its rounds and whether dsconv trusted it. The goal: a busy run either lands within 25% of the quiet
median or says ``trusted: false``; never a confident wrong number.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def run(min_time: float) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, "-m", "dsconv_cli", "compare", "--min-time", str(min_time), "-f", "json"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return json.loads(out)["comparisons"][0]  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=0.3)
    args = parser.parse_args()
    results: dict[str, list[dict]] = {"quiet": [], "busy": []}  # type: ignore[type-arg]
    for _ in range(args.runs):
        results["quiet"].append(run(args.min_time))
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
        try:
            time.sleep(1.0)
            results["busy"].append(run(args.min_time))
        finally:
            for hog in hogs:
                hog.kill()
        time.sleep(1.0)
    quiet_median = statistics.median(c["speedup"]["median"] for c in results["quiet"] if c["trusted"])
    print(f"{'state':6} {'speedup':>8} {'rounds':>24} {'trusted':>8} {'within 25%':>11}")
    wrong = 0
    for state, comparisons in results.items():
        for c in comparisons:
            s = c["speedup"]
            close = abs(s["median"] / quiet_median - 1) <= 0.25
            rounds = " ".join(f"{r:.2f}" for r in s["rounds"])
            print(f"{state:6} {s['median']:8.2f} {rounds:>24} {c['trusted']!s:>8} {close!s:>11}")
            wrong += c["trusted"] and not close
    print(f"quiet median {quiet_median:.2f}×; confident wrong numbers: {wrong}")


if __name__ == "__main__":
    main()
