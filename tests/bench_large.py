"""The slow paths, as whole processes (not part of the test run): figures printed, goals beside them.

    python tests/bench_large.py

1. A 10,000-layer stack counted and written as JSON          (goal: under 2 s)
2. A 10,000-point sweep counted and written as JSON          (goal: under 3 s and 200 MB)
3. ``dsconv peaks`` printing cached CPU peaks                (goal: without importing torch)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STACK = "input_shape: [1, 8, 16, 16]\nlayers:\n  - {out_channels: 8, repeat: 10000}\n"
WIDTHS = ", ".join(str(i) for i in range(1, 1001))
SWEEP = (f"input_shape: [1, 16, 32, 32]\nlayers: [{{out_channels: 32}}]\nsweep: {{out_channels: [{WIDTHS}], "
         "kernel_size: [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]}\n")  # fmt: skip


def measure(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak resident MB (the child's), stdout."""
    start = time.perf_counter()
    code = ("import resource, sys; from dsconv_cli.cli.app import run; rc = run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    wall = time.perf_counter() - start
    peak_kb = int(result.stderr.strip().splitlines()[-1])
    return wall, peak_kb / 1024, result.stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        stack, sweep = Path(folder) / "stack.yaml", Path(folder) / "sweep.yaml"
        stack.write_text(STACK)
        sweep.write_text(SWEEP)
        wall, mb, out = measure(["report", str(stack), "--no-bench", "-f", "json"])
        layers = len(json.loads(out)["configs"][0]["points"][0]["layers"])
        print(f"{layers:,}-layer stack as JSON:   {wall:5.2f} s, {mb:5.0f} MB   (goal: under 2 s)")
        wall, mb, out = measure(["report", str(sweep), "--no-bench", "-f", "json"])
        points = len(json.loads(out)["configs"][0]["points"])
        print(f"{points:,}-point sweep as JSON:   {wall:5.2f} s, {mb:5.0f} MB   (goal: under 3 s and 200 MB)")
        env = {**os.environ, "DSCONV_CACHE_DIR": folder}
        subprocess.run(
            [sys.executable, "-m", "dsconv_cli", "peaks", "--device", "cpu"], env=env, check=True, capture_output=True
        )  # fmt: skip  (measures and caches once)
        code = ("import sys, time; t = time.perf_counter(); from dsconv_cli.cli.app import run; "
                "rc = run(['peaks', '--device', 'cpu']); "
                "print(f'{time.perf_counter() - t:.2f} s in-process, torch imported: {\"torch\" in sys.modules}', "
                "file=sys.stderr)")  # fmt: skip
        cached = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        print(f"dsconv peaks, cached:           {cached.stderr.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
