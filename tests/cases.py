"""The reference cases of CONVENTIONS.md, shared by the counting, cross-check and CLI tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
