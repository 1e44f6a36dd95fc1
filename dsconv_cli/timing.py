"""Latency of built variants with ``torch.utils.benchmark`` (warm-up, CUDA sync, median, IQR)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch.utils import benchmark

from dsconv_cli.builder import build_variant, torch_dtype
from dsconv_cli.errors import DeviceError
from dsconv_cli.spec import Comparison, Device, DType, Latency, Stage


def resolve_device(device: Device) -> str:
    """``auto`` -> ``cuda`` when present, else ``cpu``; a requested but missing CUDA is an error."""
    if device is Device.AUTO:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device is Device.CUDA and not torch.cuda.is_available():
        raise DeviceError(
            "--device cuda: no CUDA device is available to this PyTorch "
            f"({torch.__version__}); use --device cpu or auto"
        )
    return device.value


def default_threads() -> int:
    """PyTorch's own intra-op thread count, reported with every timing."""
    return torch.get_num_threads()


def time_stages(
    stages: Sequence[Stage],
    input_shape: Sequence[int],
    *,
    device: str,
    dtype: DType,
    threads: int,
    min_time: float,
) -> Latency:
    """Median forward latency of ``stages`` in eval and inference mode."""
    dt = torch_dtype(dtype)
    model = build_variant(stages, device).to(dtype=dt).eval()
    x = torch.randn(tuple(input_shape), device=device, dtype=dt)
    timer = benchmark.Timer(
        stmt="model(x)",
        globals={"model": model, "x": x},
        num_threads=threads,
        label="dsconv",
        description=stages[0].name,
    )
    with torch.inference_mode(), warnings.catch_warnings():
        # PyTorch notes that even kernels with padding='same' copy the input; that cost is real
        # and belongs in the timing, so the note is not repeated to the user on every run.
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
        model(x)  # warm-up outside the timed region: lazy init, allocator, cuDNN choice
        measurement = timer.blocked_autorange(min_run_time=min_time)
    return Latency(
        median_ms=measurement.median * 1e3,
        iqr_ms=measurement.iqr * 1e3,
        runs=len(measurement.raw_times) * measurement.number_per_run,
        device=device,
        threads=threads,
        dtype=dtype.value,
    )


def time_comparison(
    comparison: Comparison,
    *,
    device: str,
    dtype: DType,
    threads: int,
    min_time: float,
    on_variant: Callable[[str], None] | None = None,
) -> dict[str, Latency]:
    """Time the standard conv and the separable pair, one after the other."""
    result: dict[str, Latency] = {}
    for name, stages in (
        ("standard", comparison.spec.standard()),
        ("separable", comparison.spec.separable()),
    ):
        if on_variant is not None:
            on_variant(name)
        result[name] = time_stages(
            stages,
            comparison.input_shape,
            device=device,
            dtype=dtype,
            threads=threads,
            min_time=min_time,
        )
    return result
