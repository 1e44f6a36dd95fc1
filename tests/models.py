"""Small models written here (torchvision's wheel does not import beside the CPU torch build)."""

from __future__ import annotations

from dataclasses import dataclass

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


# --- published architectures, written out as torchvision builds them (torchvision does not import here) --


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible``: round to the divisor, never more than 10% down."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def conv_bn_act(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1,
                act: type[nn.Module] | None = nn.ReLU6) -> nn.Sequential:  # fmt: skip
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                               nn.BatchNorm2d(cout)]  # fmt: skip
    if act is not None:
        layers.append(act(inplace=True) if act in (nn.ReLU6, nn.SiLU) else act())
    return nn.Sequential(*layers)


class MobileNetV2Block(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = int(round(cin * expand))
        self.residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [conv_bn_act(cin, hidden, 1)] if expand != 1 else []
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]  # fmt: skip
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 (width multiplier, 1000 classes)."""

    SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1))  # fmt: skip

    def __init__(self, width_mult: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        cin = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        layers: list[nn.Module] = [conv_bn_act(3, cin, 3, 2)]
        for t, c, n, s in self.SETTINGS:
            cout = make_divisible(c * width_mult)
            for i in range(n):
                layers.append(MobileNetV2Block(cin, cout, s if i == 0 else 1, t))
                cin = cout
        layers.append(conv_bn_act(cin, last, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.act = nn.SiLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(self.act(self.fc1(scale))))


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, k: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = make_divisible(cin * expand)
        self.residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [conv_bn_act(cin, hidden, 1, act=nn.SiLU)] if hidden != cin else []
        layers += [conv_bn_act(hidden, hidden, k, stride, groups=hidden, act=nn.SiLU),
                   SqueezeExcitation(hidden, max(1, cin // 4)), conv_bn_act(hidden, cout, 1, act=None)]  # fmt: skip
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


class EfficientNetB0(nn.Module):
    """torchvision's EfficientNet-B0 (stochastic depth is the identity in eval)."""

    STAGES = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
              (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))  # fmt: skip

    def __init__(self, width_mult: float = 1.0, classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, make_divisible(32 * width_mult), 3, 2, act=nn.SiLU)]
        for t, k, s, cin, cout, n in self.STAGES:
            cin, cout = make_divisible(cin * width_mult), make_divisible(cout * width_mult)
            for i in range(n):
                layers.append(MBConv(cin if i == 0 else cout, cout, k, s if i == 0 else 1, t))
        last_in = make_divisible(320 * width_mult)
        layers.append(conv_bn_act(last_in, 4 * last_in, 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(4 * last_in, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1)
        return self.classifier(torch.flatten(x, 1))


# --- models whose inputs are not one float tensor, and the cases of the analyze issue ---------------------------


@dataclass(frozen=True)
class LMConfig:
    """A decoder-only language model's size, as a model card gives it."""

    vocab: int = 256
    dim: int = 32
    layers: int = 2
    heads: int = 4
    hidden: int = 64  # the MLP's inner width (SwiGLU)
    max_len: int = 64
    tie: bool = True  # the output head shares the embedding's weight


LLAMA_7B = LMConfig(32000, 4096, 32, 32, 11008, 4096, tie=False)  # 6.76 B params: 27 GB of float32 weights


class RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class DecoderBlock(nn.Module):
    def __init__(self, c: LMConfig) -> None:
        super().__init__()
        self.heads = c.heads
        self.attn_norm = RMSNorm(c.dim)
        self.qkv = nn.Linear(c.dim, 3 * c.dim, bias=False)
        self.out = nn.Linear(c.dim, c.dim, bias=False)
        self.mlp_norm = RMSNorm(c.dim)
        self.gate = nn.Linear(c.dim, c.hidden, bias=False)
        self.up = nn.Linear(c.dim, c.hidden, bias=False)
        self.down = nn.Linear(c.hidden, c.dim, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.out(y.transpose(1, 2).reshape(n, t, d))
        h = self.mlp_norm(x)
        return x + self.down(nn.functional.silu(self.gate(h)) * self.up(h))


@dataclass
class LMOutput:
    """What the language model returns, as a model library's output class does."""

    logits: torch.Tensor
    hidden: tuple[torch.Tensor, ...]


class TinyLM(nn.Module):
    """A causal language model built from its config: token and position embeddings, pre-norm decoder blocks
    (fused qkv, scaled-dot-product attention with a causal and a padding mask, SwiGLU MLP), a head tied to the
    token embedding."""

    def __init__(self, vocab: int = 256, dim: int = 32, layers: int = 2, heads: int = 4, hidden: int = 64,
                 max_len: int = 64, tie: bool = True) -> None:  # fmt: skip
        super().__init__()
        c = LMConfig(vocab, dim, layers, heads, hidden, max_len, tie)
        self.tokens = nn.Embedding(c.vocab, c.dim)
        self.positions = nn.Embedding(c.max_len, c.dim)
        self.blocks = nn.ModuleList(DecoderBlock(c) for _ in range(c.layers))
        self.norm = RMSNorm(c.dim)
        self.head = nn.Linear(c.dim, c.vocab, bias=False)
        if c.tie:
            self.head.weight = self.tokens.weight

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> LMOutput:
        n, t = input_ids.shape
        ids = torch.arange(t, device=input_ids.device)
        x = self.tokens(input_ids) + self.positions(ids)
        mask = torch.ones(t, t, dtype=torch.bool, device=input_ids.device).tril()[None, None]
        if attention_mask is not None:  # True: a real token; False: padding, which no query attends to
            mask = mask & attention_mask[:, None, None, :].bool()
        hidden = []
        for block in self.blocks:
            x = block(x, mask)
            hidden.append(x)
        return LMOutput(self.head(self.norm(x)), tuple(hidden))


def make_lm(size: str = "tiny") -> TinyLM:
    """The language model at a named size: ``tiny`` or ``7b`` (LLaMA-7B's shape: 6.76 B params, 27 GB in float32)."""
    c = {"tiny": LMConfig(), "7b": LLAMA_7B}[size]
    return TinyLM(c.vocab, c.dim, c.layers, c.heads, c.hidden, c.max_len, c.tie)


class ViT(nn.Module):
    """A Vision Transformer as torchvision writes it: a strided patch conv, a class token, encoder blocks of
    nn.MultiheadAttention and an MLP, a linear head. ``ViT()`` is tiny; ``ViT.b16()`` is ViT-B/16."""

    def __init__(self, image: int = 32, patch: int = 8, dim: int = 32, depth: int = 2, heads: int = 4,
                 mlp: int = 64, classes: int = 10) -> None:  # fmt: skip
        super().__init__()
        self.conv_proj = nn.Conv2d(3, dim, patch, patch)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        self.layers = nn.Sequential(*(ViTBlock(dim, heads, mlp) for _ in range(depth)))
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, classes)

    @classmethod
    def b16(cls) -> ViT:
        return cls(224, 16, 768, 12, 12, 3072, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding
        return self.head(self.ln(self.layers(x))[:, 0])


class ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.self_attention(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class ReadsValues(nn.Module):
    """Attention, scaled-dot-product attention and an LSTM, the forward reading a value where ``reads`` (so it
    cannot run on the meta device): the CPU, with its fused fast paths, must count what the meta device counts."""

    def __init__(self, dim: int = 16, heads: int = 2, reads: bool = True) -> None:
        super().__init__()
        self.reads = reads
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.encoder = nn.TransformerEncoderLayer(dim, heads, 32, dropout=0.0, batch_first=True)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.lstm = nn.LSTM(dim, dim, batch_first=True)
        self.act = nn.Hardswish(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.reads and float(x[0, 0, 0]) == float("inf"):  # never true: reading a value (no arithmetic) is all
            x = -x
        y = self.attn(x, x, x)[0]
        y = self.encoder(y)
        n, t, d = y.shape
        q, k, v = self.qkv(y).view(n, t, 3, 2, d // 2).permute(2, 0, 3, 1, 4)
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(n, t, d)
        return self.act(self.lstm(y)[0])


class TiedConvs(nn.Module):
    """Two 3x3 convs sharing only their weight (each has its own bias): a Siamese pair."""

    def __init__(self) -> None:
        super().__init__()
        self.left = nn.Conv2d(4, 8, 3, padding=1)
        self.right = nn.Conv2d(4, 8, 3, padding=1)
        self.right.weight = self.left.weight
        self.mix = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(torch.cat([self.left(x), self.right(x.flip(-1))], dim=1))


class SEBlock(nn.Module):
    """MobileNetV3's block: 1x1 expand, depthwise, squeeze-excite (its own 1x1 convs run next), 1x1 project."""

    def __init__(self, channels: int = 8, expand: int = 16) -> None:
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(channels, expand, 1, bias=False), nn.BatchNorm2d(expand),
                                    nn.Hardswish(inplace=True))  # fmt: skip
        self.depthwise = nn.Sequential(nn.Conv2d(expand, expand, 3, padding=1, groups=expand, bias=False),
                                       nn.BatchNorm2d(expand), nn.Hardswish(inplace=True))  # fmt: skip
        self.se = SqueezeExcitation(expand, 4)
        self.project = nn.Sequential(nn.Conv2d(expand, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.se(self.depthwise(self.expand(x))))


class Filterbank(nn.Module):
    """GTCRN's ERB filterbank: a linear layer whose weight is a fixed, frozen parameter, beside trainable convs."""

    def __init__(self, bins: int = 65, bands: int = 24) -> None:
        super().__init__()
        self.erb = nn.Linear(bins, bands, bias=False)
        self.erb.weight = nn.Parameter(torch.rand(bands, bins), requires_grad=False)
        self.conv = nn.Conv2d(2, 8, (1, 3), padding=(0, 1))
        self.register_buffer("window", torch.hann_window(bins))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.erb(x * self.window))


class DictModel(nn.Module):
    """Takes a dict of inputs (an image and its token ids) and returns a dict of outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.embed = nn.Embedding(100, 8)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | tuple[torch.Tensor, ...]]:
        image = self.conv(batch["image"]).mean((2, 3))
        text = self.embed(batch["ids"]).mean(1)
        return {"score": (image * text).sum(-1), "features": (image, text)}


class FunctionalConv(nn.Module):
    """A conv written with F.conv2d on a parameter of its own: counted, but there is no conv module to replace."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 3, 3, 3))
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(nn.functional.conv2d(x, self.weight, padding=1))
