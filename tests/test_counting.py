"""Analytic counts: the reference cases, closed forms, and properties against real PyTorch modules."""

from __future__ import annotations

import math

import pytest
import torch
from cases import SEPARABLE_CASES, STANDARD_CASES, Case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from dsconv_cli.core import counting
from dsconv_cli.core.spec import ConvSpec, DType, PaddingMode, resolve_spec
from dsconv_cli.errors import SpecError
from dsconv_cli.pt.builder import build_stage, build_variant


def _compare(case: Case):  # type: ignore[no-untyped-def]
    spec = resolve_spec(rank=len(case.input_shape) - 2, **case.layer)
    return counting.compare(spec, case.input_shape)


@pytest.mark.parametrize("case", STANDARD_CASES, ids=lambda c: c.name)
def test_standard_reference_case(case: Case) -> None:
    c = _compare(case)
    assert c.standard.output_shape == case.output_shape
    assert c.standard.params == case.params
    assert c.standard.macs == case.macs
    assert c.standard.flops == 2 * case.macs


@pytest.mark.parametrize("case", SEPARABLE_CASES, ids=lambda c: c.name)
def test_separable_reference_case(case: Case) -> None:
    c = _compare(case)
    depthwise, pointwise = c.separable.stages
    assert depthwise.output_shape == (1, 16, 50, 129)
    assert (depthwise.macs, pointwise.macs) == (928_800, 3_302_400)
    assert c.separable.output_shape == case.output_shape
    assert c.separable.params == case.params
    assert c.separable.macs == case.macs


def test_seed_example_reduction() -> None:
    c = _compare(SEPARABLE_CASES[0])
    # 656 / 4608 = 0.14236...: 85.8% fewer params; MACs reduce by exactly the same ratio
    assert round((1 - c.param_ratio) * 100, 1) == 85.8
    assert c.mac_ratio == pytest.approx(4_231_200 / 29_721_600)
    # MobileNet eq. 5: 1/32 + 1/9
    assert c.theoretical_ratio == pytest.approx(1 / 32 + 1 / 9)


def test_norm_and_activation_are_counted_apart_from_macs() -> None:
    spec = resolve_spec(rank=2, in_channels=16, out_channels=32, norm="batch", act="prelu")
    c = counting.compare(spec, (1, 16, 50, 129))
    # MACs unchanged by BN/PReLU: they are elementwise work
    assert c.standard.macs == 29_721_600
    # BN affine 2*32 + PReLU 32 slopes
    assert c.standard.params == 4_608 + 64 + 32
    # BN 2 ops + act 1 op per output element: 3 * 32*50*129
    assert c.standard.elementwise_ops == 3 * 32 * 50 * 129
    # running mean + var (32 each) + num_batches_tracked
    assert c.standard.buffers == 65


def test_mobilenet_placement_puts_norm_after_each_stage() -> None:
    spec = resolve_spec(rank=2, in_channels=16, out_channels=32, norm="batch", act="relu",
                        placement="mobilenet")  # fmt: skip
    depthwise, pointwise = counting.compare(spec, (1, 16, 50, 129)).separable.stages
    assert depthwise.params == 144 + 2 * 16
    assert pointwise.params == 512 + 2 * 32
    assert depthwise.elementwise_ops == 3 * 16 * 50 * 129


def test_counting_huge_input_allocates_nothing() -> None:
    spec = resolve_spec(rank=2, in_channels=512, out_channels=512)
    c = counting.compare(spec, (1024, 512, 4096, 4096))
    # 1024*512*4096*4096 outputs * 512*9 MACs each
    assert c.standard.macs == 1024 * 512 * 4096 * 4096 * 512 * 9


def test_empty_output_is_a_spec_error() -> None:
    spec = resolve_spec(rank=2, in_channels=4, out_channels=4, kernel_size=7, padding=0)
    with pytest.raises(SpecError) as info:
        counting.compare(spec, (1, 4, 5, 5))
    assert info.value.field == "kernel_size"


def test_timing_bytes_counts_input_outputs_and_weights() -> None:
    spec = resolve_spec(rank=2, in_channels=16, out_channels=32)
    c = counting.compare(spec, (1, 16, 50, 129))
    elements = 16 * 50 * 129 + 32 * 50 * 129 + 4_608 + 16 * 50 * 129 + 144 + 32 * 50 * 129 + 512
    assert counting.timing_bytes(c, DType.FLOAT32) == 4 * elements
    assert counting.timing_bytes(c, DType.BFLOAT16) == 2 * elements


# --- properties against PyTorch ------------------------------------------------------------------


@st.composite
def layer_specs(draw: st.DrawFn) -> tuple[ConvSpec, tuple[int, ...]]:
    """Random specs over ranks 1-3, groups, multiplier, stride, padding, dilation and transposed."""
    rank = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    in_channels = groups * draw(st.integers(1, 3))
    out_channels = groups * draw(st.integers(1, 3))
    small = st.integers(1, 3)
    kernel = tuple(draw(small) for _ in range(rank))
    transposed = draw(st.booleans())
    stride = tuple(draw(small) for _ in range(rank))
    dilation = tuple(draw(small) for _ in range(rank))
    padding: tuple[int, ...] | str = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    if not transposed:
        padding = draw(st.sampled_from([padding, "valid"] + (["same"] if set(stride) == {1} else [])))
    output_padding = (
        tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
        if transposed
        else (0,) * rank
    )
    spec = resolve_spec(
        rank=rank, in_channels=in_channels, out_channels=out_channels, kernel_size=kernel, stride=stride,
        padding=padding, dilation=dilation, groups=groups, multiplier=draw(st.integers(1, 2)),
        bias=draw(st.booleans()), depthwise_bias=draw(st.sampled_from([None, True, False])), transposed=transposed, output_padding=output_padding,
        norm=draw(st.sampled_from(["none", "batch"])),
        act=draw(st.sampled_from(["none", "relu", "prelu", "silu"])),
        placement=draw(st.sampled_from(["classic", "mobilenet"])),
    )  # fmt: skip
    spatial = tuple(draw(st.integers(1, 7 if rank < 3 else 4)) for _ in range(rank))
    return spec, (draw(st.integers(1, 2)), in_channels, *spatial)


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(layer_specs())
def test_counts_match_real_modules(drawn: tuple[ConvSpec, tuple[int, ...]]) -> None:
    """Params = sum of numel, shape = real forward shape, MACs = FlopCounterMode / 2, per stage."""
    spec, input_shape = drawn
    try:
        c = counting.compare(spec, input_shape)
    except SpecError:
        # dsconv refuses exactly the layers PyTorch refuses: the real forward must fail too.
        with pytest.raises(RuntimeError):
            for stages in (spec.standard(), spec.separable()):
                build_variant(stages).eval()(torch.zeros(input_shape))
        return
    for stages, variant in ((spec.standard(), c.standard), (spec.separable(), c.separable)):
        x = torch.randn(input_shape)
        for stage, stats in zip(stages, variant.stages, strict=True):
            module = build_stage(stage).eval()
            assert stats.params == sum(p.numel() for p in module.parameters())
            assert stats.buffers == sum(b.numel() for b in module.buffers())
            with FlopCounterMode(display=False) as counter, torch.no_grad():
                x = module(x)
            assert stats.output_shape == tuple(x.shape)
            assert 2 * stats.macs == counter.get_total_flops()
    assert c.standard.output_shape == c.separable.output_shape


@PROPERTY_SETTINGS
@given(layer_specs())
def test_separable_ratio_matches_mobilenet_formula(drawn: tuple[ConvSpec, tuple[int, ...]]) -> None:
    """For non-transposed convs, separable/standard MACs = m*g*(1/C_out + 1/prod(k)) exactly."""
    spec, input_shape = drawn
    if spec.transposed:
        return
    try:
        c = counting.compare(spec, input_shape)
    except SpecError:
        return
    expected = spec.multiplier * spec.groups * (1 / spec.out_channels + 1 / math.prod(spec.kernel_size))
    assert c.mac_ratio == pytest.approx(expected, rel=1e-12)
    assert c.theoretical_ratio == pytest.approx(expected, rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 6),
    d=st.integers(1, 3),
    size=st.integers(1, 20),
)
def test_same_padding_keeps_size_like_pytorch(k: int, d: int, size: int) -> None:
    """'same' (even kernels too) keeps the size; the MACs agree with PyTorch's own count."""
    spec = resolve_spec(rank=1, in_channels=2, out_channels=3, kernel_size=k, dilation=d, padding="same")
    assert spec.padding is PaddingMode.SAME
    c = counting.compare(spec, (1, 2, size))
    module = build_stage(spec.standard()[0])
    with FlopCounterMode(display=False) as counter:
        y = module(torch.zeros(1, 2, size))
    assert c.standard.output_shape == tuple(y.shape) == (1, 3, size)
    assert 2 * c.standard.macs == counter.get_total_flops()
