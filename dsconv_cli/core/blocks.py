"""Blocks as plans of parts: what an inverted residual, a squeeze-excite or a residual conv is made of.

A plan is plain data (no torch): counting walks it with the convention's rules, the builder turns the
same plan into modules, so the two cannot drift apart. Pooling with a window is counted here too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dsconv_cli.core.counting import ACT_OPS_PER_ELEMENT, BIAS_OPS_PER_ELEMENT, count_stage
from dsconv_cli.core.results import LayerStats
from dsconv_cli.core.spec import Activation, ConvLayer, Gate, Norm, Slopes, Stage, broadcast
from dsconv_cli.errors import SpecError

WIDTH_DIVISOR = 8  # channels scaled by a width multiplier round to a multiple of this (MobileNet, EfficientNet)


@dataclass(frozen=True, slots=True)
class SqueezeExcite:
    """Global average pool, 1×1 conv to ``squeeze`` (bias), act, 1×1 conv back (bias), gate, multiply."""

    channels: int
    squeeze: int
    act: Activation = Activation.RELU
    gate: Gate = Gate.SIGMOID
    name: str = "se"


Part = Stage | SqueezeExcite


@dataclass(frozen=True, slots=True)
class Plan:
    """Parts in order (each fed the previous output) and, with ``residual``, the shortcut added at the end:
    the identity when ``shortcut`` is None, else that projection stage."""

    parts: tuple[Part, ...]
    residual: bool = False
    shortcut: Stage | None = None


def make_divisible(value: float, divisor: int = WIDTH_DIVISOR) -> int:
    """Round to a multiple of ``divisor``, never more than 10% down (as MobileNet and EfficientNet do)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def scaled(channels: int, options: dict[str, Any]) -> int:
    """``channels`` under the layer's width multiplier (``max(width_multiplier, min_width_multiplier)``)."""
    multiplier = max(float(options.get("width_multiplier", 1.0)), float(options.get("min_width_multiplier", 0.0)))
    return channels if multiplier == 1.0 else make_divisible(channels * multiplier)


def squeeze_channels(block_in: int, options: dict[str, Any]) -> int | None:
    """Squeeze channels from ``se_channels``, or ``max(1, int(block_in · se))``; None without squeeze-excite."""
    if options.get("se_channels"):
        return int(options["se_channels"])
    ratio = options.get("se")
    return max(1, int(block_in * float(ratio))) if ratio else None


# --- plans -------------------------------------------------------------------------------------------


def inverted_residual(options: dict[str, Any], shape: Sequence[int], column: str) -> Plan:
    """MobileNetV2's block (EfficientNet's MBConv with ``se``): expand 1×1, depthwise k×k (a full k×k conv
    of the same width in the standard column), optional squeeze-excite, linear 1×1 projection."""
    cin, rank = shape[1], len(shape) - 2
    cout = scaled(int(options["out_channels"]), options)
    hidden = int(round(cin * float(options.get("expand", 6))))
    if hidden < 1:
        raise SpecError("expand", options.get("expand"), f"gives {hidden} hidden channels from {cin}; use >= 1/{cin}")
    k = broadcast("kernel_size", options.get("kernel_size", 3), rank, 1)
    stride = broadcast("stride", options.get("stride", 1), rank, 1)
    dilation = broadcast("dilation", options.get("dilation", 1), rank, 1)
    padding = tuple(d * (kk - 1) // 2 for kk, d in zip(k, dilation, strict=True))
    norm = Norm(options.get("norm", Norm.BATCH))
    act = Activation(options.get("act", Activation.RELU6))
    slopes = Slopes(str(options.get("slopes", Slopes.CHANNEL)))
    ones = (1,) * rank
    parts: list[Part] = []
    if hidden != cin:
        parts.append(Stage("expand", ConvLayer(cin, hidden, ones, ones, (0,) * rank, ones), norm, act, slopes))
    groups = hidden if column == "separable" else 1
    name = "depthwise" if column == "separable" else "conv"
    parts.append(Stage(name, ConvLayer(hidden, hidden, k, stride, padding, dilation, groups), norm, act, slopes))
    squeeze = squeeze_channels(cin, options)
    if squeeze is not None:
        parts.append(SqueezeExcite(hidden, squeeze, _se_act(options, act), Gate(options.get("se_gate", Gate.SIGMOID))))
    parts.append(Stage("project", ConvLayer(hidden, cout, ones, ones, (0,) * rank, ones), norm))
    same_shape = cin == cout and all(s == 1 for s in stride)
    residual = bool(options.get("residual", same_shape))
    return Plan(tuple(parts), residual, None if same_shape else _projection(cin, cout, stride, norm))


def squeeze_excite(options: dict[str, Any], shape: Sequence[int]) -> Plan:
    channels = shape[1]
    squeeze = squeeze_channels(channels, options) or max(1, channels // 4)
    act = Activation(options.get("se_act", Activation.RELU))
    return Plan((SqueezeExcite(channels, squeeze, act, Gate(options.get("se_gate", Gate.SIGMOID))),))


def with_residual(stages: Sequence[Stage], options: dict[str, Any], shape: Sequence[int], out: Sequence[int]) -> Plan:
    """A conv layer's stages, with ``residual: true`` an identity add (a projection where shapes differ)."""
    if not options.get("residual"):
        return Plan(tuple(stages))
    if tuple(out) == tuple(shape):
        return Plan(tuple(stages), True)
    conv = stages[0].conv
    if conv.transposed:
        raise SpecError(
            "residual", True, f"needs equal shapes with a transposed conv ({_shape(shape)} → {_shape(out)})"
        )
    strides = tuple(i // o if o and i % o == 0 else 0 for i, o in zip(shape[2:], out[2:], strict=True))
    if 0 in strides:
        raise SpecError("residual", True, f"cannot project {_shape(shape)} onto {_shape(out)} with a strided 1×1 conv")
    return Plan(tuple(stages), True, _projection(shape[1], out[1], strides, stages[-1].norm))


def _projection(cin: int, cout: int, stride: Sequence[int], norm: Norm) -> Stage:
    ones = (1,) * len(stride)
    return Stage("shortcut", ConvLayer(cin, cout, ones, tuple(stride), (0,) * len(stride), ones), norm)


def _se_act(options: dict[str, Any], block_act: Activation) -> Activation:
    return Activation(options.get("se_act", block_act if block_act is not Activation.RELU6 else Activation.RELU))


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ")"


# --- counting plans ----------------------------------------------------------------------------------


def count_se(se: SqueezeExcite, shape: Sequence[int]) -> LayerStats:
    """Pool (one op per input element), two 1×1 convs with bias on (N, C, 1…), act, gate, the multiply."""
    n, c = shape[0], shape[1]
    params = c * se.squeeze + se.squeeze + se.squeeze * c + c
    if se.act is Activation.PRELU:
        params += se.squeeze  # one slope per squeeze channel
    macs = 2 * n * c * se.squeeze
    ops = math.prod(shape)  # the global average pool reads every element once
    ops += BIAS_OPS_PER_ELEMENT * n * (se.squeeze + c)  # both biases
    ops += ACT_OPS_PER_ELEMENT * n * (se.squeeze + c)  # the activation and the gate
    ops += math.prod(shape)  # the channel-wise multiply
    return LayerStats(se.name, tuple(shape), tuple(shape), params, macs, ops)


def add_stats(name: str, shape: Sequence[int]) -> LayerStats:
    """An elementwise add of two tensors shaped ``shape``: one op per element."""
    return LayerStats(name, tuple(shape), tuple(shape), 0, 0, math.prod(shape))


def count_plan(plan: Plan, shape: Sequence[int]) -> tuple[LayerStats, ...]:
    """Each part in order, then the shortcut (where projected) and the residual add."""
    stats: list[LayerStats] = []
    current = tuple(shape)
    for part in plan.parts:
        counted = count_se(part, current) if isinstance(part, SqueezeExcite) else count_stage(part, current)
        stats.append(counted)
        current = counted.output_shape
    if plan.residual:
        if plan.shortcut is not None:
            projected = count_stage(plan.shortcut, shape)
            if projected.output_shape != current:
                raise SpecError("residual", True, f"the shortcut gives {_shape(projected.output_shape)}, the block "
                                f"{_shape(current)}")  # fmt: skip
            stats.append(projected)
        elif tuple(shape) != current:
            raise SpecError("residual", True, f"needs the block's input {_shape(shape)} and output {_shape(current)} "
                            "to match for an identity add")  # fmt: skip
        stats.append(add_stats("add", current))
    return tuple(stats)


# --- pooling with a window ------------------------------------------------------------------------------


def pool_output(
    shape: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int]
) -> tuple[int, ...]:
    """``floor((L + 2p − k) / s) + 1`` per spatial dim, as PyTorch's max and average pools."""
    n, c, *spatial = shape
    out = []
    for length, k, s, p in zip(spatial, kernel, stride, padding, strict=True):
        if p > k // 2:
            raise SpecError("padding", list(padding), f"must be at most half the kernel ({k // 2} for kernel {k})")
        size = (length + 2 * p - k) // s + 1
        if size < 1:
            raise SpecError("kernel_size", list(kernel), "is larger than the padded input")
        out.append(size)
    return (n, c, *out)


def pool_stats(name: str, shape: Sequence[int], options: dict[str, Any]) -> tuple[LayerStats, dict[str, Any]]:
    """A max or average pool: no params, no MACs, one op per input element read (as ``analyze`` counts)."""
    rank = len(shape) - 2
    kernel = broadcast("kernel_size", options["kernel_size"], rank, 1)
    stride = broadcast("stride", options.get("stride", kernel), rank, 1)
    padding = broadcast("padding", options.get("padding", 0), rank, 0)
    out = pool_output(shape, kernel, stride, padding)
    resolved = {"kernel_size": kernel, "stride": stride, "padding": padding}
    return LayerStats(name, tuple(shape), out, 0, 0, math.prod(shape)), resolved
