"""The ``dsconv`` command line: parse, call the core, render, map errors to exit codes.

Only this module prints or exits. torch is imported inside the code paths that need it, so
``dsconv --help`` and ``dsconv compare --no-bench`` start without it.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console, RenderableType

from dsconv_cli import __version__, counting, report, tables
from dsconv_cli.errors import CheckFailed, DsconvError, MemoryLimitError, SpecError, format_value
from dsconv_cli.spec import (
    DEFAULT_IN_CHANNELS,
    DEFAULT_OUT_CHANNELS,
    Activation,
    Comparison,
    Device,
    DType,
    Norm,
    OutputFormat,
    Placement,
    default_input_shape,
    infer_rank,
    parse_ints,
    parse_padding,
    parse_size,
    resolve_spec,
    validate_input_shape,
)

EXIT_CODES_HELP = "Exit codes: 0 ok, 1 a requested check failed, 2 bad input, 3 environment."

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="What does this conv layer cost, and what would a depthwise-separable one cost instead?\n\n"
    + EXIT_CODES_HELP,
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


# --- compare ------------------------------------------------------------------------------------

LAYER = "Layer"
INPUT = "Input"
OUTPUT = "Output"
TIMING = "Timing"


@app.command()
def compare(
    in_channels: Annotated[
        int | None,
        typer.Option(
            "--in-channels",
            "-i",
            help="Input channels [default: from --input-shape, else 16].",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    out_channels: Annotated[
        int, typer.Option("--out-channels", "-o", help="Output channels.", rich_help_panel=LAYER)
    ] = DEFAULT_OUT_CHANNELS,
    kernel_size: Annotated[
        str,
        typer.Option(
            "--kernel-size", "-k", help="Kernel: 3 or 3,5 (one per spatial dim).", rich_help_panel=LAYER
        ),
    ] = "3",
    stride: Annotated[str, typer.Option(help="Stride: 1 or 1,2.", rich_help_panel=LAYER)] = "1",
    padding: Annotated[
        str | None,
        typer.Option(
            help="Padding: 1, 0,1, same or valid [default: dilation·(k−1)//2, size-keeping at stride 1].",
            rich_help_panel=LAYER,
            show_default=False,
        ),
    ] = None,
    dilation: Annotated[str, typer.Option(help="Dilation: 1 or 2,1.", rich_help_panel=LAYER)] = "1",
    groups: Annotated[int, typer.Option(help="Groups of the standard conv.", rich_help_panel=LAYER)] = 1,
    multiplier: Annotated[
        int, typer.Option(help="Depth multiplier of the depthwise stage.", rich_help_panel=LAYER)
    ] = 1,
    bias: Annotated[
        bool, typer.Option("--bias/--no-bias", help="Bias on every conv.", rich_help_panel=LAYER)
    ] = False,
    transposed: Annotated[
        bool, typer.Option("--transposed", help="Transposed convs (ConvTranspose*d).", rich_help_panel=LAYER)
    ] = False,
    output_padding: Annotated[
        str, typer.Option(help="Output padding of transposed convs: 0 or 0,1.", rich_help_panel=LAYER)
    ] = "0",
    norm: Annotated[Norm, typer.Option(help="Normalisation after convs.", rich_help_panel=LAYER)] = Norm.NONE,
    act: Annotated[Activation, typer.Option(help="Activation after convs.", rich_help_panel=LAYER)] = (
        Activation.NONE
    ),
    placement: Annotated[
        Placement,
        typer.Option(
            help="classic: dw → pw → norm → act; mobilenet: norm + act after each stage.",
            rich_help_panel=LAYER,
        ),
    ] = Placement.CLASSIC,
    input_shape: Annotated[
        str | None,
        typer.Option(
            "--input-shape",
            help="N,C,*spatial, e.g. 1,16,50,129 (rank 1-3) [default: 1,C,50,129 for 2-D].",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    batch: Annotated[
        int | None,
        typer.Option(help="Override N of the input shape.", rich_help_panel=INPUT, show_default=False),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.", rich_help_panel=OUTPUT)
    ] = OutputFormat.TABLE,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Write to FILE (atomically) instead of stdout.",
            rich_help_panel=OUTPUT,
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Cross-check every count against PyTorch and fvcore; exit 1 on any disagreement.",
            rich_help_panel=OUTPUT,
        ),
    ] = False,
    bench: Annotated[
        bool, typer.Option("--bench/--no-bench", help="Time both variants.", rich_help_panel=TIMING)
    ] = True,
    device: Annotated[Device, typer.Option(help="auto = cuda when present.", rich_help_panel=TIMING)] = (
        Device.AUTO
    ),
    dtype: Annotated[DType, typer.Option(help="Timing dtype.", rich_help_panel=TIMING)] = DType.FLOAT32,
    threads: Annotated[
        int | None,
        typer.Option(
            help="Intra-op threads [default: PyTorch's own].", rich_help_panel=TIMING, show_default=False
        ),
    ] = None,
    min_time: Annotated[
        float, typer.Option("--min-time", help="Seconds of timed runs per variant.", rich_help_panel=TIMING)
    ] = 0.5,
    max_memory: Annotated[
        str,
        typer.Option(
            "--max-memory",
            help="Refuse to time if the tensors would need more than this.",
            rich_help_panel=TIMING,
        ),
    ] = "2GiB",
) -> None:
    """Count and time a conv layer against its depthwise-separable pair.

    Example: dsconv compare -i 64 -o 128 -k 5 --stride 2 --input-shape 8,64,56,56
    """
    comparison = _comparison_from_flags(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernel_size,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        multiplier=multiplier,
        bias=bias,
        transposed=transposed,
        output_padding=output_padding,
        norm=norm,
        act=act,
        placement=placement,
        input_shape=input_shape,
        batch=batch,
    )
    _check_output_path(output)
    if min_time <= 0:
        raise SpecError("min_time", min_time, "must be a positive number of seconds")
    if threads is not None and threads < 1:
        raise SpecError("threads", threads, "must be a positive integer")
    limit = parse_size("max_memory", max_memory)
    if verify:
        from dsconv_cli.crosscheck import verify as run_verify

        comparison = replace(comparison, checks=run_verify(comparison))
    if bench:
        comparison = _timed(comparison, device, dtype, threads, min_time, limit)
    _emit([comparison], output_format, output)
    failed = [ch for ch in comparison.checks if not ch.ok]
    if failed:
        first = failed[0]
        raise CheckFailed(
            f"cross-check failed: {len(failed)} disagreement(s); first: {first.stage} {first.quantity} "
            f"dsconv {format_value(first.analytic)} vs {first.source} "
            f"{format_value(first.reference)}"
        )


def _comparison_from_flags(
    *,
    in_channels: int | None,
    out_channels: int,
    kernel_size: str,
    stride: str,
    padding: str | None,
    dilation: str,
    groups: int,
    multiplier: int,
    bias: bool,
    transposed: bool,
    output_padding: str,
    norm: Norm,
    act: Activation,
    placement: Placement,
    input_shape: str | None,
    batch: int | None,
) -> Comparison:
    k = parse_ints("kernel_size", kernel_size)
    s = parse_ints("stride", stride)
    d = parse_ints("dilation", dilation)
    op = parse_ints("output_padding", output_padding)
    pad = parse_padding(padding) if padding is not None else None
    if batch is not None and batch < 1:
        raise SpecError("batch", batch, "must be a positive integer")
    notes: list[str] = []
    shape: tuple[int, ...] | None = None
    if input_shape is not None:
        shape = parse_ints("input_shape", input_shape)
        validate_input_shape(shape)
        if batch is not None:
            shape = (batch, *shape[1:])
    rank = infer_rank(shape, k, s, d, op, pad)
    channels = in_channels if in_channels is not None else (shape[1] if shape else DEFAULT_IN_CHANNELS)
    spec = resolve_spec(
        rank=rank,
        in_channels=channels,
        out_channels=out_channels,
        kernel_size=k,
        stride=s,
        padding=pad,
        dilation=d,
        groups=groups,
        multiplier=multiplier,
        bias=bias,
        transposed=transposed,
        output_padding=op,
        norm=norm,
        act=act,
        placement=placement,
    )
    if shape is None:
        shape = default_input_shape(rank, channels, batch or 1)
        default = report.fmt_shape(shape)
        notes.append(f"default {rank}-D input shape {default}; set --input-shape to change it")
    return counting.compare(spec, shape, notes)


def _timed(
    comparison: Comparison, device: Device, dtype: DType, threads: int | None, min_time: float, limit: int
) -> Comparison:
    needed = counting.timing_bytes(comparison, dtype)
    if needed > limit:
        raise MemoryLimitError(
            f"--max-memory {_fmt_bytes(limit)}: timing this layer needs about {_fmt_bytes(needed)} "
            f"({dtype.value}); raise --max-memory, shrink --input-shape or use --no-bench"
        )
    from dsconv_cli import timing

    resolved = timing.resolve_device(device)
    n_threads = threads if threads is not None else timing.default_threads()
    err = stderr_console()
    with _progress(err, total=2) as step:
        latency = timing.time_comparison(
            comparison,
            device=resolved,
            dtype=dtype,
            threads=n_threads,
            min_time=min_time,
            on_variant=lambda name: step(f"timing {name} on {resolved} ({dtype.value})"),
        )
    return replace(comparison, latency=latency)


class _progress:
    """A transient Rich progress bar on stderr (silent when stderr is not a terminal)."""

    def __init__(self, console: Console, total: int) -> None:
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self._task = self._progress.add_task("", total=total)
        self._started = False

    def __enter__(self) -> Callable[[str], None]:
        self._progress.start()
        return self._step

    def _step(self, description: str) -> None:
        if self._started:
            self._progress.advance(self._task)
        self._started = True
        self._progress.update(self._task, description=description)

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def _fmt_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# --- output -------------------------------------------------------------------------------------


def _render(comparisons: Sequence[Comparison], fmt: OutputFormat) -> str | list[RenderableType]:
    if fmt is OutputFormat.JSON:
        return report.to_json(report.document([report.comparison_dict(c) for c in comparisons]))
    if fmt is OutputFormat.CSV:
        return report.to_csv([row for c in comparisons for row in report.stage_rows(c)])
    if fmt is OutputFormat.MARKDOWN:
        return "\n".join(report.comparison_markdown(c) for c in comparisons)
    return [
        tables.comparison_view(
            report.describe(c),
            report.stage_rows(c),
            report.summary_lines(c),
            report.checks_table(c.checks) if c.checks else None,
        )
        for c in comparisons
    ]


def _emit(comparisons: Sequence[Comparison], fmt: OutputFormat, output: Path | None) -> None:
    rendered = _render(comparisons, fmt)
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


def _check_output_path(output: Path | None) -> None:
    if output is None:
        return
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise SpecError("output", output, f"directory {parent} does not exist")
    if output.is_dir():
        raise SpecError("output", output, "is a directory; give a file path")
    if not os.access(parent, os.W_OK):
        raise SpecError("output", output, f"directory {parent} is not writable")


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename: never a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- entry point ---------------------------------------------------------------------------------


def error_line(message: str) -> None:
    """One ``error: ...`` line on stderr, never wrapped."""
    stderr_console().print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)


def usage_message(exc: typer.TyperException) -> str:
    """``--flag VALUE: why`` for a value Typer refused, else Typer's own message."""
    param = getattr(exc, "param", None)
    cause = exc.__cause__
    errors = getattr(cause, "errors", None)
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
    except DsconvError as exc:
        error_line(str(exc))
        return exc.exit_code
    except typer.TyperException as exc:  # Click usage errors: bad choices, malformed numbers, unknown flags
        error_line(usage_message(exc))
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        error_line("aborted")
        return 130
    return result if isinstance(result, int) else 0


def main() -> NoReturn:
    """Console-script entry point."""
    sys.exit(run())
