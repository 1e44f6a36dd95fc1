"""The layer-kind registry: one entry per kind, agreeing with the config schema and with PyTorch."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.flop_counter import FlopCounterMode

from dsconv_cli.core import config
from dsconv_cli.core.kinds import ALL_FIELDS, KINDS, count_layer
from dsconv_cli.core.spec import COLUMNS, LayerDecl, LayerKind
from dsconv_cli.errors import LayerError
from dsconv_cli.pt.builder import build_layer


def test_every_kind_has_one_entry() -> None:
    assert set(KINDS) == set(LayerKind)
    assert all(entry.kind is kind for kind, entry in KINDS.items())
    assert all(set(entry.required) <= entry.fields for entry in KINDS.values())


def test_the_registry_and_the_config_schema_declare_the_same_fields() -> None:
    assert ALL_FIELDS == set(config.LayerFields.model_fields)
    kinds_in_schema = set(config.json_schema()["$defs"]["LayerKind"]["enum"])
    assert kinds_in_schema == {k.value for k in KINDS}


def test_the_readme_names_every_kind() -> None:
    readme = (config.Path(__file__).parent.parent / "README.md").read_text()
    missing = [k.value for k in KINDS if f"`{k.value}`" not in readme]
    assert not missing


@pytest.mark.parametrize("kind", list(LayerKind))
def test_a_field_of_another_kind_is_refused_naming_the_kind(kind: LayerKind) -> None:
    foreign = sorted({"groups", "out_features"} - KINDS[kind].fields)[0]  # both take a positive int
    text = f"input_shape: [1, 4, 8, 8]\nlayers:\n  - {{kind: {kind.value}, {foreign}: 2, out_channels: 4}}\n"
    with pytest.raises(config.ConfigError, match=rf"{foreign}: not a field of {kind.value} layers"):
        config.parse(text, "c.yaml")


def test_a_spatial_kind_after_a_flat_input_names_the_layer_and_shape() -> None:
    decl = LayerDecl("pool", LayerKind.GLOBAL_AVG_POOL, {}, "layers[2]")
    with pytest.raises(LayerError, match=r"layers\[2\]\.kind global_avg_pool: .* outputs \(1, 10\)"):
        count_layer(decl, (1, 10))


def _decl(kind: LayerKind, width: int, kernel: int, stride: int, bias: bool) -> LayerDecl:
    if kind is LayerKind.LINEAR:
        return LayerDecl("fc", kind, {"out_features": width, "bias": bias}, "layers[0]")
    if kind is LayerKind.GLOBAL_AVG_POOL:
        return LayerDecl("pool", kind, {}, "layers[0]")
    options = {"out_channels": width, "kernel_size": kernel, "stride": stride, "bias": bias, "norm": "batch"}
    return LayerDecl("conv", kind, options, "layers[0]")


@settings(max_examples=40, deadline=None)
@given(
    kind=st.sampled_from(list(LayerKind)),
    rank=st.integers(1, 3),
    channels=st.integers(1, 6),
    size=st.integers(3, 9),
    width=st.integers(1, 8),
    kernel=st.sampled_from([1, 3]),
    stride=st.sampled_from([1, 2]),
    bias=st.booleans(),
)
def test_every_kind_counts_as_the_module_it_builds(
    kind: LayerKind, rank: int, channels: int, size: int, width: int, kernel: int, stride: int, bias: bool
) -> None:
    """Each column of each kind: params, output shape and MACs of the built module on the meta device."""
    shape = (2, channels, *([size] * rank))
    layer = count_layer(_decl(kind, width, kernel, stride, bias), shape)
    for column in COLUMNS:
        stats = layer.column(column)
        module = build_layer(layer, column, device="meta").eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            y = module(torch.empty(shape, device="meta"))
        assert tuple(y.shape) == stats.output_shape
        assert sum(p.numel() for p in module.parameters()) == stats.params
        assert counter.get_total_flops() // 2 == stats.macs
        assert math.prod(stats.output_shape) >= 1


def test_every_kind_has_one_builder() -> None:
    """A kind is one entry in core's registry plus its build function in pt/builder.py: neither without the other."""
    from dsconv_cli.pt.builder import BUILDERS

    assert set(BUILDERS) == set(KINDS) == set(LayerKind)
    planned = {kind for kind, entry in KINDS.items() if entry.plan is not None}
    assert planned == {LayerKind.INVERTED_RESIDUAL, LayerKind.SQUEEZE_EXCITE}
