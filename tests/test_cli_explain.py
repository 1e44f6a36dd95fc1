"""Per-stage timing, memory, roofline and peaks as the CLI reports them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import invoke

from dsconv_cli.core.spec import DType
from dsconv_cli.pt import timing

TINY = ["-i", "4", "-o", "8", "--input-shape", "1,4,8,8", "--device", "cpu", "--threads", "1", "--min-time", "0.01"]


def _seed_peaks(cache: Path, dtype: str = "float32", threads: int = 1) -> dict[str, object]:
    peaks = {"device": "cpu", "device_name": timing.device_name("cpu"), "dtype": dtype, "threads": threads,
             "bandwidth_gbps": 20.0, "compute_gflops": 100.0, "measured_at": "2026-01-01T00:00:00+00:00",
             "torch_version": "test"}  # fmt: skip
    cache.mkdir(parents=True, exist_ok=True)
    key = timing.peaks_key("cpu", DType(dtype), threads)
    (cache / "peaks.json").write_text(json.dumps({key: peaks}))
    return peaks


def test_json_has_latency_memory_intensity_and_roofline_per_variant_and_stage(private_cache: Path) -> None:
    _seed_peaks(private_cache)
    result = invoke("compare", *TINY, "-f", "json")
    assert result.code == 0, result.stderr
    c = json.loads(result.stdout)["comparisons"][0]
    assert c["peaks"][0]["bandwidth_gbps"] == 20.0  # the cached peaks, not a new measurement
    items = {"standard": c["standard"], "separable": c["separable"],
             "depthwise": c["separable"]["depthwise"], "pointwise": c["separable"]["pointwise"]}  # fmt: skip
    for item in items.values():
        assert set(item["latency"]) >= {"median_ms", "iqr_ms", "min_ms", "runs", "cv"}
        assert set(item["memory"]) >= {"weight_bytes", "activation_bytes", "min_bytes_moved"}
        line = item["roofline"]
        assert set(line) == {"achieved_gflops", "achieved_gbps", "bound", "fraction_of_roof"}
        seconds = item["latency"]["median_ms"] / 1e3
        assert line["achieved_gflops"] == pytest.approx(item["flops"] / seconds / 1e9)
        assert line["achieved_gbps"] == pytest.approx(item["memory"]["min_bytes_moved"] / seconds / 1e9)
        assert line["bound"] == ("memory" if item["arithmetic_intensity"] < 100.0 / 20.0 else "compute")
        assert item["arithmetic_intensity"] == pytest.approx(item["flops"] / item["memory"]["min_bytes_moved"])
    # standard: weights 8*4*9 floats; input 4*8*8 floats; output 8*8*8 floats
    assert c["standard"]["memory"] == {"weight_bytes": 1_152, "input_bytes": 1_024, "output_bytes": 2_048,
                                            "activation_bytes": 3_072, "min_bytes_moved": 4_224}  # fmt: skip
    assert c["separable"]["memory"]["intermediate_bytes"] == 1_024  # the depthwise output
    assert c["explanation"][0].startswith("batch 1, float32, 1 thread, forward: separable has")
    assert c["interrupted"] is False


def test_every_combination_is_a_timing_row() -> None:
    result = invoke("compare", *TINY, "--batch", "1,2", "--dtype", "float32,bfloat16", "--channels-last",
                    "--backward", "--no-roofline", "-f", "json")  # fmt: skip
    assert result.code == 0, result.stderr
    c = json.loads(result.stdout)["comparisons"][0]
    cases = [(t["batch"], t["dtype"], t["channels_last"], t["backward"]) for t in c["timings"]]
    assert len(cases) == 2 * 2 * 2 * 2 == len(set(cases))
    assert all(t["speedup"]["median"] > 0 for t in c["timings"])
    # counts follow each case's batch
    by_batch = {t["batch"]: t["standard"]["memory"]["input_bytes"] for t in c["timings"] if t["dtype"] == "float32"}
    assert by_batch == {1: 1_024, 2: 2_048}
    assert all("roofline" not in t["standard"] for t in c["timings"])


def test_timing_cases_table() -> None:
    result = invoke("compare", *TINY, "--batch", "1,2", "--no-roofline")
    assert result.code == 0, result.stderr
    assert "timing cases (median ms)" in result.stdout
    assert "latency ms" in result.stdout and "CV" in result.stdout


def test_compile_reports_compile_time_apart() -> None:
    result = invoke("compare", "-i", "2", "-o", "2", "-k", "1", "--input-shape", "1,2,4", "--device", "cpu",
                    "--threads", "1", "--min-time", "0.01", "--compile", "--no-roofline", "-f", "json")  # fmt: skip
    assert result.code == 0, result.stderr
    compiled = [t for t in json.loads(result.stdout)["comparisons"][0]["timings"] if t["compiled"]]
    assert len(compiled) == 1
    assert all(compiled[0][name]["compile_s"] > 0 for name in ("standard", "depthwise", "pointwise", "separable"))


def test_channels_last_on_1d_is_refused() -> None:
    result = invoke("compare", "--input-shape", "1,16,100", "--channels-last", "--min-time", "0.01")
    assert (result.code, result.stderr) == (
        2, "error: --channels-last true: applies to 2-D and 3-D convs only; this one is 1-D\n")  # fmt: skip


def test_ctrl_c_prints_what_was_measured_and_exits_130(monkeypatch: pytest.MonkeyPatch) -> None:
    real = timing.measure_rounds

    def interrupted_after_the_first_round(prepared, rounds, min_time, on_round=None):  # type: ignore[no-untyped-def]
        def hook(r, latency, per_round):  # type: ignore[no-untyped-def]
            on_round(r, latency, per_round)
            raise KeyboardInterrupt

        return real(prepared, rounds, min_time, hook)

    monkeypatch.setattr(timing, "measure_rounds", interrupted_after_the_first_round)
    result = invoke("compare", *TINY, "--no-roofline", "-f", "json")
    assert result.code == 130
    c = json.loads(result.stdout)["comparisons"][0]
    assert c["interrupted"] is True
    (row,) = c["timings"]
    assert all("latency" in row[item] for item in ("standard", "depthwise", "pointwise", "separable"))
    assert len(row["speedup"]["rounds"]) == 1  # what the first of three rounds measured
    assert result.stderr == "error: interrupted by Ctrl-C; the timings measured before it are shown\n"


def test_peaks_table_and_bad_input(private_cache: Path) -> None:
    _seed_peaks(private_cache)
    out = invoke("peaks", "--device", "cpu", "--threads", "1").stdout
    assert "20.00 GB/s" in out and "100.00 GFLOP/s" in out and "5.00 FLOPs per byte" in out
    result = invoke("peaks", "--threads", "0")
    assert (result.code, result.stderr) == (2, "error: --threads 0: must be a positive integer\n")


def test_corrupt_cache_is_measured_again(private_cache: Path) -> None:
    private_cache.mkdir(parents=True)
    (private_cache / "peaks.json").write_text("{not json")
    doc = json.loads(invoke("peaks", "--device", "cpu", "--threads", "1", "-f", "json").stdout)
    assert doc["cached"] is False and doc["peaks"]["bandwidth_gbps"] > 0


def test_backward_with_batchnorm_on_a_single_value_is_refused() -> None:
    result = invoke("compare", "--input-shape", "1,16,1,1", "--norm", "batch", "--backward", "--no-roofline")
    assert result.code == 2
    assert result.stderr == (
        "error: --backward true: trains BatchNorm, which needs more than one value per channel; the standard "
        "output (1, 32, 1, 1) at batch 1 has one; use a larger --batch or input, or --norm none\n"
    )


def test_a_thread_list_is_a_timing_axis(private_cache: Path) -> None:
    _seed_peaks(private_cache, threads=1)
    result = invoke("compare", *[a for a in TINY if a not in ("--threads", "1")], "--threads", "1,2", "-f", "json")
    assert result.code == 0, result.stderr
    c = json.loads(result.stdout)["comparisons"][0]
    assert [t["threads"] for t in c["timings"]] == [1, 2]
    assert {p["threads"] for p in c["peaks"]} == {1, 2}  # 1 from the cache, 2 measured now
    assert all(t["standard"]["latency"]["threads"] == t["threads"] for t in c["timings"])
    assert c["timings"][1]["explanation"].startswith("batch 1, float32, 2 threads, forward:")
    assert "roofline" in c["timings"][0]["standard"] and "roofline" in c["timings"][1]["standard"]
