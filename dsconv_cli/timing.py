"""Latency of built modules with ``torch.utils.benchmark`` (warm-up, CUDA sync, median, IQR)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.utils import benchmark

from dsconv_cli.builder import build_layer, build_stack, build_variant, torch_dtype
from dsconv_cli.errors import DeviceError
from dsconv_cli.spec import COLUMNS, Comparison, Device, DType, Latency, StackResult


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


@dataclass(frozen=True, slots=True)
class TimingSettings:
    device: str
    dtype: DType
    threads: int
    min_time: float


def time_module(module: nn.Module, input_shape: Sequence[int], settings: TimingSettings) -> Latency:
    """Median forward latency of ``module`` in eval and inference mode."""
    dt = torch_dtype(settings.dtype)
    model = module.to(device=settings.device, dtype=dt).eval()
    x = torch.randn(tuple(input_shape), device=settings.device, dtype=dt)
    timer = benchmark.Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=settings.threads)
    with torch.inference_mode(), warnings.catch_warnings():
        # PyTorch notes that even kernels with padding='same' copy the input; that cost is real
        # and belongs in the timing, so the note is not repeated to the user on every run.
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
        model(x)  # warm-up outside the timed region: lazy init, allocator, cuDNN choice
        measurement = timer.blocked_autorange(min_run_time=settings.min_time)
    return Latency(
        median_ms=measurement.median * 1e3,
        iqr_ms=measurement.iqr * 1e3,
        runs=len(measurement.raw_times) * measurement.number_per_run,
        device=settings.device,
        threads=settings.threads,
        dtype=settings.dtype.value,
    )


def time_comparison(
    comparison: Comparison, settings: TimingSettings, on_step: Callable[[str], None] | None = None
) -> dict[str, Latency]:
    """Time the standard conv and the separable pair, one after the other."""
    result: dict[str, Latency] = {}
    for name, stages in (
        ("standard", comparison.spec.standard()),
        ("separable", comparison.spec.separable()),
    ):
        if on_step is not None:
            on_step(name)
        result[name] = time_module(build_variant(stages), comparison.input_shape, settings)
    return result


def time_stack(
    stack: StackResult, settings: TimingSettings, on_step: Callable[[str], None] | None = None
) -> StackResult:
    """Each layer in each column, then each whole column as one module."""
    layers = []
    for layer in stack.layers:
        latency = {}
        for column in COLUMNS:
            if on_step is not None:
                on_step(f"{layer.name} ({column})")
            latency[column] = time_module(build_layer(layer, column), layer.input_shape, settings)
        layers.append(replace(layer, latency=latency))
    totals = {}
    for column in COLUMNS:
        if on_step is not None:
            on_step(f"whole {column} column")
        totals[column] = time_module(build_stack(stack, column), stack.input_shape, settings)
    return replace(stack, layers=tuple(layers), latency=totals)


def stack_steps(stack: StackResult) -> int:
    """How many timings ``time_stack`` runs (for a progress bar)."""
    return len(COLUMNS) * (len(stack.layers) + 1)
