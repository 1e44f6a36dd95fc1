"""Spec -> real ``torch.nn`` modules, built exactly as the counting assumes."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
from torch import nn

from dsconv_cli.core import blocks, kinds
from dsconv_cli.core.blocks import Plan, SqueezeExcite
from dsconv_cli.core.results import LayerResult, StackResult
from dsconv_cli.core.spec import Activation, ConvLayer, DType, Gate, LayerKind, Norm, Slopes, Stage

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
    Activation.TANH: nn.Tanh,
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
        layers.append(nn.PReLU(1 if stage.slopes is Slopes.ONE else channels, device=device))
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


class SqueezeExciteModule(nn.Module):
    """Global average pool, 1×1 conv to the squeeze width, act, 1×1 conv back, gate, channel-wise scale."""

    def __init__(self, se: SqueezeExcite, rank: int, device: str | torch.device = "cpu") -> None:
        super().__init__()
        conv = _CONV[(False, rank)]
        self.rank = rank
        self.reduce = conv(se.channels, se.squeeze, 1, device=device)
        self.act = nn.PReLU(se.squeeze, device=device) if se.act is Activation.PRELU else _ACT[se.act]()
        self.expand = conv(se.squeeze, se.channels, 1, device=device)
        self.gate = nn.Sigmoid() if se.gate is Gate.SIGMOID else nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=tuple(range(2, 2 + self.rank)), keepdim=True)
        gate: torch.Tensor = self.gate(self.expand(self.act(self.reduce(scale))))
        return x * gate


class Residual(nn.Module):
    """``body(x) + shortcut(x)``: the shortcut is the identity or a projection."""

    def __init__(self, body: nn.Module, shortcut: nn.Module) -> None:
        super().__init__()
        self.body = body
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        body: torch.Tensor = self.body(x)
        shortcut: torch.Tensor = self.shortcut(x)
        return body + shortcut


class SelfAdd(nn.Module):
    """A layer whose config adds an earlier layer's output, timed or checked alone: its own output stands
    in for the other operand (same shape, same one add per element)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.body(x)
        return y + y


def build_plan(plan: Plan, rank: int, device: str | torch.device = "cpu") -> nn.Module:
    """A block plan as modules, named by part (``expand``, ``depthwise``, ``se``, ``project``, ...)."""
    body = nn.Sequential(
        OrderedDict(
            (part.name, SqueezeExciteModule(part, rank, device) if isinstance(part, SqueezeExcite)
             else build_stage(part, device))
            for part in plan.parts
        )
    )  # fmt: skip
    if not plan.residual:
        return body
    return Residual(body, nn.Identity() if plan.shortcut is None else build_stage(plan.shortcut, device))


def build_pool(
    kind: str, rank: int, kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...]
) -> nn.Module:
    cls = {("max", 1): nn.MaxPool1d, ("max", 2): nn.MaxPool2d, ("max", 3): nn.MaxPool3d,
           ("avg", 1): nn.AvgPool1d, ("avg", 2): nn.AvgPool2d, ("avg", 3): nn.AvgPool3d}[(kind, rank)]  # fmt: skip
    pool: nn.Module = cls(kernel, stride, padding)
    return pool


class StackModule(nn.Module):
    """A column of a stack: layers in order, with ``add`` skips from earlier layers' outputs and ``share``
    reusing an earlier layer's module (so its parameters exist once)."""

    def __init__(self, layers: list[nn.Module], names: list[str], adds: list[int | None]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.names = names
        self.adds = adds
        self.keep = {i for i in adds if i is not None}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kept: dict[int, torch.Tensor] = {}
        for i, (layer, add) in enumerate(zip(self.layers, self.adds, strict=True)):
            x = layer(x)
            if add is not None:
                x = x + kept[add]
            if i in self.keep:
                kept[i] = x
        return x


def build_stack(stack: StackResult, column: str, device: str | torch.device = "cpu") -> nn.Module:
    """A whole column of a stack as one module (skips and shared layers included)."""
    index = {layer.name: i for i, layer in enumerate(stack.layers)}
    modules: list[nn.Module] = []
    for layer in stack.layers:
        if layer.share is not None:
            modules.append(modules[index[layer.share]])  # the same module object: parameters once
        else:
            modules.append(build_layer(layer, column, device, alone=False))
    adds = [index[layer.add] if layer.add is not None else None for layer in stack.layers]
    if not any(a is not None for a in adds) and not any(layer.share for layer in stack.layers):
        names = [f"{i}_{layer.name.replace('.', '_')}" for i, layer in enumerate(stack.layers)]
        return nn.Sequential(OrderedDict(zip(names, modules, strict=True)))
    return StackModule(modules, [layer.name for layer in stack.layers], adds)


# --- one build function per layer kind of core/kinds.py ----------------------------------------------

Builder = Callable[[LayerResult, str, "str | torch.device"], nn.Module]  # (layer, column, device)


def _build_conv(layer: LayerResult, column: str, device: str | torch.device) -> nn.Module:
    stages = layer.stages(column)
    if not layer.options.get("residual"):
        return build_variant(stages, device)
    out = layer.column(column).output_shape
    plan = blocks.with_residual(stages, layer.options, layer.input_shape, out)
    return build_plan(plan, len(layer.input_shape) - 2, device)


def _build_planned(layer: LayerResult, column: str, device: str | torch.device) -> nn.Module:
    planner = kinds.KINDS[layer.kind].plan
    assert planner is not None, f"{layer.kind.value} has no plan"
    return build_plan(planner(layer.options, layer.input_shape, column), len(layer.input_shape) - 2, device)


def _build_pool(layer: LayerResult, column: str, device: str | torch.device) -> nn.Module:
    kind = "max" if layer.kind is LayerKind.MAX_POOL else "avg"
    o = layer.options
    return build_pool(kind, len(layer.input_shape) - 2, o["kernel_size"], o["stride"], o["padding"])


def _build_linear(layer: LayerResult, column: str, device: str | torch.device) -> nn.Module:
    in_features = math.prod(layer.input_shape[1:])
    return build_linear(in_features, layer.output_shape[1], bool(layer.options.get("bias", False)), device)


def _build_global_avg_pool(layer: LayerResult, column: str, device: str | torch.device) -> nn.Module:
    return build_global_avg_pool(len(layer.input_shape) - 2)


BUILDERS: dict[LayerKind, Builder] = {
    LayerKind.COMPARE: _build_conv,
    LayerKind.STANDARD: _build_conv,
    LayerKind.SEPARABLE: _build_conv,
    LayerKind.LINEAR: _build_linear,
    LayerKind.GLOBAL_AVG_POOL: _build_global_avg_pool,
    LayerKind.MAX_POOL: _build_pool,
    LayerKind.AVG_POOL: _build_pool,
    LayerKind.INVERTED_RESIDUAL: _build_planned,
    LayerKind.SQUEEZE_EXCITE: _build_planned,
}


def build_layer(layer: LayerResult, column: str, device: str | torch.device = "cpu", alone: bool = True) -> nn.Module:
    """One stack layer as it stands in ``column``, as a real module; ``alone``, a layer that adds an
    earlier layer's output adds its own instead (same shape, same work)."""
    module = BUILDERS[layer.kind](layer, column, device)
    if alone and layer.add is not None:
        return SelfAdd(module)
    return module
