"""Start-up benchmark (not part of the test run): whole-process wall time, medians of repeated runs.

    python tests/bench_startup.py [--repeat 7]

Compares ``dsconv compare --no-bench`` with a bare ``import torch`` and with counting the same
standard/separable pair with fvcore, all measured in this one run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

FVCORE_PAIR = """
import warnings, torch
from torch import nn
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fvcore.nn import FlopCountAnalysis
    x = torch.zeros(1, 16, 50, 129)
    for m in (nn.Conv2d(16, 32, 3, padding=1, bias=False),
              nn.Sequential(nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),
                            nn.Conv2d(16, 32, 1, bias=False))):
        a = FlopCountAnalysis(m, x)
        a.unsupported_ops_warnings(False)
        print(a.total())
"""

COMMANDS = {
    "dsconv --help": [sys.executable, "-m", "dsconv_cli", "--help"],
    "dsconv compare --no-bench": [sys.executable, "-m", "dsconv_cli", "compare", "--no-bench"],
    "dsconv compare --no-bench -f json": [
        sys.executable,
        "-m",
        "dsconv_cli",
        "compare",
        "--no-bench",
        "-f",
        "json",
    ],
    'python -c "import torch"': [sys.executable, "-c", "import torch"],
    "fvcore, same pair": [sys.executable, "-c", FVCORE_PAIR],
}


def wall_times(argv: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    results = {name: wall_times(argv, args.repeat) for name, argv in COMMANDS.items()}
    base = statistics.median(results["dsconv compare --no-bench"])
    print(f"{'command':36} {'median s':>9} {'min s':>7} {'x dsconv':>9}")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"{name:36} {median:9.3f} {min(times):7.3f} {median / base:9.2f}")


if __name__ == "__main__":
    main()
