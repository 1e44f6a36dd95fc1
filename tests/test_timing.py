"""Timing: structure and sanity, never speed."""

from __future__ import annotations

import pytest
import torch

from dsconv_cli.core import counting
from dsconv_cli.core.spec import Device, DType, TimingCase, resolve_spec
from dsconv_cli.errors import DeviceError, SpecError
from dsconv_cli.pt.builder import build_variant
from dsconv_cli.pt.timing import (
    TIMED,
    TimingSettings,
    default_threads,
    measure_peaks,
    peaks_key,
    resolve_device,
    time_case,
    time_module,
)

SPEC = resolve_spec(rank=2, in_channels=4, out_channels=8, norm="batch", act="relu")
COMPARISON = counting.compare(SPEC, (1, 4, 8, 8))
CPU = TimingSettings("cpu", DType.FLOAT32, threads=1, min_time=0.01, rounds=3)


@pytest.mark.parametrize("dtype", list(DType))
def test_time_case_times_every_item(dtype: DType) -> None:
    seen: list[str] = []
    partials: list[int] = []
    row = time_case(COMPARISON, TimingCase(2, dtype), CPU, on_step=seen.append,
                    partial=lambda r: partials.append(len(r.latency)))  # fmt: skip
    label = f"batch 2, {dtype.value}, forward"
    assert seen == [f"{label}: preparing {name}" for name in TIMED] + [f"{label}: round {r} of 3" for r in (1, 2, 3)]
    assert partials == [4, 4, 4]  # every round times every item; the row is kept after each round
    assert set(row.latency) == set(TIMED)
    for latency in row.latency.values():
        assert latency.median_ms > 0 and latency.min_ms > 0
        assert latency.min_ms <= latency.median_ms
        assert latency.iqr_ms >= 0 and latency.cv >= 0 and latency.runs >= 1
        assert (latency.device, latency.threads, latency.dtype) == ("cpu", 1, dtype.value)
    assert len(row.round_speedups) == 3
    assert row.speedup == sorted(row.round_speedups)[1]  # the median of the rounds' ratios
    assert row.compile_s == {} and row.peak_bytes == {}  # not compiled; no allocator peak on CPU


def test_backward_and_channels_last_run() -> None:
    row = time_case(COMPARISON, TimingCase(2, DType.FLOAT32, channels_last=True, backward=True), CPU)
    assert set(row.latency) == set(TIMED)


def test_channels_last_needs_2d_or_3d() -> None:
    spec = resolve_spec(rank=1, in_channels=4, out_channels=4)
    with pytest.raises(SpecError, match="2-D and 3-D convs only"):
        time_module(build_variant(spec.standard()), (1, 4, 16), TimingSettings("cpu", DType.FLOAT32, 1, 0.01, True))


def test_compiled_module_reports_compile_time_apart() -> None:
    spec = resolve_spec(rank=1, in_channels=2, out_channels=2, kernel_size=1)
    settings = TimingSettings("cpu", DType.FLOAT32, 1, 0.01, compiled=True)
    measured = time_module(build_variant(spec.standard()), (1, 2, 4), settings)
    assert measured.compile_s is not None and measured.compile_s > 0
    # the compile is not inside the timed figure
    assert measured.latency.median_ms * 1e-3 < measured.compile_s


def test_timing_with_one_thread_leaves_pytorchs_own_count_alone() -> None:
    before = torch.get_num_threads()
    spec = resolve_spec(rank=1, in_channels=2, out_channels=2)
    measured = time_module(build_variant(spec.standard()), (1, 2, 4), TimingSettings("cpu", DType.FLOAT32, 1, 0.01))
    assert measured.latency.threads == 1
    assert torch.get_num_threads() == before == default_threads()


def test_auto_device_picks_what_exists() -> None:
    assert resolve_device(Device.AUTO) == resolve_device(Device.CUDA if torch.cuda.is_available() else Device.CPU)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_missing_cuda_is_refused() -> None:
    with pytest.raises(DeviceError, match="no CUDA device"):
        resolve_device(Device.CUDA)


def test_measure_peaks_structure() -> None:
    peaks = measure_peaks("cpu", DType.FLOAT32, threads=1, min_time=0.05)
    assert peaks.bandwidth_gbps > 0 and peaks.compute_gflops > 0
    assert peaks.ridge_point == pytest.approx(peaks.compute_gflops / peaks.bandwidth_gbps)
    assert peaks.key == peaks_key("cpu", DType.FLOAT32, 1)
    assert peaks.torch_version == torch.__version__


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_timing_structure() -> None:
    settings = TimingSettings("cuda", DType.FLOAT16, 1, 0.01)
    row = time_case(COMPARISON, TimingCase(1, DType.FLOAT16), settings)
    assert all(lat.device == "cuda" and lat.median_ms > 0 for lat in row.latency.values())
    assert set(row.peak_bytes) == set(TIMED) and all(v > 0 for v in row.peak_bytes.values())


def test_several_cpu_threads_also_time_one_thread() -> None:
    two = TimingSettings("cpu", DType.FLOAT32, threads=2, min_time=0.01, rounds=2)
    row = time_case(COMPARISON, TimingCase(1, DType.FLOAT32), two)
    assert set(row.one_thread) == {"standard", "separable"} and all(ms > 0 for ms in row.one_thread.values())
    assert time_case(COMPARISON, TimingCase(1, DType.FLOAT32), CPU).one_thread == {}  # already one thread
