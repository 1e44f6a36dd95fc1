"""Numbers at the edges: non-finite floats, batch 0, sizes PyTorch cannot represent, padding modes
PyTorch's transposed convs do not take."""

from __future__ import annotations

import json

import pytest
from conftest import invoke


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-time", "nan"], "error: --min-time nan: must be a positive number of seconds up to 60, e.g. 0.5\n"),
        (["--min-time", "inf"], "error: --min-time inf: must be a positive number of seconds up to 60, e.g. 0.5\n"),
        (["--max-increase", "nan", "--baseline", "x.json", "--config", "configs/seed_example.yaml"],
         "error: --max-increase nan: must be a finite percentage of 0 or more, e.g. 5\n"),
        (["--rounds", "0"], "error: --rounds 0: must be an integer from 1 to 100 (3 by default)\n"),
    ],
)  # fmt: skip
def test_non_finite_and_empty_timing_options_are_refused(args: list[str], message: str) -> None:
    result = invoke("compare", "--no-bench", *args)
    assert (result.code, result.stderr) == (2, message)


def test_non_finite_budgets_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "c.yaml"
    path.write_text(
        "input_shape: [1, 4, 8, 8]\nlayers: [{out_channels: 4}]\nbudgets:\n  standard: {latency_ms: .nan}\n"
    )
    result = invoke("report", str(path), "--no-bench")
    assert result.code == 2 and "budgets.standard.latency_ms nan: Input should be a finite number" in result.stderr


def test_batch_0_counts_as_pytorch_does_and_is_not_timed() -> None:
    result = invoke("compare", "--input-shape", "0,16,50,129", "--no-bench", "--verify", "-f", "json")
    assert result.code == 0, result.stderr
    c = json.loads(result.stdout)["comparisons"][0]
    assert c["standard"]["macs"] == 0 and c["standard"]["output_shape"] == [0, 32, 50, 129]
    assert c["mac_ratio"] == pytest.approx(656 / 4608)  # per sample
    assert all(ch["ok"] for ch in c["checks"])
    timed = invoke("compare", "--input-shape", "0,16,50,129")
    assert timed.code == 2 and "has nothing to time" in timed.stderr


def test_sizes_pytorch_cannot_represent_are_an_impossible_layer() -> None:
    """Past int64 no tensor can hold the input (10^23 elements here): exit 2, as an impossible layer, before any
    cross-check tries to build it."""
    result = invoke("compare", "--input-shape", "1,16,100000000000,100000000000", "--no-bench", "--verify",
                    "-f", "json")  # fmt: skip
    assert (result.code, result.stdout) == (2, "")
    assert result.stderr == ("error: impossible layer: its input (1, 16, 100000000000, 100000000000) has about 10^23 "
                             "elements, past the int64 sizes PyTorch can hold\n")  # fmt: skip
    within = invoke("compare", "--input-shape", "1,16,1000000,1000000", "--no-bench", "--verify", "-f", "json")
    assert within.code == 0, within.stderr  # 1.6e13 elements: counted; the checks that need tensors are skipped


def test_a_transposed_conv_takes_no_padding_mode() -> None:
    for mode in ("valid", "same"):
        result = invoke("compare", "--transposed", "--padding", mode, "--no-bench")
        assert result.code == 2 and "is not supported for transposed convs" in result.stderr


def test_a_first_ci_run_without_a_baseline_passes_only_when_asked(tmp_path) -> None:  # type: ignore[no-untyped-def]
    missing = str(tmp_path / "baseline.json")
    args = ("report", "configs/seed_example.yaml", "--no-bench", "--baseline", missing, "--max-increase", "5")
    refused = invoke(*args)
    assert refused.code == 2 and "no such file; pass --baseline-missing ok" in refused.stderr
    first = invoke(*args, "--baseline-missing", "ok")
    assert first.code == 0 and "no baseline at" in first.stderr
    assert invoke(*args, "--baseline-missing", "maybe").code == 2
