"""Config files: loading, every kind of refusal with its file and line, stacks, sweeps."""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsconv_cli.core import config, counting
from dsconv_cli.core.evaluate import count_config
from dsconv_cli.core.spec import LayerKind
from dsconv_cli.errors import ConfigError

CONFIGS = Path(__file__).parent.parent / "configs"


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config.parse(text, "c.yaml")
    return info.value.messages


def test_every_shipped_config_loads_and_counts() -> None:
    shipped = sorted(CONFIGS.glob("*.yaml"))
    assert {p.name for p in shipped} >= {
        "seed_example.yaml", "mobilenet_v1.yaml", "gtcrn_blocks.yaml", "sweep_kernel_channels.yaml"}  # fmt: skip
    for path in shipped:
        stacks = count_config(config.load(path))
        assert stacks and all(s.total("standard", "macs") > 0 for s in stacks)


def test_seed_example_file_is_the_default() -> None:
    (stack,) = count_config(config.load(CONFIGS / "seed_example.yaml"))
    assert (stack.total("standard", "params"), stack.total("separable", "params")) == (4_608, 656)
    assert (stack.total("standard", "macs"), stack.total("separable", "macs")) == (29_721_600, 4_231_200)


def test_mobilenet_v1_reproduces_the_paper() -> None:
    """Howard et al. 2017, Table 4: MobileNet 4.2M params / 569M mult-adds; Conv MobileNet 29.3M / 4866M."""
    (stack,) = count_config(config.load(CONFIGS / "mobilenet_v1.yaml"))
    assert stack.output_shape == (1, 1000)
    assert round(stack.total("separable", "params") / 1e6, 1) == 4.2  # 4,231,976
    assert round(stack.total("separable", "macs") / 1e6) == 569  # 568,740,352
    assert round(stack.total("standard", "params") / 1e6, 1) == 29.3  # 29,294,088
    # 4,867,293,184 with the 1000-way classifier; the paper's 4866 is the convolutions alone:
    # the classifier is 1024*1000 = 1,024,000 MACs, leaving 4,866,269,184.
    fc = stack.layers[-1]
    assert fc.kind is LayerKind.LINEAR and fc.standard.macs == 1_024_000
    assert round((stack.total("standard", "macs") - fc.standard.macs) / 1e6) == 4866
    assert abs(stack.total("standard", "macs") / 1e6 - 4866) < 1.5


def test_mobilenet_v1_per_layer_shapes_follow_table_1() -> None:
    (stack,) = count_config(config.load(CONFIGS / "mobilenet_v1.yaml"))
    shapes = {layer.name: layer.output_shape[1:] for layer in stack.layers}
    assert shapes["conv1"] == (32, 112, 112)
    assert shapes["block2"] == (128, 56, 56)
    assert shapes["block6"] == (512, 14, 14)
    assert shapes["block7.5"] == (512, 14, 14)
    assert shapes["block13"] == (1024, 7, 7)
    assert shapes["pool"] == (1024, 1, 1)


def test_layers_chain_and_repeat() -> None:
    cfg = config.parse(
        "input_shape: [2, 8, 16, 16]\n"
        "defaults: {kernel_size: 3}\n"
        "layers:\n"
        "  - {out_channels: 16, stride: 2}\n"
        "  - {name: body, out_channels: 16, repeat: 3}\n"
        "  - {kind: global_avg_pool}\n"
        "  - {kind: linear, out_features: 10, bias: true}\n",
        "c.yaml",
    )
    (stack,) = count_config(cfg)
    assert [layer.name for layer in stack.layers] == [
        "compare0", "body.1", "body.2", "body.3", "global_avg_pool2", "linear3"]  # fmt: skip
    assert stack.layers[0].output_shape == (2, 16, 8, 8)
    assert stack.layers[1].input_shape == (2, 16, 8, 8)
    # linear: 16*10 + 10 params, 2*16*10 MACs
    assert (stack.layers[-1].standard.params, stack.layers[-1].standard.macs) == (170, 320)
    # totals are column sums
    assert stack.total("separable", "macs") == sum(layer.separable.macs for layer in stack.layers)


def test_standard_and_separable_kinds_fill_both_columns() -> None:
    cfg = config.parse(
        "input_shape: [1, 3, 32, 32]\nlayers:\n"
        "  - {kind: standard, out_channels: 8}\n  - {kind: separable, out_channels: 8}\n",
        "c.yaml",
    )
    stem, sep = count_config(cfg)[0].layers
    # a stem conv is the same single standard stage in both columns; a separable layer the same pair in both
    assert [s.name for s in stem.standard.stages] == [s.name for s in stem.separable.stages] == ["standard"]
    assert [s.name for s in sep.standard.stages] == [s.name for s in sep.separable.stages] == ["depthwise", "pointwise"]
    assert stem.standard.macs == stem.separable.macs == 3 * 9 * 8 * 32 * 32
    assert sep.standard.macs == sep.separable.macs == 8 * 9 * 32 * 32 + 8 * 8 * 32 * 32


def test_sweep_grid_expands_every_point() -> None:
    cfg = config.load(CONFIGS / "sweep_kernel_channels.yaml")
    stacks = count_config(cfg)
    assert len(stacks) == 12
    assert [s.point for s in stacks[:2]] == [{"out_channels": 32, "kernel_size": [3]},
                                             {"out_channels": 32, "kernel_size": [5]}]  # fmt: skip
    for s in stacks:
        k = s.point["kernel_size"][0]
        assert s.ratio("macs") == pytest.approx(1 / s.point["out_channels"] + 1 / k**2)


def test_grid_too_large_is_refused_unless_allowed() -> None:
    text = "input_shape: [1, 4, 8, 8]\nlayers: [{out_channels: 4}]\nsweep:\n  out_channels: [1, 2, 4]\n"
    cfg = config.parse(text, "c.yaml")
    with pytest.raises(ConfigError, match=r"c.yaml:3: sweep has 3 points, over the limit of 2; pass --max-points 3"):
        count_config(cfg, max_points=2)
    assert len(count_config(cfg, max_points=3)) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("layers:\n  - out_channels: [32\n", ["c.yaml:3:1: invalid YAML: expected ',' or ']', but got '<stream end>'"]),
        ("- 1\n- 2\n", ["c.yaml: expected a mapping with input_shape and layers, got a list"]),
        ("", ["c.yaml: expected a mapping with input_shape and layers, got an empty file"]),
        ("input_shape: [1, 16, 8, 8]\nlayers:\n  - out_channels: 8\n    kernal_size: 3\n",
         ["c.yaml:4: layers[0].kernal_size: unknown key; did you mean kernel_size? valid: "
          + ", ".join(sorted(config.LayerModel.model_fields))]),
        ("input_shape: [1, 16, 8, 8]\nlayer:\n  - out_channels: 8\n",
         ["c.yaml: layers: required (or model, for a whole PyTorch model)",
          "c.yaml:2: layer: unknown key; did you mean layers? valid: budgets, defaults, description, input_shape, "
          "layers, model, name, sweep"]),
        ("input_shape: [1, 16, 8, 8]\nlayers:\n  - out_channels: 0\n    kernel_size: [3, x]\n    act: gelu\n",
         ["c.yaml:3: layers[0].out_channels 0: Input should be greater than or equal to 1",
          "c.yaml:4: layers[0].kernel_size [3, x]: expected a positive integer or a list of them, e.g. 3 or [3, 5]",
          "c.yaml:5: layers[0].act gelu: Input should be 'none', 'relu', 'relu6', 'prelu', 'hardswish', 'silu' or 'tanh'"]),
        ("input_shape: [1, 16, 8, 8]\nlayers:\n  - kind: linear\n    out_features: 4\n    stride: 2\n",
         ["c.yaml:5: layers[0].stride: not a field of linear layers (valid: add, bias, out_features, share)"]),
        ("input_shape: [1, 16, 8, 8]\nlayers:\n  - kernel_size: 3\n",
         ["c.yaml:3: layers[0].out_channels: required for compare layers"]),
        ("input_shape: [1, 16, 8, 8]\nlayers: [{out_channels: 4}]\nsweep:\n  out_chanels: [1, 2]\n  stride: []\n",
         ["c.yaml:4: sweep.out_chanels: not a layer field; did you mean out_channels? valid: "
          + ", ".join(sorted(set(config.LayerFields.model_fields) - {"add", "share"})),
          "c.yaml:5: sweep.stride: the grid is empty; give at least one value"]),
        ("input_shape: [1, 16, 8, 8]\nlayers: [{out_channels: 4}]\nsweep:\n  groups: [1, -2]\n",
         ["c.yaml:4: sweep.groups[1] -2: Input should be greater than or equal to 1"]),
        ("input_shape: [1, 16]\nlayers: [{out_channels: 4}]\n",
         ["c.yaml:1: input_shape 1,16: has 2 dims; give N,C plus 1-3 spatial dims, e.g. 1,16,50,129"]),
    ],
)  # fmt: skip
def test_config_errors_name_file_line_and_path(text: str, expected: list[str]) -> None:
    assert _errors(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("input_shape: [1, 16, 8, 8]\nlayers:\n  - out_channels: 32\n  - in_channels: 16\n    out_channels: 8\n",
         "c.yaml:4: layers[1].in_channels 16: the layer's input is (1, 32, 8, 8) with 32 channels; leave "
         "in_channels out or make it 32"),
        ("input_shape: [1, 16, 8, 8]\nlayers:\n  - out_channels: 32\n  - out_channels: 8\n    groups: 3\n",
         "c.yaml:5: layers[1].groups 3: in_channels 32 and out_channels 8 must both be divisible by groups; "
         "valid: 1, 2, 4, 8 (layer input (1, 32, 8, 8))"),
        ("input_shape: [1, 16, 8, 8]\nlayers:\n  - {kind: linear, out_features: 4}\n  - {out_channels: 8}\n",
         "c.yaml:4: layers[1].kind compare: needs an input with spatial dims, but the previous layer outputs "
         "(1, 4); put it before the linear layer"),
        ("input_shape: [1, 4, 4, 4]\nlayers:\n  - {out_channels: 4, stride: 2}\n  - {out_channels: 4, kernel_size: 5, padding: 0}\n",
         "c.yaml:4: layers[1].kernel_size 5,5: kernel extent 5 (dilation 1) exceeds the padded input 2 in spatial "
         "dim 0 (size 2 + padding 0), so the output is empty; use a smaller kernel or dilation, more padding or a "
         "larger input (layer input (1, 4, 2, 2))"),
    ],
)  # fmt: skip
def test_stacks_that_do_not_chain_name_layer_and_shapes(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        count_config(config.parse(text, "c.yaml"))
    assert info.value.messages == [expected]


def test_json_schema_describes_the_format() -> None:
    schema = config.json_schema()
    assert schema["title"] == "dsconv config"
    assert schema["oneOf"] == [{"required": ["layers"]}, {"required": ["model"]}]
    model = schema["$defs"]["ModelSection"]
    assert "target" in model["required"]
    assert {"required": ["input_shape"]} in model["anyOf"] and {"required": ["example_inputs"]} in model["anyOf"]
    layer = schema["$defs"]["LayerModel"]
    assert {"kernel_size", "out_channels", "kind", "repeat"} <= set(layer["properties"])
    assert layer["additionalProperties"] is False


@settings(max_examples=40, deadline=None)
@given(
    channels=st.lists(st.sampled_from([4, 8, 12, 16]), min_size=1, max_size=5),
    kernel=st.sampled_from([1, 3, 5]),
    stride=st.sampled_from([1, 2]),
)
def test_stack_totals_equal_sum_of_single_comparisons(channels: list[int], kernel: int, stride: int) -> None:
    """A stack counts each layer exactly as ``dsconv compare`` would on that layer's input."""
    layers = "\n".join(f"  - {{out_channels: {c}, kernel_size: {kernel}, stride: {stride}}}" for c in channels)
    (stack,) = count_config(config.parse(f"input_shape: [1, 4, 32, 32]\nlayers:\n{layers}\n", "c.yaml"))
    macs = 0
    for layer in stack.layers:
        assert layer.comparison is not None
        single = counting.compare(layer.comparison.spec, layer.input_shape)
        assert single.separable.macs == layer.separable.macs
        macs += single.separable.macs
    assert stack.total("separable", "macs") == macs
    assert stack.input_shape == (1, 4, 32, 32)
    assert math.prod(stack.output_shape) > 0


# --- hostile and sloppy files -------------------------------------------------------------------------


def test_an_alias_bomb_is_refused_within_a_second() -> None:
    import time

    levels = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    text = "\n".join(levels) + "\ninput_shape: [1, 4, 8, 8]\nlayers: [{out_channels: 4}]\n"
    start = time.perf_counter()
    with pytest.raises(config.ConfigError, match=r"expands to over 740,000 values \(aliases followed\)"):
        config.parse(text, "bomb.yaml")
    assert time.perf_counter() - start < 1.0


def test_deep_nesting_is_refused() -> None:
    for depth in (40, 5000):
        with pytest.raises(config.ConfigError, match="nested"):
            config.parse("a: " + "[" * depth + "]" * depth + "\n", "deep.yaml")


def test_a_duplicate_key_names_both_lines() -> None:
    text = "input_shape: [1, 4, 8, 8]\nlayers:\n  - out_channels: 4\n    kernel_size: 3\n    out_channels: 8\n"
    assert _errors(text) == ["c.yaml:5: out_channels: given twice (lines 3 and 5); keep one"]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("out_channels: true", "layers[0].out_channels True: expected an integer, got bool True"),
        ('multiplier: "2"', "layers[0].multiplier 2: expected an integer, got str '2'"),
        ("groups: 1.0", "layers[0].groups 1.0: expected an integer, got float 1.0"),
        ('bias: "no"', "layers[0].bias no: Input should be a valid boolean"),
        ('expand: "6"', "layers[0].expand 6: expected a number, got str '6'"),
    ],
)
def test_values_are_never_quietly_converted(field: str, message: str) -> None:
    kind = "kind: inverted_residual, " if field.startswith("expand") else ""
    text = f"input_shape: [1, 4, 8, 8]\nlayers: [{{{kind}out_channels: 4, {field}}}]\n".replace(
        "out_channels: 4, out_channels: true", "out_channels: true")  # fmt: skip
    (line,) = _errors(text)
    assert line.endswith(message), line


def test_a_huge_repeat_is_refused_before_anything_is_expanded() -> None:
    import time

    text = "input_shape: [1, 4, 8, 8]\nlayers: [{out_channels: 4, repeat: 1000000000000}]\n"
    start = time.perf_counter()
    assert _errors(text) == ["c.yaml:2: layers: the stack expands to 1,000,000,000,000 layers (repeats counted), "
                             "over the limit of 10,000; pass --max-layers 1000000000000 to allow it"]  # fmt: skip
    assert time.perf_counter() - start < 1.0
    assert len(config.parse(text.replace("1000000000000", "20"), "c.yaml", max_layers=20).layers) == 20


def test_a_timed_sweep_over_the_cap_is_refused_before_counting(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from conftest import invoke

    from dsconv_cli.core import evaluate

    monkeypatch.setattr(evaluate, "count_config", lambda *a, **k: pytest.fail("counted before refusing"))
    path = tmp_path / "s.yaml"
    path.write_text("input_shape: [1, 4, 8, 8]\nlayers: [{out_channels: 4}]\nsweep: {out_channels: "
                    f"{list(range(1, 101))}}}\n")  # fmt: skip
    result = invoke("report", str(path), "--bench", "--min-time", "0.01")
    assert result.code == 2 and "sweeps 100 points, too many to time (at most 64)" in result.stderr


def test_report_reads_a_file_whose_name_looks_like_a_glob(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from conftest import invoke

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a[1].yaml").write_text("input_shape: [1, 4, 8, 8]\nlayers: [{out_channels: 4}]\n")
    (tmp_path / "a1.yaml").write_text("input_shape: [1, 4, 8, 8]\nlayers: [{out_channels: 8}]\n")
    result = invoke("report", "a[1].yaml", "--no-bench", "-f", "json")
    assert result.code == 0, result.stderr
    assert [c["file"] for c in json.loads(result.stdout)["configs"]] == ["a[1].yaml"]
    globbed = invoke("report", "a[0-9].yaml", "--no-bench", "-f", "json")
    assert [c["file"] for c in json.loads(globbed.stdout)["configs"]] == ["a1.yaml"]


def _readme_configs() -> list[str]:
    readme = (CONFIGS.parent / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    return [textwrap.dedent(b) for b in blocks if "layers:" in b or "model:" in b]


def test_every_shipped_config_and_readme_example_passes_the_schema() -> None:
    import jsonschema
    import yaml

    schema = config.json_schema()
    texts = {str(p): p.read_text() for p in sorted(CONFIGS.glob("*.yaml"))}
    texts |= {f"README example {i}": t for i, t in enumerate(_readme_configs())}
    assert len(texts) >= 8
    for name, text in texts.items():
        jsonschema.validate(yaml.safe_load(text), schema)  # raises, naming the field, if the schema is too strict
        if "model:" not in text:
            config.parse(text, name)  # and the loader takes it too
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"layers": [{"out_channels": 4, "kernel_size": "3"}]}, schema)


def test_layer_fields_are_generated_from_the_one_table_of_fields() -> None:
    """A field is declared once (spec.LAYER_FIELDS / spec.BLOCK_FIELDS): the loader's model, the JSON
    Schema and the flags all come from that table."""
    from dsconv_cli.core.spec import BLOCK_FIELDS, LAYER_FIELDS

    table = {f.name: f for f in LAYER_FIELDS + BLOCK_FIELDS}
    assert list(config.LayerFields.model_fields) == list(table)
    for name, info in config.LayerFields.model_fields.items():
        assert info.description == (table[name].doc or table[name].help)
    properties = config.json_schema()["$defs"]["LayerModel"]["properties"]
    assert set(table) <= set(properties)
    assert properties["se"]["anyOf"][0] == {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
