"""Parsing and validation of layer specs: every refusal names its field and what is valid."""

from __future__ import annotations

import pytest

from dsconv_cli.core.spec import infer_rank, resolve_spec
from dsconv_cli.errors import SpecError


def test_infer_rank() -> None:
    assert infer_rank((1, 2, 3)) == 1
    assert infer_rank(None, (3,), (1, 2, 3)) == 3
    assert infer_rank(None, (3,)) == 2  # no tuple says otherwise: the 2-D default


def test_default_padding_keeps_size_at_stride_1() -> None:
    spec = resolve_spec(rank=2, in_channels=4, out_channels=4, kernel_size=(3, 5), dilation=(2, 1))
    assert spec.padding == (2, 2)  # d*(k-1)//2 per dim


def test_valid_padding_is_zero() -> None:
    assert resolve_spec(rank=1, in_channels=1, out_channels=1, padding="valid").padding == (0,)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        (dict(in_channels=16, out_channels=32, groups=3), "groups", "valid: 1, 2, 4, 8, 16"),
        (dict(in_channels=0, out_channels=32), "in_channels", "must be a positive integer"),
        (dict(in_channels=4, out_channels=4, multiplier=0), "multiplier", "must be a positive integer"),
        (dict(in_channels=4, out_channels=4, kernel_size=(3, 3, 3)), "kernel_size", "give 1 value or 2"),
        (dict(in_channels=4, out_channels=4, stride=2, padding="same"), "padding", "needs stride 1"),
        (dict(in_channels=4, out_channels=4, transposed=True, padding="same"), "padding", "transposed"),
        (dict(in_channels=4, out_channels=4, output_padding=1), "output_padding", "transposed convs only"),
        (dict(in_channels=4, out_channels=4, transposed=True, output_padding=1), "output_padding",
         "smaller than stride or dilation"),
        (dict(in_channels=4, out_channels=4, norm="layer"), "norm", "is not one of none, batch"),
    ],
)  # fmt: skip
def test_resolve_spec_refusals(kwargs: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        resolve_spec(rank=2, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
    assert message in str(info.value)


def test_spec_error_can_be_relabelled_for_configs() -> None:
    error = SpecError("kernel_size", (3, 3, 3), "has 3 values")
    assert str(error) == "--kernel-size 3,3,3: has 3 values"
    assert error.labelled("layers[2].kernel_size") == "layers[2].kernel_size 3,3,3: has 3 values"


def test_separable_pair_follows_the_convention() -> None:
    spec = resolve_spec(rank=2, in_channels=8, out_channels=24, kernel_size=5, stride=2, dilation=2,
                        multiplier=3, bias=True, norm="batch", act="relu", placement="mobilenet")  # fmt: skip
    depthwise, pointwise = spec.separable()
    assert depthwise.conv.in_channels == 8 and depthwise.conv.out_channels == 24
    assert depthwise.conv.groups == 8
    assert (depthwise.conv.kernel_size, depthwise.conv.stride, depthwise.conv.dilation) == (
        (5, 5), (2, 2), (2, 2))  # fmt: skip
    assert pointwise.conv.kernel_size == (1, 1) and pointwise.conv.stride == (1, 1)
    assert pointwise.conv.in_channels == 24 and pointwise.conv.out_channels == 24
    assert depthwise.norm.value == "batch" and pointwise.act.value == "relu"
