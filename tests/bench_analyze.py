"""Whole-process time of `dsconv analyze` on a ResNet-50-sized model (meta device), beside `import torch`.

Goal: under 2 s beyond `import torch`. Prints figures; asserts nothing (speed lives here, not in tests).
    python tests/bench_analyze.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESNET50 = """
import torch
from torch import nn

class Bottleneck(nn.Module):
    def __init__(self, cin, mid, stride):
        super().__init__()
        cout = mid * 4
        self.body = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(inplace=True),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + (x if self.down is None else self.down(x)))

class ResNet50(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
                                  nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for mid, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
            for i in range(blocks):
                layers.append(Bottleneck(cin, mid, stride if i == 0 else 1))
                cin = mid * 4
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(2048, 1000)

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.layers(self.stem(x)), 1), 1))
"""


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    target = Path("/tmp/dsconv_bench_resnet50.py")
    target.write_text(RESNET50, encoding="utf-8")
    analyze = [sys.executable, "-m", "dsconv_cli", "analyze", f"{target}:ResNet50", "--input-shape", "1,3,224,224",
               "-f", "json", "--convert", "all"]  # fmt: skip
    torch_only = [sys.executable, "-c", "import torch"]
    a, t = [], []
    for _ in range(args.repeat):  # interleaved, A B A B
        a.append(timed(analyze))
        t.append(timed(torch_only))
    ma, mt = statistics.median(a), statistics.median(t)
    print(f"dsconv analyze ResNet-50 (meta, --convert all, json): {ma:.2f} s median of {args.repeat}")
    print(f"python -c 'import torch':                            {mt:.2f} s")
    print(f"beyond import torch:                                 {ma - mt:.2f} s (goal: under 2 s)")


if __name__ == "__main__":
    main()
