"""Start-up and counting benchmark (not part of the test run), all measured in this one run.

    python tests/bench_startup.py [--repeat 7]

1. Whole-process wall time of ``dsconv compare --no-bench`` beside a bare ``import torch`` and
   beside counting the same standard/separable pair with fvcore.
2. ``dsconv report configs/*.yaml --no-bench``: whole-process time, and the CPU time of the
   command itself once Python and dsconv are loaded.
3. A 10,000-point sweep (100 widths x 100 depth multipliers), counted in-process.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

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


ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(glob.glob(str(ROOT / "configs" / "*.yaml")))
COMMANDS["dsconv report configs/*.yaml --no-bench"] = [
    sys.executable, "-m", "dsconv_cli", "report", *CONFIGS, "--no-bench", "-f", "json"]  # fmt: skip

WIDTHS = ", ".join(str(8 * i) for i in range(1, 101))
MULTIPLIERS = ", ".join(str(i) for i in range(1, 101))
SWEEP_10K = (
    "name: sweep_10k\ninput_shape: [1, 16, 50, 129]\nlayers: [{out_channels: 8}]\n"
    f"sweep:\n  out_channels: [{WIDTHS}]\n  multiplier: [{MULTIPLIERS}]\n"
)


def in_process_cpu(argv: list[str], repeat: int) -> list[float]:
    """CPU seconds of ``dsconv ARGV`` inside this already-started process (output discarded)."""
    from dsconv_cli.cli.app import run

    times = []
    for _ in range(repeat):
        start = time.process_time()
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            code = run(argv)
        times.append(time.process_time() - start)
        assert code == 0, code
    return times


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
    print(f"{'command':46} {'median s':>9} {'min s':>7} {'x dsconv':>9}")
    for name, times in results.items():
        median = statistics.median(times)
        print(f"{name:46} {median:9.3f} {min(times):7.3f} {median / base:9.2f}")

    print()
    in_process_cpu(["report", *CONFIGS, "--no-bench", "-f", "json"], 1)  # first call: lazy imports
    cpu = in_process_cpu(["report", *CONFIGS, "--no-bench", "-f", "json"], args.repeat)
    print(f"report on {len(CONFIGS)} shipped configs, in-process CPU: median {statistics.median(cpu):.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sweep_10k.yaml")
        Path(path).write_text(SWEEP_10K)
        for fmt in ("json", "table"):
            (seconds,) = in_process_cpu(["compare", "--config", path, "--no-bench", "-f", fmt], 1)
            print(f"10,000-point sweep counted and rendered as {fmt}, in-process CPU: {seconds:.2f} s")


if __name__ == "__main__":
    main()
