"""The machine's peaks as a run: read from the cache (without torch for CPUs), or measured with the
machine watched and cached only when it was quiet and the repeats agreed."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from dsconv_cli.core import environment
from dsconv_cli.core.results import Peaks
from dsconv_cli.core.spec import (
    Device,
    DType,
)
from dsconv_cli.errors import SpecError

if TYPE_CHECKING:
    pass

from dsconv_cli.run.options import RunOptions


def peaks(device: str, dtype: DType, threads: int, refresh: bool = False, options: RunOptions | None = None) -> Peaks:
    """Cached peaks for this device, dtype and thread count; measured (and cached) when missing."""
    return peaks_and_source(device, dtype, threads, refresh, options)[0]


def peaks_and_source(
    device: Device | str, dtype: DType, threads: int | None, refresh: bool = False, options: RunOptions | None = None
) -> tuple[Peaks, bool]:
    """Peaks as ``peaks`` gives them (``device`` may be ``auto``, ``threads`` None for the default), and
    whether they came from the cache."""
    from dsconv_cli.core import cache

    if threads is not None and threads < 1:
        raise SpecError("threads", threads, "must be a positive integer")
    if not refresh and (found := cached_cpu_peaks(Device(device), dtype, threads)) is not None:
        return found, True  # read without importing torch
    resolved, threads = _device_and_threads(device, threads)
    from dsconv_cli.pt import timing

    key = timing.peaks_key(resolved, dtype, threads)
    cached = None if refresh else cache.load_peaks(key)
    if cached is not None:
        return cached, True
    options = options or RunOptions()
    if not refresh and cache.has_entry(key):
        options.note(f"note: the cached peaks for {key} were invalid (zero, missing or not numbers); measuring again")
    busy = None if refresh else cache.load_busy_peaks(key)
    if busy is not None and not environment.quiet(environment.sample_state(), threads):
        options.note(f"note: the machine is busy: using peaks measured busy on {busy.measured_at}, not measuring again")
        return busy, True
    measured, problems = measure_peaks_watched(resolved, dtype, threads, options)
    if problems:
        options.note(f"note: peaks kept as measured on a busy machine (the best so far) until a quiet run replaces "
                     f"them: {'; '.join(problems)}")  # fmt: skip
    try:
        if problems:
            return cache.save_busy_peaks(measured, problems), False
        cache.save_peaks(measured)
    except OSError as exc:
        options.note(f"note: could not cache peaks in {cache.cache_file()}: {exc}")
    return measured, False


def cached_cpu_peaks(device: Device, dtype: DType, threads: int | None) -> Peaks | None:
    """Cached CPU peaks found without torch: for ``cpu``, or ``auto`` on a machine with no NVIDIA driver,
    at the given threads or the default thread count PyTorch reported when it last ran here."""
    from dsconv_cli.core import cache

    no_gpu = not any(Path(p).exists() for p in ("/dev/nvidiactl", "/proc/driver/nvidia/version"))
    if device is not Device.CPU and not (device is Device.AUTO and no_gpu):
        return None
    cpu = environment.cpu_model()
    threads = threads if threads is not None else cache.load_default_threads(cpu)
    if threads is None:
        return None
    return cache.load_peaks(f"cpu|{cpu}|{dtype.value}|{threads}")


def measure_peaks_watched(device: str, dtype: DType, threads: int, options: RunOptions) -> tuple[Peaks, list[str]]:
    """Peaks measured with the machine sampled before and after; the reasons not to keep them, if any."""
    from dsconv_cli.pt import timing

    before = environment.sample_state()
    with options.progress(1) as step:
        step(f"measuring {device} peaks ({dtype.value}, {threads} threads)")
        measured = timing.measure_peaks(device, dtype, threads)
    after = environment.sample_state()
    problems = [
        f"the machine was busy {when} ({state.others_running:.1f} other runnable tasks on {state.cpus} CPUs)"
        for when, state in (("before", before), ("after", after))
        if not environment.quiet(state, threads) and state.others_running is not None
    ][:1]
    for what in ("bandwidth", "compute"):
        spread = measured.conditions.get(f"{what}_spread", 1.0)
        if spread > timing.PEAK_AGREEMENT:
            problems.append(f"the {what} repeats disagree by {spread:.2f}× (over {timing.PEAK_AGREEMENT}×)")
    conditions = measured.conditions | {"before": environment.state_dict(before),
                                        "after": environment.state_dict(after)}  # fmt: skip
    return replace(measured, conditions=conditions), problems


def _device_and_threads(device: Device | str, threads: int | None) -> tuple[str, int]:
    """``auto`` resolved to the device there is, and PyTorch's default thread count where none was given."""
    from dsconv_cli.pt import timing

    resolved = timing.resolve_device(Device(device))
    return resolved, threads if threads is not None else timing.default_threads()


def check_peaks(
    device: Device | str, dtype: DType, threads: int | None, options: RunOptions
) -> tuple[Peaks | None, Peaks]:
    """Today's peaks, measured now and not cached, beside the cached ones (None when there are none)."""
    from dsconv_cli.core import cache
    from dsconv_cli.pt import timing

    resolved, threads = _device_and_threads(device, threads)
    cached = cache.load_peaks(timing.peaks_key(resolved, dtype, threads))
    now, problems = measure_peaks_watched(resolved, dtype, threads, options)
    for problem in problems:
        options.note(f"note: {problem}")
    return cached, now
