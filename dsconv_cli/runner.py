"""Count, time, cross-check and hold budgets: the work behind every command and API call.

Between the core (spec, counting, building, timing) and the front ends (``cli.py``, the public API):
it never prints; progress and notes go to the callbacks in ``RunOptions``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsconv_cli import counting, environment, formatting
from dsconv_cli.errors import ConfigError, MemoryLimitError, SpecError, format_value
from dsconv_cli.formatting import fmt_bytes
from dsconv_cli.results import Comparison, ConfigReport, Peaks, StackResult, TimingRow, spread_of
from dsconv_cli.spec import (
    DEFAULT_IN_CHANNELS,
    DEFAULT_MAX_LAYERS,
    DEFAULT_MAX_POINTS,
    DEFAULT_OUT_CHANNELS,
    LAYER_FIELDS,
    SPATIAL_FIELDS,
    Device,
    DType,
    Norm,
    TimingCase,
    default_input_shape,
    infer_rank,
    resolve_spec,
)

if TYPE_CHECKING:
    from dsconv_cli.config import Config

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
    progress: ProgressFactory = field(default=no_progress, repr=False)
    note: Callable[[str], None] = field(default=lambda _: None, repr=False)  # one line for the user, e.g. a cache note

    def check(self) -> None:
        """Refuse bad values before any work is done."""
        if not math.isfinite(self.min_time) or self.min_time <= 0:
            raise SpecError("min_time", self.min_time, "must be a positive, finite number of seconds, e.g. 0.5")
        if self.rounds < 1:
            raise SpecError("rounds", self.rounds, "must be a positive integer (3 by default)")
        if self.threads is not None and self.threads < 1:
            raise SpecError("threads", self.threads, "must be a positive integer")
        if self.max_points < 1:
            raise SpecError("max_points", self.max_points, "must be a positive integer")
        if self.max_layers < 1:
            raise SpecError("max_layers", self.max_layers, "must be a positive integer")
        if self.max_increase is not None and not (math.isfinite(self.max_increase) and self.max_increase >= 0):
            raise SpecError("max_increase", self.max_increase, "must be a finite percentage of 0 or more, e.g. 5")
        if self.max_increase is not None and self.baseline is None:
            raise SpecError("max_increase", self.max_increase, "needs --baseline OLD.json to compare with")


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
        return [
            TimingCase(b, d, cl, comp, bw, t)
            for b in (self.batches or (default_batch,))
            for t in (self.threads or (None,))
            for d in self.dtypes
            for cl in ((False, True) if self.channels_last else (False,))
            for comp in ((False, True) if self.compiled else (False,))
            for bw in ((False, True) if self.backward else (False,))
        ]


def comparison_from_layer(layer: dict[str, Any], shape: tuple[int, ...] | None, batch: int | None) -> Comparison:
    options = dict(layer)
    in_channels = options.pop("in_channels", None)
    options.setdefault("out_channels", DEFAULT_OUT_CHANNELS)
    rank = infer_rank(shape, *(options.get(k) for k in SPATIAL_FIELDS))
    channels = in_channels if in_channels is not None else (shape[1] if shape else DEFAULT_IN_CHANNELS)
    spec = resolve_spec(rank=rank, in_channels=channels, **options)
    notes: list[str] = []
    if shape is None:
        shape = default_input_shape(rank, channels, batch or 1)
        default = formatting.fmt_shape(shape)
        notes.append(f"default {rank}-D input shape {default}; set --input-shape to change it")
    return counting.compare(spec, shape, notes)


def load_baseline(path: Path | None, options: RunOptions | None = None) -> dict[str, Any] | None:
    if path is None:
        return None
    from dsconv_cli.budgets import baseline_totals

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if options is not None and options.baseline_missing_ok:
            options.note(f"note: no baseline at {path} yet (--baseline-missing ok): nothing to compare with")
            return None
        raise ConfigError(f"--baseline {path}: no such file; pass --baseline-missing ok for a first run") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--baseline {path}: not readable JSON: {exc}") from None
    return baseline_totals(document, str(path))


def run_config(
    cfg: Config,
    options: RunOptions,
    *,
    overrides: dict[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    baseline: dict[str, Any] | None = None,
) -> ConfigReport:
    from dsconv_cli.evaluate import count_config, evaluate

    if cfg.model is not None:
        return run_model_config(cfg, options, baseline=baseline)
    if options.bench and cfg.point_count > MAX_TIMED_POINTS:  # refused before counting a single point
        raise SpecError("bench", True, f"{cfg.path} sweeps {cfg.point_count:,} points, too many to time (at most "
                        f"{MAX_TIMED_POINTS}); use --no-bench to count them")  # fmt: skip
    stacks = count_config(cfg, overrides=overrides, input_shape=input_shape, max_points=options.max_points)
    time_stack, watch = None, None
    if options.bench:
        settings = timing_settings(options)
        time_stack = stack_timer(cfg, stacks, options, settings)
        watch = TimingWatch(settings.device, settings.threads, options)
    cross_check = stack_cross_check if options.verify else None
    report = evaluate(
        cfg, stacks, time_stack=time_stack, cross_check=cross_check, baseline=baseline,
        max_increase=options.max_increase,
    )  # fmt: skip
    if watch is None:
        return report
    spreads = [spread_of(r) for stack in report.stacks for r in (stack.round_speedups,
               *(layer.round_speedups for layer in stack.layers))]  # fmt: skip
    conditions = watch.finish(spreads)
    failure = strict_timing_failure(conditions, options, cfg.name)
    return replace(report, conditions=conditions, failures=report.failures + ((failure,) if failure else ()))


def run_model_config(cfg: Config, options: RunOptions, *, baseline: dict[str, Any] | None = None) -> ConfigReport:
    """A config naming a whole model: analysed (and converted by its rule), then budgets and the baseline."""
    from dsconv_cli import model
    from dsconv_cli.evaluate import evaluate_model

    assert cfg.model is not None
    try:
        analysis = model.analyze(
            cfg.model.target, list(cfg.model.input_shapes), kwargs=cfg.model.kwargs, dtype=options.dtype,
            convert_rule=cfg.model.convert, verify=options.verify, max_memory=options.max_memory,
            bench=options.bench, device=options.device, threads=options.threads, min_time=options.min_time,
            rounds=options.rounds,
        )  # fmt: skip
    except model.TargetError as error:
        raise ConfigError(f"{cfg.where('model.target')}: model.target {error}") from None
    return evaluate_model(cfg, analysis, baseline=baseline, max_increase=options.max_increase)


MAX_TIMED_POINTS = 64


def stack_timer(
    cfg: Config, stacks: Sequence[StackResult], options: RunOptions, settings: Any
) -> Callable[..., StackResult]:
    """Each stack timed with ``settings`` (``run_config`` has refused sweeps over ``MAX_TIMED_POINTS``)."""
    for stack in stacks:
        needed = counting.stack_timing_bytes(stack, options.dtype)
        if needed > options.max_memory:
            raise memory_error(options.max_memory, needed, options.dtype, f"{cfg.path} ")
    from dsconv_cli import timing

    def run(stack: StackResult) -> StackResult:
        label = f"{stack.name} {formatting.point_label(stack.point)}".strip()
        with options.progress(timing.stack_steps(stack)) as step:
            return timing.time_stack(stack, settings, on_step=lambda what: step(f"{label}: timing {what}"))

    return run


def stack_cross_check(stack: StackResult) -> list[str]:
    from dsconv_cli.crosscheck import verify_stack

    return [
        f"{stack.name}: cross-check {ch.stage} {ch.quantity}: dsconv {format_value(ch.analytic)} vs "
        f"{ch.source} {format_value(ch.reference)}"
        for ch in verify_stack(stack)
        if not ch.ok
    ]


def failure_summary(results: Sequence[ConfigReport]) -> str:
    lines = [line for r in results for line in r.failures]
    more = f" (+{len(lines) - 1} more above)" if len(lines) > 1 else ""
    return f"{lines[0]}{more}"


def timing_settings(options: RunOptions) -> Any:
    from dsconv_cli import timing

    device = timing.resolve_device(options.device)
    threads = options.threads if options.threads is not None else timing.default_threads()
    return timing.TimingSettings(device, options.dtype, threads, options.min_time, rounds=options.rounds)


def memory_error(limit: int, needed: int, dtype: DType, what: str = "") -> MemoryLimitError:
    return MemoryLimitError(
        f"--max-memory {fmt_bytes(limit)}: timing {what}this layer needs about {fmt_bytes(needed)} "
        f"({dtype.value}); raise --max-memory, shrink --input-shape or use --no-bench"
    )


def time_comparison(comparison: Comparison, options: RunOptions, axes: TimingAxes) -> Comparison:
    """Every timing case in turn; Ctrl-C keeps what was measured and marks the comparison interrupted."""
    cases = axes.cases(comparison.input_shape[0])
    if any(case.batch == 0 for case in cases):
        raise SpecError("batch", 0, "has nothing to time; count it with --no-bench, or time a batch of 1 or more")
    if axes.channels_last and comparison.spec.rank == 1:
        raise SpecError("channels_last", True, "applies to 2-D and 3-D convs only; this one is 1-D")
    if axes.backward and comparison.spec.norm is Norm.BATCH:
        # training-mode BatchNorm needs more than one value per channel (batch x spatial positions)
        smallest = min(c.batch for c in cases)
        for stage in (*comparison.standard.stages, *comparison.separable.stages):
            if smallest * math.prod(stage.output_shape[2:]) < 2:
                raise SpecError(
                    "backward", True, f"trains BatchNorm, which needs more than one value per channel; the "
                    f"{stage.name} output {formatting.fmt_shape(stage.output_shape)} at batch {smallest} has one; "
                    "use a larger --batch or input, or --norm none",
                )  # fmt: skip
    widest = max(axes.dtypes, key=lambda d: d.itemsize)
    largest = counting.compare(comparison.spec, (max(c.batch for c in cases), *comparison.input_shape[1:]))
    # timing holds both variants and each stage; training also keeps activations and gradients
    needed = counting.timing_bytes(largest, widest) * (3 if axes.backward else 1)
    if needed > options.max_memory:
        raise memory_error(options.max_memory, needed, widest)
    from dsconv_cli import timing

    settings = timing_settings(options)
    measured = (
        tuple(
            peaks(settings.device, d, t, options=options)
            for d in axes.dtypes
            for t in (axes.threads or (settings.threads,))
        )
        if axes.roofline
        else ()
    )
    rows: list[TimingRow] = []
    current: list[TimingRow] = []
    interrupted = False
    watch = TimingWatch(settings.device, settings.threads, options)
    with options.progress(len(cases) * (len(timing.TIMED) + options.rounds)) as step:
        try:
            for case in cases:
                current.clear()
                rows.append(timing.time_case(comparison, case, settings, on_step=step, partial=_keep(current)))
        except KeyboardInterrupt:
            interrupted = True
            rows.extend(current)
    conditions = watch.finish([row.speedup_spread for row in rows])
    timed = replace(comparison, timings=tuple(rows), peaks=measured, interrupted=interrupted, conditions=conditions)
    return counting.analyse_timings(timed)


class TimingWatch:
    """The machine sampled before a timing; ``finish`` samples it again and judges the timing."""

    def __init__(self, device: str, threads: int, options: RunOptions) -> None:
        from dsconv_cli import cache, timing

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
        from dsconv_cli import timing

        after = environment.sample_state(timing.reference_ms(self.threads))
        reasons = environment.verdict(self.before, after, self.threads, self.quiet, round_spreads)
        return environment.Conditions(self.environment, self.before, after, self.quiet, reasons)


def strict_timing_failure(conditions: environment.Conditions | None, options: RunOptions, what: str) -> str | None:
    """With ``--strict-timing``, the line that fails a run whose timing cannot be trusted."""
    if not options.strict_timing or conditions is None or conditions.trusted:
        return None
    return f"{what}: timing not trusted (--strict-timing): {conditions.reasons[0]}"


def _keep(store: list[TimingRow]) -> Callable[[TimingRow], None]:
    def keep(row: TimingRow) -> None:
        store[:] = [row]

    return keep


def peaks(device: str, dtype: DType, threads: int, refresh: bool = False, options: RunOptions | None = None) -> Peaks:
    """Cached peaks for this device, dtype and thread count; measured (and cached) when missing."""
    return peaks_and_source(device, dtype, threads, refresh, options)[0]


def peaks_and_source(
    device: Device | str, dtype: DType, threads: int | None, refresh: bool = False, options: RunOptions | None = None
) -> tuple[Peaks, bool]:
    """Peaks as ``peaks`` gives them (``device`` may be ``auto``, ``threads`` None for the default), and
    whether they came from the cache."""
    from dsconv_cli import cache

    if threads is not None and threads < 1:
        raise SpecError("threads", threads, "must be a positive integer")
    if not refresh and (found := cached_cpu_peaks(Device(device), dtype, threads)) is not None:
        return found, True  # read without importing torch
    resolved, threads = _device_and_threads(device, threads)
    from dsconv_cli import timing

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
        options.note(f"note: peaks kept as measured_busy (the best so far) until a quiet run: {'; '.join(problems)}")
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
    from dsconv_cli import cache

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
    from dsconv_cli import timing

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
    from dsconv_cli import timing

    resolved = timing.resolve_device(Device(device))
    return resolved, threads if threads is not None else timing.default_threads()


def check_peaks(
    device: Device | str, dtype: DType, threads: int | None, options: RunOptions
) -> tuple[Peaks | None, Peaks]:
    """Today's peaks, measured now and not cached, beside the cached ones (None when there are none)."""
    from dsconv_cli import cache, timing

    resolved, threads = _device_and_threads(device, threads)
    cached = cache.load_peaks(timing.peaks_key(resolved, dtype, threads))
    now, problems = measure_peaks_watched(resolved, dtype, threads, options)
    for problem in problems:
        options.note(f"note: {problem}")
    return cached, now


# --- whole jobs: what a command or an API call runs ----------------------------------------------


def parse_layer_text(raw: dict[str, Any]) -> dict[str, Any]:
    """Layer values as given (``None`` = not given), text ones parsed per ``LAYER_FIELDS``."""
    from dsconv_cli.parse import parse_ints, parse_padding

    kinds = {f.name: f.text for f in LAYER_FIELDS}
    given: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key not in kinds:
            valid = ", ".join(kinds)
            raise SpecError(key, value, f"is not a layer field; valid: {valid}")
        if isinstance(value, str) and kinds[key] == "ints":
            value = parse_ints(key, value)
        elif isinstance(value, str) and kinds[key] == "padding":
            value = parse_padding(value)
        given[key] = value
    return given


def compare_layer(
    layer: dict[str, Any],
    input_shape: tuple[int, ...] | None,
    options: RunOptions,
    axes: TimingAxes | None = None,
) -> Comparison:
    """Count one layer against its separable pair; cross-check and time it as ``options`` ask."""
    axes = axes or TimingAxes((), (options.dtype,), False, False, False, True)
    batch = axes.batches[0] if axes.batches else None
    comparison = comparison_from_layer(layer, input_shape, batch)
    if options.verify:
        from dsconv_cli.crosscheck import verify

        # fvcore traces with real tensors: never more of them than --max-memory allows (input + output, float32)
        comparison = replace(comparison, checks=verify(comparison, fvcore_max_elements=fvcore_budget(options)))
    if options.bench:
        comparison = time_comparison(comparison, options, axes)
    return comparison


def fvcore_budget(options: RunOptions) -> int:
    """Elements fvcore may allocate for one stage's input and output under ``--max-memory``."""
    return min(50_000_000, options.max_memory // 4)


def check_failures(comparison: Comparison) -> str | None:
    """The line that fails a run whose cross-check disagreed, else None."""
    failed = [ch for ch in comparison.checks if not ch.ok]
    if not failed:
        return None
    first = failed[0]
    return (
        f"cross-check failed: {len(failed)} disagreement(s); first: {first.stage} {first.quantity} "
        f"dsconv {format_value(first.analytic)} vs {first.source} {format_value(first.reference)}"
    )


def compare_config(
    cfg: Config,
    layer: dict[str, Any],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
    options: RunOptions,
) -> ConfigReport:
    """One config, with layer values overriding a single-layer config's and an optional input shape."""
    if cfg.model is not None and (layer or input_shape is not None or batch is not None):
        given = [*("--" + k.replace("_", "-") for k in layer), *(["--input-shape"] if input_shape else []),
                 *(["--batch"] if batch is not None else [])]  # fmt: skip
        raise ConfigError(f"{cfg.path}: {', '.join(given)} override layer configs; this one names a model, "
                          "whose input_shape is set in its model section")  # fmt: skip
    if layer and len(cfg.layers) != 1:
        raise ConfigError(
            f"{cfg.path}: layer flags ({', '.join('--' + k.replace('_', '-') for k in layer)}) override "
            f"single-layer configs only; this one has {len(cfg.layers)} layers"
        )
    if input_shape is None and batch is not None:
        input_shape = (batch, *cfg.input_shape[1:])
    baseline = load_baseline(options.baseline, options)
    return run_config(cfg, options, overrides=layer, input_shape=input_shape, baseline=baseline)


def run_config_files(paths: Sequence[str], options: RunOptions) -> tuple[list[ConfigReport], list[str]]:
    """Every config file: the reports of those that loaded, and one message per problem in the others."""
    from dsconv_cli import config as config_module

    old = load_baseline(options.baseline, options)
    broken: list[str] = []
    results: list[ConfigReport] = []
    for path in paths:
        try:
            results.append(run_config(config_module.load(path, options.max_layers), options, baseline=old))
        except ConfigError as error:
            broken.extend(error.messages)
    return results, broken
