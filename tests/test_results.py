"""Result records: totals are sums of their parts, and records are frozen."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsconv_cli.core import config, counting
from dsconv_cli.core.evaluate import count_config
from dsconv_cli.core.spec import COLUMNS, resolve_spec


@settings(max_examples=30, deadline=None)
@given(c_in=st.integers(1, 32), c_out=st.integers(1, 32), k=st.sampled_from([1, 3, 5]), bias=st.booleans())
def test_a_variant_is_the_sum_of_its_stages(c_in: int, c_out: int, k: int, bias: bool) -> None:
    spec = resolve_spec(rank=2, in_channels=c_in, out_channels=c_out, kernel_size=k, bias=bias, norm="batch")
    c = counting.compare(spec, (2, c_in, 12, 12))
    for variant in (c.standard, c.separable):
        for metric in ("params", "macs", "flops", "elementwise_ops", "buffers"):
            assert getattr(variant, metric) == sum(getattr(s, metric) for s in variant.stages)
        assert variant.output_shape == variant.stages[-1].output_shape
    assert c.mac_ratio == c.separable.macs / c.standard.macs


def test_a_stack_total_is_the_sum_of_its_layers() -> None:
    cfg = config.parse("input_shape: [1, 3, 16, 16]\nlayers: [{out_channels: 8}, {kind: linear, out_features: 5}]\n",
                       "c.yaml")  # fmt: skip
    (stack,) = count_config(cfg)
    for column in COLUMNS:
        assert stack.total(column, "macs") == sum(layer.column(column).macs for layer in stack.layers)
    assert stack.output_shape == (1, 5)
    assert stack.ratio("params") == stack.total("separable", "params") / stack.total("standard", "params")


def test_records_are_frozen() -> None:
    c = counting.compare(resolve_spec(rank=2, in_channels=16, out_channels=32), (1, 16, 50, 129))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.input_shape = (2, 16, 50, 129)  # type: ignore[misc]
