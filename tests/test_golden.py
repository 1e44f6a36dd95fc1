"""Golden outputs in every format, captured before restructuring and kept byte-for-byte since.

Each golden is also checked against itself: per-layer columns must sum to the totals it reports,
as torchinfo's ``assert_sum_column_totals_match`` does for its summaries.
"""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import invoke

MOBILENET = "configs/mobilenet_v1.yaml"


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("compare_default.json", ["compare", "--no-bench", "-f", "json"]),
        ("compare_default.csv", ["compare", "--no-bench", "-f", "csv"]),
        (
            "compare_transposed.json",
            [
                "compare",
                "--no-bench",
                "-f",
                "json",
                "-i",
                "16",
                "-o",
                "32",
                "-k",
                "1,3",
                "--stride",
                "1,2",
                "--padding",
                "0,1",
                "--output-padding",
                "0,1",
                "--transposed",
                "--bias",
                "--norm",
                "batch",
                "--act",
                "prelu",
                "--input-shape",
                "1,16,50,65",
            ],
        ),
        ("mobilenet_v1.json", ["report", MOBILENET, "--no-bench", "-f", "json"]),
        ("mobilenet_v1.csv", ["report", MOBILENET, "--no-bench", "-f", "csv"]),
        ("sweep.json", ["report", "configs/sweep_kernel_channels.yaml", "--no-bench", "-f", "json"]),
    ],
)
def test_output_matches_golden(golden, name: str, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    result = invoke(*args)
    assert result.code == 0, result.stderr
    golden(name, result.stdout)


def test_json_layer_columns_sum_to_totals() -> None:
    doc = json.loads(invoke("report", MOBILENET, "--no-bench", "-f", "json").stdout)
    (point,) = doc["configs"][0]["points"]
    for column in ("standard", "separable"):
        for metric in ("params", "macs", "flops", "elementwise_ops", "buffers"):
            assert sum(layer[column][metric] for layer in point["layers"]) == point["totals"][column][metric]
        assert sum(layer["mac_share"][column] for layer in point["layers"]) == pytest.approx(1.0)


def test_json_stages_sum_to_their_variant() -> None:
    doc = json.loads(invoke("compare", "--no-bench", "-f", "json", "--bias", "--norm", "batch").stdout)
    (c,) = doc["comparisons"]
    for metric in ("params", "macs", "flops", "elementwise_ops", "buffers"):
        assert c["separable"]["depthwise"][metric] + c["separable"]["pointwise"][metric] == c["separable"][metric]


def test_csv_stage_rows_sum_to_variant_rows() -> None:
    rows = list(csv.DictReader(io.StringIO(invoke("compare", "--no-bench", "-f", "csv", "--bias").stdout)))
    by_stage = {(r["variant"], r["stage"]): r for r in rows}
    for metric in ("params", "macs", "flops", "elementwise_ops"):
        stages = int(by_stage["separable", "depthwise"][metric]) + int(by_stage["separable", "pointwise"][metric])
        assert stages == int(by_stage["separable", "total"][metric])
