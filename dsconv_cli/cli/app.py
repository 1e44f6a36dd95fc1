"""The ``dsconv`` command line: parse, call the core, render, map errors to exit codes.

Only this module and ``streams.py`` print; only this one exits. torch is imported inside the code paths
that need it, so ``dsconv --help`` and ``dsconv compare --no-bench`` start without it.
"""

from __future__ import annotations

import glob
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from dsconv_cli.cli import options as opt
from dsconv_cli.cli import streams
from dsconv_cli.core.parse import (
    parse_dtypes,
    parse_input_shape,
    parse_ints,
    parse_kwargs,
    parse_positive_list,
    parse_size,
)
from dsconv_cli.core.spec import (
    DEFAULT_MAX_LAYERS,
    DEFAULT_MAX_POINTS,
    LAYER_FIELDS,
    Conversion,
    Device,
    DType,
    OutputFormat,
    model_inputs,
    parse_input_kw,
    parse_model_columns,
)
from dsconv_cli.errors import CheckFailed, ConfigError, DsconvError, Interrupted, PipeClosed, SpecError, TargetError
from dsconv_cli.files import check_distinct, check_output_path
from dsconv_cli.version import __version__

if TYPE_CHECKING:
    from dsconv_cli.run import options as runopts

EXIT_CODES_HELP = "Exit codes: 0 ok, 1 a requested check failed, 2 bad input, 3 environment."

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    help="What does this conv layer cost, and what would a depthwise-separable one cost instead?\n\n" + EXIT_CODES_HELP,
)


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


@app.command()
@opt.with_layer_options
def compare(
    *,
    input_shape: opt.InputShapeOpt = None,
    batch: opt.BatchOpt = None,
    config_file: opt.ConfigOpt = None,
    plot: opt.PlotOpt = None,
    output_format: opt.FormatOpt = OutputFormat.TABLE,
    output: opt.OutputOpt = None,
    verify: opt.VerifyOpt = False,
    bench: opt.BenchOpt = True,
    device: opt.DeviceOpt = Device.AUTO,
    dtype: opt.DTypeListOpt = "float32",
    channels_last: opt.ChannelsLastOpt = False,
    compile_: opt.CompileOpt = False,
    backward: opt.BackwardOpt = False,
    roofline: opt.RooflineOpt = True,
    threads: opt.ThreadsListOpt = None,
    min_time: opt.MinTimeOpt = 0.5,
    rounds: opt.RoundsOpt = 3,
    max_memory: opt.MaxMemoryOpt = "2GiB",
    baseline: opt.BaselineOpt = None,
    max_increase: opt.MaxIncreaseOpt = None,
    baseline_missing: opt.BaselineMissingOpt = "error",
    max_points: opt.MaxPointsOpt = DEFAULT_MAX_POINTS,
    max_layers: opt.MaxLayersOpt = DEFAULT_MAX_LAYERS,
    strict_timing: opt.StrictTimingOpt = False,
    show_work: opt.ShowWorkOpt = False,
    diagram: opt.DiagramOpt = None,
    trust_model_code: opt.TrustModelCodeOpt = False,
    **layer_flags: Any,
) -> None:
    """Count and time a conv layer against its depthwise-separable pair.

    Example: dsconv compare -i 64 -o 128 -k 5 --stride 2 --input-shape 8,64,56,56
    """  # fmt: skip
    from dsconv_cli.present import render
    from dsconv_cli.run import compare as run_compare
    from dsconv_cli.run import options as runopts

    dtypes = parse_dtypes(dtype)
    batches = parse_positive_list("batch", batch)
    thread_counts = parse_positive_list("threads", threads)
    output_path = check_output_path(output)
    diagram_path = _check_work_flags(show_work, diagram, output_format, config_file)
    check_distinct({"output": output_path, "plot": check_output_path(plot, "plot"), "diagram": diagram_path})
    options = run_options(
        verify=verify, bench=bench, device=device, dtype=dtypes[0], threads=thread_counts[0] if thread_counts else None,
        min_time=min_time, max_memory=max_memory, baseline=baseline, max_increase=max_increase, max_points=max_points,
        max_layers=max_layers, rounds=rounds, strict_timing=strict_timing, baseline_missing=baseline_missing,
        trust_model_code=trust_model_code,
    )  # fmt: skip
    layer = run_compare.parse_layer_text(layer_flags)
    shape = parse_input_shape(input_shape, batches[0] if batches else None)
    axes = runopts.TimingAxes(batches, dtypes, channels_last, compile_, backward, roofline, thread_counts)
    if config_file is not None:
        axes.single_for_configs()
        _compare_config(config_file, layer, shape, batches[0] if batches else None, plot, options, output_format,
                        output_path, show_work)  # fmt: skip
        return
    if plot is not None:
        raise SpecError("plot", plot, "draws a sweep; give a --config file with a sweep")
    if options.baseline is not None:
        raise SpecError("baseline", options.baseline, "compares config totals; give a --config file")
    comparison = run_compare.compare_layer(layer, shape, options, axes)
    streams.emit(render.render_comparisons([comparison], output_format, show_work), output_path)
    if diagram_path is not None:
        from dsconv_cli.core.working import comparison_work
        from dsconv_cli.present import diagram as drawing

        drawing.write_diagram(comparison, comparison_work(comparison), diagram_path)
        streams.stderr_console().print(f"wrote {diagram_path}", markup=False)
    if comparison.interrupted:
        raise Interrupted("interrupted by Ctrl-C; the timings measured before it are shown")
    if (failure := run_compare.check_failures(comparison)) is not None:
        raise CheckFailed(failure)
    if (failure := runopts.strict_timing_failure(comparison.conditions, options, "compare")) is not None:
        raise CheckFailed(failure)


def _check_work_flags(show_work: bool, diagram: str | None, output_format: OutputFormat,
                      config_file: Path | None) -> Path | None:  # fmt: skip
    """Refuse ``--show-work`` with CSV and ``--diagram`` with a config, or a diagram path that cannot be written,
    before any work; the diagram's path."""
    from dsconv_cli.present import diagram as drawing

    if show_work and output_format is OutputFormat.CSV:
        raise SpecError("format", "csv", "has no column for --show-work; use table, markdown or json")
    path = check_output_path(diagram, "diagram")
    if path is not None:
        if config_file is not None:
            raise SpecError("diagram", diagram, "draws one layer; give it without --config")
        drawing.check_target(path)
    return path


def run_options(*, max_memory: str, baseline_missing: str = "error", **fields: Any) -> runopts.RunOptions:
    """Checked run options, with a progress bar and notes on stderr."""
    from dsconv_cli.run import options as runopts

    if baseline_missing not in ("error", "ok"):
        raise SpecError("baseline_missing", baseline_missing, "is error (the default) or ok")
    options = runopts.RunOptions(max_memory=parse_size("max_memory", max_memory),
                                baseline_missing_ok=baseline_missing == "ok", **fields, **_on_stderr())  # fmt: skip
    options.check()
    return options


def _on_stderr() -> dict[str, Any]:
    """The runner's callbacks for a terminal: a progress bar and note lines on stderr."""
    from dsconv_cli.present import render

    return {
        "progress": lambda total: render.progress_bar(streams.stderr_console(), total),
        "note": lambda line: streams.stderr_console().print(line, markup=False, soft_wrap=True),
    }


def _compare_config(
    path: Path, layer: dict[str, Any], shape: tuple[int, ...] | None, batch: int | None, plot: str | None,
    options: runopts.RunOptions, output_format: OutputFormat, output: Path | None, show_work: bool = False,
) -> None:  # fmt: skip
    from dsconv_cli.core import config as config_module
    from dsconv_cli.present import plot as plot_module
    from dsconv_cli.present import render
    from dsconv_cli.run import configs as run_configs

    plot_path = check_output_path(plot, "plot")
    if plot_path is not None:
        plot_module.check_target(plot_path)
    cfg = config_module.load(path, options.max_layers)
    if plot_path is not None and not cfg.sweep:
        raise SpecError("plot", plot, f"draws a sweep, and {path} has no sweep")
    result = run_configs.compare_config(cfg, layer, shape, batch, options)
    if plot_path is not None:
        plot_module.plot_sweep(plot_path, result.name, result.stacks, list(result.sweep))
        streams.stderr_console().print(f"wrote {plot_path}", markup=False)
    streams.emit(render.render_configs([result], output_format, options.max_increase, show_work), output)
    if result.interrupted:
        raise Interrupted("interrupted by Ctrl-C; the counts and the timings measured before it are shown")
    if not result.ok:
        raise CheckFailed(run_configs.failure_summary([result]))


# --- report -------------------------------------------------------------------------------------


@app.command("report")
def report_command(
    files: Annotated[list[str], typer.Argument(help="Config files; globs such as 'configs/*.yaml' welcome.")],
    output_format: opt.FormatOpt = OutputFormat.TABLE,
    output: opt.OutputOpt = None,
    verify: opt.VerifyOpt = False,
    bench: opt.ReportBenchOpt = None,
    device: opt.DeviceOpt = Device.AUTO,
    dtype: opt.DTypeOpt = DType.FLOAT32,
    threads: opt.ThreadsOpt = None,
    min_time: opt.MinTimeOpt = 0.5,
    rounds: opt.RoundsOpt = 3,
    max_memory: opt.MaxMemoryOpt = "2GiB",
    baseline: opt.BaselineOpt = None,
    max_increase: opt.MaxIncreaseOpt = None,
    baseline_missing: opt.BaselineMissingOpt = "error",
    max_points: opt.MaxPointsOpt = DEFAULT_MAX_POINTS,
    max_layers: opt.MaxLayersOpt = DEFAULT_MAX_LAYERS,
    strict_timing: opt.StrictTimingOpt = False,
    show_work: opt.ShowWorkOpt = False,
    trust_model_code: opt.TrustModelCodeOpt = False,
) -> None:
    """Run many config files for CI: each one's tables and budgets, then one summary.

    Example: dsconv report configs/*.yaml --format markdown
    """
    from dsconv_cli.present import render
    from dsconv_cli.run import configs as run_configs

    output_path = check_output_path(output)
    _check_work_flags(show_work, None, output_format, None)
    options = run_options(
        verify=verify, bench=bench is True, device=device, dtype=dtype, threads=threads, min_time=min_time,
        max_memory=max_memory, baseline=baseline, max_increase=max_increase, max_points=max_points, rounds=rounds,
        max_layers=max_layers, strict_timing=strict_timing, baseline_missing=baseline_missing,
        trust_model_code=trust_model_code, bench_latency_budgets=bench is None,
    )  # fmt: skip
    paths = _expand(files)
    results, broken, interrupted = run_configs.run_config_files(paths, options)
    if results:
        streams.emit(render.render_configs(results, output_format, options.max_increase, show_work), output_path)
    for message in broken if len(broken) > 1 or interrupted else ():
        streams.error_line(message)
    if interrupted:
        raise Interrupted(f"interrupted by Ctrl-C: {len(results)} of {len(paths)} config(s) shown, with what was "
                          "measured before it")  # fmt: skip
    if len(broken) == 1:  # one line says it all
        raise ConfigError(broken[0])
    if broken:
        raise ConfigError(f"{len(broken)} problem(s) in the config files above; nothing was checked for them")
    if any(not r.ok for r in results):
        raise CheckFailed(run_configs.failure_summary(results))
    streams.stderr_console().print(f"{len(results)} config(s) passed", markup=False)


def _expand(patterns: Sequence[str]) -> list[str]:
    """Each argument as given when a file of that exact name exists (``a[1].yaml``), else the files its
    glob matches (sorted)."""
    paths: list[str] = []
    for pattern in patterns:
        globbed = any(c in pattern for c in "*?[") and not Path(pattern).exists()
        matches = sorted(glob.glob(pattern)) if globbed else []
        paths.extend(matches or [pattern])
    return paths


# --- analyze ------------------------------------------------------------------------------------


@app.command()
def analyze(
    target: opt.TargetArg,
    input_shape: opt.ModelInputsOpt = None,
    input_dtype: opt.InputDTypeOpt = None,
    input_kw: opt.InputKwOpt = None,
    example_inputs: opt.ExampleInputsOpt = None,
    vocab: opt.VocabOpt = None,
    kwargs: opt.KwargsOpt = None,
    depth: opt.DepthOpt = None,
    columns: opt.ColumnsOpt = None,
    by_op: opt.ByOpOpt = False,
    convert: opt.ConvertOpt = None,
    weights: opt.WeightsOpt = None,
    weights_key: opt.WeightsKeyOpt = None,
    init: opt.InitOpt = "svd",
    multiplier: opt.MultiplierOpt = "1",
    calibrate: opt.CalibrateOpt = None,
    refit: opt.RefitOpt = False,
    save: opt.SaveOpt = None,
    save_state_dict: opt.SaveStateDictOpt = None,
    emit_config: opt.EmitConfigOpt = None,
    output_format: opt.FormatOpt = OutputFormat.TABLE,
    output: opt.OutputOpt = None,
    verify: opt.VerifyOpt = False,
    bench: opt.BenchOpt = False,
    device: opt.DeviceOpt = Device.AUTO,
    dtype: opt.DTypeOpt = DType.FLOAT32,
    threads: opt.ThreadsOpt = None,
    min_time: opt.MinTimeOpt = 0.5,
    rounds: opt.RoundsOpt = 3,
    max_memory: opt.MaxMemoryOpt = "2GiB",
    channels_last: opt.ChannelsLastOpt = False,
    compile_: opt.CompileOpt = False,
    strict_timing: opt.StrictTimingOpt = False,
    show_work: opt.ShowWorkOpt = False,
    debug: opt.DebugOpt = False,
) -> None:
    """Count any PyTorch model layer by layer and say which convs are worth making depthwise-separable.

    Importing TARGET runs its code, as pytest does with test files.

    Example: dsconv analyze torchvision.models:mobilenet_v2 --input-shape 1,3,224,224 --convert top:3

    A language model: --input-shape 1,128 --input-dtype int64 --input-kw attention_mask=1,128:bool
    """
    from dsconv_cli.present import export, render
    from dsconv_cli.run import options as runopts
    from dsconv_cli.run.analyze import analyze_model, save_converted

    output_path = check_output_path(output)
    _check_work_flags(show_work, None, output_format, None)
    emit_path = check_output_path(emit_config, "emit_config")
    save_path = check_output_path(save, "save")
    state_path = check_output_path(save_state_dict, "save_state_dict")
    if (save_path or state_path) and convert is None:
        raise SpecError("save" if save_path else "save_state_dict", save_path or state_path,
                        "writes a converted model; give --convert RULE too")  # fmt: skip
    conversion = Conversion(init, int(multiplier) if multiplier.isdigit() else multiplier, calibrate, refit, weights,
                            weights_key)  # fmt: skip
    if depth is not None and depth < 0:
        raise SpecError("depth", depth, "must be 0 (the model alone) or more")
    inputs = model_inputs([parse_ints("input_shape", text) for text in input_shape or ()], input_dtype or (),
                          [parse_input_kw(text) for text in input_kw or ()], example_inputs, vocab)  # fmt: skip
    shown_columns = parse_model_columns(columns)
    check_distinct({"output": output_path, "emit_config": emit_path, "save": save_path,
                    "save_state_dict": state_path})  # fmt: skip
    options = run_options(verify=verify, bench=bench, device=device, dtype=dtype, threads=threads,
                          min_time=min_time, max_memory=max_memory, rounds=rounds,
                          strict_timing=strict_timing)  # fmt: skip
    try:
        result = analyze_model(target, inputs, options, kwargs=parse_kwargs(kwargs), convert_rule=convert,
                               show_work=show_work,
                               conversion=conversion, channels_last=channels_last, compiled=compile_)  # fmt: skip
    except TargetError:
        if debug:
            import traceback

            traceback.print_exc()
        raise
    streams.emit(render.render_model(result, output_format, depth, shown_columns, by_op), output_path)
    if emit_path is not None and result.candidates:
        streams.write(emit_path, export.candidates_config(result))
        streams.stderr_console().print(f"wrote {emit_path}: {len(result.candidates)} candidate(s)", markup=False)
    elif emit_path is not None:
        streams.stderr_console().print(f"note: no conversion candidates, so {emit_path} was not written", markup=False)
    for path, as_state_dict in ((save_path, False), (state_path, True)):
        if path is not None:
            save_converted(result, str(path), state_dict=as_state_dict)
            for line in render.saved_lines(result, str(path), as_state_dict):
                streams.stderr_console().print(line, markup=False, soft_wrap=True)
    if (failure := runopts.strict_timing_failure(result.conditions, options, "analyze")) is not None:
        raise CheckFailed(failure)
    if result.interrupted:
        raise Interrupted("interrupted by Ctrl-C; the counts and the timings measured before it are shown")
    if result.failed_checks:
        what, ours, theirs = result.failed_checks[0]
        raise CheckFailed(f"cross-check failed: {len(result.failed_checks)} disagreement(s); first: {what}: dsconv "
                          f"{ours:,} vs {theirs:,}")  # fmt: skip


# --- output -------------------------------------------------------------------------------------


# --- peaks --------------------------------------------------------------------------------------


@app.command()
def peaks(
    device: opt.DeviceOpt = Device.AUTO,
    dtype: opt.DTypeOpt = DType.FLOAT32,
    threads: opt.ThreadsOpt = None,
    refresh: opt.RefreshOpt = False,
    check: opt.CheckPeaksOpt = False,
    output_format: opt.FormatOpt = OutputFormat.TABLE,
) -> None:
    """Measure this machine's memory bandwidth and compute peak (cached per device, dtype and threads).

    Example: dsconv peaks --device cpu --dtype float32 --refresh
    """
    from dsconv_cli.core import cache
    from dsconv_cli.present import render
    from dsconv_cli.run import options as runopts
    from dsconv_cli.run import peaks as run_peaks

    if output_format is OutputFormat.CSV:
        raise SpecError("format", "csv", "peaks print as table, json or markdown")
    if threads is not None:
        runopts.check_threads(threads)
    if check:
        before, now = run_peaks.check_peaks(device, dtype, threads, runopts.RunOptions(**_on_stderr()))
        streams.emit(render.render_peaks_check(before, now, output_format), None)
        return
    result, cached = run_peaks.peaks_and_source(device, dtype, threads, refresh, runopts.RunOptions(**_on_stderr()))
    streams.emit(render.render_peaks(result, cached, str(cache.cache_file()), output_format), None)


# --- schema -------------------------------------------------------------------------------------


@app.command()
def schema(output: opt.OutputOpt = None) -> None:
    """Print the JSON Schema of config files, for editors that validate and complete YAML.

    Example: dsconv schema --output dsconv.schema.json
    """
    from dsconv_cli.core.config import json_schema

    streams.emit(json.dumps(json_schema(), indent=2) + "\n", check_output_path(output))


# --- entry point --------------------------------------------------------------------------------


def usage_message(exc: typer.TyperException) -> str:
    """``--flag VALUE: why`` for a value Typer refused, else Typer's own message."""
    param = getattr(exc, "param", None)
    errors = getattr(exc.__cause__, "errors", None)
    if param is not None and callable(errors):
        details = errors()
        if details:
            flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
            value = details[0].get("input")
            if isinstance(value, str) and "," in value and param.name in LAYER_FIELD_NAMES:
                listed = ", ".join(v.strip() for v in value.split(","))
                return (f"{flag} {value}: takes one value; lists of layers are what sweep configs are for, e.g.\n"
                        f"  layers: [{{out_channels: 32}}]\n  sweep: {{{param.name}: [{listed}]}}")  # fmt: skip
            reason = str(details[0]["msg"]).removeprefix("Value error, ")
            return f"{flag} {value}: {reason}"
    return exc.format_message()


LAYER_FIELD_NAMES = frozenset(f.name for f in LAYER_FIELDS)


def coerce_only_given_values() -> None:
    """Typer builds a pydantic adapter for every option of a command on every run, given or not: 0.13 s of
    ``compare``'s start-up, and the import of pydantic. An option left at its default (``None``, or the
    declared default object itself) has nothing to coerce, so only given values go through the adapter."""
    from typer import core

    parameter: Any = getattr(core, "_TyperParameter", None)
    if parameter is None or getattr(parameter, "dsconv_coerces_given_only", False):
        return
    coerce = parameter.process_value

    def process_value(self: Any, ctx: Any, value: Any) -> Any:
        if (value is None or value is self.default) and not self.required:
            return value if self.callback is None else self.callback(ctx, self, value)
        return coerce(self, ctx, value)

    parameter.process_value = process_value
    parameter.dsconv_coerces_given_only = True


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code (for ``main`` and tests)."""
    coerce_only_given_values()
    command = typer.main.get_command(app)
    streams.ascii_fallback()
    try:
        result: Any = command.main(args=argv, prog_name="dsconv", standalone_mode=False)
    except PipeClosed as exc:  # the reader went away (``| head -1``): stop quietly, as git and yes do
        streams.silence_stdout()
        return exc.exit_code
    except ConfigError as exc:
        for message in exc.messages:
            streams.error_line(message)
        return exc.exit_code
    except DsconvError as exc:
        streams.error_line(str(exc))
        return exc.exit_code
    except typer.TyperException as exc:  # Click usage errors: bad choices, malformed numbers, unknown flags
        streams.error_line(usage_message(exc))
        return int(getattr(exc, "exit_code", 2))
    except typer.Abort:
        streams.error_line("aborted")
        return 130
    except SystemExit as exc:
        if isinstance(exc.__context__, BrokenPipeError):  # help printed into a pipe its reader closed (| head -1)
            streams.silence_stdout()
            return 0
        raise
    if result == 130:  # Typer's answer to Ctrl-C outside the timing loops, which report their own
        streams.error_line("interrupted by Ctrl-C")
    return result if isinstance(result, int) else 0


def main() -> NoReturn:
    """Console-script entry point."""
    code = run()
    try:
        if sys.stdout is not None:
            sys.stdout.flush()  # what is still buffered (--version) meets a closed pipe here, not at exit
    except (BrokenPipeError, ValueError):
        streams.silence_stdout()
    sys.exit(code)
