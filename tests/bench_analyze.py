"""Time and memory of `dsconv analyze`. Prints figures; asserts nothing (speed lives here, not in tests).

1. The whole process on a ResNet-50-sized model (meta device, --convert all, JSON), beside `import torch`
   (goal: under 2 s beyond it).
2. The counting alone, in a fresh process after `import torch` and building the model on the meta device
   (PyTorch's first-call costs included): ResNet-50 (goal: 0.5 s), ViT-B/16 (goal: 3 s) and a 7 B-parameter
   language model; with the growth of the process's peak memory while counting, beside what a CPU forward of
   the model would hold (its weights and activations, as the count reports them).
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


COUNT = """
import resource, sys, time
sys.path.insert(0, "tests")
import torch
from dsconv_cli.pt import inputs, trace
from dsconv_cli.core.spec import DType, model_inputs
{setup}
with torch.device("meta"):
    model = {build}.eval()
spec = model_inputs({shapes}, {dtypes}, {keywords})
call = inputs.make_inputs(spec, "meta", DType.FLOAT32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
totals = trace.count_model(model, call)
took = time.perf_counter() - start
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
m = totals.memory
print(took, grew * 1024, m.param_bytes + m.buffer_bytes + m.activation_bytes, totals.params, totals.macs)
"""
MODELS = {
    "ResNet-50, 1x3x224x224": (f"exec({RESNET50!r})", "ResNet50()", [(1, 3, 224, 224)], [], []),
    "ViT-B/16, 1x3x224x224": ("from models import ViT", "ViT.b16()", [(1, 3, 224, 224)], [], []),
    "7B LM, 1x128 tokens": ("from models import make_lm", "make_lm('7b')", [(1, 128)], ["int64"],
                            [("attention_mask", (1, 128), "bool")]),
}  # fmt: skip


def count_alone(name: str, repeat: int) -> None:
    setup, build, shapes, dtypes, keywords = MODELS[name]
    code = COUNT.format(setup=setup, build=build, shapes=shapes, dtypes=dtypes, keywords=keywords)
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
        runs.append([float(v) for v in out.stdout.split()])
    took, grew, forward, params, macs = (statistics.median(r[i] for r in runs) for i in range(5))
    print(
        f"{name:24} count {took:5.2f} s, peak memory +{grew / 2**20:6.0f} MiB (a CPU forward holds "
        f"{forward / 2**20:8,.0f} MiB); {params:,.0f} params, {macs:,.0f} MACs"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for name in MODELS:
        count_alone(name, args.repeat)
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
