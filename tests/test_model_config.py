"""Configs that name a whole model: `dsconv report` runs them with budgets and baselines, as layer configs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import invoke
from hypothesis import given, settings
from hypothesis import strategies as st

MODELS = Path(__file__).parent / "models.py"
SHIPPED = Path(__file__).parent / "configs" / "tiny_mobilenet_v2.yaml"


def write(tmp_path: Path, body: str, name: str = "m.yaml") -> str:
    path = tmp_path / name
    path.write_text(f"name: tiny\nmodel:\n  target: {MODELS}:TinyMobileNetV2\n" + body)
    return str(path)


def test_report_totals_are_the_analysis_and_its_conversion() -> None:
    result = invoke("report", "--trust-model-code", str(SHIPPED), "--no-bench", "-f", "json")
    assert result.code == 0, result.stderr
    (entry,) = json.loads(result.stdout)["configs"]
    analysis = json.loads(invoke("analyze", f"{MODELS}:TinyMobileNetV2", "--input-shape", "1,3,64,64",
                                 "--convert", "all", "-f", "json").stdout)  # fmt: skip
    assert entry["model"]["totals"] == analysis["totals"]
    for key in ("params", "macs", "other_ops"):
        assert entry["totals"]["standard"][key if key != "other_ops" else "elementwise_ops"] == analysis["totals"][key]
    converted = analysis["converted"]["totals"]
    assert (entry["totals"]["separable"]["params"], entry["totals"]["separable"]["macs"]) == (
        converted["params"], converted["macs"])  # fmt: skip
    assert entry["ok"] and [b["ok"] for b in entry["budgets"]] == [True] * 3


def test_a_budget_a_model_breaks_fails_the_job_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "  input_shape: [1, 3, 64, 64]\nbudgets:\n  standard: {macs: 1000000}\n")
    result = invoke("report", "--trust-model-code", path, "--no-bench")
    assert result.code == 1
    assert "tiny: total standard macs 1,685,624 exceeds the limit 1,000,000 by 685,624 (68.6%)" in result.stderr


def test_the_convert_rule_chooses_the_separable_column(tmp_path: Path) -> None:
    none = write(tmp_path, "  input_shape: [1, 3, 64, 64]\n  convert: 'min-saving:99'\n", "none.yaml")
    (entry,) = json.loads(invoke("report", "--trust-model-code", none, "--no-bench", "-f", "json").stdout)["configs"]
    assert entry["totals"]["separable"]["macs"] == entry["totals"]["standard"]["macs"]  # nothing saves 99%


def test_baseline_growth_of_a_model_fails(tmp_path: Path) -> None:
    small = write(tmp_path, "  input_shape: [1, 3, 32, 32]\n", "a.yaml")
    baseline = tmp_path / "base.json"
    assert (
        invoke("report", "--trust-model-code", small, "--no-bench", "-f", "json", "--output", str(baseline)).code == 0
    )
    grown = write(tmp_path, "  input_shape: [1, 3, 64, 64]\n", "a.yaml")  # same name, 4x the pixels
    result = invoke(
        "report", "--trust-model-code", grown, "--no-bench", "--baseline", str(baseline), "--max-increase", "10"
    )
    assert result.code == 1
    assert "tiny: total standard macs grew +299.9% (421,496 -> 1,685,624)" in result.stderr


def test_csv_and_markdown_carry_the_model(tmp_path: Path) -> None:
    csv_text = invoke("report", "--trust-model-code", str(SHIPPED), "--no-bench", "-f", "csv").stdout
    import csv
    import io

    rows = list(csv.reader(io.StringIO(csv_text)))
    assert rows[-1][2:4] == ["total", "model"] and rows[1][3] == "candidate"
    markdown = invoke("report", "--trust-model-code", str(SHIPPED), "--no-bench", "-f", "markdown").stdout
    assert "### Conversion candidates" in markdown and markdown.rstrip().endswith("**PASS**: tiny-mobilenet-v2")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  input_shape: [1, 3, 8, 8]\nlayers: [{out_channels: 4}]\n", "model: give layers"),
        ("  input_shape: [1, 3, 8, 8]\nbudgets:\n  per_layer: {standard: {macs: 1}}\n", "budgets.per_layer: applies"),
        ("  input_shape: [1, 3, 8, 8]\n  convert: most\n", "model.convert most: expected all, top:N"),
        ("  input_shape: [1, x]\n", "model.input_shape [1, x]: expected a non-negative integer"),
        ("  input_shape: [1, 3, 8, 8]\nsweep: {out_channels: [1, 2]}\n", "sweep: not used with model"),
    ],
)
def test_bad_model_configs_are_refused_naming_the_line(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    result = invoke("report", "--trust-model-code", path, "--no-bench")
    assert result.code == 2
    assert message in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: {path}:")


def test_a_missing_target_is_a_config_problem_and_other_files_still_report(tmp_path: Path) -> None:
    path = tmp_path / "gone.yaml"
    path.write_text("model:\n  target: no_such_module_here:Net\n  input_shape: [1, 3, 8, 8]\n")
    result = invoke("report", "--trust-model-code", str(path), str(SHIPPED), "--no-bench", "-f", "json")
    assert result.code == 2
    assert f"error: {path}:2: model.target no_such_module_here:Net: module no_such_module_here not found" in (
        result.stderr)  # fmt: skip
    assert [c["name"] for c in json.loads(result.stdout)["configs"]] == ["tiny-mobilenet-v2"]


def test_compare_config_runs_a_model_and_refuses_layer_flags() -> None:
    assert invoke("compare", "--trust-model-code", "--config", str(SHIPPED), "--no-bench").code == 0
    result = invoke("compare", "--trust-model-code", "--config", str(SHIPPED), "--no-bench", "-o", "16")
    assert result.code == 2 and "--out-channels override layer configs; this one names a model" in result.stderr


@settings(max_examples=8, deadline=None)
@given(model=st.sampled_from(["VGGish", "TinyUNet", "TinyGTCRN", "SharedHeads"]))
def test_emitted_config_totals_the_candidates_as_the_advisor_does(model: str) -> None:
    """Every call of every candidate becomes a layer; report's two columns equal the advisor's sums."""
    import tempfile

    shape = {"VGGish": "2,3,16,16", "TinyUNet": "1,1,16,16", "TinyGTCRN": "1,3,20,17", "SharedHeads": "1,4,8,8"}[model]
    with tempfile.TemporaryDirectory() as folder:
        emitted = Path(folder) / "candidates.yaml"
        analysis = json.loads(invoke("analyze", f"{MODELS}:{model}", "--input-shape", shape, "--emit-config",
                                     str(emitted), "-f", "json").stdout)  # fmt: skip
        candidates = analysis["advisor"]["candidates"]
        assert emitted.exists() == bool(candidates)
        if not candidates:
            return
        report = invoke("report", "--trust-model-code", str(emitted), "--no-bench", "--verify", "-f", "json")
    assert report.code == 0, report.stderr
    totals = json.loads(report.stdout)["configs"][0]["points"][0]["totals"]
    assert totals["standard"]["macs"] == sum(c["macs"] for c in candidates)
    assert totals["separable"]["macs"] == sum(c["separable"]["macs"] for c in candidates)
    once = [c for c in candidates if c["calls"] == 1]  # a conv called k times is k layers: params k times
    if len(once) == len(candidates):
        assert totals["standard"]["params"] == sum(c["params"] for c in candidates)
        assert totals["separable"]["params"] == sum(c["separable"]["params"] for c in candidates)


def test_no_candidates_writes_no_config(tmp_path: Path) -> None:
    target = tmp_path / "c.yaml"
    result = invoke("analyze", f"{MODELS}:NoConvs", "--input-shape", "2,5,8", "--emit-config", str(target))
    assert result.code == 0 and not target.exists()
    assert "no conversion candidates" in result.stderr


def test_layers_with_their_own_input_are_independent(tmp_path: Path) -> None:
    """A layer's input_shape starts it afresh: totals sum the single comparisons, no whole-column timing."""
    from dsconv_cli.core import config, counting
    from dsconv_cli.core.evaluate import count_config
    from dsconv_cli.core.spec import resolve_spec

    text = ("layers:\n  - {out_channels: 8, input_shape: [1, 4, 9, 9]}\n"
            "  - {out_channels: 6, kernel_size: 5, input_shape: [2, 3, 7, 7]}\n")  # fmt: skip
    cfg = config.parse(text, "c.yaml")
    assert cfg.input_shape == (1, 4, 9, 9)
    (stack,) = count_config(cfg)
    assert not stack.chained
    singles = [counting.compare(resolve_spec(rank=2, in_channels=4, out_channels=8), (1, 4, 9, 9)),
               counting.compare(resolve_spec(rank=2, in_channels=3, out_channels=6, kernel_size=5), (2, 3, 7, 7))]  # fmt: skip
    for column in ("standard", "separable"):
        assert stack.total(column, "macs") == sum(getattr(c, column).macs for c in singles)
    path = tmp_path / "independent.yaml"
    path.write_text(text)
    result = invoke(
        "report", "--trust-model-code", str(path), "--bench", "--min-time", "0.01", "--threads", "1", "-f", "json"
    )
    assert result.code == 0, result.stderr
    point = json.loads(result.stdout)["configs"][0]["points"][0]
    assert all("latency" in layer["standard"] for layer in point["layers"])
    assert "latency" not in point["totals"]["standard"]  # independent layers are no single module to time
