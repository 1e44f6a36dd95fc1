"""The config front door: compare --config, report, schema, budgets, baselines and plots."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cases import CONFIGS, SEED, SWEEP
from conftest import invoke


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_help_for_config_commands() -> None:
    for command in ("report", "schema"):
        result = invoke(command, "--help")
        assert result.code == 0 and "Usage" in result.stdout


def test_compare_config_single_layer_table() -> None:
    result = invoke("compare", "--config", SEED, "--no-bench")
    assert result.code == 0, result.stderr
    assert "PASS: seed_example" in result.stdout
    assert "separable: 656 params, 4,231,200 MACs" in result.stdout


def test_flags_override_a_single_layer_config() -> None:
    result = invoke("compare", "--config", SEED, "--no-bench", "-o", "64", "-k", "5", "-f", "json")
    (point,) = json.loads(result.stdout)["configs"][0]["points"]
    (layer,) = point["layers"]
    assert layer["spec"]["out_channels"] == 64 and layer["spec"]["kernel_size"] == [5, 5]
    # standard 64*16*25 = 25,600 params: over the file's 4,608 budget, so the run fails
    assert result.code == 1
    assert "error: seed_example: total standard params 25,600 exceeds the limit 4,608" in result.stderr


def test_flags_do_not_override_stacks() -> None:
    mobilenet = str(CONFIGS / "mobilenet_v1.yaml")
    result = invoke("compare", "--config", mobilenet, "--no-bench", "-k", "5")
    assert result.code == 2
    assert result.stderr == (
        f"error: {mobilenet}: layer flags (--kernel-size) override single-layer configs only; this one has 16 layers\n"
    )


def test_report_all_shipped_configs_markdown() -> None:
    result = invoke("report", str(CONFIGS / "*.yaml"), "--no-bench", "--format", "markdown")
    assert result.code == 0, result.stderr
    for name in ("seed_example", "mobilenet_v1", "gtcrn_blocks", "sweep_kernel_channels"):
        assert f"## {name}" in result.stdout and f"**PASS**: {name}" in result.stdout
    assert "### Budgets" in result.stdout


def test_report_json_is_machine_readable() -> None:
    result = invoke("report", SEED, SWEEP, "--no-bench", "--format", "json")
    doc = json.loads(result.stdout)
    assert doc["schema_version"] == 2 and doc["ok"] is True
    seed, sweep = doc["configs"]
    totals = seed["points"][0]["totals"]
    assert (totals["standard"]["params"], totals["separable"]["macs"]) == (4_608, 4_231_200)
    assert seed["points"][0]["layers"][0]["separable"]["depthwise"]["macs"] == 928_800
    assert len(sweep["points"]) == 12 and sweep["sweep"]["out_channels"] == [32, 64, 128, 256]
    assert all(b["ok"] for b in seed["budgets"])


def test_report_csv_rows() -> None:
    out = invoke("report", SEED, "--no-bench", "--format", "csv").stdout.splitlines()
    assert out[0].startswith("config,point,layer,kind,output_shape,standard_params")
    assert out[1].startswith('"seed_example","","conv","compare","1x32x50x129",4608,656,29721600,4231200')
    assert out[2].startswith('"seed_example","","total","","1x32x50x129",4608,656')
    import csv
    import io

    (conv, _) = list(csv.DictReader(io.StringIO("\n".join(out))))
    assert (conv["in_channels"], conv["out_channels"], conv["kernel_1"], conv["kernel_2"]) == ("16", "32", "3", "3")


def test_sweep_table_has_heatmap() -> None:
    result = invoke("compare", "--config", SWEEP, "--no-bench")
    assert result.code == 0
    assert "MAC ratio (separable / standard)" in result.stdout
    assert "out_channels \\ kernel_size" in result.stdout


def test_budget_failure_exits_1_and_names_the_limit(tmp_path: Path) -> None:
    path = _write(tmp_path, "tight.yaml", "name: tight\ninput_shape: [1, 16, 50, 129]\n"
                  "layers: [{name: conv, out_channels: 32}]\nbudgets:\n  per_layer:\n    separable: {macs: 1000000}\n")  # fmt: skip
    result = invoke("report", path, "--no-bench")
    assert result.code == 1
    assert "FAIL: tight" in result.stdout
    assert (
        result.stderr
        == "error: tight: conv separable macs 4,231,200 exceeds the limit 1,000,000 by 3,231,200 (323.1%)\n"
    )


def test_report_lists_every_broken_file_and_still_reports_good_ones(tmp_path: Path) -> None:
    bad1 = _write(tmp_path, "a.yaml", "layers: [{out_channels: 8, kernal_size: 3}]\n")
    bad2 = _write(tmp_path, "b.yaml", "layers: [\n")
    result = invoke("report", bad1, bad2, SEED, "--no-bench", "--format", "json")
    assert result.code == 2
    assert json.loads(result.stdout)["configs"][0]["name"] == "seed_example"
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"error: {bad1}:1: layers[0].kernal_size: unknown key; did you mean kernel_size?")
    assert lines[1].startswith(f"error: {bad2}:2:1: invalid YAML:")
    assert lines[-1] == "error: 2 problem(s) in the config files above; nothing was checked for them"


def test_missing_config_file() -> None:
    result = invoke("compare", "--config", "nope.yaml", "--no-bench")
    assert (result.code, result.stderr) == (2, "error: nope.yaml: no such config file\n")


def test_baseline_catches_growth(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    assert invoke("report", SEED, "--no-bench", "-f", "json", "--output", str(old)).code == 0
    bigger = _write(tmp_path, "seed.yaml", "name: seed_example\ninput_shape: [1, 16, 50, 129]\n"
                    "layers: [{name: conv, out_channels: 36}]\n")  # fmt: skip
    result = invoke("report", bigger, "--no-bench", "--baseline", str(old), "--max-increase", "10")
    assert result.code == 1
    assert "against the baseline" in result.stdout
    assert (
        "error: seed_example: total standard params grew +12.5% (4,608 -> 5,184), over --max-increase 10%"
        in result.stderr
    )
    assert invoke("report", bigger, "--no-bench", "--baseline", str(old), "--max-increase", "13").code == 0


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--max-increase", "5"], "error: --max-increase 5.0: needs --baseline OLD.json to compare with"),
        (
            ["--baseline", "missing.json"],
            "error: --baseline missing.json: no such file; pass --baseline-missing ok for a first run",
        ),
        (["--max-points", "0"], "error: --max-points 0: must be a positive integer"),
    ],
)
def test_report_flag_errors(args: list[str], line: str) -> None:
    result = invoke("report", SEED, "--no-bench", *args)
    assert (result.code, result.stderr) == (2, line + "\n")


def test_grid_over_the_limit(tmp_path: Path) -> None:
    result = invoke("compare", "--config", SWEEP, "--no-bench", "--max-points", "10")
    assert result.code == 2
    assert result.stderr == (f"error: {SWEEP}:10: sweep has 12 points, over the limit of 10; pass --max-points 12 "
                             "to allow it or shrink the grid\n")  # fmt: skip


def test_schema_command_prints_json_schema() -> None:
    result = invoke("schema")
    assert result.code == 0
    assert json.loads(result.stdout)["title"] == "dsconv config"


def test_counting_configs_never_imports_torch() -> None:
    code = (
        "import sys\n"
        "from dsconv_cli.cli.app import run\n"
        f"code = run(['report', {str(CONFIGS / '*.yaml')!r}, '--no-bench', '-f', 'json'])\n"
        "print('LOADED', 'torch' in sys.modules, code, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED False 0" in proc.stderr


def test_timed_stack_reports_latency_per_layer_and_total(tmp_path: Path) -> None:
    path = _write(tmp_path, "tiny.yaml", "input_shape: [1, 4, 8, 8]\nlayers:\n  - {out_channels: 8}\n"
                  "  - {kind: global_avg_pool}\n  - {kind: linear, out_features: 3}\n"
                  "budgets:\n  separable: {latency_ms: 10000}\n")  # fmt: skip
    result = invoke("report", path, "--min-time", "0.01", "--threads", "1", "--device", "cpu", "-f", "json")
    assert result.code == 0, result.stderr
    point = json.loads(result.stdout)["configs"][0]["points"][0]
    for layer in point["layers"]:
        assert layer["standard"]["latency"]["median_ms"] > 0
        assert layer["separable"]["latency"]["threads"] == 1
    assert point["totals"]["separable"]["latency"]["runs"] >= 1
    assert point["speedup"]["median"] > 0 and len(point["speedup"]["rounds"]) == 3
    assert all(len(layer["speedup"]["rounds"]) == 3 for layer in point["layers"])
    budget = json.loads(result.stdout)["configs"][0]["budgets"][0]
    assert budget["metric"] == "latency_ms" and budget["measured"] and budget["ok"]


def test_verify_a_stack(tmp_path: Path) -> None:
    result = invoke("compare", "--config", str(CONFIGS / "gtcrn_blocks.yaml"), "--no-bench", "--verify")
    assert result.code == 0, result.stderr


def test_markdown_report_matches_golden(golden, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(CONFIGS.parent)
    result = invoke("report", "configs/gtcrn_blocks.yaml", "configs/seed_example.yaml", "--no-bench", "-f", "markdown")
    assert result.code == 0, result.stderr
    golden("report_markdown.md", result.stdout)


def test_stack_table_matches_golden(golden, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(CONFIGS.parent)
    result = invoke("compare", "--config", "configs/mobilenet_v1.yaml", "--no-bench")
    assert result.code == 0, result.stderr
    golden("mobilenet_v1_table.out", result.stdout)
