"""The Python API: same results as the command line, keyword names as its flags, no torch on import."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import pytest
from conftest import invoke

import dsconv_cli
from dsconv_cli.core.spec import LAYER_FIELDS
from dsconv_cli.errors import SpecError


def test_compare_returns_the_seed_example_without_torch() -> None:
    code = (
        "import sys, dsconv_cli as d\n"
        "r = d.compare(in_channels=16, out_channels=32, kernel_size=3, input_shape=(1, 16, 50, 129), bench=False)\n"
        "print(r.standard.params, r.separable.params, 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["4608", "656", "False"]


@pytest.mark.parametrize(
    ("api_kwargs", "flags"),
    [
        ({}, []),
        ({"in_channels": 16, "out_channels": 32, "kernel_size": (1, 3), "stride": (1, 2), "padding": (0, 1),
          "output_padding": (0, 1), "transposed": True, "bias": True, "norm": "batch", "act": "prelu",
          "input_shape": (1, 16, 50, 65)},
         ["-i", "16", "-o", "32", "-k", "1,3", "--stride", "1,2", "--padding", "0,1", "--output-padding", "0,1",
          "--transposed", "--bias", "--norm", "batch", "--act", "prelu", "--input-shape", "1,16,50,65"]),
        ({"in_channels": 8, "out_channels": 8, "kernel_size": 5, "padding": "same", "dilation": 2, "groups": 2,
          "multiplier": 3, "placement": "mobilenet", "input_shape": "2,8,1000"},
         ["-i", "8", "-o", "8", "-k", "5", "--padding", "same", "--dilation", "2", "--groups", "2",
          "--multiplier", "3", "--placement", "mobilenet", "--input-shape", "2,8,1000"]),
    ],
)  # fmt: skip
def test_to_dict_is_exactly_the_cli_json(api_kwargs: dict[str, object], flags: list[str]) -> None:
    result = dsconv_cli.compare(**api_kwargs, bench=False)  # type: ignore[arg-type]
    cli = json.loads(invoke("compare", *flags, "--no-bench", "-f", "json").stdout)
    assert cli["comparisons"] == [json.loads(json.dumps(dsconv_cli.to_dict(result)))]
    assert dsconv_cli.to_dict(result) == cli["comparisons"][0]  # already JSON-native: no tuples left to convert


def test_count_is_compare_without_timing() -> None:
    counted = dsconv_cli.count(in_channels=16, out_channels=32, kernel_size=3, input_shape=(1, 16, 50, 129))
    # CONVENTIONS case b: 144 + 512 params, 928,800 + 3,302,400 MACs
    assert [(s.params, s.macs) for s in counted.separable.stages] == [(144, 928_800), (512, 3_302_400)]
    assert counted.timings == ()


def test_run_config_to_dict_is_the_report_json() -> None:
    report = dsconv_cli.run_config("configs/mobilenet_v1.yaml")
    cli = json.loads(invoke("report", "configs/mobilenet_v1.yaml", "--no-bench", "-f", "json").stdout)
    assert cli["configs"] == [dsconv_cli.to_dict(report)]
    config = dsconv_cli.load_config("configs/mobilenet_v1.yaml")
    assert dsconv_cli.to_dict(dsconv_cli.run_config(config)) == dsconv_cli.to_dict(report)


def test_bad_values_raise_the_same_errors_as_the_flags() -> None:
    with pytest.raises(SpecError) as caught:
        dsconv_cli.compare(in_channels=16, out_channels=30, groups=4, bench=False)
    assert caught.value.exit_code == 2
    line = invoke("compare", "-i", "16", "-o", "30", "--groups", "4", "--no-bench").stderr.strip()
    assert line == f"error: {caught.value}"


def test_api_keywords_are_the_compare_flags() -> None:
    from dsconv_cli.cli.app import compare as command

    cli_names = set(inspect.signature(command).parameters) - {"config_file", "plot", "output_format", "output",
                                                               "baseline", "max_increase", "max_points",
                                                               "max_layers", "strict_timing", "baseline_missing",
                                                               "show_work", "diagram", "trust_model_code"}  # fmt: skip
    api_names = set(inspect.signature(dsconv_cli.compare).parameters) - {"compile"}  # records say ``trusted``
    assert api_names == (cli_names - {"compile_"})
    assert {f.name for f in LAYER_FIELDS} <= api_names
    assert {f.name for f in LAYER_FIELDS} <= set(inspect.signature(dsconv_cli.count).parameters)


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        dsconv_cli.summary  # noqa: B018
