"""Timing: structure and sanity, never speed."""

from __future__ import annotations

import pytest
import torch

from dsconv_cli import counting
from dsconv_cli.errors import DeviceError
from dsconv_cli.spec import Device, DType, resolve_spec
from dsconv_cli.timing import TimingSettings, default_threads, resolve_device, time_comparison

SPEC = resolve_spec(rank=2, in_channels=4, out_channels=8, norm="batch", act="relu")
COMPARISON = counting.compare(SPEC, (1, 4, 8, 8))


@pytest.mark.parametrize("dtype", list(DType))
def test_time_comparison_structure(dtype: DType) -> None:
    seen: list[str] = []
    result = time_comparison(COMPARISON, TimingSettings("cpu", dtype, 1, 0.01), on_step=seen.append)
    assert seen == ["standard", "separable"]
    for latency in result.values():
        assert latency.median_ms > 0
        assert latency.iqr_ms >= 0
        assert latency.runs >= 1
        assert (latency.device, latency.threads, latency.dtype) == ("cpu", 1, dtype.value)


def test_threads_default_is_pytorchs_own() -> None:
    assert default_threads() == torch.get_num_threads()


def test_auto_device_picks_what_exists() -> None:
    assert resolve_device(Device.AUTO) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(Device.CPU) == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_missing_cuda_is_refused() -> None:
    with pytest.raises(DeviceError, match="no CUDA device"):
        resolve_device(Device.CUDA)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_timing_structure() -> None:
    result = time_comparison(COMPARISON, TimingSettings("cuda", DType.FLOAT16, 1, 0.01))
    assert all(lat.device == "cuda" and lat.median_ms > 0 for lat in result.values())
