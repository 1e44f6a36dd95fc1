"""The conditions a timing was measured in, and whether they let it be trusted. Stdlib only.

Before and after timing, the runner samples the machine (load average, run queue and CPU steal from
``/proc`` where present, the CPU affinity) and times a short fixed reference workload (warmed up, then
timed for a fraction of a second), comparing it with the figures of earlier quiet runs: their median,
widened by their own spread, since the same workload runs faster or slower from one process to the next.
``verdict`` turns what was seen into plain reasons; no reasons means the timing can be trusted.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# A figure is not trusted when any of these is crossed (each is stated in the warning it causes).
SLOWDOWN_LIMIT = 1.5  # reference workload slower than its quiet figure by this factor, times their spread
SLOWDOWN_CAP = 3.0  # ... but never more than this, whatever the quiet runs' spread
SPREAD_LIMIT = 1.5  # largest over smallest per-round speedup
STEAL_LIMIT = 0.10  # share of CPU time the hypervisor gave to other guests
RUN_QUEUE_SAMPLES = 5
RUN_QUEUE_INTERVAL_S = 0.01
REFERENCE_SAMPLES = 7  # quiet runs' reference figures kept (the oldest goes first)
REFERENCE_MIN_SAMPLES = 5  # fewer, and a run compares the reference after timing with its own figure before


@dataclass(frozen=True, slots=True)
class MachineState:
    """One look at the machine: what else wants the CPUs, and how fast the reference workload ran."""

    load1: float | None  # 1-minute load average
    others_running: float | None  # runnable tasks besides this process (mean of a few samples)
    steal: float | None  # share of CPU time stolen over the sampling window
    cpus: int  # CPUs this process may run on
    reference_ms: float | None = None  # the fixed reference workload's median


@dataclass(frozen=True, slots=True)
class Conditions:
    """The environment of a timed result and the verdict on it."""

    environment: dict[str, Any]
    before: MachineState
    after: MachineState
    quiet_reference_ms: float | None  # the cached quiet figure the reference is compared with
    reasons: tuple[str, ...] = field(default_factory=tuple)  # why the timing cannot be trusted

    @property
    def trusted(self) -> bool:
        return not self.reasons


class QuietReference(float):
    """The reference workload's quiet figure: the median (ms) of several quiet runs' figures, which is the
    float it equals wherever one figure is wanted, and those figures, whose spread sets how much slower a
    fresh figure may be before the machine counts as busy."""

    __slots__ = ("samples",)
    samples: tuple[float, ...]

    def __new__(cls, samples: Sequence[float]) -> QuietReference:
        if not samples:
            raise ValueError("a quiet reference needs at least one figure")
        reference = super().__new__(cls, statistics.median(samples))
        reference.samples = tuple(sorted(samples))
        return reference

    @property
    def spread(self) -> float:
        """Largest over smallest figure, one at each end set aside once there are five (one disturbed
        run must not widen the limit)."""
        kept = self.samples[1:-1] if len(self.samples) >= 5 else self.samples
        return kept[-1] / kept[0]


def slowdown_limit(quiet_reference_ms: float) -> float:
    """How much slower than ``quiet_reference_ms`` the reference may run on a quiet machine: ``SLOWDOWN_LIMIT``
    times the quiet runs' spread (a single figure has none), at most ``SLOWDOWN_CAP``."""
    spread = quiet_reference_ms.spread if isinstance(quiet_reference_ms, QuietReference) else 1.0
    return min(SLOWDOWN_CAP, SLOWDOWN_LIMIT * spread)


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _own_running(tasks_dir: str = "/proc/self/task") -> int:
    """This process's runnable threads: itself, and thread-pool workers still spinning after a parallel
    op (OpenMP workers spin for a while before sleeping), which are no other task."""
    running = 0
    try:
        tasks = os.listdir(tasks_dir)
    except OSError:
        return 1
    for task in tasks:
        try:
            with open(os.path.join(tasks_dir, task, "stat"), encoding="ascii", errors="replace") as handle:
                fields = handle.read().rpartition(")")[2].split()  # after the name, which may hold spaces
        except OSError:
            continue  # the thread ended meanwhile
        if fields[:1] == ["R"]:
            running += 1
    return max(running, 1)  # the reading thread runs, whatever the file said


def _proc_stat() -> tuple[list[int] | None, int | None]:
    """The aggregate ``cpu`` line's counters and ``procs_running``, or None where there is no /proc."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None, None
    counters = next(([int(v) for v in line.split()[1:]] for line in lines if line.startswith("cpu ")), None)
    running = next((int(line.split()[1]) for line in lines if line.startswith("procs_running")), None)
    return counters, running


def sample_state(reference_ms: float | None = None) -> MachineState:
    """Load, run queue (a few samples over ~50 ms, this process's own threads left out) and steal over the
    same window."""
    try:
        load1: float | None = os.getloadavg()[0]
    except (AttributeError, OSError):
        load1 = None
    first, running = _proc_stat()
    queue = [running - _own_running()] if running is not None else []
    for _ in range(RUN_QUEUE_SAMPLES - 1):
        time.sleep(RUN_QUEUE_INTERVAL_S)
        _, running = _proc_stat()
        if running is not None:
            queue.append(running - _own_running())
    last, _ = _proc_stat()
    steal = None
    if first is not None and last is not None and len(first) >= 8 and len(last) >= 8:
        total = sum(last) - sum(first)
        steal = (last[7] - first[7]) / total if total > 0 else 0.0
    others = max(sum(queue) / len(queue), 0.0) if queue else None
    return MachineState(load1, others, steal, usable_cpus(), reference_ms)


def verdict(
    before: MachineState,
    after: MachineState,
    threads: int,
    quiet_reference_ms: float | None,
    round_spreads: Sequence[float] = (),
) -> tuple[str, ...]:
    """Plain reasons the timing cannot be trusted; empty when nothing was seen."""
    reasons: list[str] = []
    cpus = before.cpus
    for when, state in (("before", before), ("after", after)):
        free = cpus - threads  # CPUs left over by the timed threads
        if state.others_running is not None and state.others_running >= free + 1:
            reasons.append(
                f"the machine was busy {when} timing: {state.others_running:.1f} other runnable tasks on "
                f"{cpus} CPUs while timing used {threads} thread(s)"
                + (f" (load {state.load1:.1f})" if state.load1 is not None else "")
            )
            break
    steal = max((s.steal for s in (before, after) if s.steal is not None), default=None)
    if steal is not None and steal > STEAL_LIMIT:
        reasons.append(f"the hypervisor stole {steal:.0%} of CPU time (over {STEAL_LIMIT:.0%})")
    if quiet_reference_ms:
        slowest = max((s.reference_ms for s in (before, after) if s.reference_ms is not None), default=None)
        limit = slowdown_limit(quiet_reference_ms)
        if slowest is not None and slowest > limit * quiet_reference_ms:
            over = f"over {limit}×"
            if isinstance(quiet_reference_ms, QuietReference):
                n, spread = len(quiet_reference_ms.samples), quiet_reference_ms.spread
                over = f"over {limit:.2f}×, {SLOWDOWN_LIMIT}× the {spread:.2f}× spread of {n} quiet runs"
            reasons.append(
                f"the reference workload ran {slowest / quiet_reference_ms:.1f}× slower than on the quiet "
                f"machine ({slowest:.3f} vs {quiet_reference_ms:.3f} ms; {over})"
            )
    worst = max(round_spreads, default=1.0)
    if worst > SPREAD_LIMIT:
        reasons.append(f"the rounds' speedups disagree by {worst:.2f}× (over {SPREAD_LIMIT}×)")
    return tuple(reasons)


def quiet(state: MachineState, threads: int) -> bool:
    """Quiet enough to record a reference figure or peaks for later comparison."""
    free = state.cpus - threads
    busy = state.others_running is not None and state.others_running >= max(free, 0) + 0.5
    stolen = state.steal is not None and state.steal > STEAL_LIMIT
    return not busy and not stolen


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe(torch_info: dict[str, Any], threads: int) -> dict[str, Any]:
    """The environment record: CPU, affinity, threads, Python, dsconv, and what ``torch_info`` gives."""
    from dsconv_cli.version import __version__

    try:
        affinity: list[int] | None = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        affinity = None
    return {
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "affinity": affinity,
        "threads": threads,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "dsconv": __version__,
        **torch_info,
    }


def state_dict(state: MachineState) -> dict[str, Any]:
    return {
        "load1": state.load1,
        "others_running": state.others_running,
        "steal": state.steal,
        "cpus": state.cpus,
        "reference_ms": state.reference_ms,
    }


def summary(c: Conditions) -> str:
    """One line for the table: where it ran and how the machine looked."""
    env = c.environment
    load = " → ".join(f"{s.load1:.1f}" for s in (c.before, c.after) if s.load1 is not None) or "-"
    torch_build = env.get("torch_build", {})
    libs = ", ".join(name for name in ("mkl", "mkldnn", "openmp") if torch_build.get(name))
    device = env.get("cuda", {}).get("name") if env.get("cuda") else None
    where = f"{device} on " if device else ""
    return (
        f"environment: {where}{env['cpu_model']}, {c.before.cpus} of {env['logical_cpus']} CPUs, "
        f"{env['threads']} thread(s), load {load}; torch {env.get('torch', '?')}"
        + (f" ({libs})" if libs else "")
        + f", Python {env['python']}, dsconv {env['dsconv']}; "
        + ("trusted" if c.trusted else "NOT trusted")
    )
