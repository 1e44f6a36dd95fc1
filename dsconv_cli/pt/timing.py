"""Latency of built modules with ``torch.utils.benchmark`` (warm-up, CUDA sync, median, IQR),
and the machine peaks a roofline needs."""

from __future__ import annotations

import datetime
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn
from torch.utils import benchmark

from dsconv_cli.core import environment
from dsconv_cli.core.results import Comparison, Latency, Peaks, StackResult, TimingRow
from dsconv_cli.core.spec import COLUMNS, Device, DType, TimingCase
from dsconv_cli.errors import DeviceError, SpecError
from dsconv_cli.pt.builder import build_layer, build_stack, build_variant, torch_dtype

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
    """PyTorch's own intra-op thread count, reported with every timing (and remembered, so cached peaks
    can be read later without importing torch)."""
    threads = torch.get_num_threads()
    from dsconv_cli.core import cache

    if cache.load_default_threads(environment.cpu_model()) != threads:
        try:
            cache.save_default_threads(environment.cpu_model(), threads)
        except OSError:
            pass  # a read-only cache only costs the torch-free shortcut
    return threads


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's model name where the platform tells it."""
    if device == "cuda":
        return torch.cuda.get_device_name()
    return environment.cpu_model()


@dataclass(frozen=True, slots=True)
class TimingSettings:
    device: str
    dtype: DType
    threads: int
    min_time: float
    channels_last: bool = False
    compiled: bool = False
    backward: bool = False
    rounds: int = 1  # interleaved rounds (compare's items, a stack layer's two columns)

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


@dataclass(frozen=True)
class Prepared:
    """A module on its device, warmed up (and compiled), with the timer of its call: ready to measure."""

    timer: benchmark.Timer
    settings: TimingSettings
    compile_s: float | None
    peak_bytes: int | None
    stmt: str = "model(x)"
    scope: dict[str, Any] | None = None  # the timer's globals, for a timer at another thread count

    def with_threads(self, threads: int) -> Prepared:
        """The same prepared call, timed at ``threads``."""
        timer = benchmark.Timer(stmt=self.stmt, globals=self.scope or {}, num_threads=threads)
        return replace(self, timer=timer, settings=replace(self.settings, threads=threads))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _memory_format(rank: int) -> torch.memory_format:
    if rank == 2:
        return torch.channels_last
    if rank == 3:
        return torch.channels_last_3d
    raise SpecError("channels_last", True, "applies to 2-D and 3-D convs only (channels_last / channels_last_3d)")


def prepare(module: nn.Module, input_shape: Sequence[int], settings: TimingSettings) -> Prepared:
    """Move, warm up and (with ``compiled``) compile ``module``: forward in eval and inference mode, or
    forward + backward in train mode. Everything here happens before any timer starts."""
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
        start = time.perf_counter()
        if settings.backward:
            x.requires_grad_(True)
            inputs = [x, *(p for p in model.parameters() if p.requires_grad)]
            grad = torch.ones_like(runnable(x))
            torch.autograd.grad(runnable(x), inputs, grad)  # warm-up (and compilation) outside the timer
            stmt, scope = (
                "torch.autograd.grad(model(x), inputs, grad)",
                {"inputs": inputs, "grad": grad, "torch": torch},
            )
        else:
            with torch.inference_mode():
                runnable(x)  # warm-up outside the timer: lazy init, allocator, cuDNN choice, compilation
            stmt, scope = "model(x)", {}
        _sync(device)
        compile_s = time.perf_counter() - start if settings.compiled else None
    scope = {"model": runnable, "x": x, **scope}
    timer = benchmark.Timer(stmt=stmt, globals=scope, num_threads=settings.threads)
    peak = torch.cuda.max_memory_allocated() if device == "cuda" else None
    return Prepared(timer, settings, compile_s, peak, stmt, scope)


def _latency(times: Sequence[float], runs: int, settings: TimingSettings) -> Latency:
    """Statistics over per-block times (seconds) gathered from every round."""
    ordered = sorted(times)
    mean = statistics.fmean(ordered)
    q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1 else (ordered[0],) * 3
    return Latency(
        median_ms=statistics.median(ordered) * 1e3,
        iqr_ms=(q3 - q1) * 1e3,
        runs=runs,
        device=settings.device,
        threads=settings.threads,
        dtype=settings.dtype.value,
        min_ms=ordered[0] * 1e3,
        cv=(statistics.pstdev(ordered) / mean if mean > 0 else 0.0) if len(ordered) > 1 else None,
    )


def measure_rounds(
    prepared: dict[str, Prepared],
    rounds: int,
    min_time: float,
    on_round: Callable[[int, dict[str, Latency], tuple[dict[str, float], ...]], None] | None = None,
) -> tuple[dict[str, Latency], tuple[dict[str, float], ...]]:
    """Time every prepared item in ``rounds`` interleaved rounds (A B C, B C A, C A B, ...), each a short
    ``blocked_autorange`` of ``min_time / rounds``. Returns each item's latency over all rounds, and each
    round's medians (seconds) per item, so ratios can be taken within a round."""
    names = list(prepared)
    times: dict[str, list[float]] = {name: [] for name in names}
    runs = dict.fromkeys(names, 0)
    per_round: list[dict[str, float]] = []
    for r in range(rounds):
        shift = r % len(names)
        medians: dict[str, float] = {}
        for name in names[shift:] + names[:shift]:
            with torch.inference_mode(not prepared[name].settings.backward):
                m = prepared[name].timer.blocked_autorange(min_run_time=min_time / rounds)
            times[name].extend(m.times)
            runs[name] += len(m.raw_times) * m.number_per_run
            medians[name] = m.median
        per_round.append(medians)
        if on_round is not None:
            done = {n: _latency(times[n], runs[n], prepared[n].settings) for n in names}
            on_round(r, done, tuple(per_round))
    latency = {n: _latency(times[n], runs[n], prepared[n].settings) for n in names}
    return latency, tuple(per_round)


def round_ratios(per_round: Sequence[dict[str, float]]) -> tuple[float, ...]:
    """Standard over separable within each round: the ratios a speedup and its spread come from."""
    return tuple(r["standard"] / r["separable"] for r in per_round)


def time_module(module: nn.Module, input_shape: Sequence[int], settings: TimingSettings) -> Measured:
    """Median latency of one module (all its rounds back to back: nothing to interleave it with)."""
    ready = prepare(module, input_shape, settings)
    latency, _ = measure_rounds({"module": ready}, 1, settings.min_time)
    return Measured(latency["module"], ready.compile_s, ready.peak_bytes)


def time_case(
    comparison: Comparison,
    case: TimingCase,
    settings: TimingSettings,
    on_step: Callable[[str], None] | None = None,
    partial: Callable[[TimingRow], None] | None = None,
) -> TimingRow:
    """Time the standard conv, each separable stage alone, and the pair, for one case, in interleaved rounds.

    The speedup is the median of the rounds' ratios (each round times every item once, so a burst of
    load hits both sides of a ratio). ``partial`` sees the row after each round, so an interrupted run
    keeps what it measured.
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
    prepared: dict[str, Prepared] = {}
    for name in TIMED:
        if on_step is not None:
            on_step(f"{case.label}: preparing {name}")
        module, input_shape = jobs[name]
        prepared[name] = prepare(module, input_shape, case_settings)
    compile_s = {n: p.compile_s for n, p in prepared.items() if p.compile_s is not None}
    peak_bytes = {n: p.peak_bytes for n, p in prepared.items() if p.peak_bytes is not None}

    def row_of(latency: dict[str, Latency], per_round: tuple[dict[str, float], ...]) -> TimingRow:
        return TimingRow(case, latency, compile_s, peak_bytes, round_speedups=round_ratios(per_round))

    def each_round(r: int, latency: dict[str, Latency], per_round: tuple[dict[str, float], ...]) -> None:
        if on_step is not None:
            on_step(f"{case.label}: round {r + 1} of {case_settings.rounds}")
        if partial is not None:
            partial(row_of(latency, per_round))

    latency, per_round = measure_rounds(prepared, case_settings.rounds, case_settings.min_time, each_round)
    row = row_of(latency, per_round)
    if case_settings.threads > 1 and case_settings.device == "cpu":
        # one short interleaved round at one thread: does splitting this layer across threads pay here?
        single = {n: prepared[n].with_threads(1) for n in ("standard", "separable")}
        one, _ = measure_rounds(single, 1, case_settings.min_time / case_settings.rounds)
        row = replace(row, one_thread={n: lat.median_ms for n, lat in one.items()})
    return row


def time_stack(
    stack: StackResult, settings: TimingSettings, on_step: Callable[[str], None] | None = None,
    partial: Callable[[StackResult], None] | None = None,
) -> StackResult:  # fmt: skip
    """Each layer's two columns in interleaved rounds, then the whole columns as one module each (forward,
    eval; only where the layers chain). ``partial`` sees the stack after each layer, so an interrupted run
    keeps what it measured."""

    def pair(name: str, modules: dict[str, nn.Module], shape: Sequence[int]) -> dict[str, Any]:
        if on_step is not None:
            on_step(name)
        ready = {column: prepare(module, shape, settings) for column, module in modules.items()}
        latency, per_round = measure_rounds(ready, settings.rounds, settings.min_time)
        return {"latency": latency, "round_speedups": round_ratios(per_round)}

    layers = list(stack.layers)
    for i, layer in enumerate(stack.layers):
        layers[i] = replace(layer, **pair(layer.name, {c: build_layer(layer, c) for c in COLUMNS}, layer.input_shape))
        if partial is not None:
            partial(replace(stack, layers=tuple(layers)))
    whole: dict[str, Any] = {}
    if stack.chained:  # independent layers are no single module
        whole = pair("whole columns", {c: build_stack(stack, c) for c in COLUMNS}, stack.input_shape)
    return replace(stack, layers=tuple(layers), **whole)


def stack_steps(stack: StackResult) -> int:
    """How many steps ``time_stack`` reports (for a progress bar)."""
    return len(stack.layers) + (1 if stack.chained else 0)


# --- the conditions of a timing ----------------------------------------------------------------------

REFERENCE_SIZE = 192  # the reference workload: a float32 matmul of this size on the CPU
REFERENCE_WARMUP_S = 0.1  # run untimed first: wakes the thread pool, faults the pages in, lets the clock ramp up
REFERENCE_TIME_S = 0.25  # then timed this long, in blocks whose median is the figure


def reference_ms(threads: int, min_time: float = REFERENCE_TIME_S, warmup: float = REFERENCE_WARMUP_S) -> float:
    """Median time of a small fixed CPU workload at ``threads``, after ``warmup`` seconds of it untimed:
    compared with quiet runs' figures, it says how much of the machine this process is getting right now
    (timed cold, right after start-up, it ran up to 3.7× slower than warmed up in the same process)."""
    a = torch.randn(REFERENCE_SIZE, REFERENCE_SIZE)
    b = torch.randn(REFERENCE_SIZE, REFERENCE_SIZE)
    timer = benchmark.Timer(stmt="a @ b", globals={"a": a, "b": b}, num_threads=threads)
    if warmup > 0:
        timer.blocked_autorange(min_run_time=warmup)
    return float(timer.blocked_autorange(min_run_time=min_time).median * 1e3)


def torch_info(device: str) -> dict[str, Any]:
    """PyTorch's version and build (MKL, oneDNN, OpenMP), and the CUDA device where one is used."""
    info: dict[str, Any] = {
        "torch": torch.__version__,
        "torch_build": {
            "mkl": torch.backends.mkl.is_available(),  # type: ignore[no-untyped-call]
            "mkldnn": torch.backends.mkldnn.is_available(),  # type: ignore[no-untyped-call]
            "openmp": torch.backends.openmp.is_available(),  # type: ignore[no-untyped-call]
            "cuda": torch.version.cuda,
        },
        "torch_parallel": torch.__config__.parallel_info().splitlines()[:4],
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(torch.cuda.current_device())
        info["cuda"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "memory_bytes": props.total_memory,
            "clock_khz": getattr(props, "clock_rate", None),
            "driver": _cuda_driver(),
            "runtime": torch.version.cuda,
        }
    return info


def _cuda_driver() -> str | None:
    try:
        version = int(torch._C._cuda_getDriverVersion())  # type: ignore[attr-defined]  # private: guarded
    except (AttributeError, RuntimeError, TypeError, ValueError):
        return None
    return f"{version // 1000}.{version % 1000 // 10}"


# --- machine peaks --------------------------------------------------------------------------------


def peak_sizes(device: str) -> tuple[tuple[int, ...], int]:
    """Elements copied for bandwidth (a few sizes, all well past the caches) and the largest matmul size."""
    if device == "cuda":
        return (2**26, 2**27, 2**28), 8192
    return (2**23, 2**24, 2**25), 2048


PEAK_REPEATS = 3  # each size is measured this many times; the best repeat counts
PEAK_AGREEMENT = 1.3  # best and next-best repeats further apart than this are not cached


def _matmul_size(device: str, dt: torch.dtype, largest: int, target_s: float = 0.1) -> int:
    """The matmul size whose one run takes about ``target_s``, at most ``largest`` and at least 512 unless
    the dtype has no fast kernel here (float16 matmul on many CPUs runs at well under 1 GFLOP/s)."""
    probe = 256
    a = torch.randn(probe, probe, device=device, dtype=dt)
    a @ a  # first call: kernel selection
    _sync(device)
    best = float("inf")
    for _ in range(3):  # best of three: one slow probe under load must not shrink the real measurement
        start = time.perf_counter()
        a @ a
        _sync(device)
        best = min(best, time.perf_counter() - start)
    rate = 2 * probe**3 / max(best, 1e-9)
    n = int((rate * target_s / 2) ** (1 / 3)) // 64 * 64
    floor = 512 if rate > 1e9 else probe
    return max(floor, min(largest, n))


def _best_rate(timer: benchmark.Timer, work: float, min_time: float) -> tuple[float, float]:
    """The best of ``PEAK_REPEATS`` rates (work per second), and how far the best stands above the next
    best: one lucky or one disturbed repeat is fine, two that disagree are not a peak to keep."""
    rates = sorted((work / timer.blocked_autorange(min_run_time=min_time).median for _ in range(PEAK_REPEATS)),
                   reverse=True)  # fmt: skip
    return rates[0], rates[0] / rates[1]


def measure_peaks(device: str, dtype: DType, threads: int, min_time: float = 0.5) -> Peaks:
    """Memory bandwidth from large copies (read + write) and compute from large matmuls: the best of
    several repeats over a few sizes, with the spread of the best size's repeats kept for the verdict."""
    dt = torch_dtype(dtype)
    copies, largest = peak_sizes(device)
    step = min_time / (PEAK_REPEATS * 2)
    bandwidth, bandwidth_spread = 0.0, 1.0
    for elements in copies:
        src = torch.empty(elements, device=device, dtype=dt).uniform_()
        dst = torch.empty_like(src)
        dst.copy_(src)
        timer = benchmark.Timer(stmt="dst.copy_(src)", globals={"dst": dst, "src": src}, num_threads=threads)
        rate, spread = _best_rate(timer, 2 * src.numel() * src.element_size() / 1e9, step)
        if rate > bandwidth:
            bandwidth, bandwidth_spread = rate, spread
        del src, dst
    n = _matmul_size(device, dt, largest)
    compute, compute_spread = 0.0, 1.0
    for size in sorted({max(64, n // 2 // 64 * 64), n}):
        a = torch.randn(size, size, device=device, dtype=dt)
        b = torch.randn(size, size, device=device, dtype=dt)
        a @ b
        timer = benchmark.Timer(stmt="a @ b", globals={"a": a, "b": b}, num_threads=threads)
        rate, spread = _best_rate(timer, 2 * size**3 / 1e9, step)
        if rate > compute:
            compute, compute_spread = rate, spread
    return Peaks(
        device=device,
        device_name=device_name(device),
        dtype=dtype.value,
        threads=threads,
        bandwidth_gbps=bandwidth,
        compute_gflops=compute,
        measured_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        torch_version=torch.__version__,
        conditions={"bandwidth_spread": bandwidth_spread, "compute_spread": compute_spread, "matmul_size": n},
    )


def peaks_key(device: str, dtype: DType, threads: int) -> str:
    """The cache key of a device's peaks (same fields as ``Peaks.key``)."""
    return f"{device}|{device_name(device)}|{dtype.value}|{threads}"
