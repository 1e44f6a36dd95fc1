"""The ``dsconv`` command line: parse, call the core, render, map errors to exit codes.

Only this module prints or exits. torch is imported inside the code paths that need it, so
``dsconv --help`` and ``dsconv compare --no-bench`` start without it.
"""

from __future__ import annotations

import glob
import io
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console

from dsconv_cli import __version__, counting, render, report, tables
from dsconv_cli.errors import (
    CheckFailed,
    ConfigError,
    DsconvError,
    Interrupted,
    MemoryLimitError,
    SpecError,
    format_value,
)
from dsconv_cli.files import write_atomic
from dsconv_cli.parse import parse_ints, parse_padding, parse_size
from dsconv_cli.results import Comparison, ConfigReport, Peaks, StackResult, TimingRow
from dsconv_cli.spec import (
    DEFAULT_IN_CHANNELS,
    DEFAULT_OUT_CHANNELS,
    Activation,
    Device,
    DType,
    Norm,
    OutputFormat,
    Placement,
    TimingCase,
    default_input_shape,
    infer_rank,
    resolve_spec,
    validate_input_shape,
)

if TYPE_CHECKING:
    from dsconv_cli.config import Config

EXIT_CODES_HELP = "Exit codes: 0 ok, 1 a requested check failed, 2 bad input, 3 environment."

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="What does this conv layer cost, and what would a depthwise-separable one cost instead?\n\n" + EXIT_CODES_HELP,
)


def stdout_console() -> Console:
    return Console(highlight=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def _version(value: bool) -> None:
    if value:
        print(f"dsconv {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """What does this conv layer cost, and what would a depthwise-separable one cost instead?"""


# --- shared options -----------------------------------------------------------------------------

LAYER = "Layer"
INPUT = "Input"
OUTPUT = "Output"
TIMING = "Timing"
CONFIG = "Config and CI"

FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.", rich_help_panel=OUTPUT)]
OutputOpt = Annotated[
    Path | None,
    typer.Option("--output", help="Write to FILE (atomically) instead of stdout.", rich_help_panel=OUTPUT,
                 show_default=False, dir_okay=False),
]  # fmt: skip
VerifyOpt = Annotated[
    bool, typer.Option("--verify", help="Cross-check every count against PyTorch and fvcore; exit 1 on any "
                       "disagreement.", rich_help_panel=OUTPUT),
]  # fmt: skip
BenchOpt = Annotated[bool, typer.Option("--bench/--no-bench", help="Time both variants.", rich_help_panel=TIMING)]
DeviceOpt = Annotated[Device, typer.Option(help="auto = cuda when present.", rich_help_panel=TIMING)]
DTypeOpt = Annotated[DType, typer.Option(help="Timing dtype.", rich_help_panel=TIMING)]
ThreadsOpt = Annotated[
    int | None, typer.Option(help="Intra-op threads (default: PyTorch's own).", rich_help_panel=TIMING,
                             show_default=False),
]  # fmt: skip
MinTimeOpt = Annotated[
    float, typer.Option("--min-time", help="Seconds of timed runs per measurement.", rich_help_panel=TIMING)
]
MaxMemoryOpt = Annotated[
    str, typer.Option("--max-memory", help="Refuse to time if the tensors would need more than this.",
                      rich_help_panel=TIMING),
]  # fmt: skip
BaselineOpt = Annotated[
    Path | None, typer.Option("--baseline", help="An earlier --format json report to compare totals with.",
                              rich_help_panel=CONFIG, show_default=False, dir_okay=False),
]  # fmt: skip
MaxIncreaseOpt = Annotated[
    float | None, typer.Option("--max-increase", help="Fail when a total's params or MACs grew more than PCT "
                               "percent over --baseline.", rich_help_panel=CONFIG, show_default=False),
]  # fmt: skip
MaxPointsOpt = Annotated[int, typer.Option("--max-points", help="Largest sweep grid allowed.", rich_help_panel=CONFIG)]


@dataclass(frozen=True)
class RunOptions:
    """Options shared by ``compare`` and ``report``."""

    output_format: OutputFormat
    output: Path | None
    verify: bool
    bench: bool
    device: Device
    dtype: DType
    threads: int | None
    min_time: float
    max_memory: int
    baseline: Path | None = None
    max_increase: float | None = None
    max_points: int = 10_000

    def check(self) -> None:
        """Refuse bad values before any work is done."""
        _check_output_path(self.output)
        if self.min_time <= 0:
            raise SpecError("min_time", self.min_time, "must be a positive number of seconds")
        if self.threads is not None and self.threads < 1:
            raise SpecError("threads", self.threads, "must be a positive integer")
        if self.max_points < 1:
            raise SpecError("max_points", self.max_points, "must be a positive integer")
        if self.max_increase is not None and self.max_increase < 0:
            raise SpecError("max_increase", self.max_increase, "must be a non-negative percentage")
        if self.max_increase is not None and self.baseline is None:
            raise SpecError("max_increase", self.max_increase, "needs --baseline OLD.json to compare with")


# --- compare ------------------------------------------------------------------------------------


@app.command()
def compare(
    in_channels: Annotated[
        int | None,
        typer.Option(
            "--in-channels",
            "-i",
            help="Input channels (default: from --input-shape, else 16).",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    out_channels: Annotated[
        int | None,
        typer.Option(
            "--out-channels",
            "-o",
            help="Output channels (default: 32).",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    kernel_size: Annotated[
        str | None,
        typer.Option(
            "--kernel-size",
            "-k",
            help="Kernel: 3, or one per spatial dim: 3,5 (default: 3).",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    stride: Annotated[
        str | None,
        typer.Option(help="Stride: 1 or 1,2 (default: 1).", rich_help_panel=LAYER, show_default=False),
    ] = None,
    padding: Annotated[
        str | None,
        typer.Option(
            help="Padding: 1, 0,1, same or valid (default: dilation·(k−1)//2, size-keeping at stride 1).",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    dilation: Annotated[
        str | None,
        typer.Option(help="Dilation: 1 or 2,1 (default: 1).", rich_help_panel=LAYER, show_default=False),
    ] = None,
    groups: Annotated[
        int | None,
        typer.Option(help="Groups of the standard conv (default: 1).", rich_help_panel=LAYER, show_default=False),
    ] = None,
    multiplier: Annotated[
        int | None,
        typer.Option(
            help="Depth multiplier of the depthwise stage (default: 1).",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    bias: Annotated[
        bool | None,
        typer.Option(
            "--bias/--no-bias",
            help="Bias on every conv (default: no bias).",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    transposed: Annotated[
        bool | None,
        typer.Option(
            "--transposed/--no-transposed",
            help="Transposed convs, ConvTranspose*d (default: no).",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    output_padding: Annotated[
        str | None,
        typer.Option(
            help="Output padding of transposed convs: 0 or 0,1 (default: 0).",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    norm: Annotated[
        Norm | None,
        typer.Option(help="Normalisation after convs (default: none).", rich_help_panel=LAYER, show_default=False),
    ] = None,
    act: Annotated[
        Activation | None,
        typer.Option(help="Activation after convs (default: none).", rich_help_panel=LAYER, show_default=False),
    ] = None,
    placement: Annotated[
        Placement | None,
        typer.Option(
            help="classic: dw → pw → norm → act; mobilenet: norm + act after each stage (default: classic).",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    input_shape: Annotated[
        str | None,
        typer.Option(
            "--input-shape",
            help="N,C,*spatial with 1-3 spatial dims, e.g. 1,16,50,129 (default: 1,C,50,129).",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            help="Override N of the input shape; a list (1,8,32) times each batch size.",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A YAML config (layers, sweep, budgets); layer flags override a single-layer config's values.",
            rich_help_panel=CONFIG,
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Draw a sweep's MAC ratio to FILE.png or FILE.svg (needs the plot extra).",
            rich_help_panel=CONFIG,
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    output_format: FormatOpt = OutputFormat.TABLE,
    output: OutputOpt = None,
    verify: VerifyOpt = False,
    bench: BenchOpt = True,
    device: DeviceOpt = Device.AUTO,
    dtype: Annotated[
        str, typer.Option(help="Timing dtype, or a list: float32,bfloat16.", rich_help_panel=TIMING)
    ] = "float32",
    channels_last: Annotated[
        bool,
        typer.Option("--channels-last", help="Also time in channels-last memory format.", rich_help_panel=TIMING),
    ] = False,
    compile_: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="Also time torch.compile'd modules (compile time reported apart).",
            rich_help_panel=TIMING,
        ),
    ] = False,  # fmt: skip
    backward: Annotated[
        bool,
        typer.Option("--backward", help="Also time forward + backward, as in training.", rich_help_panel=TIMING),
    ] = False,
    roofline: Annotated[
        bool,
        typer.Option(
            "--roofline/--no-roofline",
            help="Place timings under the machine's measured peaks (measured once per device and dtype, then cached).",
            rich_help_panel=TIMING,
        ),
    ] = True,  # fmt: skip
    threads: Annotated[
        str | None,
        typer.Option(
            help="Intra-op threads, or a list: 1,2 (default: PyTorch's own).",
            rich_help_panel=TIMING,
            show_default=False,
        ),
    ] = None,  # fmt: skip
    min_time: MinTimeOpt = 0.5,
    max_memory: MaxMemoryOpt = "2GiB",
    baseline: BaselineOpt = None,
    max_increase: MaxIncreaseOpt = None,
    max_points: MaxPointsOpt = 10_000,
) -> None:
    """Count and time a conv layer against its depthwise-separable pair.

    Example: dsconv compare -i 64 -o 128 -k 5 --stride 2 --input-shape 8,64,56,56
    """
    dtypes = _dtype_list(dtype)
    batches = _positive_list("batch", batch)
    thread_counts = _positive_list("threads", threads)
    options = RunOptions(
        output_format, output, verify, bench, device, dtypes[0], thread_counts[0] if thread_counts else None, min_time,
        parse_size("max_memory", max_memory), baseline, max_increase, max_points,
    )  # fmt: skip
    options.check()
    layer = _layer_flags(
        in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, stride=stride,
        padding=padding, dilation=dilation, groups=groups, multiplier=multiplier, bias=bias,
        transposed=transposed, output_padding=output_padding, norm=norm, act=act, placement=placement,
    )  # fmt: skip
    first_batch = batches[0] if batches else None
    shape = _input_shape_flag(input_shape, first_batch)
    axes = TimingAxes(batches, dtypes, channels_last, compile_, backward, roofline, thread_counts)
    if config_file is not None:
        axes.single_for_configs()
        _compare_config(config_file, layer, shape, first_batch, plot, options)
        return
    if plot is not None:
        raise SpecError("plot", plot, "draws a sweep; give a --config file with a sweep")
    if options.baseline is not None:
        raise SpecError("baseline", options.baseline, "compares config totals; give a --config file")
    comparison = _comparison_from_flags(layer, shape, first_batch)
    if verify:
        from dsconv_cli.crosscheck import verify as run_verify

        comparison = replace(comparison, checks=run_verify(comparison))
    if bench:
        comparison = _time_comparison(comparison, options, axes)
    _emit(render.render_comparisons([comparison], output_format), output)
    if comparison.interrupted:
        raise Interrupted("interrupted by Ctrl-C; the timings measured before it are shown")
    failed = [ch for ch in comparison.checks if not ch.ok]
    if failed:
        first = failed[0]
        raise CheckFailed(
            f"cross-check failed: {len(failed)} disagreement(s); first: {first.stage} {first.quantity} "
            f"dsconv {format_value(first.analytic)} vs {first.source} {format_value(first.reference)}"
        )


def _layer_flags(**raw: Any) -> dict[str, Any]:
    """The layer flags the user gave, parsed; absent ones are left out (so a config keeps its values)."""
    parsers: dict[str, Callable[[str], Any]] = {
        "kernel_size": lambda v: parse_ints("kernel_size", v),
        "stride": lambda v: parse_ints("stride", v),
        "dilation": lambda v: parse_ints("dilation", v),
        "output_padding": lambda v: parse_ints("output_padding", v),
        "padding": parse_padding,
    }
    given = {}
    for key, value in raw.items():
        if value is not None:
            given[key] = parsers[key](value) if key in parsers else value
    return given


def _dtype_list(text: str) -> tuple[DType, ...]:
    values = []
    for part in text.split(","):
        try:
            values.append(DType(part.strip()))
        except ValueError:
            valid = ", ".join(d.value for d in DType)
            raise SpecError("dtype", text, f"{part.strip()!r} is not one of {valid}; give one or a list") from None
    return tuple(dict.fromkeys(values))


def _positive_list(field: str, text: str | None) -> tuple[int, ...]:
    """``8`` or ``1,8,32``: distinct positive integers in the order given."""
    if text is None:
        return ()
    values = parse_ints(field, text)
    if any(v < 1 for v in values):
        raise SpecError(field, text, "must be positive integers")
    return tuple(dict.fromkeys(values))


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


def _input_shape_flag(text: str | None, batch: int | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    shape = parse_ints("input_shape", text)
    validate_input_shape(shape)
    return (batch, *shape[1:]) if batch is not None else shape


def _comparison_from_flags(layer: dict[str, Any], shape: tuple[int, ...] | None, batch: int | None) -> Comparison:
    options = dict(layer)
    in_channels = options.pop("in_channels", None)
    options.setdefault("out_channels", DEFAULT_OUT_CHANNELS)
    rank = infer_rank(
        shape, *(options.get(k) for k in ("kernel_size", "stride", "dilation", "output_padding", "padding"))
    )
    channels = in_channels if in_channels is not None else (shape[1] if shape else DEFAULT_IN_CHANNELS)
    spec = resolve_spec(rank=rank, in_channels=channels, **options)
    notes: list[str] = []
    if shape is None:
        shape = default_input_shape(rank, channels, batch or 1)
        default = report.fmt_shape(shape)
        notes.append(f"default {rank}-D input shape {default}; set --input-shape to change it")
    return counting.compare(spec, shape, notes)


# --- configs ------------------------------------------------------------------------------------


def _compare_config(
    path: Path,
    layer: dict[str, Any],
    shape: tuple[int, ...] | None,
    batch: int | None,
    plot: Path | None,
    options: RunOptions,
) -> None:
    from dsconv_cli import config as config_module
    from dsconv_cli import plot as plot_module

    if plot is not None:
        plot_module.check_target(plot)
        _check_output_path(plot, "plot")
    cfg = config_module.load(path)
    if plot is not None and not cfg.sweep:
        raise SpecError("plot", plot, f"draws a sweep, and {path} has no sweep")
    if layer and len(cfg.layers) != 1:
        raise ConfigError(
            f"{path}: layer flags ({', '.join('--' + k.replace('_', '-') for k in layer)}) override "
            f"single-layer configs only; this one has {len(cfg.layers)} layers"
        )
    if shape is None and batch is not None:
        shape = (batch, *cfg.input_shape[1:])
    baseline = _load_baseline(options.baseline)
    result = _run_config(cfg, options, overrides=layer, input_shape=shape, baseline=baseline)
    if plot is not None:
        plot_module.plot_sweep(plot, result.name, result.stacks, list(result.sweep))
        stderr_console().print(f"wrote {plot}", markup=False)
    _emit(render.render_configs([result], options.output_format, options.max_increase), options.output)
    if not result.ok:
        raise CheckFailed(_failure_summary([result]))


@app.command("report")
def report_command(
    files: Annotated[list[str], typer.Argument(help="Config files; globs such as 'configs/*.yaml' welcome.")],
    output_format: FormatOpt = OutputFormat.TABLE,
    output: OutputOpt = None,
    verify: VerifyOpt = False,
    bench: BenchOpt = True,
    device: DeviceOpt = Device.AUTO,
    dtype: DTypeOpt = DType.FLOAT32,
    threads: ThreadsOpt = None,
    min_time: MinTimeOpt = 0.5,
    max_memory: MaxMemoryOpt = "2GiB",
    baseline: BaselineOpt = None,
    max_increase: MaxIncreaseOpt = None,
    max_points: MaxPointsOpt = 10_000,
) -> None:
    """Run many config files for CI: each one's tables and budgets, then one summary.

    Example: dsconv report configs/*.yaml --no-bench --format markdown
    """
    from dsconv_cli import config as config_module

    options = RunOptions(
        output_format, output, verify, bench, device, dtype, threads, min_time,
        parse_size("max_memory", max_memory), baseline, max_increase, max_points,
    )  # fmt: skip
    options.check()
    old = _load_baseline(baseline)
    broken: list[str] = []
    results: list[ConfigReport] = []
    for path in _expand(files):
        try:
            results.append(_run_config(config_module.load(path), options, baseline=old))
        except ConfigError as error:
            broken.extend(error.messages)
    if results:
        rendered = render.render_configs(results, output_format, options.max_increase)
        if output_format is OutputFormat.TABLE and len(results) > 1:
            assert isinstance(rendered, list)
            rendered.append(tables.rich_table(render.summary_table(results), title="summary"))
        _emit(rendered, output)
    for message in broken:
        error_line(message)
    if broken:
        raise ConfigError(f"{len(broken)} problem(s) in the config files above; nothing was checked for them")
    failed = [r for r in results if not r.ok]
    if failed:
        raise CheckFailed(_failure_summary(results))
    stderr_console().print(f"{len(results)} config(s) passed", markup=False)


def _expand(patterns: Sequence[str]) -> list[str]:
    """Each argument as given, or the files its glob matches (sorted)."""
    paths: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else []
        paths.extend(matches or [pattern])
    return paths


def _load_baseline(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    from dsconv_cli.budgets import baseline_totals

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--baseline {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--baseline {path}: not readable JSON: {exc}") from None
    return baseline_totals(document, str(path))


def _run_config(
    cfg: Config,
    options: RunOptions,
    *,
    overrides: dict[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    baseline: dict[str, Any] | None = None,
) -> ConfigReport:
    from dsconv_cli.evaluate import count_config, evaluate

    stacks = count_config(cfg, overrides=overrides, input_shape=input_shape, max_points=options.max_points)
    time_stack = None
    if options.bench:
        time_stack = _stack_timer(cfg, stacks, options)
    cross_check = _stack_cross_check if options.verify else None
    return evaluate(
        cfg, stacks, time_stack=time_stack, cross_check=cross_check, baseline=baseline,
        max_increase=options.max_increase,
    )  # fmt: skip


MAX_TIMED_POINTS = 64


def _stack_timer(cfg: Config, stacks: Sequence[StackResult], options: RunOptions) -> Callable[..., StackResult]:
    if len(stacks) > MAX_TIMED_POINTS:
        raise SpecError(
            "bench", True, f"{cfg.path} sweeps {len(stacks)} points, too many to time (at most "
            f"{MAX_TIMED_POINTS}); use --no-bench to count them",
        )  # fmt: skip
    for stack in stacks:
        needed = counting.stack_timing_bytes(stack, options.dtype)
        if needed > options.max_memory:
            raise _memory_error(options.max_memory, needed, options.dtype, f"{cfg.path} ")
    from dsconv_cli import timing

    settings = _settings(options)

    def run(stack: StackResult) -> StackResult:
        label = f"{stack.name} {report.point_label(stack.point)}".strip()
        with _progress(stderr_console(), timing.stack_steps(stack)) as step:
            return timing.time_stack(stack, settings, on_step=lambda what: step(f"{label}: timing {what}"))

    return run


def _stack_cross_check(stack: StackResult) -> list[str]:
    from dsconv_cli.crosscheck import verify_stack

    return [
        f"{stack.name}: cross-check {ch.stage} {ch.quantity}: dsconv {format_value(ch.analytic)} vs "
        f"{ch.source} {format_value(ch.reference)}"
        for ch in verify_stack(stack)
        if not ch.ok
    ]


def _failure_summary(results: Sequence[ConfigReport]) -> str:
    lines = [line for r in results for line in r.failures]
    more = f" (+{len(lines) - 1} more above)" if len(lines) > 1 else ""
    return f"{lines[0]}{more}"


# --- timing -------------------------------------------------------------------------------------


def _settings(options: RunOptions) -> Any:
    from dsconv_cli import timing

    device = timing.resolve_device(options.device)
    threads = options.threads if options.threads is not None else timing.default_threads()
    return timing.TimingSettings(device, options.dtype, threads, options.min_time)


def _memory_error(limit: int, needed: int, dtype: DType, what: str = "") -> MemoryLimitError:
    return MemoryLimitError(
        f"--max-memory {report.fmt_bytes(limit)}: timing {what}this layer needs about {report.fmt_bytes(needed)} "
        f"({dtype.value}); raise --max-memory, shrink --input-shape or use --no-bench"
    )


def _time_comparison(comparison: Comparison, options: RunOptions, axes: TimingAxes) -> Comparison:
    """Every timing case in turn; Ctrl-C keeps what was measured and marks the comparison interrupted."""
    cases = axes.cases(comparison.input_shape[0])
    if axes.channels_last and comparison.spec.rank == 1:
        raise SpecError("channels_last", True, "applies to 2-D and 3-D convs only; this one is 1-D")
    if axes.backward and comparison.spec.norm is Norm.BATCH:
        # training-mode BatchNorm needs more than one value per channel (batch x spatial positions)
        smallest = min(c.batch for c in cases)
        for stage in (*comparison.standard.stages, *comparison.separable.stages):
            if smallest * math.prod(stage.output_shape[2:]) < 2:
                raise SpecError(
                    "backward", True, f"trains BatchNorm, which needs more than one value per channel; the "
                    f"{stage.name} output {report.fmt_shape(stage.output_shape)} at batch {smallest} has one; "
                    "use a larger --batch or input, or --norm none",
                )  # fmt: skip
    widest = max(axes.dtypes, key=lambda d: d.itemsize)
    largest = counting.compare(comparison.spec, (max(c.batch for c in cases), *comparison.input_shape[1:]))
    # timing holds both variants and each stage; training also keeps activations and gradients
    needed = counting.timing_bytes(largest, widest) * (3 if axes.backward else 1)
    if needed > options.max_memory:
        raise _memory_error(options.max_memory, needed, widest)
    from dsconv_cli import timing

    settings = _settings(options)
    peaks = (
        tuple(_peaks(settings.device, d, t) for d in axes.dtypes for t in (axes.threads or (settings.threads,)))
        if axes.roofline
        else ()
    )
    rows: list[TimingRow] = []
    current: list[TimingRow] = []
    interrupted = False
    with _progress(stderr_console(), total=len(cases) * len(timing.TIMED)) as step:
        try:
            for case in cases:
                current.clear()
                rows.append(timing.time_case(comparison, case, settings, on_step=step, partial=_keep(current)))
        except KeyboardInterrupt:
            interrupted = True
            rows.extend(current)
    timed = replace(comparison, timings=tuple(rows), peaks=peaks, interrupted=interrupted)
    return counting.analyse_timings(timed)


def _keep(store: list[TimingRow]) -> Callable[[TimingRow], None]:
    def keep(row: TimingRow) -> None:
        store[:] = [row]

    return keep


def _peaks(device: str, dtype: DType, threads: int, refresh: bool = False) -> Peaks:
    """Cached peaks for this device, dtype and thread count; measured (and cached) when missing."""
    from dsconv_cli import cache, timing

    key = timing.peaks_key(device, dtype, threads)
    cached = None if refresh else cache.load_peaks(key)
    if cached is not None:
        return cached
    with _progress(stderr_console(), total=1) as step:
        step(f"measuring {device} peaks ({dtype.value}, {threads} threads); cached for next time")
        peaks = timing.measure_peaks(device, dtype, threads)
    try:
        cache.save_peaks(peaks)
    except OSError as exc:
        stderr_console().print(f"note: could not cache peaks in {cache.cache_file()}: {exc}", markup=False)
    return peaks


@contextmanager
def _progress(console: Console, total: int) -> Iterator[Callable[[str], None]]:
    """A transient Rich progress bar on stderr (silent when stderr is not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )  # fmt: skip
    task = progress.add_task("", total=total)
    started = False

    def step(description: str) -> None:
        nonlocal started
        if started:
            progress.advance(task)
        started = True
        progress.update(task, description=description)

    with progress:
        yield step


# --- output -------------------------------------------------------------------------------------


def _emit(rendered: render.Rendered, output: Path | None) -> None:
    if output is None:
        if isinstance(rendered, str):
            sys.stdout.write(rendered)
            sys.stdout.flush()
        else:
            console = stdout_console()
            for item in rendered:
                console.print(item)
        return
    if isinstance(rendered, list):
        buffer = io.StringIO()
        console = Console(file=buffer, width=120, no_color=True, highlight=False, force_terminal=False)
        for item in rendered:
            console.print(item)
        rendered = buffer.getvalue()
    write_atomic(output, rendered)
    stderr_console().print(f"wrote {output}", markup=False)


def _check_output_path(output: Path | None, field: str = "output") -> None:
    if output is None:
        return
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise SpecError(field, output, f"directory {parent} does not exist")
    if output.is_dir():
        raise SpecError(field, output, "is a directory; give a file path")
    if not os.access(parent, os.W_OK):
        raise SpecError(field, output, f"directory {parent} is not writable")


# --- peaks --------------------------------------------------------------------------------------


@app.command()
def peaks(
    device: DeviceOpt = Device.AUTO,
    dtype: DTypeOpt = DType.FLOAT32,
    threads: ThreadsOpt = None,
    refresh: Annotated[bool, typer.Option("--refresh", help="Measure again even when cached.")] = False,
    output_format: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Measure this machine's memory bandwidth and compute peak (cached per device, dtype and threads).

    Example: dsconv peaks --device cpu --dtype float32 --refresh
    """
    from dsconv_cli import cache, timing

    if threads is not None and threads < 1:
        raise SpecError("threads", threads, "must be a positive integer")
    if output_format is OutputFormat.CSV:
        raise SpecError("format", "csv", "peaks print as table, json or markdown")
    resolved = timing.resolve_device(device)
    n_threads = threads if threads is not None else timing.default_threads()
    key = timing.peaks_key(resolved, dtype, n_threads)
    was_cached = not refresh and cache.load_peaks(key) is not None
    result = _peaks(resolved, dtype, n_threads, refresh=refresh)
    where = str(cache.cache_file())
    if output_format is OutputFormat.JSON:
        doc = {"schema_version": report.SCHEMA_VERSION, "peaks": report.peaks_dict(result),
               "cached": was_cached, "cache_file": where}  # fmt: skip
        _emit(report.to_json(doc), None)
        return
    table = report.peaks_table(result, was_cached, where)
    if output_format is OutputFormat.MARKDOWN:
        _emit(report.markdown_table(*table) + "\n", None)
        return
    _emit([tables.rich_table(table, title="machine peaks")], None)


# --- schema -------------------------------------------------------------------------------------


@app.command()
def schema(output: OutputOpt = None) -> None:
    """Print the JSON Schema of config files, for editors that validate and complete YAML.

    Example: dsconv schema --output dsconv.schema.json
    """
    from dsconv_cli.config import json_schema

    _check_output_path(output)
    _emit(json.dumps(json_schema(), indent=2) + "\n", output)


# --- entry point --------------------------------------------------------------------------------


def error_line(message: str) -> None:
    """One ``error: ...`` line on stderr, never wrapped."""
    stderr_console().print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)


def usage_message(exc: typer.TyperException) -> str:
    """``--flag VALUE: why`` for a value Typer refused, else Typer's own message."""
    param = getattr(exc, "param", None)
    errors = getattr(exc.__cause__, "errors", None)
    if param is not None and callable(errors):
        details = errors()
        if details:
            flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
            reason = str(details[0]["msg"]).removeprefix("Value error, ")
            return f"{flag} {details[0].get('input')}: {reason}"
    return exc.format_message()


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (for ``main`` and tests)."""
    command = typer.main.get_command(app)
    try:
        result: Any = command.main(args=argv, prog_name="dsconv", standalone_mode=False)
    except ConfigError as exc:
        for message in exc.messages:
            error_line(message)
        return exc.exit_code
    except DsconvError as exc:
        error_line(str(exc))
        return exc.exit_code
    except typer.TyperException as exc:  # Click usage errors: bad choices, malformed numbers, unknown flags
        error_line(usage_message(exc))
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        error_line("aborted")
        return 130
    if result == 130:  # Typer's answer to Ctrl-C outside the timing loops, which report their own
        error_line("interrupted by Ctrl-C")
    return result if isinstance(result, int) else 0


def main() -> NoReturn:
    """Console-script entry point."""
    sys.exit(run())
