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

import functools
import inspect
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from dsconv_cli.core.counting import INT64_MAX
from dsconv_cli.core.parse import parse_dtypes, parse_input_shape, parse_ints, parse_positive_list, parse_size
from dsconv_cli.core.spec import (
    DEFAULT_MAX_LAYERS,
    DEFAULT_MAX_POINTS,
    ActAfter,
    Activation,
    Device,
    DType,
    Norm,
    Placement,
    Slopes,
)
from dsconv_cli.errors import SpecError, format_value
from dsconv_cli.run import compare as run_compare
from dsconv_cli.run import configs as run_configs
from dsconv_cli.run import options as run_options

if TYPE_CHECKING:
    from dsconv_cli.core.config import Config
    from dsconv_cli.core.results import Comparison, ConfigReport, ModelAnalysis
    from dsconv_cli.pt.convert import ConversionResult

IntOrSeq = int | Sequence[int] | str
F = TypeVar("F", bound=Callable[..., Any])
Check = Callable[[str, Any], Any]  # (parameter, value) -> the value to use, or SpecError


def _shown(value: Any) -> str:
    """A value as an error line shows it: short, one line."""
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def _wrong(name: str, value: Any, expected: str) -> SpecError:
    return SpecError(name, _shown(value), f"expected {expected}, got {type(value).__name__}")


def _integer(name: str, value: Any) -> int:
    """An integer: ``int``, a NumPy integer or its text; never a bool or a float (no silent rounding)."""
    if isinstance(value, str):
        (number,) = parse_positive_list(name, value) if value.strip().lstrip("-").isdigit() else (None,)
        if number is None:
            raise _wrong(name, value, "an integer")
        return number
    if isinstance(value, bool) or isinstance(value, float):
        raise _wrong(name, value, "an integer (a float is never rounded)")
    try:
        number = operator.index(value)
    except TypeError:
        raise _wrong(name, value, "an integer") from None
    if abs(number) > INT64_MAX:  # no size PyTorch can hold; past 4,300 digits not even printable
        raise SpecError(name, format_value(number), "is past int64, the largest size PyTorch can hold")
    return number


def _maybe(check: Check) -> Check:
    return lambda name, value: None if value is None else check(name, value)


def _ints_text(name: str, value: Any) -> str:
    """One integer or one per spatial dim, as the flags' text (``3,5``) so one parser serves both."""
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and not isinstance(value, bytes):
        if not value:
            raise SpecError(name, "()", "expected an integer or a sequence of integers, e.g. 3 or (3, 5)")
        return ",".join(str(_integer(name, v)) for v in value)
    return str(_integer(name, value))


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong(name, value, "True or False")
    return value


def _real(name: str, value: Any) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise _wrong(name, value, "a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong(name, value, "a number")
    return float(value)


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _wrong(name, value, "text")
    return value


def _choice(enum: type[StrEnum]) -> Check:
    def check(name: str, value: Any) -> StrEnum:
        try:
            return enum(value)
        except ValueError:
            valid = ", ".join(e.value for e in enum)
            raise SpecError(name, _shown(value), f"is not one of {valid}") from None

    return check


def _slopes(name: str, value: Any) -> str:
    return str(_choice(Slopes)(name, str(value) if isinstance(value, int) and not isinstance(value, bool) else value))


def _size(name: str, value: Any) -> int:
    return parse_size(name, value) if isinstance(value, str) else _integer(name, value)


def _path(name: str, value: Any) -> Path:
    if not isinstance(value, str | os.PathLike):
        raise _wrong(name, value, "a file path")
    return Path(value)


def _dtypes(name: str, value: Any) -> str:
    """One dtype or several (``"float32,bfloat16"`` or a sequence), as text."""
    if isinstance(value, str | DType):
        return str(value)
    if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
        return ",".join(value)
    raise _wrong(name, value, "a dtype, e.g. float32, or a sequence of them")


def _shapes(name: str, value: Any) -> Any:
    """``analyze``'s input: one shape or a sequence of shapes, each a sequence of integers (or its text)."""
    if isinstance(value, str):
        return list(parse_ints(name, value))
    if not isinstance(value, Sequence) or not value:
        raise _wrong(name, value, "a shape such as (1, 3, 224, 224), or a sequence of shapes")
    if all(isinstance(v, Sequence) and not isinstance(v, str) for v in value):
        return [[_integer(name, d) for d in shape] for shape in value]
    return [_integer(name, d) for d in value]


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise _wrong(name, value, "a mapping of argument names to values")
    return dict(value)


def _config(name: str, value: Any) -> Any:
    from dsconv_cli.core.config import Config

    return value if isinstance(value, Config) else _path(name, value)


def _layer(**values: Any) -> dict[str, Any]:
    return run_compare.parse_layer_text(values)


CHECKS: dict[str, Check] = {
    **{f: _maybe(_integer) for f in ("in_channels", "out_channels", "groups", "multiplier")},
    **{f: _maybe(_ints_text) for f in ("kernel_size", "stride", "padding", "dilation", "output_padding",
                                       "input_shape", "batch")},
    **{f: _maybe(_flag) for f in ("bias", "depthwise_bias", "transposed")},
    **dict.fromkeys(("verify", "bench", "channels_last", "compile", "compiled", "backward", "roofline"), _flag),
    "norm": _maybe(_choice(Norm)), "act": _maybe(_choice(Activation)), "placement": _maybe(_choice(Placement)),
    "act_after": _maybe(_choice(ActAfter)), "slopes": _maybe(_slopes),
    "device": _choice(Device), "dtype": _choice(DType), "threads": _maybe(_integer), "min_time": _real,
    "rounds": _integer, "max_memory": _size, "baseline": _maybe(_path), "max_increase": _maybe(_real),
    "max_points": _integer, "max_layers": _integer, "bench_top": _integer, "path": _path,
    "path_or_config": _config, "kwargs": _maybe(_mapping), "convert_rule": _maybe(_text),
    "trust_model_code": _flag,
}  # fmt: skip


def _depth_multiplier(name: str, value: Any) -> int | str:
    """A conversion's multiplier: an integer, or ``auto:PCT`` (checked where it is parsed)."""
    return value if isinstance(value, str) and value.startswith("auto:") else _integer(name, value)


def _checked(**own: Check) -> Callable[[F], F]:
    """Check every argument of an API call by its name (``own`` for the call's own meaning of a name) before
    it runs: a wrong type is a ``SpecError`` with the flag's one-line message, as the command gives."""

    def wrap(call: F) -> F:
        signature = inspect.signature(call)
        checks = {name: own.get(name) or CHECKS.get(name) for name in signature.parameters}

        @functools.wraps(call)
        def checked(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise SpecError("arguments", call.__name__, f"{exc}; see help(dsconv_cli.{call.__name__})") from None
            for name, value in bound.arguments.items():
                check = checks.get(name)
                if check is not None:
                    bound.arguments[name] = check(name, value)
            return call(*bound.args, **bound.kwargs)

        return checked  # type: ignore[return-value]

    return wrap


@_checked(dtype=_dtypes, threads=_maybe(_ints_text))
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
    dtypes = parse_dtypes(str(dtype))  # arguments arrive checked, and integers as the flags' text (``_checked``)
    batches = parse_positive_list("batch", cast("str | None", batch))
    thread_counts = parse_positive_list("threads", cast("str | None", threads))
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
    shape = parse_input_shape(cast("str | None", input_shape), batches[0] if batches else None)
    axes = run_options.TimingAxes(batches, dtypes, channels_last, compile, backward, roofline, thread_counts)
    return run_compare.compare_layer(layer, shape, options, axes)


@_checked()
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


@_checked()
def load_config(path: str | Path, max_layers: int = DEFAULT_MAX_LAYERS) -> Config:
    """Read and validate a YAML config; ``ConfigError`` lists every problem with its file and line."""
    from dsconv_cli.core import config

    return config.load(path, max_layers)


@_checked()
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
    trust_model_code: bool = False,
) -> ConfigReport:
    """Count (time, cross-check) a config and hold its budgets and baseline, as ``dsconv report`` does for one file.

    A config naming a model imports and runs it only with ``trust_model_code`` (or ``DSCONV_TRUST_MODEL_CODE=1``)."""
    options = run_options.RunOptions(
        verify=verify, bench=bench, device=Device(device), dtype=DType(dtype), threads=threads, min_time=min_time,
        rounds=rounds, max_memory=max_memory if isinstance(max_memory, int) else parse_size("max_memory", max_memory),
        baseline=Path(baseline) if baseline is not None else None, max_increase=max_increase, max_points=max_points,
        max_layers=max_layers, trust_model_code=trust_model_code or run_options.trusted_by_environment(),
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


def _with_dtype(value: Any) -> bool:
    """``((1, 128), "bool")``: a shape and a dtype, not a shape."""
    return isinstance(value, tuple | list) and len(value) == 2 and isinstance(value[1], str)


def _input_dtypes(name: str, value: Any) -> list[str]:
    """One input dtype or one per input shape, as text."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _wrong(name, value, "a dtype, e.g. int64, or a sequence of them (one per input shape)")


@_checked(input_shape=_maybe(_shapes), input_dtype=_input_dtypes, input_kw=_maybe(_mapping), vocab=_maybe(_integer),
          multiplier=_depth_multiplier, weights=_maybe(_path), weights_key=_maybe(_text), init=_text,
          calibrate=_maybe(_path), refit=_flag)  # fmt: skip
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
    dtypes = list(input_dtype)  # one per input shape (the check made a lone one a list)
    example = str(example_inputs) if isinstance(example_inputs, Path) else example_inputs
    shapes = shape_list(input_shape) if input_shape is not None else ()
    inputs = model_inputs(shapes, dtypes, keyword, example, vocab)
    return analyze_model(model_or_target, inputs, options, kwargs=kwargs, convert_rule=convert_rule,
                         conversion=conversion, channels_last=channels_last, compiled=compiled,
                         bench_top=bench_top)  # fmt: skip


@_checked(rule=_text, init=_text, multiplier=_depth_multiplier, refit=_flag, input_shape=_maybe(_shapes))
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
