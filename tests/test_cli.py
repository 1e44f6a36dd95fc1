"""The command line as users and scripts see it: outputs, exit codes and error lines."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import invoke

SMALL = ["-i", "4", "-o", "8", "--input-shape", "1,4,8,8"]


def test_help_for_every_command() -> None:
    import typer

    from dsconv_cli.cli.app import app

    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert {"compare", "report", "peaks", "schema"} <= set(commands)
    for args in (["--help"], *([name, "--help"] for name in commands)):
        result = invoke(*args)
        assert result.code == 0, args
        assert "Usage" in result.stdout
        assert "Example: dsconv" in result.stdout or args == ["--help"]
    help_text = invoke("compare", "--help", env={"COLUMNS": "200"}).stdout
    assert "Output channels (default: 32)." in help_text  # not eaten as Rich markup


def test_layer_flags_are_generated_from_the_one_declaration() -> None:
    from dsconv_cli.core.config import LayerFields
    from dsconv_cli.core.spec import LAYER_FIELDS, ConvSpec

    help_text = invoke("compare", "--help", env={"COLUMNS": "250"}).stdout
    readme = Path("README.md").read_text(encoding="utf-8")
    for field in LAYER_FIELDS:
        assert field.flag in help_text and field.help.split(" (")[0] in help_text
        assert field.flag in readme, f"README does not document {field.flag}"
    names = [f.name for f in LAYER_FIELDS]
    assert set(names) <= set(LayerFields.model_fields)  # the YAML keys (configs add block and linear fields)
    assert set(names) - {"in_channels"} <= set(ConvSpec.__dataclass_fields__)


def test_version() -> None:
    from dsconv_cli import __version__

    assert invoke("--version").stdout.strip() == f"dsconv {__version__}"


def test_default_table_matches_golden(golden) -> None:  # type: ignore[no-untyped-def]
    result = invoke("compare", "--no-bench")
    assert result.code == 0
    assert result.stderr == ""
    golden("compare_default.out", result.stdout)


def test_default_shows_the_seed_example() -> None:
    out = invoke("compare", "--no-bench").stdout
    for text in ("4,608", "29,721,600", "144", "928,800", "512", "3,302,400", "656", "4,231,200",
                 "(1,32,50,129)", "(1,16,50,129)", "85.8% fewer", "1/32 + 1/9"):  # fmt: skip
        assert text in out


def test_json_is_the_documented_schema() -> None:
    result = invoke("compare", "-i", "16", "-o", "32", "-k", "3", "--input-shape", "1,16,50,129",
                    "--no-bench", "--format", "json")  # fmt: skip
    assert result.code == 0
    doc = json.loads(result.stdout)  # nothing but JSON on stdout
    assert doc["schema_version"] == 2
    (c,) = doc["comparisons"]
    assert c["input_shape"] == [1, 16, 50, 129]
    assert c["spec"]["kernel_size"] == [3, 3] and c["spec"]["padding"] == [1, 1]
    assert {"params", "macs", "flops", "elementwise_ops", "buffers", "output_shape", "memory"} <= set(c["standard"])
    assert (c["standard"]["params"], c["standard"]["macs"], c["standard"]["flops"]) == (
        4_608, 29_721_600, 59_443_200)  # fmt: skip
    assert c["standard"]["output_shape"] == [1, 32, 50, 129]
    sep = c["separable"]
    assert (sep["params"], sep["macs"], sep["flops"]) == (656, 4_231_200, 8_462_400)
    assert sep["depthwise"]["output_shape"] == [1, 16, 50, 129]
    assert (sep["depthwise"]["params"], sep["depthwise"]["macs"]) == (144, 928_800)
    assert (sep["pointwise"]["params"], sep["pointwise"]["macs"]) == (512, 3_302_400)
    assert c["param_ratio"] == pytest.approx(656 / 4608)
    assert c["mac_ratio"] == pytest.approx(4_231_200 / 29_721_600)
    assert c["theoretical_ratio"] == pytest.approx(1 / 32 + 1 / 9)
    assert c["speedup"] is None and "latency" not in c["standard"]


def test_json_with_timing_has_latency_objects() -> None:
    result = invoke("compare", *SMALL, "--min-time", "0.01", "--device", "cpu", "--threads", "1",
                    "--no-roofline", "--format", "json")  # fmt: skip
    assert result.code == 0, result.stderr
    c = json.loads(result.stdout)["comparisons"][0]
    for variant in ("standard", "separable"):
        latency = c[variant]["latency"]
        assert set(latency) == {"median_ms", "iqr_ms", "min_ms", "runs", "cv", "device", "threads", "dtype"}
        assert latency["median_ms"] > 0 and latency["iqr_ms"] >= 0 and latency["runs"] >= 1
        assert (latency["device"], latency["threads"], latency["dtype"]) == ("cpu", 1, "float32")
    speedup = c["speedup"]
    assert len(speedup["rounds"]) == 3  # the default: three interleaved rounds
    assert speedup["median"] == pytest.approx(sorted(speedup["rounds"])[1])
    assert speedup["min"] == min(speedup["rounds"]) and speedup["max"] == max(speedup["rounds"])


def test_csv_has_a_row_per_stage_and_totals() -> None:
    result = invoke("compare", "--no-bench", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["variant"], r["stage"]) for r in rows] == [
        ("standard", "standard"), ("separable", "depthwise"), ("separable", "pointwise"),
        ("separable", "total")]  # fmt: skip
    assert [int(r["params"]) for r in rows] == [4_608, 144, 512, 656]
    # column sums equal totals
    assert int(rows[1]["macs"]) + int(rows[2]["macs"]) == int(rows[3]["macs"])
    assert rows[0]["output_shape"] == "1x32x50x129"


def test_markdown() -> None:
    out = invoke("compare", "--no-bench", "--format", "markdown").stdout
    assert out.startswith("### Conv2d 16→32")
    assert "| params | 4,608 | 144 | 512 | 656 |" in out


def test_output_file_is_written_whole(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    result = invoke("compare", "--no-bench", "--format", "json", "--output", str(target))
    assert result.code == 0 and result.stdout == ""
    assert json.loads(target.read_text())["comparisons"][0]["standard"]["params"] == 4_608
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left


def test_failed_run_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    result = invoke("compare", "--groups", "3", "--no-bench", "--format", "json", "--output", str(target))
    assert result.code == 2
    assert list(tmp_path.iterdir()) == []


def test_verify_passes_on_reference_layers() -> None:
    result = invoke("compare", "--no-bench", "--verify", "--bias", "--norm", "batch", "--act", "prelu")
    assert result.code == 0, result.stderr
    assert "cross-check" in result.stdout and "MISMATCH" not in result.stdout
    assert "FlopCounterMode / 2" in result.stdout


def test_verify_json_lists_checks() -> None:
    result = invoke("compare", *SMALL, "--no-bench", "--verify", "--padding", "same", "-f", "json")
    checks = json.loads(result.stdout)["comparisons"][0]["checks"]
    assert checks and all(ch["ok"] for ch in checks)
    fvcore = {ch["stage"]: ch["reference"] for ch in checks if ch["source"] == "fvcore"}
    # fvcore counts padding='same' as 0, so it is skipped there; the 1x1 pointwise has no padding
    assert fvcore == {"standard": None, "depthwise": None, "pointwise": 2048}  # 8*8*8 outputs * 4 inputs


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--groups", "3"], "error: --groups 3: in_channels 16 and out_channels 32 must both be divisible "
         "by groups; valid: 1, 2, 4, 8, 16"),
        (["--in-channels", "0"], "error: --in-channels 0: must be a positive integer"),
        (["--out-channels", "-4"], "error: --out-channels -4: must be a positive integer"),
        (["--input-shape", "1,8,50,129", "-i", "16"], "error: --input-shape 1,8,50,129: has 8 channels "
         "but in_channels is 16; make dim 1 of the input shape 16"),
        (["-k", "7", "--padding", "0", "--input-shape", "1,16,5,5"], "error: --kernel-size 7,7: kernel "
         "extent 7 (dilation 1) exceeds the padded input 5 in spatial dim 0 (size 5 + padding 0), so the "
         "output is empty; use a smaller kernel or dilation, more padding or a larger input"),
        (["-k", "3,3,3", "--input-shape", "1,16,50,129"], "error: --kernel-size 3,3,3: has 3 values but "
         "the input has 2 spatial dims; give 1 value or 2 (one per spatial dim)"),
        (["--stride", "1,2", "--input-shape", "1,16,100"], "error: --stride 1,2: has 2 values but the input "
         "has 1 spatial dims; give 1 value or 1 (one per spatial dim)"),
        (["--padding", "same", "--stride", "2"], "error: --padding same: needs stride 1 (got stride 2,2); "
         "give integer padding for strided convs"),
        (["-k", "abc"], "error: --kernel-size abc: expected an integer or comma-separated integers, "
         "e.g. 3 or 3,5"),
        (["--input-shape", "1,16"], "error: --input-shape 1,16: has 2 dims; give N,C plus 1-3 spatial dims, "
         "e.g. 1,16,50,129"),
        (["--groups", "x"], "error: --groups x: Input should be a valid integer, unable to parse string as "
         "an integer"),
        (["--format", "xml"], "error: --format xml: 'xml' is not one of 'table', 'json', 'csv', 'markdown'."),
        (["--act", "gelu"], "error: --act gelu: 'gelu' is not one of 'none', 'relu', 'relu6', 'prelu', "
         "'hardswish', 'silu', 'tanh'."),
        (["--padding", "full"], "error: --padding full: expected same, valid, an integer or "
         "comma-separated integers, e.g. 1 or 0,1"),
        (["--output-padding", "1"], "error: --output-padding 1,1: applies to transposed convs only; add "
         "--transposed or leave it 0"),
        (["--batch", "0"], "error: --batch 0: must be positive integers"),
        (["--batch", "1,x"], "error: --batch 1,x: expected an integer or comma-separated integers, e.g. 3 or 3,5"),
        (["--dtype", "float32,float64"], "error: --dtype float32,float64: 'float64' is not one of float32, "
         "float16, bfloat16; give one or a list"),
        (["--max-memory", "lots"], "error: --max-memory lots: expected a size such as 512MiB, 2GiB or 4GB"),
        (["--output", "/nonexistent-dir/x.json"], "error: --output /nonexistent-dir/x.json: directory "
         "/nonexistent-dir does not exist"),
    ],
)  # fmt: skip
def test_bad_input_is_one_error_line_exit_2(args: list[str], line: str) -> None:
    result = invoke("compare", "--no-bench", *args)
    assert result.code == 2
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_memory_limit_refuses_before_allocating() -> None:
    result = invoke("compare", "--max-memory", "1MiB")
    assert result.code == 2
    assert result.stderr.startswith("error: --max-memory 1.0 MiB: timing this layer needs about 2.4 MiB")


def test_missing_cuda_is_an_environment_error() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    result = invoke("compare", *SMALL, "--device", "cuda")
    assert result.code == 3
    assert result.stderr.startswith("error: --device cuda: no CUDA device is available")


@pytest.mark.parametrize("args", [["--help"], ["compare", "--no-bench"], ["compare", "--no-bench", "-f", "json"]])
def test_counting_paths_never_import_torch(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from dsconv_cli.cli.app import run\n"
        f"code = run({args!r})\n"
        "loaded = sorted(m for m in ('torch', 'fvcore') if m in sys.modules)\n"
        "print('LOADED', loaded, code, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "LOADED [] 0" in proc.stderr


def test_module_entry_point() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dsconv_cli", "compare", "--no-bench", "-f", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["comparisons"][0]["separable"]["params"] == 656


def test_verify_disagreement_exits_1_and_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong analytic count (simulated off by one MAC) must fail the cross-check, not pass it."""
    from dsconv_cli.core import counting

    real = counting.conv_macs
    monkeypatch.setattr(counting, "conv_macs", lambda *args: real(*args) + 1)
    result = invoke("compare", *SMALL, "--no-bench", "--verify")
    assert result.code == 1
    assert "MISMATCH" in result.stdout
    # standard: 8*8*8 outputs * 4*9 = 18,432 MACs, reported as 18,433
    assert result.stderr == (
        "error: cross-check failed: 6 disagreement(s); first: standard macs dsconv 18433 vs FlopCounterMode / 2 18432\n"
    )


def test_a_list_given_to_a_layer_flag_points_to_sweep_configs() -> None:
    result = invoke("compare", "-i", "16,32", "--no-bench")
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "error: --in-channels 16,32: takes one value; lists of layers are what sweep configs are for, e.g.",
        "  layers: [{out_channels: 32}]",
        "  sweep: {in_channels: [16, 32]}",
    ]


def test_shell_completion_is_offered() -> None:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "dsconv_cli", "--show-completion", "bash"], capture_output=True,
                            text=True)  # fmt: skip
    assert result.returncode == 0 and "_dsconv_completion" in result.stdout
    assert "--install-completion" in invoke("--help").stdout


def test_checks_keep_their_labels_and_verdicts_at_80_columns() -> None:
    import re

    wide = invoke("compare", "--no-bench", "--verify", "-f", "json").stdout
    count = len(json.loads(wide)["comparisons"][0]["checks"])
    out = " ".join(invoke("compare", "--no-bench", "--verify", env={"COLUMNS": "80"}).stdout.split())
    records = re.findall(r"(standard|depthwise|pointwise): quantity \w+; .*? verdict (ok|skipped \(\d\))", out)
    assert len(records) == count  # every check, each with its stage and its verdict
