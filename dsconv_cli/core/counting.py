"""Pure counting: output shapes, params, MACs and elementwise work, following CONVENTIONS.md.

Nothing here allocates a tensor or imports torch, so any size counts instantly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from dsconv_cli.core.results import (
    Comparison,
    ItemAnalysis,
    LayerStats,
    Peaks,
    Roofline,
    StackResult,
    TimingRow,
    Traffic,
    VariantStats,
)
from dsconv_cli.core.spec import (
    Activation,
    ConvLayer,
    ConvSpec,
    DType,
    Norm,
    PaddingMode,
    Slopes,
    Stage,
    validate,
)
from dsconv_cli.errors import LayerError, SpecError

# Elementwise work per output element, reported apart from conv MACs ("other ops").
BIAS_OPS_PER_ELEMENT = 1  # one add
NORM_OPS_PER_ELEMENT = 2  # inference BatchNorm folds to one multiply and one add
ACT_OPS_PER_ELEMENT = 1  # one op per element, whatever the activation


def total_padding(conv: ConvLayer) -> tuple[int, ...]:
    """Padding added per spatial dim, both sides together.

    ``'same'`` pads ``d*(k-1)`` in total (the extra one at the end for even kernels), as PyTorch does.
    """
    if conv.padding == PaddingMode.SAME:
        return tuple(d * (k - 1) for k, d in zip(conv.kernel_size, conv.dilation, strict=True))
    if conv.padding == PaddingMode.VALID:
        return (0,) * conv.rank
    assert not isinstance(conv.padding, PaddingMode)
    return tuple(2 * p for p in conv.padding)


def conv_output_shape(conv: ConvLayer, input_shape: Sequence[int]) -> tuple[int, ...]:
    """Output ``(N, C_out, *O)``.

    Conv: ``O = floor((I + 2p - d*(k-1) - 1) / s) + 1``.
    Transposed: ``O = (I - 1)*s - 2p + d*(k-1) + output_padding + 1``.
    Raises ``SpecError`` when a spatial size would be below 1 (PyTorch refuses such layers).
    """
    n, _, *spatial = input_shape
    pads = total_padding(conv)
    out: list[int] = []
    for dim, size in enumerate(spatial):
        k, s, d, pad = conv.kernel_size[dim], conv.stride[dim], conv.dilation[dim], pads[dim]
        extent = d * (k - 1) + 1
        if conv.transposed:
            size_out = (size - 1) * s - pad + extent + conv.output_padding[dim]
            if size_out < 1:
                raise SpecError(
                    "padding",
                    conv.padding,
                    f"leaves no output in spatial dim {dim} (input {size}, stride {s}, "
                    f"kernel extent {extent}); use less padding",
                )
        else:
            if size + pad < extent:
                raise SpecError(
                    "kernel_size",
                    conv.kernel_size,
                    f"kernel extent {extent} (dilation {d}) exceeds the padded input {size + pad} "
                    f"in spatial dim {dim} (size {size} + padding {pad}), so the output is empty; "
                    "use a smaller kernel or dilation, more padding or a larger input",
                )
            size_out = (size + pad - extent) // s + 1
        out.append(size_out)
    return (n, conv.out_channels, *out)


def conv_params(conv: ConvLayer) -> int:
    """``C_out * (C_in/g) * prod(k)`` (+ ``C_out`` with bias); transposed: ``C_in * (C_out/g) * prod(k)``."""
    fan = conv.in_channels * (conv.out_channels // conv.groups) * math.prod(conv.kernel_size)
    return fan + (conv.out_channels if conv.bias else 0)


def conv_macs(conv: ConvLayer, input_shape: Sequence[int], output_shape: Sequence[int]) -> int:
    """Whole-batch MACs, bias excluded.

    Conv: ``N * C_out * prod(O) * (C_in/g) * prod(k)``.
    Transposed: ``N * C_in * prod(I) * (C_out/g) * prod(k)`` (each input element scattered once).
    """
    k = math.prod(conv.kernel_size)
    if conv.transposed:
        n, c_in, *spatial = input_shape
        return n * c_in * math.prod(spatial) * (conv.out_channels // conv.groups) * k
    n, c_out, *spatial = output_shape
    return n * c_out * math.prod(spatial) * (conv.in_channels // conv.groups) * k


def count_stage(stage: Stage, input_shape: Sequence[int]) -> LayerStats:
    """Params, MACs, elementwise ops and buffers of a conv (+ norm + act)."""
    conv = stage.conv
    output_shape = conv_output_shape(conv, input_shape)
    elements = math.prod(output_shape)
    channels = conv.out_channels
    params = conv_params(conv)
    ops = BIAS_OPS_PER_ELEMENT * elements if conv.bias else 0
    buffers = 0
    if stage.norm is Norm.BATCH:
        params += 2 * channels  # affine weight and bias
        buffers += 2 * channels + 1  # running mean, running var, num_batches_tracked
        ops += NORM_OPS_PER_ELEMENT * elements
    if stage.act is not Activation.NONE:
        ops += ACT_OPS_PER_ELEMENT * elements
        if stage.act is Activation.PRELU:
            params += 1 if stage.slopes is Slopes.ONE else channels  # one shared slope, or one per channel
    return LayerStats(
        name=stage.name,
        input_shape=tuple(input_shape),
        output_shape=output_shape,
        params=params,
        macs=conv_macs(conv, input_shape, output_shape),
        elementwise_ops=ops,
        buffers=buffers,
    )


def count_variant(name: str, stages: Sequence[Stage], input_shape: Sequence[int]) -> VariantStats:
    """Count stages in order, each fed the previous stage's output."""
    counted: list[LayerStats] = []
    shape = tuple(input_shape)
    for stage in stages:
        stats = count_stage(stage, shape)
        counted.append(stats)
        shape = stats.output_shape
    return VariantStats(name, tuple(counted))


def compare(
    spec: ConvSpec, input_shape: Sequence[int], notes: Sequence[str] = (), *, analysed: bool = True
) -> Comparison:
    """Count the standard conv and its depthwise-separable pair on ``input_shape``; ``analysed`` adds the
    per-item traffic and intensity a comparison's report shows (a stack's layers do without)."""
    validate(spec, input_shape)
    per_sample = None
    if input_shape[0] == 0:  # as in PyTorch, a batch of none: every count is 0, the ratios are per sample
        one = (1, *input_shape[1:])
        per_sample = (count_variant("standard", spec.standard(), one).macs,
                      count_variant("separable", spec.separable(), one).macs)  # fmt: skip
        notes = (*notes, "batch 0: every count is 0; the MAC ratio is that of one sample")
    standard = count_variant("standard", spec.standard(), input_shape)
    separable = count_variant("separable", spec.separable(), input_shape)
    check_representable(input_shape, (standard, separable))
    counted = Comparison(
        spec=spec,
        input_shape=tuple(input_shape),
        standard=standard,
        separable=separable,
        notes=tuple(notes),
        per_sample_macs=per_sample,
    )
    return replace(counted, analysis=analyse(counted)) if analysed else counted


INT64_MAX = 2**63 - 1  # PyTorch's sizes and numels are int64: a layer past it cannot be built


def check_representable(input_shape: Sequence[int], variants: Sequence[VariantStats]) -> None:
    """Refuse a layer PyTorch cannot represent: an input, output or weight of more than int64 elements, or
    more MACs than int64 counts (``-k 1e20``, ``width_multiplier: 1e9``). ``LayerError`` without a path;
    the config loader adds the layer's."""
    if (n := math.prod(input_shape)) > INT64_MAX:
        raise LayerError("", f"impossible layer: its input {tuple(input_shape)} has {approx_int(n)} elements, past "
                         "the int64 sizes PyTorch can hold")  # fmt: skip
    for variant in variants:
        for st in variant.stages:
            for what, value in (("output elements", math.prod(st.output_shape)), ("params", st.params),
                                ("MACs", st.macs), ("other ops", st.elementwise_ops)):  # fmt: skip
                if value > INT64_MAX:
                    raise LayerError("", f"impossible layer: the {variant.name} column's {st.name} stage has "
                                     f"{approx_int(value)} {what}, past the int64 counts PyTorch can hold")  # fmt: skip


def approx_int(value: int) -> str:
    """A count too large to print usefully (or at all: Python refuses ints over 4,300 digits as text)."""
    if value <= INT64_MAX:
        return f"{value:,}"
    return f"about 10^{int(value.bit_length() * math.log10(2))}"


def analyse_timings(c: Comparison) -> Comparison:
    """``c`` with each timing row's analysis (counts at its batch, traffic in its dtype, roofline)."""
    return replace(c, timings=tuple(replace(row, analysis=analyse(c, row)) for row in c.timings))


def held_bytes(input_shape: Sequence[int], variants: Sequence[VariantStats], dtype: DType) -> int:
    """Bytes timing ``variants`` holds at most: the input, every stage's output, weights and buffers."""
    elements = math.prod(input_shape)
    for variant in variants:
        for stage in variant.stages:
            elements += math.prod(stage.output_shape) + stage.params + stage.buffers
    return elements * dtype.itemsize


def timing_bytes(comparison: Comparison, dtype: DType) -> int:
    """Bytes timing both variants of a comparison holds at most."""
    return held_bytes(comparison.input_shape, (comparison.standard, comparison.separable), dtype)


# --- stacks ----------------------------------------------------------------------------------------


def linear_stats(name: str, input_shape: Sequence[int], out_features: int, bias: bool) -> LayerStats:
    """Flatten then ``nn.Linear``: params ``in*out`` (+ ``out``), MACs ``N*in*out``, bias apart."""
    n = input_shape[0]
    in_features = math.prod(input_shape[1:])
    return LayerStats(
        name=name,
        input_shape=tuple(input_shape),
        output_shape=(n, out_features),
        params=in_features * out_features + (out_features if bias else 0),
        macs=n * in_features * out_features,
        elementwise_ops=n * out_features if bias else 0,
    )


def global_avg_pool_stats(name: str, input_shape: Sequence[int]) -> LayerStats:
    """Average over all spatial positions: one add per input element (elementwise work, no MACs)."""
    n, c, *spatial = input_shape
    return LayerStats(
        name=name,
        input_shape=tuple(input_shape),
        output_shape=(n, c, *([1] * len(spatial))),
        params=0,
        macs=0,
        elementwise_ops=math.prod(input_shape),
    )


def stack_timing_bytes(stack: StackResult, dtype: DType) -> int:
    """Bytes timing a stack holds at most: every layer of both columns."""
    variants = [v for layer in stack.layers for v in (layer.standard, layer.separable)]
    return held_bytes(stack.input_shape, variants, dtype)


# --- memory traffic and roofline -------------------------------------------------------------------


def stage_traffic(stats: LayerStats, itemsize: int) -> Traffic:
    """Least traffic of a stage: its weights (params and buffers), its input and its output, once each."""
    return Traffic(
        weight_bytes=(stats.params + stats.buffers) * itemsize,
        input_bytes=math.prod(stats.input_shape) * itemsize,
        output_bytes=math.prod(stats.output_shape) * itemsize,
    )


def variant_traffic(variant: VariantStats, itemsize: int) -> Traffic:
    """Stages run one after another (as PyTorch runs them): intermediates are written, then read back."""
    stages = [stage_traffic(s, itemsize) for s in variant.stages]
    return Traffic(
        weight_bytes=sum(t.weight_bytes for t in stages),
        input_bytes=sum(t.input_bytes for t in stages),
        output_bytes=sum(t.output_bytes for t in stages),
    )


def intermediate_bytes(variant: VariantStats, itemsize: int) -> int:
    """Bytes of the tensors a variant passes between its stages (the separable pair's depthwise output)."""
    return sum(math.prod(s.output_shape) for s in variant.stages[:-1]) * itemsize


def arithmetic_intensity(flops: int, traffic: Traffic) -> float:
    """FLOPs (2 x MACs) per byte of least traffic."""
    return flops / traffic.min_bytes_moved


def roofline(flops: int, traffic: Traffic, median_ms: float, peaks: Peaks) -> Roofline:
    """Achieved rates, the roof that binds (memory below the ridge point, compute above) and how close."""
    seconds = median_ms / 1e3
    intensity = arithmetic_intensity(flops, traffic)
    achieved_gflops = flops / seconds / 1e9
    achieved_gbps = traffic.min_bytes_moved / seconds / 1e9
    memory_bound = intensity < peaks.ridge_point
    roof_gflops = intensity * peaks.bandwidth_gbps if memory_bound else peaks.compute_gflops
    return Roofline(
        arithmetic_intensity=intensity,
        achieved_gflops=achieved_gflops,
        achieved_gbps=achieved_gbps,
        bound="memory" if memory_bound else "compute",
        fraction_of_roof=achieved_gflops / roof_gflops,
    )


def peaks_for(c: Comparison, dtype: str, threads: int | None) -> Peaks | None:
    """The peaks measured for this dtype (and thread count, when the case names one)."""
    return next((p for p in c.peaks if p.dtype == dtype and threads in (None, p.threads)), None)


def analyse(c: Comparison, row: TimingRow | None = None) -> dict[str, ItemAnalysis]:
    """Counts, traffic and (for timed forward cases with peaks) roofline of each item.

    Counts are for the case's batch; bytes use the case's dtype (float32 when untimed).
    """
    batch = row.case.batch if row else c.input_shape[0]
    dt = row.case.dtype if row else DType.FLOAT32
    counted = c if batch == c.input_shape[0] else compare(c.spec, (batch, *c.input_shape[1:]))
    depthwise, pointwise = counted.separable.stages
    stats: dict[str, LayerStats | VariantStats] = {
        "standard": counted.standard,
        "depthwise": depthwise,
        "pointwise": pointwise,
        "separable": counted.separable,
    }
    peaks = peaks_for(c, dt.value, row.case.threads if row else None)
    out: dict[str, ItemAnalysis] = {}
    for name, item in stats.items():
        if isinstance(item, VariantStats):
            traffic = variant_traffic(item, dt.itemsize)
            between = intermediate_bytes(item, dt.itemsize)
        else:
            traffic, between = stage_traffic(item, dt.itemsize), 0
        latency = row.latency.get(name) if row else None
        line = None
        if latency is not None and peaks is not None and row is not None and not row.case.backward:
            line = roofline(item.flops, traffic, latency.median_ms, peaks)
        out[name] = ItemAnalysis(
            name, item, traffic, between, latency, line,
            row.compile_s.get(name) if row else None, row.peak_bytes.get(name) if row else None,
        )  # fmt: skip
    return out
