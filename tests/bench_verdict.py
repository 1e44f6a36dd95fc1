"""Does the verdict cry wolf? Quiet ``dsconv compare`` runs should be trusted, runs beside hogs never.

    python tests/bench_verdict.py [--quiet 20] [--busy 5] [--hogs 2] [--rounds 1] [--min-time 0.2] [--wait-quiet 0]

Runs ``--quiet`` fresh-process ``dsconv compare --format json`` runs and, interleaved with them, ``--busy``
runs with ``--hogs`` busy-looping Python processes beside them (started before, killed by PID after each
run, always), all sharing one new private cache, so the quiet runs build up their reference figures as
they would on a CI machine. Before each run it notes what else wanted the CPUs (``procs_running`` in
``/proc/stat``), so runs disturbed by other people's work can be told from false alarms; on a shared
machine ``--wait-quiet S`` waits up to S seconds before each quiet run for a moment when nothing else is
runnable. Prints each run, then: how many quiet runs were trusted, how many busy runs were flagged, and why
the others were not.
``--roofline`` times with the machine's peaks too (measured once, then reused), as a default run does.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def others_running() -> float:
    """Runnable tasks on the machine besides this script (mean of five samples over 40 ms)."""
    counts = []
    for _ in range(5):
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running"):
                counts.append(int(line.split()[1]) - 1)
        time.sleep(0.01)
    return sum(counts) / len(counts)


def wait_quiet(limit_s: float) -> float:
    """Wait (up to ``limit_s``) until nothing else has been runnable for three looks in a row; the wait."""
    start, calm = time.monotonic(), 0
    while calm < 3 and time.monotonic() - start < limit_s:
        calm = calm + 1 if others_running() < 0.5 else 0
        time.sleep(0.25)
    return time.monotonic() - start


def compare(args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    flags = ["--rounds", str(args.rounds), "--min-time", str(args.min_time)]
    flags += [] if args.roofline else ["--no-roofline"]
    out = subprocess.run([sys.executable, "-m", "dsconv_cli", "compare", *flags, "-f", "json"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return json.loads(out)["comparisons"][0]  # type: ignore[no-any-return]


def kind(reason: str) -> str:
    for start, name in (("the machine was busy", "run queue"), ("the hypervisor", "steal"),
                        ("the reference", "reference"), ("the rounds'", "rounds")):  # fmt: skip
        if reason.startswith(start):
            return name
    return reason


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", type=int, default=20)
    parser.add_argument("--busy", type=int, default=5)
    parser.add_argument("--hogs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--min-time", type=float, default=0.2)
    parser.add_argument("--roofline", action="store_true")
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="seconds to wait for a lull before a quiet run")
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="dsconv-bench-verdict-")
    env = {**os.environ, "DSCONV_CACHE_DIR": cache, "PYTHONPATH": str(ROOT)}
    every = max(args.quiet // max(args.busy, 1), 1)
    plan = [state for i in range(args.quiet) for state in (["quiet"] + (["busy"] if i % every == every - 1 else []))]
    plan += ["busy"] * (args.busy - plan.count("busy"))
    print(f"cache {cache}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}; plan: {' '.join(s[0] for s in plan)}")
    print(f"{'run':>3} {'state':5} {'others':>6} {'before':>7} {'after':>7} {'quiet':>7} {'trusted':>7}  reasons")
    seen: dict[str, list[dict[str, Any]]] = {"quiet": [], "busy": []}
    for n, state in enumerate(plan, 1):
        hogs: list[subprocess.Popen[bytes]] = []
        try:
            if state == "quiet" and args.wait_quiet > 0:
                wait_quiet(args.wait_quiet)
            if state == "busy":
                hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
                time.sleep(1.0)
            others = others_running() - len(hogs)  # what else wanted the CPUs: not counting this run's hogs
            c = compare(args, env)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
        e = c["environment"]
        c["others_before_run"] = others
        seen[state].append(c)
        quiet = e["quiet_reference_ms"]
        print(f"{n:3} {state:5} {others:6.1f} {e['before']['reference_ms']:7.3f} {e['after']['reference_ms']:7.3f} "
              f"{quiet if quiet is None else f'{quiet:.3f}'!s:>7} {c['trusted']!s:>7}  "
              f"{'; '.join(e['untrusted_because'])}")  # fmt: skip
    trusted = sum(c["trusted"] for c in seen["quiet"])
    flagged = sum(not c["trusted"] for c in seen["busy"])
    why = Counter(kind(r) for c in seen["quiet"] for r in c["environment"]["untrusted_because"])
    kinds = [{kind(r) for r in c["environment"]["untrusted_because"]} for c in seen["quiet"]]
    calm = [k for k in kinds if not k & {"run queue", "steal"}]  # runs the load signals passed
    print(f"\nquiet runs trusted: {trusted} of {len(seen['quiet'])}; untrusted because: {dict(why) or 'none'}")
    print(f"quiet runs the load signals passed (nothing else wanted the CPUs): {len(calm)}; of those the reference "
          f"flagged {sum('reference' in k for k in calm)}, the rounds {sum('rounds' in k for k in calm)}")  # fmt: skip
    print(f"runs beside {args.hogs} hogs flagged: {flagged} of {len(seen['busy'])}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
