"""Shared test data: the reference cases of CONVENTIONS.md, shipped config paths, exported rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dsconv_cli.present.rows import StageRow


@dataclass(frozen=True)
class Case:
    name: str
    layer: dict[str, Any]  # resolve_spec keywords (rank is taken from the input shape)
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    macs: int


# Standard-conv cases: the standard column of a comparison must equal these.
STANDARD_CASES = [
    # a: 32*16*3*3 = 4,608 params; 1*32*50*129 outputs * 16*9 = 29,721,600 MACs
    Case("a", dict(in_channels=16, out_channels=32, kernel_size=3, padding=1),
         (1, 16, 50, 129), (1, 32, 50, 129), 4_608, 29_721_600),
    # c1: a + 32 bias = 4,640; bias is not a MAC
    Case("c1", dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, bias=True),
         (1, 16, 50, 129), (1, 32, 50, 129), 4_640, 29_721_600),
    # d: 32*(16/16)*9 + 32 = 320; 1*32*50*129 * 1*9 = 1,857,600
    Case("d", dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, groups=16, bias=True),
         (1, 16, 50, 129), (1, 32, 50, 129), 320, 1_857_600),
    # e: W: floor((129 + 2 - 2 - 1)/2) + 1 = 65; 16*1*9 + 16 = 160; 16*50*65 * 9 = 468,000
    Case("e", dict(in_channels=16, out_channels=16, kernel_size=3, stride=(1, 2), padding=(2, 1),
                   dilation=(2, 1), groups=16, bias=True),
         (1, 16, 50, 129), (1, 16, 50, 65), 160, 468_000),
    # f: 64*1*5 + 64 = 384; 2*64*1000 * 5 = 640,000
    Case("f", dict(in_channels=64, out_channels=64, kernel_size=5, padding=2, groups=64, bias=True),
         (2, 64, 1000), (2, 64, 1000), 384, 640_000),
    # g: 8*27 + 8 = 224; 8*16*32*32 * 27 = 3,538,944
    Case("g", dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8, bias=True),
         (1, 8, 16, 32, 32), (1, 8, 16, 32, 32), 224, 3_538_944),
    # h: W: (65-1)*2 - 2 + 2 + 1 + 1 = 130; 16*1*3 + 16 = 64; N*C_in*prod(I)*(C_out/g)*3 = 16*50*65*3 = 156,000
    Case("h", dict(in_channels=16, out_channels=16, kernel_size=(1, 3), stride=(1, 2), padding=(0, 1),
                   output_padding=(0, 1), groups=16, bias=True, transposed=True),
         (1, 16, 50, 65), (1, 16, 50, 130), 64, 156_000),
    # i: 'same' at stride 1 keeps 50x129: as c1
    Case("i", dict(in_channels=16, out_channels=32, kernel_size=3, padding="same", bias=True),
         (1, 16, 50, 129), (1, 32, 50, 129), 4_640, 29_721_600),
    # x1: 32*16*2*4 + 32 = 4,128; 32*50*129 * 16*8 = 26,419,200
    Case("x1", dict(in_channels=16, out_channels=32, kernel_size=(2, 4), padding="same", bias=True),
         (1, 16, 50, 129), (1, 32, 50, 129), 4_128, 26_419_200),
    # x2: 16*(32/16)*3 + 32 = 128; 16*50*65 * 2*3 = 312,000
    Case("x2", dict(in_channels=16, out_channels=32, kernel_size=(1, 3), stride=(1, 2), padding=(0, 1),
                    output_padding=(0, 1), groups=16, bias=True, transposed=True),
         (1, 16, 50, 65), (1, 32, 50, 130), 128, 312_000),
    # x3: 16*32*3 + 32 = 1,568; 16*50*65 * 32*3 = 4,992,000
    Case("x3", dict(in_channels=16, out_channels=32, kernel_size=(1, 3), stride=(1, 2), padding=(0, 1),
                    output_padding=(0, 1), bias=True, transposed=True),
         (1, 16, 50, 65), (1, 32, 50, 130), 1_568, 4_992_000),
]  # fmt: skip

# Separable cases: the separable column of the 16->32 3x3 comparison.
SEPARABLE_CASES = [
    # b: depthwise 16*9 = 144, pointwise 32*16 = 512; MACs 16*50*129*9 = 928,800 + 32*50*129*16 = 3,302,400
    Case("b", dict(in_channels=16, out_channels=32, kernel_size=3, padding=1),
         (1, 16, 50, 129), (1, 32, 50, 129), 656, 4_231_200),
    # c2: b + 16 + 32 bias = 704
    Case("c2", dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, bias=True),
         (1, 16, 50, 129), (1, 32, 50, 129), 704, 4_231_200),
]  # fmt: skip


CONFIGS = Path(__file__).parent.parent / "configs"
SEED = str(CONFIGS / "seed_example.yaml")
SWEEP = str(CONFIGS / "sweep_kernel_channels.yaml")
# The seed example as config text, for tests that parse configs from strings.
SEED_TEXT = "input_shape: [1, 16, 50, 129]\nlayers: [{name: conv, out_channels: 32}]\n"


# Exported rows of one comparison, for renderer tests that need no counting.
def stage_row(variant: str, stage: str, params: int, macs: int, median: float | None = None) -> StageRow:
    timed = median is not None
    return StageRow(
        comparison="demo", variant=variant, stage=stage, batch=1, input_shape=[1, 2, 4], output_shape=[1, 4, 4],
        params=params, macs=macs, flops=2 * macs, elementwise_ops=0, buffers=0,
        weight_bytes=4 * params, min_bytes_moved=4 * params + 96, intermediate_bytes=0,
        arithmetic_intensity=2 * macs / (4 * params + 96), dtype="float32",
        channels_last=False if timed else None, compiled=False if timed else None, backward=False if timed else None,
        median_ms=median, iqr_ms=0.01 if timed else None, min_ms=median, cv=0.02 if timed else None,
        runs=10 if timed else None, device="cpu" if timed else None, threads=1 if timed else None,
        achieved_gflops=2 * macs / median / 1e6 if median else None, achieved_gbps=1.0 if timed else None,
        bound="memory" if timed else None, fraction_of_roof=0.25 if timed else None,
        peak_bytes=2048 if timed else None,
    )  # fmt: skip


STAGE_ROWS = [
    stage_row("standard", "standard", 24, 96, 0.5),
    stage_row("separable", "depthwise", 6, 24),
    stage_row("separable", "pointwise", 8, 32),
    stage_row("separable", "total", 14, 56, 0.25),
]
