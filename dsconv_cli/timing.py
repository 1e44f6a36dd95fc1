"""Latency of built modules with ``torch.utils.benchmark`` (warm-up, CUDA sync, median, IQR),
and the machine peaks a roofline needs."""

from __future__ import annotations

import datetime
import platform
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn
from torch.utils import benchmark

from dsconv_cli.builder import build_stack, build_variant, torch_dtype
from dsconv_cli.errors import DeviceError, SpecError
from dsconv_cli.kinds import build_layer
from dsconv_cli.results import Comparison, Latency, Peaks, StackResult, TimingRow
from dsconv_cli.spec import COLUMNS, Device, DType, TimingCase

# What a comparison times in each case, in this order.
TIMED = ("standard", "depthwise", "pointwise", "separable")


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


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model name where the platform tells it."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass(frozen=True, slots=True)
class TimingSettings:
    device: str
    dtype: DType
    threads: int
    min_time: float
    channels_last: bool = False
    compiled: bool = False
    backward: bool = False

    def for_case(self, case: TimingCase) -> TimingSettings:
        return replace(
            self,
            threads=case.threads if case.threads is not None else self.threads,
            dtype=case.dtype,
            channels_last=case.channels_last,
            compiled=case.compiled,
            backward=case.backward,
        )


@dataclass(frozen=True, slots=True)
class Measured:
    latency: Latency
    compile_s: float | None = None
    peak_bytes: int | None = None


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _memory_format(rank: int) -> torch.memory_format:
    if rank == 2:
        return torch.channels_last
    if rank == 3:
        return torch.channels_last_3d
    raise SpecError("channels_last", True, "applies to 2-D and 3-D convs only (channels_last / channels_last_3d)")


def time_module(module: nn.Module, input_shape: Sequence[int], settings: TimingSettings) -> Measured:
    """Median latency of ``module``: forward in eval and inference mode, or forward + backward in train mode.

    The timed statement is the call itself; building, moving, compiling and the first call all happen
    before the timer starts.
    """
    device, dt = settings.device, torch_dtype(settings.dtype)
    model = module.to(device=device, dtype=dt).train(settings.backward)
    x = torch.randn(tuple(input_shape), device=device, dtype=dt)
    if settings.channels_last:
        fmt = _memory_format(len(input_shape) - 2)
        model = model.to(memory_format=fmt)  # type: ignore[call-overload]
        x = x.contiguous(memory_format=fmt)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    runnable: Callable[..., torch.Tensor] = model
    compile_s = None
    with warnings.catch_warnings():
        # PyTorch notes that even kernels with padding='same' copy the input; that cost is real
        # and belongs in the timing, so the note is not repeated to the user on every run.
        warnings.filterwarnings("ignore", message="Using padding='same' with even kernel")
        if settings.compiled:
            # inductor imports parts of PyTorch that warn about PyTorch's own deprecated APIs
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.")
            runnable = torch.compile(model)
        if settings.backward:
            x.requires_grad_(True)
            inputs = [x, *(p for p in model.parameters() if p.requires_grad)]
            start = time.perf_counter()
            grad = torch.ones_like(runnable(x))
            torch.autograd.grad(runnable(x), inputs, grad)  # warm-up (and compilation) outside the timer
            _sync(device)
            compile_s = time.perf_counter() - start if settings.compiled else None
            stmt, scope = "torch.autograd.grad(model(x), inputs, grad)", {"inputs": inputs, "grad": grad}
            timer = benchmark.Timer(stmt=stmt, globals={"model": runnable, "x": x, "torch": torch, **scope},
                                    num_threads=settings.threads)  # fmt: skip
            measurement = timer.blocked_autorange(min_run_time=settings.min_time)
        else:
            with torch.inference_mode():
                start = time.perf_counter()
                runnable(x)  # warm-up outside the timer: lazy init, allocator, cuDNN choice, compilation
                _sync(device)
                compile_s = time.perf_counter() - start if settings.compiled else None
                timer = benchmark.Timer(stmt="model(x)", globals={"model": runnable, "x": x},
                                        num_threads=settings.threads)  # fmt: skip
                measurement = timer.blocked_autorange(min_run_time=settings.min_time)
    times = list(measurement.times)
    mean = statistics.fmean(times)
    latency = Latency(
        median_ms=measurement.median * 1e3,
        iqr_ms=measurement.iqr * 1e3,
        runs=len(measurement.raw_times) * measurement.number_per_run,
        device=device,
        threads=settings.threads,
        dtype=settings.dtype.value,
        min_ms=min(times) * 1e3,
        cv=statistics.pstdev(times) / mean if len(times) > 1 and mean > 0 else 0.0,
    )
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    return Measured(latency, compile_s, peak)


def time_case(
    comparison: Comparison,
    case: TimingCase,
    settings: TimingSettings,
    on_step: Callable[[str], None] | None = None,
    partial: Callable[[TimingRow], None] | None = None,
) -> TimingRow:
    """Time the standard conv, each separable stage alone, and the pair, for one case.

    ``partial`` sees the row after each measurement, so an interrupted run keeps what it measured.
    """
    spec = comparison.spec
    case_settings = settings.for_case(case)
    shape = (case.batch, *comparison.input_shape[1:])
    depthwise, pointwise = spec.separable()
    dw_out = comparison.separable.stages[0].output_shape
    jobs: dict[str, tuple[nn.Module, tuple[int, ...]]] = {
        "standard": (build_variant(spec.standard()), shape),
        "depthwise": (build_variant([depthwise]), shape),
        "pointwise": (build_variant([pointwise]), (case.batch, *dw_out[1:])),
        "separable": (build_variant(spec.separable()), shape),
    }
    row = TimingRow(case)
    for name in TIMED:
        if on_step is not None:
            on_step(f"{case.label}: {name}")
        module, input_shape = jobs[name]
        measured = time_module(module, input_shape, case_settings)
        row = replace(
            row,
            latency={**row.latency, name: measured.latency},
            compile_s={
                **row.compile_s,
                **({name: measured.compile_s} if measured.compile_s is not None else {}),
            },
            peak_bytes={
                **row.peak_bytes,
                **({name: measured.peak_bytes} if measured.peak_bytes is not None else {}),
            },
        )
        if partial is not None:
            partial(row)
    return row


def time_stack(
    stack: StackResult, settings: TimingSettings, on_step: Callable[[str], None] | None = None
) -> StackResult:
    """Each layer in each column, then each whole column as one module (forward, eval)."""
    layers = []
    for layer in stack.layers:
        latency = {}
        for column in COLUMNS:
            if on_step is not None:
                on_step(f"{layer.name} ({column})")
            latency[column] = time_module(build_layer(layer, column), layer.input_shape, settings).latency
        layers.append(replace(layer, latency=latency))
    totals = {}
    for column in COLUMNS if stack.chained else ():  # independent layers are no single module
        if on_step is not None:
            on_step(f"whole {column} column")
        totals[column] = time_module(build_stack(stack, column), stack.input_shape, settings).latency
    return replace(stack, layers=tuple(layers), latency=totals)


def stack_steps(stack: StackResult) -> int:
    """How many timings ``time_stack`` runs (for a progress bar)."""
    return len(COLUMNS) * (len(stack.layers) + (1 if stack.chained else 0))


# --- machine peaks --------------------------------------------------------------------------------


def peak_sizes(device: str) -> tuple[int, int]:
    """Elements copied for bandwidth (well past any cache) and the largest matmul size for compute."""
    return (2**28, 8192) if device == "cuda" else (2**25, 2048)


def _matmul_size(device: str, dt: torch.dtype, largest: int, target_s: float = 0.1) -> int:
    """The matmul size whose one run takes about ``target_s``, at most ``largest``.

    Some dtypes have no fast kernel on some devices (float16 matmul on many CPUs runs at well under
    1 GFLOP/s), so a fixed size could take minutes; a small probe sizes the real measurement.
    """
    probe = 256
    a = torch.randn(probe, probe, device=device, dtype=dt)
    a @ a  # first call: kernel selection
    _sync(device)
    start = time.perf_counter()
    a @ a
    _sync(device)
    rate = 2 * probe**3 / max(time.perf_counter() - start, 1e-9)
    n = int((rate * target_s / 2) ** (1 / 3)) // 64 * 64
    return max(probe, min(largest, n))


def measure_peaks(device: str, dtype: DType, threads: int, min_time: float = 0.5) -> Peaks:
    """Memory bandwidth from a large copy (read + write) and compute from a large matmul (sized to the
    device's speed so that slow dtypes still measure in seconds)."""
    dt = torch_dtype(dtype)
    elements, largest = peak_sizes(device)
    src = torch.empty(elements, device=device, dtype=dt).uniform_()
    dst = torch.empty_like(src)
    copy = benchmark.Timer(stmt="dst.copy_(src)", globals={"dst": dst, "src": src}, num_threads=threads)
    dst.copy_(src)
    copy_s = copy.blocked_autorange(min_run_time=min_time).median
    bandwidth = 2 * src.numel() * src.element_size() / copy_s / 1e9
    del src, dst
    n = _matmul_size(device, dt, largest)
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    matmul = benchmark.Timer(stmt="a @ b", globals={"a": a, "b": b}, num_threads=threads)
    a @ b
    matmul_s = matmul.blocked_autorange(min_run_time=min_time).median
    compute = 2 * n**3 / matmul_s / 1e9
    return Peaks(
        device=device,
        device_name=device_name(device),
        dtype=dtype.value,
        threads=threads,
        bandwidth_gbps=bandwidth,
        compute_gflops=compute,
        measured_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        torch_version=torch.__version__,
    )


def peaks_key(device: str, dtype: DType, threads: int) -> str:
    """The cache key of a device's peaks (same fields as ``Peaks.key``)."""
    return f"{device}|{device_name(device)}|{dtype.value}|{threads}"
