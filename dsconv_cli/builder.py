"""Spec -> real ``torch.nn`` modules, built exactly as the counting assumes."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from dsconv_cli import kinds
from dsconv_cli.results import StackResult
from dsconv_cli.spec import Activation, ConvLayer, DType, Norm, Stage

_CONV: dict[tuple[bool, int], type[nn.Module]] = {
    (False, 1): nn.Conv1d,
    (False, 2): nn.Conv2d,
    (False, 3): nn.Conv3d,
    (True, 1): nn.ConvTranspose1d,
    (True, 2): nn.ConvTranspose2d,
    (True, 3): nn.ConvTranspose3d,
}
_NORM: dict[int, type[nn.Module]] = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL: dict[int, type[nn.Module]] = {
    1: nn.AdaptiveAvgPool1d,
    2: nn.AdaptiveAvgPool2d,
    3: nn.AdaptiveAvgPool3d,
}
_ACT: dict[Activation, type[nn.Module]] = {
    Activation.RELU: nn.ReLU,
    Activation.RELU6: nn.ReLU6,
    Activation.HARDSWISH: nn.Hardswish,
    Activation.SILU: nn.SiLU,
}


def torch_dtype(dtype: DType) -> torch.dtype:
    """The torch dtype for a ``DType`` choice."""
    return {DType.FLOAT32: torch.float32, DType.FLOAT16: torch.float16, DType.BFLOAT16: torch.bfloat16}[dtype]


def build_conv(conv: ConvLayer, device: str | torch.device = "cpu") -> nn.Module:
    """One ``nn.Conv*d`` or ``nn.ConvTranspose*d``; ``'same'`` is passed through to PyTorch."""
    cls = _CONV[(conv.transposed, conv.rank)]
    kwargs: dict[str, object] = {
        "kernel_size": conv.kernel_size,
        "stride": conv.stride,
        "padding": conv.padding if isinstance(conv.padding, str) else tuple(conv.padding),
        "dilation": conv.dilation,
        "groups": conv.groups,
        "bias": conv.bias,
        "device": device,
    }
    if conv.transposed:
        kwargs["output_padding"] = conv.output_padding
    return cls(conv.in_channels, conv.out_channels, **kwargs)


def build_stage(stage: Stage, device: str | torch.device = "cpu") -> nn.Module:
    """Conv, then BatchNorm and activation when the stage has them."""
    layers = [build_conv(stage.conv, device)]
    channels = stage.conv.out_channels
    if stage.norm is Norm.BATCH:
        layers.append(_NORM[stage.conv.rank](channels, device=device))
    if stage.act is Activation.PRELU:
        layers.append(nn.PReLU(channels, device=device))
    elif stage.act is not Activation.NONE:
        layers.append(_ACT[stage.act]())
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


def build_variant(stages: Sequence[Stage], device: str | torch.device = "cpu") -> nn.Sequential:
    """Stages in order, named by stage (``standard`` or ``depthwise``, ``pointwise``)."""
    return nn.Sequential(OrderedDict((stage.name, build_stage(stage, device)) for stage in stages))


def build_linear(in_features: int, out_features: int, bias: bool, device: str | torch.device = "cpu") -> nn.Module:
    """Flatten, then ``nn.Linear``, as ``counting.linear_stats`` counts it."""
    return nn.Sequential(nn.Flatten(1), nn.Linear(in_features, out_features, bias=bias, device=device))


def build_global_avg_pool(rank: int) -> nn.Module:
    return _POOL[rank](1)


def build_stack(stack: StackResult, column: str, device: str | torch.device = "cpu") -> nn.Sequential:
    """A whole column of a stack as one module."""
    return nn.Sequential(
        OrderedDict(
            (f"{i}_{layer.name.replace('.', '_')}", kinds.build_layer(layer, column, device))
            for i, layer in enumerate(stack.layers)
        )
    )
