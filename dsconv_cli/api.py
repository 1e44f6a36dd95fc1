"""The Python API: each call does what the command of the same name does and returns its result records.

    >>> import dsconv_cli as dsconv
    >>> r = dsconv.compare(in_channels=16, out_channels=32, kernel_size=3, input_shape=(1, 16, 50, 129), bench=False)
    >>> r.standard.params, r.separable.params
    (4608, 656)

Keyword names are the long flags of the command in snake_case; values may be Python values (``3``,
``(3, 5)``, ``"same"``) or the flags' text (``"3,5"``). Errors are ``DsconvError`` subclasses whose
``exit_code`` is the command's. torch is imported only when timing or cross-checking needs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsconv_cli.core.parse import parse_dtypes, parse_input_shape, parse_positive_list, parse_size
from dsconv_cli.core.spec import (
    DEFAULT_MAX_LAYERS,
    DEFAULT_MAX_POINTS,
    SPATIAL_FIELDS,
    Activation,
    Device,
    DType,
    Norm,
    Placement,
)
from dsconv_cli.run import compare as run_compare
from dsconv_cli.run import configs as run_configs
from dsconv_cli.run import options as run_options

if TYPE_CHECKING:
    from dsconv_cli.core.config import Config
    from dsconv_cli.core.results import Comparison, ConfigReport, ModelAnalysis
    from dsconv_cli.pt.convert import ConversionResult

IntOrSeq = int | Sequence[int] | str


def _text(value: IntOrSeq | None) -> str | None:
    """Python values to the flags' text, so one parser (and one set of error messages) serves both."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError(f"expected an integer or a sequence of integers, got {value!r}")
    return str(value) if isinstance(value, int) else ",".join(str(int(v)) for v in value)


def _layer(**values: Any) -> dict[str, Any]:
    return run_compare.parse_layer_text({k: _text(v) if k in SPATIAL_FIELDS else v for k, v in values.items()})


def compare(
    *,
    in_channels: int | None = None,
    out_channels: int | None = None,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: IntOrSeq | None = None,
    dilation: IntOrSeq | None = None,
    groups: int | None = None,
    multiplier: int | None = None,
    bias: bool | None = None,
    depthwise_bias: bool | None = None,
    transposed: bool | None = None,
    output_padding: IntOrSeq | None = None,
    norm: Norm | str | None = None,
    act: Activation | str | None = None,
    placement: Placement | str | None = None,
    act_after: str | None = None,
    slopes: str | int | None = None,
    input_shape: IntOrSeq | None = None,
    batch: IntOrSeq | None = None,
    verify: bool = False,
    bench: bool = True,
    device: Device | str = Device.AUTO,
    dtype: DType | str | Sequence[DType | str] = DType.FLOAT32,
    channels_last: bool = False,
    compile: bool = False,
    backward: bool = False,
    roofline: bool = True,
    threads: IntOrSeq | None = None,
    min_time: float = 0.5,
    rounds: int = 3,
    max_memory: int | str = "2GiB",
) -> Comparison:
    """Count (and with ``bench`` time) a conv layer against its depthwise-separable pair, as ``dsconv compare``."""
    dtypes = parse_dtypes(dtype if isinstance(dtype, str) else ",".join(DType(d).value for d in dtype))
    batches = parse_positive_list("batch", _text(batch))
    thread_counts = parse_positive_list("threads", _text(threads))
    options = run_options.RunOptions(
        verify=verify, bench=bench, device=Device(device), dtype=dtypes[0],
        threads=thread_counts[0] if thread_counts else None, min_time=min_time, rounds=rounds,
        max_memory=max_memory if isinstance(max_memory, int) else parse_size("max_memory", max_memory),
    )  # fmt: skip
    options.check()
    layer = _layer(
        in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
        dilation=dilation, groups=groups, multiplier=multiplier, bias=bias, depthwise_bias=depthwise_bias,
        transposed=transposed,
        output_padding=output_padding, norm=norm, act=act, placement=placement, act_after=act_after, slopes=slopes,
    )  # fmt: skip
    shape = parse_input_shape(_text(input_shape), batches[0] if batches else None)
    axes = run_options.TimingAxes(batches, dtypes, channels_last, compile, backward, roofline, thread_counts)
    return run_compare.compare_layer(layer, shape, options, axes)


def count(
    *,
    in_channels: int | None = None,
    out_channels: int | None = None,
    kernel_size: IntOrSeq | None = None,
    stride: IntOrSeq | None = None,
    padding: IntOrSeq | None = None,
    dilation: IntOrSeq | None = None,
    groups: int | None = None,
    multiplier: int | None = None,
    bias: bool | None = None,
    depthwise_bias: bool | None = None,
    transposed: bool | None = None,
    output_padding: IntOrSeq | None = None,
    norm: Norm | str | None = None,
    act: Activation | str | None = None,
    placement: Placement | str | None = None,
    act_after: str | None = None,
    slopes: str | int | None = None,
    input_shape: IntOrSeq | None = None,
) -> Comparison:
    """Exact params, MACs and shapes of one layer and its separable pair: no timing, no torch."""
    return compare(
        in_channels=in_channels, out_channels=out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
        dilation=dilation, groups=groups, multiplier=multiplier, bias=bias, depthwise_bias=depthwise_bias,
        transposed=transposed,
        output_padding=output_padding, norm=norm, act=act, placement=placement, act_after=act_after, slopes=slopes,
        input_shape=input_shape, bench=False,
    )  # fmt: skip


def load_config(path: str | Path, max_layers: int = DEFAULT_MAX_LAYERS) -> Config:
    """Read and validate a YAML config; ``ConfigError`` lists every problem with its file and line."""
    from dsconv_cli.core import config

    return config.load(path, max_layers)


def run_config(
    path_or_config: str | Path | Config,
    *,
    bench: bool = False,
    verify: bool = False,
    device: Device | str = Device.AUTO,
    dtype: DType | str = DType.FLOAT32,
    threads: int | None = None,
    min_time: float = 0.5,
    rounds: int = 3,
    max_memory: int | str = "2GiB",
    baseline: str | Path | None = None,
    max_increase: float | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    max_layers: int = DEFAULT_MAX_LAYERS,
) -> ConfigReport:
    """Count (time, cross-check) a config and hold its budgets and baseline, as ``dsconv report`` does for one file."""
    options = run_options.RunOptions(
        verify=verify, bench=bench, device=Device(device), dtype=DType(dtype), threads=threads, min_time=min_time,
        rounds=rounds, max_memory=max_memory if isinstance(max_memory, int) else parse_size("max_memory", max_memory),
        baseline=Path(baseline) if baseline is not None else None, max_increase=max_increase, max_points=max_points,
        max_layers=max_layers,
    )  # fmt: skip
    options.check()
    cfg = path_or_config if not isinstance(path_or_config, str | Path) else load_config(path_or_config, max_layers)
    return run_configs.compare_config(cfg, {}, None, None, options)


def to_dict(result: Comparison | ConfigReport | ModelAnalysis) -> dict[str, Any]:
    """The JSON object the CLI prints for ``result``: one element of ``comparisons`` (``compare -f json``),
    one element of ``configs`` (``report -f json``), or the whole document of ``analyze -f json``."""
    from dsconv_cli.core.results import Comparison, ConfigReport, ModelAnalysis
    from dsconv_cli.errors import SpecError
    from dsconv_cli.present import export

    if isinstance(result, Comparison):
        return export.comparison_dict(result)
    if isinstance(result, ConfigReport):
        return export.config_dict(result)
    if isinstance(result, ModelAnalysis):
        return export.model_dict(result)
    raise SpecError("result", type(result).__name__, "expected what compare, run_config or analyze returned")


def analyze(
    model_or_target: Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]] | None = None,
    *,
    input_dtype: str | Sequence[str] = (),
    input_kw: Mapping[str, Any] | None = None,
    example_inputs: Any = None,
    vocab: int | None = None,
    kwargs: dict[str, Any] | None = None,
    dtype: DType | str = DType.FLOAT32,
    convert_rule: str | None = None,
    verify: bool = False,
    max_memory: int = 2 * 1024**3,
    bench: bool = False,
    device: Device | str = Device.AUTO,
    threads: int | None = None,
    min_time: float = 0.5,
    channels_last: bool = False,
    compiled: bool = False,
    rounds: int = 3,
    bench_top: int = 3,
    weights: str | Path | None = None,
    weights_key: str | None = None,
    init: str = "svd",
    multiplier: int | str = 1,
    calibrate: str | Path | None = None,
    refit: bool = False,
) -> ModelAnalysis:
    """What ``dsconv analyze`` does, on an ``nn.Module`` or a ``MODULE:ATTR`` / ``FILE.py:ATTR`` target.

    Inputs: ``input_shape`` (one shape or several, positional), each with its ``input_dtype`` (``"int64"`` for
    token ids, ``"bool"`` for masks; default ``dtype``), ``input_kw`` (keyword inputs: a shape, ``(shape,
    dtype)`` or ``"1,128:bool"`` each), or ``example_inputs``: the exact inputs (a tensor, a tuple or list, a
    dict of keyword inputs, or a ``.pt`` file of one of these). ``vocab``: integer inputs are ids below it.

    With ``convert_rule``, the chosen convs are converted (closed-form pairs by default) and the result's
    ``converted_model`` is the converted CPU ``nn.Module``, its ``fidelity`` how closely it reproduces the
    original. With ``bench``, the original and converted models are timed end to end, and the chosen candidates
    (the first ``bench_top`` by MACs saved without a conversion) each alone against their pair."""
    from dsconv_cli.core.spec import Conversion, model_inputs, parse_input_kw
    from dsconv_cli.run.analyze import analyze_model, shape_list

    conversion = Conversion(init, multiplier, None if calibrate is None else str(calibrate), refit,
                            None if weights is None else str(weights), weights_key)  # fmt: skip

    options = run_options.RunOptions(verify=verify, bench=bench, device=Device(device), dtype=DType(dtype),
                                threads=threads, min_time=min_time, max_memory=max_memory, rounds=rounds)  # fmt: skip
    keyword = [parse_input_kw(f"{name}={value}") if isinstance(value, str)
               else (name, tuple(value[0]), str(value[1])) if _with_dtype(value) else (name, tuple(value), None)
               for name, value in (input_kw or {}).items()]  # fmt: skip
    dtypes = [input_dtype] if isinstance(input_dtype, str) else list(input_dtype)
    example = str(example_inputs) if isinstance(example_inputs, Path) else example_inputs
    shapes = shape_list(input_shape) if input_shape is not None else ()
    inputs = model_inputs(shapes, dtypes, keyword, example, vocab)
    return analyze_model(model_or_target, inputs, options, kwargs=kwargs, convert_rule=convert_rule,
                         conversion=conversion, channels_last=channels_last, compiled=compiled,
                         bench_top=bench_top)  # fmt: skip


def _with_dtype(value: Any) -> bool:
    """``((1, 128), "bool")``: a shape and a dtype, not a shape."""
    return isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[1], str)


def convert(
    model: Any,
    rule: str = "all",
    init: str = "svd",
    multiplier: int | str = 1,
    calibrate: Any = None,
    input_shape: Sequence[int] | Sequence[Sequence[int]] | None = None,
    refit: bool = False,
) -> ConversionResult:
    """Convert an ``nn.Module`` you hold: a converted CPU copy (``.module``; yours is untouched) and its measured
    fidelity (``.fidelity``: output_error, snr_db, inputs; ``.convs``: each conv's multiplier, energy kept and
    layer error). Inputs: ``calibrate`` (a ``.pt``/``.npy`` file or tensors), else random normal probes of
    ``input_shape``."""
    from dsconv_cli.pt.convert import convert as convert_module

    return convert_module(model, rule, init, multiplier, calibrate, input_shape, refit=refit)
