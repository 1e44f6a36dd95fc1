"""Timing trust benchmark (not part of the test run), all measured in this one process.

    python tests/bench_timing.py [--repeat 7] [--min-time 0.5] [--device cpu]

For the seed example (16->32, 3x3, input (1, 16, 50, 129)) it times each item with dsconv's own
timing path and with a plain ``torch.utils.benchmark`` measurement of the same module, alternating
the two, and prints:
- the median of each, and dsconv / plain (1.00 means dsconv adds nothing to the timed region);
- how stable repeated medians are (CV of the repeats, per path).
"""

from __future__ import annotations

import argparse
import statistics

import torch
from torch.utils import benchmark

from dsconv_cli.core import counting
from dsconv_cli.core.spec import DType, resolve_spec
from dsconv_cli.pt.builder import build_variant
from dsconv_cli.pt.timing import TimingSettings, default_threads, time_module


def plain_median_ms(
    module: torch.nn.Module, shape: tuple[int, ...], device: str, threads: int, min_time: float
) -> float:
    model = module.to(device).eval()
    x = torch.randn(shape, device=device)
    with torch.inference_mode():
        model(x)
        timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=threads)
        return timer.blocked_autorange(min_run_time=min_time).median * 1e3


def cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.fmean(values)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--min-time", type=float, default=0.5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    threads = default_threads()
    spec = resolve_spec(rank=2, in_channels=16, out_channels=32)
    comparison = counting.compare(spec, (1, 16, 50, 129))
    depthwise, pointwise = spec.separable()
    items = {
        "standard": (spec.standard(), (1, 16, 50, 129)),
        "depthwise": ((depthwise,), (1, 16, 50, 129)),
        "pointwise": ((pointwise,), comparison.separable.stages[0].output_shape),
        "separable": (spec.separable(), (1, 16, 50, 129)),
    }
    settings = TimingSettings(args.device, DType.FLOAT32, threads, args.min_time)
    print(f"device {args.device}, {threads} threads, min-time {args.min_time} s, {args.repeat} alternating repeats")
    print(f"{'item':10} {'dsconv ms':>10} {'plain ms':>10} {'dsconv/plain':>13} {'CV dsconv':>10} {'CV plain':>9}")
    for name, (stages, shape) in items.items():
        ours, plain = [], []
        for _ in range(args.repeat):
            ours.append(time_module(build_variant(stages), shape, settings).latency.median_ms)
            plain.append(plain_median_ms(build_variant(stages), tuple(shape), args.device, threads, args.min_time))
        a, b = statistics.median(ours), statistics.median(plain)
        print(f"{name:10} {a:10.4f} {b:10.4f} {a / b:13.3f} {cv(ours):10.1%} {cv(plain):9.1%}")


if __name__ == "__main__":
    main()
