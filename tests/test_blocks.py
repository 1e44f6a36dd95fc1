"""Block kinds (inverted residual, squeeze-excite, residual adds, windowed pooling, shared layers) against
PyTorch: each built module's params, MACs (FlopCounterMode / 2) and shape, and its other ops against
``analyze``'s op-by-op counter, an independent second path. The shipped MobileNetV2 and EfficientNet-B0
configs against the real networks written out in tests/models.py, at several widths and resolutions."""

from __future__ import annotations

import json

import pytest
from conftest import invoke
from hypothesis import given, settings
from hypothesis import strategies as st
from models import EfficientNetB0, MobileNetV2

from dsconv_cli.api import analyze
from dsconv_cli.core import config
from dsconv_cli.core.evaluate import count_config
from dsconv_cli.core.results import StackResult
from dsconv_cli.errors import ConfigError
from dsconv_cli.pt.builder import build_layer
from dsconv_cli.pt.crosscheck import verify_stack

CONFIGS = config.Path(__file__).parent.parent / "configs"


def stack_of(text: str) -> StackResult:
    (stack,) = count_config(config.parse(text, "c.yaml"))
    return stack


def assert_agrees_with_pytorch(stack: StackResult) -> None:
    """Every check of --verify passes, and each layer's other ops equal analyze's count of its module."""
    checks = verify_stack(stack)
    assert checks and all(ch.ok for ch in checks), [ch for ch in checks if not ch.ok]
    for layer in stack.layers:
        for column in ("standard", "separable"):
            counted = analyze(build_layer(layer, column).eval(), layer.input_shape).totals
            variant = layer.column(column)
            assert counted.macs == variant.macs, (layer.name, column)
            assert counted.other_ops == variant.elementwise_ops, (layer.name, column)
            if layer.share is None:
                assert counted.params == variant.params, (layer.name, column)


@pytest.mark.parametrize(
    ("path", "macs", "params"),
    [("mobilenet_v2.yaml", 300_774_272, 3_504_872), ("efficientnet_b0.yaml", 385_814_752, 5_288_548)],
)
def test_shipped_configs_give_the_published_totals(path: str, macs: int, params: int) -> None:
    result = invoke("report", str(CONFIGS / path), "--no-bench", "--verify", "-f", "json")
    assert result.code == 0, result.stderr
    totals = json.loads(result.stdout)["configs"][0]["points"][0]["totals"]["separable"]
    assert (totals["macs"], totals["params"]) == (macs, params)


@pytest.mark.parametrize(
    ("path", "model", "width", "resolution"),
    [
        ("mobilenet_v2.yaml", MobileNetV2, 1.0, 224),
        ("mobilenet_v2.yaml", MobileNetV2, 0.5, 160),
        ("mobilenet_v2.yaml", MobileNetV2, 0.75, 192),
        ("mobilenet_v2.yaml", MobileNetV2, 1.4, 224),
        ("mobilenet_v2.yaml", MobileNetV2, 0.35, 96),
        ("efficientnet_b0.yaml", EfficientNetB0, 1.0, 224),
        ("efficientnet_b0.yaml", EfficientNetB0, 0.5, 192),
    ],
)
def test_width_and_resolution_match_the_real_model_built_the_same_way(path, model, width, resolution) -> None:  # type: ignore[no-untyped-def]
    text = (CONFIGS / path).read_text()
    text = text.replace("\n  width_multiplier: 1.0\n", f"\n  width_multiplier: {width}\n")  # the defaults' line
    text = text.replace("input_shape: [1, 3, 224, 224]", f"input_shape: [1, 3, {resolution}, {resolution}]")
    separable = stack_of(text)
    real = analyze(model(width_mult=width), (1, 3, resolution, resolution)).totals
    assert separable.total("separable", "macs") == real.macs
    assert separable.total("separable", "params") == real.params
    assert separable.total("separable", "elementwise_ops") == real.other_ops


def test_a_width_sweep_gives_each_real_model() -> None:
    text = (CONFIGS / "mobilenet_v2.yaml").read_text() + "sweep: {width_multiplier: [0.5, 1.0]}\n"
    stacks = count_config(config.parse(text, "c.yaml"))
    for stack in stacks:
        real = analyze(MobileNetV2(width_mult=stack.point["width_multiplier"]), (1, 3, 224, 224)).totals
        assert (stack.total("separable", "macs"), stack.total("separable", "params")) == (real.macs, real.params)


@settings(max_examples=20, deadline=None)
@given(
    cin=st.sampled_from([4, 8, 12]),
    cout=st.sampled_from([4, 8, 16]),
    expand=st.sampled_from([1, 2, 6]),
    k=st.sampled_from([1, 3, 5]),
    stride=st.sampled_from([1, 2]),
    se=st.sampled_from([None, 0.25, 0.5]),
    act=st.sampled_from(["relu6", "silu", "hardswish", "prelu"]),
    gate=st.sampled_from(["sigmoid", "hardsigmoid"]),
    residual=st.sampled_from([None, True, False]),
    rank=st.sampled_from([1, 2]),
)
def test_random_inverted_residuals_agree_with_pytorch(
    cin, cout, expand, k, stride, se, act, gate, residual, rank
) -> None:  # type: ignore[no-untyped-def]
    fields = [f"out_channels: {cout}", f"expand: {expand}", f"kernel_size: {k}", f"stride: {stride}", f"act: {act}",
              f"se_gate: {gate}"]  # fmt: skip
    fields += [f"se: {se}"] if se else []
    fields += [f"residual: {str(residual).lower()}"] if residual is not None else []
    spatial = ", ".join(["9"] * rank)
    stack = stack_of(f"input_shape: [2, {cin}, {spatial}]\nlayers:\n  - {{kind: inverted_residual, "
                     f"{', '.join(fields)}}}\n")  # fmt: skip
    assert_agrees_with_pytorch(stack)
    (block,) = stack.layers
    names = [s.name for s in block.separable.stages]
    assert ("add" in names) == (residual if residual is not None else (stride == 1 and cin == cout))
    assert ("se" in names) == bool(se) and ("expand" in names) == (expand != 1)
    assert [s.name for s in block.standard.stages] == [n if n != "depthwise" else "conv" for n in names]


@settings(max_examples=20, deadline=None)
@given(
    kind=st.sampled_from(["max_pool", "avg_pool"]),
    k=st.sampled_from([2, 3]),
    stride=st.sampled_from([None, 1, 2]),
    padding=st.sampled_from([0, 1]),
    rank=st.sampled_from([1, 2, 3]),
)
def test_random_pools_agree_with_pytorch(kind: str, k: int, stride: int | None, padding: int, rank: int) -> None:
    fields = f"kind: {kind}, kernel_size: {k}, padding: {padding}" + (f", stride: {stride}" if stride else "")
    spatial = ", ".join(["7"] * rank)
    stack = stack_of(f"input_shape: [2, 3, {spatial}]\nlayers:\n  - {{{fields}}}\n")
    assert_agrees_with_pytorch(stack)


@settings(max_examples=15, deadline=None)
@given(
    cin=st.sampled_from([4, 8]),
    cout=st.sampled_from([4, 8]),
    stride=st.sampled_from([1, 2]),
    kind=st.sampled_from(["compare", "standard", "separable"]),
    act_after=st.sampled_from([None, "depthwise", "pointwise", "both", "none"]),
    slopes=st.sampled_from(["1", "channel"]),
)
def test_residual_conv_layers_act_after_and_slopes(cin, cout, stride, kind, act_after, slopes) -> None:  # type: ignore[no-untyped-def]
    extra = f", act_after: {act_after}" if act_after else ""
    stack = stack_of(f"input_shape: [1, {cin}, 8, 8]\nlayers:\n  - {{kind: {kind}, out_channels: {cout}, "
                     f"stride: {stride}, norm: batch, act: prelu, slopes: '{slopes}', residual: true{extra}}}\n")  # fmt: skip
    assert_agrees_with_pytorch(stack)
    (layer,) = stack.layers
    names = [s.name for s in layer.separable.stages]
    assert names[-1] == "add" and ("shortcut" in names) == (stride != 1 or cin != cout)


def test_squeeze_excite_alone_and_shared_layers() -> None:
    stack = stack_of(
        "input_shape: [2, 8, 6, 6]\nlayers:\n"
        "  - {name: body, kind: standard, out_channels: 8, norm: batch, act: relu}\n"
        "  - {name: se, kind: squeeze_excite, se_channels: 2, se_act: silu}\n"
        "  - {name: again, share: body, kind: standard}\n"
        "  - {name: skip, kind: standard, out_channels: 8, add: body}\n"
    )
    assert_agrees_with_pytorch(stack)
    body, se, again, skip = stack.layers
    assert again.share == "body" and again.standard.params == 0 and again.standard.macs == body.standard.macs
    assert skip.add == "body" and skip.standard.stages[-1].name == "add"
    assert se.standard.params == 8 * 2 + 2 + 2 * 8 + 8  # two 1×1 convs with bias


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ("  - {name: a, out_channels: 4}\n  - {share: b}\n", "layers[1].share b: no earlier layer of that name"),
        (
            "  - {name: a, out_channels: 4}\n  - {share: a, out_channels: 8}\n",
            "layers[1].share a: a shared layer takes its fields from a; leave out out_channels",
        ),
        (
            "  - {name: a, out_channels: 4}\n  - {name: b, out_channels: 8}\n  - {share: a}\n",
            "layers[2].share a: its weights do not fit this layer",
        ),
        (
            "  - {name: a, out_channels: 4}\n  - {out_channels: 8, add: a}\n",
            "layers[1].add a: its output (1, 4, 8, 8) does not match this layer's (1, 8, 8, 8)",
        ),
        ("  - {kind: inverted_residual, out_channels: 4, expand: 0.01}\n", "layers[0].expand 0.01: gives 0 hidden"),
        ("  - {kind: max_pool, kernel_size: 3, padding: 2}\n", "layers[0].padding 2,2: must be at most half"),
        (
            "  - {kind: max_pool, kernel_size: 9}\n",
            "layers[0].kernel_size 9,9: is larger than the padded input (layer input (1, 4, 8, 8))",
        ),
        (
            "  - {kind: inverted_residual, out_channels: 4, out_features: 3}\n",
            "layers[0].out_features: not a field of inverted_residual layers",
        ),
        ("  - {kind: squeeze_excite, se: 2}\n", "layers[0].se 2: Input should be less than or equal to 1"),
        (
            "  - {kind: inverted_residual, out_channels: 4, stride: [1, 2, 2]}\n",
            "layers[0].stride 1,2,2: has 3 values but the input has 2 spatial dims",
        ),
        ("  - {kind: avg_pool, kernel_size: 2, padding: [0, 0, 0]}\n", "layers[0].padding 0,0,0: has 3 values"),
        ("  - {out_channels: 4, residual: 1}\n", "layers[0].residual 1: Input should be a valid boolean"),
    ],
)
def test_bad_block_fields_name_the_layer(layers: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        stack_of("input_shape: [1, 4, 8, 8]\nlayers:\n" + layers)
    assert any(message in line for line in caught.value.messages), caught.value.messages


def test_the_schema_describes_every_block_field() -> None:
    layer = config.json_schema()["$defs"]["LayerModel"]["properties"]
    for key in ("expand", "se", "se_channels", "se_act", "se_gate", "residual", "add", "share", "width_multiplier",
                "min_width_multiplier", "act_after", "slopes"):  # fmt: skip
        assert key in layer and layer[key].get("description") or key in ("act_after",), key
