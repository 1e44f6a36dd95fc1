"""Small models written here (torchvision's wheel does not import beside the CPU torch build)."""

from __future__ import annotations

import torch
from torch import nn


class VGGish(nn.Module):
    """Plain 3x3 conv stacks with max-pooling and a linear head."""

    def __init__(self, width: int = 8, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width),
            nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )  # fmt: skip
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.block = nn.Sequential(
            nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False), nn.BatchNorm2d(mid), nn.ReLU6(),
            nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return x + y if self.use_res else y


class TinyMobileNetV2(nn.Module):
    """A MobileNetV2-style net: a stem conv, inverted residuals with identity adds, a classifier."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.blocks = nn.Sequential(InvertedResidual(8, 8, 1, 1), InvertedResidual(8, 12, 2, 6),
                                    InvertedResidual(12, 12, 1, 6))  # fmt: skip
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(12, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


class TinyUNet(nn.Module):
    """Down with strided convs, up with transposed convs, skip connections concatenated."""

    def __init__(self) -> None:
        super().__init__()
        self.enc1 = nn.Conv2d(1, 8, 3, padding=1)
        self.enc2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec = nn.Conv2d(16, 8, 3, padding="same")
        self.out = nn.Conv2d(8, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.enc1(x))
        b = torch.relu(self.enc2(a))
        return self.out(torch.relu(self.dec(torch.cat([self.up(b), a], dim=1))))


class GTConvBlock(nn.Module):
    """GTCRN-style: split channels, dilated depthwise + pointwise on one half, shuffle the halves back."""

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        half = channels // 2
        self.depthwise = nn.Conv2d(half, half, (3, 3), padding=(dilation, 1), dilation=(dilation, 1), groups=half)
        self.pointwise = nn.Conv2d(half, half, 1)
        self.norm = nn.BatchNorm2d(half)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.chunk(x, 2, dim=1)
        b = self.act(self.norm(self.pointwise(self.depthwise(b))))
        y = torch.stack([a, b], dim=2)  # channel shuffle: interleave the halves
        return y.flatten(1, 2)


class TinyGTCRN(nn.Module):
    """An encoder conv, two GT blocks sharing one module (called twice), a GRU over time, a transposed decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Conv2d(3, 16, (1, 5), stride=(1, 2), padding=(0, 2))
        self.block = GTConvBlock(16, 2)
        self.dilated = GTConvBlock(16, 5)
        self.gru = nn.GRU(16 * 9, 32, batch_first=True)
        self.fc = nn.Linear(32, 16 * 9)
        self.decoder = nn.ConvTranspose2d(16, 2, (1, 5), stride=(1, 2), padding=(0, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(self.dilated(self.block(self.encoder(x))))  # self.block runs twice
        n, c, t, f = y.shape
        seq, _ = self.gru(y.permute(0, 2, 1, 3).reshape(n, t, c * f))
        z = self.fc(seq).reshape(n, t, c, f).permute(0, 2, 1, 3)
        return self.decoder(z + y)


class SharedHeads(nn.Module):
    """One conv at two attribute paths (a weight shared between them)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = self.a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


class NoConvs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 4)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.attn(x, x, x)
        return self.fc(y)


def make_vgg(width: int = 8) -> VGGish:
    return VGGish(width)


instance = TinyUNet()
not_a_model = 42


def broken_factory() -> nn.Module:
    raise RuntimeError("weights file missing")


class FailsInForward(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class NeedsValues(nn.Module):
    """A forward that reads a value (``.item()``), so it cannot run on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y * 2 if float(y.sum().item()) > 0 else y


class BuildsWithValues(nn.Module):
    """A constructor that reads its own weights, so it cannot be built on the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.scale = float(self.conv.weight.abs().max().item()) + 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * self.scale
