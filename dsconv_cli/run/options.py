"""How a run is run: ``RunOptions`` (what to time and check, the limits, the callbacks for progress and
notes), the timing axes of ``compare``, and the watch that samples the machine around a timing."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsconv_cli.core import environment
from dsconv_cli.core.formatting import fmt_bytes
from dsconv_cli.core.spec import (
    DEFAULT_MAX_LAYERS,
    DEFAULT_MAX_POINTS,
    Device,
    DType,
    TimingCase,
)
from dsconv_cli.errors import MemoryLimitError, SpecError

if TYPE_CHECKING:
    pass


Step = Callable[[str], None]  # describes the step now running

ProgressFactory = Callable[[int], AbstractContextManager[Step]]  # total steps -> a context yielding ``Step``


@contextmanager
def no_progress(total: int) -> Iterator[Step]:
    """The default progress: says nothing."""
    yield lambda _description: None


@dataclass(frozen=True)
class RunOptions:
    """How to run a comparison or a config: what to time and check, and the limits on it."""

    verify: bool = False
    bench: bool = False
    device: Device = Device.AUTO
    dtype: DType = DType.FLOAT32
    threads: int | None = None
    min_time: float = 0.5
    max_memory: int = 2 * 1024**3
    baseline: Path | None = None
    max_increase: float | None = None
    max_points: int = DEFAULT_MAX_POINTS
    max_layers: int = DEFAULT_MAX_LAYERS
    baseline_missing_ok: bool = False
    rounds: int = 3
    strict_timing: bool = False
    trust_model_code: bool = False  # a config's model: target is imported and run only when the user said so
    bench_latency_budgets: bool = False  # report's default: time only the configs that hold latency budgets
    progress: ProgressFactory = field(default=no_progress, repr=False)
    note: Callable[[str], None] = field(default=lambda _: None, repr=False)  # one line for the user, e.g. a cache note

    def check(self) -> None:
        """Refuse bad values before any work is done."""
        if not math.isfinite(self.min_time) or not 0 < self.min_time <= MAX_MIN_TIME:
            raise SpecError("min_time", self.min_time, f"must be a positive number of seconds up to {MAX_MIN_TIME:g}, "
                            "e.g. 0.5")  # fmt: skip
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise SpecError("rounds", self.rounds, f"must be an integer from 1 to {MAX_ROUNDS} (3 by default)")
        if self.threads is not None:
            check_threads(self.threads)
        if self.max_points < 1:
            raise SpecError("max_points", self.max_points, "must be a positive integer")
        if self.max_layers < 1:
            raise SpecError("max_layers", self.max_layers, "must be a positive integer")
        if self.max_increase is not None and not (math.isfinite(self.max_increase) and self.max_increase >= 0):
            raise SpecError("max_increase", self.max_increase, "must be a finite percentage of 0 or more, e.g. 5")
        if self.max_increase is not None and self.baseline is None:
            raise SpecError("max_increase", self.max_increase, "needs --baseline OLD.json to compare with")


MAX_ROUNDS = 100  # each round times every item for at least one block: more rounds cannot end in time
MAX_MIN_TIME = 60.0  # seconds of timed runs per measurement
MAX_TIMING_CASES = 64  # compare's batches x threads x dtypes x layouts, each timed in every round
FORCE_THREADS = "DSCONV_FORCE_THREADS"  # set to 1 to run more intra-op threads than this process has CPUs
TRUST_MODEL_CODE = "DSCONV_TRUST_MODEL_CODE"  # set to 1: configs' model targets may be imported and run


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity where the platform says, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads: int) -> None:
    """A thread count is 1 to the CPUs available, unless ``DSCONV_FORCE_THREADS=1`` allows more."""
    if threads < 1:
        raise SpecError("threads", threads, "must be a positive integer")
    cpus = available_cpus()
    if threads > cpus and os.environ.get(FORCE_THREADS) != "1":
        raise SpecError("threads", threads, f"is more than the {cpus} CPU(s) this process may use; threads past "
                        f"them only wait their turn (set {FORCE_THREADS}=1 to time it anyway)")  # fmt: skip


def trusted_by_environment() -> bool:
    """``DSCONV_TRUST_MODEL_CODE=1``: the user allows configs' model targets to run (CI that owns its configs)."""
    return os.environ.get(TRUST_MODEL_CODE, "").strip().lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class TimingAxes:
    """What ``compare`` times: each combination of these is a row."""

    batches: tuple[int, ...]
    dtypes: tuple[DType, ...]
    channels_last: bool
    compiled: bool
    backward: bool
    roofline: bool
    threads: tuple[int, ...] = ()  # empty: the run's own; several: each is a case

    def __post_init__(self) -> None:
        for threads in self.threads:
            check_threads(threads)

    def single_for_configs(self) -> None:
        """Configs time one case: refuse lists and the extra axes there."""
        if len(self.batches) > 1:
            raise SpecError("batch", ",".join(map(str, self.batches)), "takes one value with --config")
        if len(self.dtypes) > 1:
            raise SpecError("dtype", ",".join(d.value for d in self.dtypes), "takes one value with --config")
        if len(self.threads) > 1:
            raise SpecError("threads", ",".join(map(str, self.threads)), "takes one value with --config")
        for name, on in (("channels_last", self.channels_last), ("compile", self.compiled),
                         ("backward", self.backward)):  # fmt: skip
            if on:
                raise SpecError(name, True, "times single comparisons; it does not apply with --config")

    def cases(self, default_batch: int) -> list[TimingCase]:
        """Every combination, at most ``MAX_TIMING_CASES`` of them."""
        count = (max(1, len(self.batches)) * max(1, len(self.threads)) * len(self.dtypes)
                 * 2 ** (self.channels_last + self.compiled + self.backward))  # fmt: skip
        if count > MAX_TIMING_CASES:
            raise SpecError("batch", ",".join(map(str, self.batches)) or default_batch, f"with the other timing "
                            f"axes makes {count:,} cases to time, over the limit of {MAX_TIMING_CASES}; time fewer "
                            "batches, dtypes or thread counts at once")  # fmt: skip
        return [
            TimingCase(b, d, cl, comp, bw, t)
            for b in (self.batches or (default_batch,))
            for t in (self.threads or (None,))
            for d in self.dtypes
            for cl in ((False, True) if self.channels_last else (False,))
            for comp in ((False, True) if self.compiled else (False,))
            for bw in ((False, True) if self.backward else (False,))
        ]


def timing_settings(options: RunOptions) -> Any:
    from dsconv_cli.pt import timing

    device = timing.resolve_device(options.device)
    threads = options.threads if options.threads is not None else timing.default_threads()
    return timing.TimingSettings(device, options.dtype, threads, options.min_time, rounds=options.rounds)


def memory_error(limit: int, needed: int, dtype: DType, what: str = "") -> MemoryLimitError:
    return MemoryLimitError(
        f"--max-memory {fmt_bytes(limit)}: timing {what}this layer needs about {fmt_bytes(needed)} "
        f"({dtype.value}); raise --max-memory, shrink --input-shape or use --no-bench"
    )


class TimingWatch:
    """The machine sampled before a timing; ``finish`` samples it again and judges the timing."""

    def __init__(self, device: str, threads: int, options: RunOptions) -> None:
        from dsconv_cli.core import cache
        from dsconv_cli.pt import timing

        self.threads = threads
        self.environment = environment.describe(timing.torch_info(device), threads)
        key = cache.reference_key(self.environment["cpu_model"], threads)
        self.quiet = cache.load_reference(key)
        self.before = environment.sample_state(timing.reference_ms(threads))
        if self.before.reference_ms and environment.quiet(self.before, threads):
            self.quiet = self.quiet or self.before.reference_ms
            try:
                cache.save_reference(key, self.before.reference_ms, environment.state_dict(self.before))
            except OSError as exc:
                options.note(f"note: could not cache the reference workload in {cache.cache_file()}: {exc}")

    def finish(self, round_spreads: Sequence[float] = ()) -> environment.Conditions:
        from dsconv_cli.pt import timing

        after = environment.sample_state(timing.reference_ms(self.threads))
        reasons = environment.verdict(self.before, after, self.threads, self.quiet, round_spreads)
        return environment.Conditions(self.environment, self.before, after, self.quiet, reasons)


def strict_timing_failure(conditions: environment.Conditions | None, options: RunOptions, what: str) -> str | None:
    """With ``--strict-timing``, the line that fails a run whose timing cannot be trusted."""
    if not options.strict_timing or conditions is None or conditions.trusted:
        return None
    return f"{what}: timing not trusted (--strict-timing): {conditions.reasons[0]}"


def fvcore_budget(options: RunOptions) -> int:
    """Elements fvcore may allocate for one stage's input and output under ``--max-memory``."""
    return min(50_000_000, options.max_memory // 4)
