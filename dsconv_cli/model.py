"""Whole models: import a target, count one forward pass per module, advise and perform conv conversion.

Every op of the forward is dispatched through one ``TorchDispatchMode`` that charges it to the modules
on the call stack. MACs come from PyTorch's own ``FlopCounterMode`` formulas (halved), decomposing
what they do not know exactly as ``FlopCounterMode`` does, so the totals are its totals by construction;
``--verify`` still runs ``FlopCounterMode`` itself and counts each conv with dsconv's analytic core.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode, flop_registry

from dsconv_cli import counting, timing
from dsconv_cli.builder import build_variant, torch_dtype
from dsconv_cli.errors import CheckFailed, DsconvError, MemoryLimitError, SpecError
from dsconv_cli.parse import parse_convert_rule
from dsconv_cli.results import Candidate, CandidateTiming, ConvCall, ModelAnalysis, ModelRow, ModelTotals, OpCount
from dsconv_cli.spec import ConvLayer, ConvSpec, Device, DType, PaddingMode, resolve_spec

aten = torch.ops.aten


BENCH_TOP = 3  # candidates timed alone when no --convert chooses them


class TargetError(DsconvError):
    """A model target that cannot be imported, built or run on the given inputs."""

    exit_code = 2


# --- loading a target -----------------------------------------------------------------------------


def resolve_target(target: str) -> Any:
    """Import ``package.module:attr`` or ``path/file.py:attr`` (once) and return ``attr``."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"{target}: expected MODULE:ATTR or FILE.py:ATTR, e.g. torchvision.models:mobilenet_v2")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise TargetError(f"{target}: no such file {module_name}")
            spec = importlib.util.spec_from_file_location(f"dsconv_target_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            folder = str(path.resolve().parent)
            sys.path.insert(0, folder)  # the file's own imports of its neighbours
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(folder)
        else:
            module = importlib.import_module(module_name)
    except TargetError:
        raise
    except ModuleNotFoundError as exc:
        raise TargetError(f"{target}: module {exc.name or module_name} not found (is it installed?)") from exc
    except Exception as exc:  # the user's module raising on import
        raise TargetError(f"{target}: importing {module_name} raised {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module) if not n.startswith("_"))[:8]
        raise TargetError(f"{target}: {module_name} has no attribute {attr!r} (it has {', '.join(public)}, ...)")
    found = getattr(module, attr)
    if not isinstance(found, nn.Module) and not callable(found):
        raise TargetError(f"{target}: {attr} is a {type(found).__name__}, not an nn.Module, a subclass or a factory")
    return found


class BuildError(TargetError):
    """The class or factory of a target raised while building the model."""


def build_target(found: Any, target: str, kwargs: dict[str, Any] | None, device: str) -> nn.Module:
    """The model ``found`` names: the instance itself, or the class or factory called under ``device``."""
    if isinstance(found, nn.Module):
        if kwargs:
            raise TargetError(f"{target}: is a module instance; --kwargs applies to a class or factory only")
        return found
    attr = target.rpartition(":")[2]
    try:
        with torch.device(device):
            built = found(**(kwargs or {}))
    except Exception as exc:
        raise BuildError(f"{target}: {attr}(**{kwargs or {}}) raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(built, nn.Module):
        raise TargetError(f"{target}: {attr}(...) returned a {type(built).__name__}, not an nn.Module")
    return built


def load_target(target: str, kwargs: dict[str, Any] | None = None, device: str = "cpu") -> nn.Module:
    """``package.module:attr`` or ``path/file.py:attr``: an ``nn.Module`` instance, subclass or factory."""
    return build_target(resolve_target(target), target, kwargs, device)


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--kwargs`` as JSON or YAML mapping."""
    if text is None:
        return {}
    import yaml

    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at column {where.column + 1}" if where is not None else ""
            raise SpecError("kwargs", text, f"is neither JSON nor YAML: {getattr(exc, 'problem', exc)}{at}") from None
    if not isinstance(value, dict):
        raise SpecError("kwargs", text, 'must be a mapping, e.g. {"width_mult": 0.5} or "num_classes: 10"')
    return value


# --- counting one forward -------------------------------------------------------------------------

_SKIP = {
    aten.is_contiguous.default, aten.is_contiguous.memory_format, aten.is_strides_like_format.default,
    aten.is_non_overlapping_and_dense.default, aten.size.default, aten.sym_size.default, aten.stride.default,
    aten.sym_stride.default, aten.storage_offset.default, aten.sym_storage_offset.default, aten.numel.default,
    aten.sym_numel.default, aten.dim.default, torch.ops.prim.layout.default,
}  # fmt: skip
_BIAS_ADD = {aten.addmm, aten.baddbmm}  # the bias add of Linear/addmm is elementwise work, not MACs
_CONVS = {aten.convolution, aten._convolution, aten.convolution_overrideable, aten.cudnn_convolution}
_TWO_PER_ELEMENT = {
    aten.native_batch_norm,
    aten._native_batch_norm_legit,
    aten._native_batch_norm_legit_no_training,
    aten.native_layer_norm,
    aten.native_group_norm,
}  # inference BatchNorm folds to a multiply and an add per element, as in CONVENTIONS
_ACTIVATIONS = {
    aten.hardswish,
    aten.log_sigmoid_forward,
    aten.glu,
}  # activations PyTorch does not tag pointwise: one op per output element, as every activation
_ONE_PER_INPUT = {
    aten.mean,
    aten.sum,
    aten.amax,
    aten.amin,
    aten.max,
    aten.min,
    aten.prod,
    aten.var,
    aten.std,
    aten.var_mean,
    aten._softmax,
    aten._log_softmax,
    aten.avg_pool1d,
    aten.avg_pool2d,
    aten.avg_pool3d,
    aten.max_pool2d_with_indices,
    aten.max_pool3d_with_indices,
    aten._adaptive_avg_pool2d,
    aten._adaptive_avg_pool3d,
    aten.adaptive_max_pool2d,
    aten.adaptive_max_pool3d,
    aten.cumsum,
    aten.logsumexp,
    aten.norm,
    aten.linalg_vector_norm,
    aten._prelu_kernel,
}  # reductions, pooling and softmax: one op per input element read
_MOVES = {
    aten.clone,
    aten.copy_,
    aten._to_copy,
    aten.cat,
    aten.stack,
    aten.constant_pad_nd,
    aten.reflection_pad1d,
    aten.reflection_pad2d,
    aten.reflection_pad3d,
    aten.replication_pad1d,
    aten.replication_pad2d,
    aten.replication_pad3d,
    aten.empty,
    aten.empty_like,
    aten.empty_strided,
    aten.zeros,
    aten.zeros_like,
    aten.ones,
    aten.ones_like,
    aten.full,
    aten.full_like,
    aten.fill_,
    aten.zero_,
    aten.arange,
    aten.scalar_tensor,
    aten.lift_fresh,
    aten.index_select,
    aten.gather,
    aten.index,
    aten.roll,
    aten.flip,
    aten.repeat,
    aten.embedding,
    aten.new_empty,
    aten.new_zeros,
    aten.new_ones,
    aten.new_full,
    aten.index_put_,
    aten.detach,
    aten.split_with_sizes,
    aten.split,
    aten.unbind,
    aten.chunk,
    aten.pixel_shuffle,
    aten.channel_shuffle,
    aten.upsample_nearest2d,
    aten.bernoulli_,
    aten.alias,
    aten.masked_fill,
    aten.where,
    aten.slice_scatter,
    aten.select_scatter,
    aten.lift_fresh_copy,
    aten.transpose_,
    aten.t_,
    aten.unsafe_split,
    aten.unsafe_chunk,
    aten.unsqueeze_,
    aten.squeeze_,
    aten.as_strided_,
    aten.unsafe_split_with_sizes,
    aten.contiguous,
    aten.resize_,
    aten.set_,
}  # data movement and creation: no arithmetic (listed in JSON as ``data_movement``)


def _numel(value: Any) -> int:
    leaves, _ = tree_flatten(value)
    return sum(leaf.numel() for leaf in leaves if isinstance(leaf, torch.Tensor))


def _shapes(value: Any) -> tuple[tuple[int, ...], ...]:
    leaves, _ = tree_flatten(value)
    return tuple(tuple(leaf.shape) for leaf in leaves if isinstance(leaf, torch.Tensor))


@dataclass
class _Tally:
    macs: int = 0
    other: int = 0
    calls: int = 0
    inputs: tuple[tuple[int, ...], ...] = ()
    outputs: tuple[tuple[int, ...], ...] = ()


class _Counter(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Charges every op's MACs and elementwise work to each module on the stack when it ran."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.stack: list[str] = []
        self.entry_macs: list[int] = []  # each open module's MACs when it was entered
        self.tally: dict[str, _Tally] = defaultdict(_Tally)
        self.uncounted: Counter[str] = Counter()
        self.moved: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _SKIP:
            return NotImplemented
        packet = func._overloadpacket
        if packet not in flop_registry and func is not torch.ops.prim.device.default:
            with self:  # as FlopCounterMode: composite ops are counted through what they decompose into
                decomposed = func.decompose(*args, **kwargs)
                if decomposed is not NotImplemented:
                    return decomposed
        out = func(*args, **kwargs)
        macs = other = 0
        if packet in flop_registry:
            macs = int(flop_registry[packet](*args, **kwargs, out_val=out)) // 2
            has_bias = packet in _CONVS and len(args) > 2 and args[2] is not None
            if packet in _BIAS_ADD or has_bias:
                other = _numel(out)
        elif torch.Tag.pointwise in func.tags or packet in _ACTIVATIONS:
            other = _numel(out if not isinstance(out, tuple) else out[0])
        elif packet in _TWO_PER_ELEMENT:
            other = 2 * _numel(out if not isinstance(out, tuple) else out[0])
        elif packet in _ONE_PER_INPUT:
            other = _numel(args[0])
        elif func.is_view or packet in _MOVES or str(packet).startswith("aten._unsafe_view"):
            self.moved[str(packet)] += 1
        else:
            self.uncounted[str(packet)] += 1
        for path in dict.fromkeys(self.stack):
            self.tally[path].macs += macs
            self.tally[path].other += other
        return out


@contextmanager
def _hooks(model: nn.Module, counter: _Counter, conv_calls: list[ConvCall]) -> Iterator[None]:
    handles = []
    paths = {id(m): p for p, m in model.named_modules()}

    def pre(module: nn.Module, args: Any) -> None:
        path = paths[id(module)]
        counter.stack.append(path)
        tally = counter.tally[path]
        tally.calls += 1
        if tally.calls == 1:
            tally.inputs = _shapes(args)
        counter.entry_macs.append(tally.macs)

    def post(module: nn.Module, args: Any, output: Any) -> None:
        path = counter.stack.pop()
        tally = counter.tally[path]
        entered = counter.entry_macs.pop()
        if tally.calls == 1:
            tally.outputs = _shapes(output)
        if isinstance(module, nn.modules.conv._ConvNd):
            done = tally.macs - entered
            conv_calls.append(ConvCall(path, conv_layer(module), _shapes(args)[0], _shapes(output)[0], done))

    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def conv_layer(module: nn.modules.conv._ConvNd) -> ConvLayer:
    """A PyTorch conv module as dsconv's ``ConvLayer``."""
    padding: Any = module.padding
    if isinstance(padding, str):
        padding = PaddingMode(padding)
    transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
    return ConvLayer(
        module.in_channels, module.out_channels, tuple(module.kernel_size), tuple(module.stride), padding,
        tuple(module.dilation), module.groups, module.bias is not None, transposed,
        tuple(module.output_padding) if transposed else (),
    )  # fmt: skip


def _inputs(shapes: Sequence[Sequence[int]], device: str, dtype: torch.dtype) -> list[torch.Tensor]:
    return [torch.zeros(tuple(s), device=device, dtype=dtype) for s in shapes]


@dataclass
class _Run:
    counter: _Counter
    conv_calls: list[ConvCall]
    outputs: tuple[tuple[int, ...], ...]


def _forward(model: nn.Module, shapes: Sequence[Sequence[int]], device: str, dtype: torch.dtype) -> _Run:
    counter, conv_calls = _Counter(), list[ConvCall]()
    xs = _inputs(shapes, device, dtype)
    with _hooks(model, counter, conv_calls), torch.no_grad():
        try:
            with counter:
                y = model(*xs)  # the root's own hooks push it as path ""
        except DsconvError:
            raise
        except Exception as exc:
            where = counter.stack[-1] if counter.stack else ""
            name = where or type(model).__name__
            seen = counter.tally[where].inputs if where else tuple(tuple(s) for s in shapes)
            inputs = ", ".join("(" + ", ".join(map(str, s)) + ")" for s in seen)
            raise TargetError(
                f"the forward failed in {name} ({type(_get(model, where)).__name__}) on inputs {inputs}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    return _Run(counter, conv_calls, _shapes(y))


def _get(model: nn.Module, path: str) -> nn.Module:
    return model.get_submodule(path) if path else model


def _unique_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())  # parameters() yields each Parameter once


# --- the advisor ----------------------------------------------------------------------------------


def is_candidate(conv: ConvLayer) -> bool:
    """A standard conv worth converting: groups 1 and more than one kernel element (transposed too)."""
    return conv.groups == 1 and math.prod(conv.kernel_size) > 1


def separable_of(conv: ConvLayer) -> tuple[ConvLayer, ConvLayer]:
    """CONVENTIONS' replacement: depthwise (no bias, multiplier 1), then pointwise 1x1 with the original bias."""
    depthwise = replace(conv, out_channels=conv.in_channels, groups=conv.in_channels, bias=False)
    ones = (1,) * conv.rank
    pointwise = ConvLayer(conv.in_channels, conv.out_channels, ones, ones, (0,) * conv.rank, ones, 1, conv.bias)
    return depthwise, pointwise


def _pair_cost(conv: ConvLayer, input_shape: tuple[int, ...]) -> tuple[int, int]:
    depthwise, pointwise = separable_of(conv)
    mid = counting.conv_output_shape(depthwise, input_shape)
    out = counting.conv_output_shape(pointwise, mid)
    macs = counting.conv_macs(depthwise, input_shape, mid) + counting.conv_macs(pointwise, mid, out)
    return counting.conv_params(depthwise) + counting.conv_params(pointwise), macs


def advise(calls: Sequence[ConvCall], rows: Sequence[ModelRow]) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Candidates ranked by MACs saved, and existing depthwise → 1x1 pairs (in call order)."""
    owned = {row.path: row.params for row in rows}  # the module's real parameters, parametrizations included
    by_path: dict[str, list[ConvCall]] = defaultdict(list)
    for call in calls:
        by_path[call.path].append(call)
    candidates = []
    for path, path_calls in by_path.items():
        conv = path_calls[0].conv
        if not is_candidate(conv):
            continue
        sep_params, _ = _pair_cost(conv, path_calls[0].input_shape)
        macs = sum(counting.conv_macs(conv, c.input_shape, c.output_shape) for c in path_calls)
        sep_macs = sum(_pair_cost(conv, c.input_shape)[1] for c in path_calls)
        candidates.append(Candidate(
            path, conv, owned[path], macs, sep_params, sep_macs, len(path_calls), path_calls[0].input_shape,
        ))  # fmt: skip
    candidates.sort(key=lambda c: (-c.macs_saved, c.path))
    pairs = []
    for first, second in zip(calls, calls[1:], strict=False):
        a, b = first.conv, second.conv
        depthwise = a.groups == a.in_channels > 1 and a.out_channels % a.in_channels == 0
        pointwise = math.prod(b.kernel_size) == 1 and b.groups == 1 and b.in_channels == a.out_channels
        if depthwise and pointwise and (first.path, second.path) not in pairs:
            pairs.append((first.path, second.path))
    return candidates, pairs


def choose(candidates: Sequence[Candidate], rule: str) -> list[Candidate]:
    """``all``, ``top:N`` or ``min-saving:PCT`` (percent of that conv's MACs saved)."""
    kind, value = parse_convert_rule(rule)
    if kind == "top":
        return list(candidates[: int(value)])
    if kind == "min-saving":
        return [c for c in candidates if c.macs and 100 * c.macs_saved / c.macs >= value]
    return list(candidates)


def convert(model: nn.Module, chosen: Sequence[Candidate]) -> nn.Module:
    """A copy of ``model`` with each chosen conv replaced, at every path that holds it, by depthwise → pointwise."""
    converted = copy.deepcopy(model)
    replaced: dict[int, nn.Module] = {}
    targets = {id(_get(converted, c.path)) for c in chosen}  # a shared conv is replaced at every path holding it
    for path, module in list(converted.named_modules(remove_duplicate=False)):
        if not path or id(module) not in targets:
            continue
        if id(module) not in replaced:
            replaced[id(module)] = _separable_module(module)
        parent_path, _, name = path.rpartition(".")
        setattr(_get(converted, parent_path), name, replaced[id(module)])
    return converted


def _separable_module(conv: nn.Module) -> nn.Sequential:
    assert isinstance(conv, nn.modules.conv._ConvNd)
    rank = len(conv.kernel_size)
    weight = conv.weight
    factory: dict[str, Any] = {"device": weight.device, "dtype": weight.dtype}
    plain = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[rank - 1]
    common: dict[str, Any] = {
        "kernel_size": conv.kernel_size, "stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation,
        "groups": conv.in_channels, "bias": False, "padding_mode": conv.padding_mode,
    }  # fmt: skip
    if isinstance(conv, nn.modules.conv._ConvTransposeNd):
        transposed = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[rank - 1]
        common["output_padding"] = conv.output_padding
        depthwise: nn.Module = transposed(conv.in_channels, conv.in_channels, **common, **factory)
    else:
        depthwise = plain(conv.in_channels, conv.in_channels, **common, **factory)
    pointwise = plain(conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None, **factory)
    return nn.Sequential(depthwise, pointwise)


# --- the whole analysis ---------------------------------------------------------------------------


def count_model(model: nn.Module, shapes: Sequence[Sequence[int]], device: str, dtype: torch.dtype) -> ModelTotals:
    """Rows, totals, uncounted ops and conv calls of one forward pass."""
    run = _forward(model, shapes, device, dtype)
    tally = run.counter.tally
    total_macs = tally[""].macs
    rows = []
    for path, module in model.named_modules():
        t = tally.get(path, _Tally())
        rows.append(ModelRow(
            path, type(module).__name__, path.count(".") + 1 if path else 0, t.inputs, t.outputs,
            _unique_params(module), t.macs,
            t.other, t.calls, t.macs / total_macs if total_macs else 0.0,
        ))  # fmt: skip
    idle = []
    for path, module in model.named_modules():
        own = sum(p.numel() for p in module.parameters(recurse=False))
        t = tally.get(path, _Tally())
        if own and t.macs == 0 and t.other == 0:
            idle.append(OpCount(path or type(model).__name__, own))
    return ModelTotals(
        params=_unique_params(model), macs=total_macs, other_ops=tally[""].other, output_shapes=run.outputs,
        rows=tuple(rows), uncounted=tuple(OpCount(op, n) for op, n in sorted(run.counter.uncounted.items())),
        data_movement=tuple(OpCount(op, n) for op, n in sorted(run.counter.moved.items())),
        idle_params=tuple(idle), conv_calls=tuple(run.conv_calls),
    )  # fmt: skip


def _place(model: nn.Module, notes: list[str]) -> tuple[nn.Module, str]:
    """A copy of the model on the meta device where it can go there; a CUDA model stays where it is."""
    device = _weights_device(model)
    if device != "cpu":  # built on meta already, or a CUDA model
        return model, device
    try:
        return copy.deepcopy(model).to("meta"), "meta"  # a copy: the caller's model keeps its weights
    except Exception as exc:  # a module that cannot live on meta
        notes.append(f"counted on the CPU: the model does not move to the meta device ({type(exc).__name__})")
        return model, "cpu"


def analyze(
    model_or_target: nn.Module | str,
    input_shape: Sequence[int] | Sequence[Sequence[int]],
    *,
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
    bench_top: int = BENCH_TOP,
) -> ModelAnalysis:
    """Count a model layer by layer, advise which convs to make depthwise-separable, and check the conversion.

    With ``bench``, the original and converted models are timed end to end, and the chosen candidates
    (the first ``bench_top`` by MACs saved without a conversion) each alone against their pair."""
    shapes = _shape_list(input_shape)
    if convert_rule is not None:
        choose((), convert_rule)  # a malformed rule is refused before any work
    if bench:
        device = timing.resolve_device(Device(device))  # CUDA asked for and missing: refused before any work
    dt = torch_dtype(DType(dtype))
    notes: list[str] = []
    if isinstance(model_or_target, str):
        target = model_or_target
        found = resolve_target(target)  # the user's code is imported once; later builds reuse what it gave
    else:
        target, found = type(model_or_target).__name__, model_or_target
    model, counted_on = _place(_build_for_counting(found, target, kwargs, notes).eval(), notes)
    try:
        totals = count_model(model, shapes, counted_on, dt)
    except TargetError:
        if counted_on != "meta":
            raise
        model, counted_on = _materialize(found, target, kwargs, model, shapes, dt, max_memory, notes)
        totals = count_model(model, shapes, counted_on, dt)
    candidates, pairs = advise(totals.conv_calls, totals.rows)
    checks = _conv_checks(totals) + _total_check(model, shapes, counted_on, dt, totals) if verify else ()
    result = ModelAnalysis(target, tuple(tuple(s) for s in shapes), DType(dtype).value, counted_on, totals,
                           tuple(candidates), tuple(pairs), notes=tuple(notes), checks=checks)  # fmt: skip
    chosen: list[Candidate] = []
    if convert_rule is not None:
        chosen = choose(candidates, convert_rule)
        converted = count_model(convert(model, chosen), shapes, counted_on, dt)
        result = replace(result, chosen=tuple(c.path for c in chosen), converted=converted)
        _check_conversion(result)
    if bench:
        settings = timing.TimingSettings(str(device), DType(dtype), threads or timing.default_threads(), min_time,
                                         channels_last=channels_last, compiled=compiled, rounds=rounds)  # fmt: skip
        from dsconv_cli.runner import RunOptions, TimingWatch

        watch = TimingWatch(settings.device, settings.threads, RunOptions())
        result = _bench(result, found, target, kwargs, chosen, settings, max_memory)
        timed = chosen[:bench_top] if convert_rule is not None else candidates[:bench_top]
        timings = tuple(_time_candidate(c, settings, max_memory) for c in timed)
        spreads = [t.speedup_spread for t in timings]
        result = replace(result, candidate_timings=timings, conditions=watch.finish(spreads))
    return result


def _shape_list(input_shape: Sequence[int] | Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    if not input_shape:
        raise SpecError("input_shape", input_shape, "give at least one shape, e.g. 1,3,224,224")
    first = input_shape[0]
    shapes = [tuple(input_shape)] if isinstance(first, int) else [tuple(s) for s in input_shape]  # type: ignore[arg-type]
    for shape in shapes:
        if not shape or any(not isinstance(v, int) or v < 0 for v in shape):
            raise SpecError("input_shape", shape, "dims must be non-negative integers, e.g. 1,3,224,224")
    return shapes  # type: ignore[return-value]


def _build_for_counting(found: Any, target: str, kwargs: dict[str, Any] | None, notes: list[str]) -> nn.Module:
    """Built under the meta device (no weight memory); on the CPU where the constructor needs real tensors."""
    try:
        return build_target(found, target, kwargs, "meta")
    except BuildError:
        notes.append("built on the CPU: the model's constructor does not run on the meta device")
        return build_target(found, target, kwargs, "cpu")


def _weights_device(model: nn.Module) -> str:
    first = next(iter(model.parameters()), None)
    return first.device.type if first is not None else "cpu"


def _materialize(
    found: Any, target: str, kwargs: dict[str, Any] | None, counted: nn.Module, shapes: Sequence[Sequence[int]],
    dt: torch.dtype, max_memory: int, notes: list[str],
) -> tuple[nn.Module, str]:  # fmt: skip
    """The model with real weights on the CPU, for forwards that need values (bounded by ``max_memory``)."""
    needed = (_unique_params(counted) + sum(math.prod(s) for s in shapes)) * dt.itemsize
    if needed > max_memory:
        raise MemoryLimitError(
            f"--max-memory {max_memory:,} B: the forward needs real values on the CPU, and the weights and inputs "
            f"alone take {needed:,} B; raise --max-memory or shrink --input-shape"
        )
    notes.append("counted on the CPU: the forward needs real values (it does not run on the meta device)")
    return build_target(found, target, kwargs, "cpu").to(dtype=dt).eval(), "cpu"


def _conv_checks(totals: ModelTotals) -> tuple[tuple[str, int, int], ...]:
    """Each conv: dsconv's analytic params against the module's own, and per call its analytic MACs against
    FlopCounterMode's formula on the same call."""
    owned = {row.path: row.params for row in totals.rows}
    params = {
        call.path: (f"{call.path} params", counting.conv_params(call.conv), owned[call.path])
        for call in totals.conv_calls
    }
    macs = tuple(
        (f"{call.path} MACs", counting.conv_macs(call.conv, call.input_shape, call.output_shape), call.macs)
        for call in totals.conv_calls
    )
    return tuple(params.values()) + macs


def _total_check(
    model: nn.Module, shapes: Sequence[Sequence[int]], device: str, dt: torch.dtype, totals: ModelTotals
) -> tuple[tuple[str, int, int], ...]:
    """The whole forward again under PyTorch's own FlopCounterMode."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*_inputs(shapes, device, dt))
    return (("total MACs (FlopCounterMode / 2)", totals.macs, counter.get_total_flops() // 2),)


def _check_conversion(result: ModelAnalysis) -> None:
    assert result.converted is not None
    predicted, real = result.if_converted(result.chosen), result.converted
    problems = []
    for name, want, got in (("params", predicted[0], real.params), ("MACs", predicted[1], real.macs),
                            ("other ops", result.totals.other_ops, real.other_ops)):  # fmt: skip
        if want != got:
            problems.append(f"{name}: predicted {want:,}, converted model has {got:,}")
    if real.output_shapes != result.totals.output_shapes:
        problems.append(f"output shapes changed: {result.totals.output_shapes} -> {real.output_shapes}")
    if problems:
        raise CheckFailed("conversion check failed: " + "; ".join(problems))


def _bench(
    result: ModelAnalysis, found: Any, target: str, kwargs: dict[str, Any] | None, chosen: Sequence[Candidate],
    settings: timing.TimingSettings, max_memory: int,
) -> ModelAnalysis:  # fmt: skip
    """End-to-end latency of the original and (with ``--convert``) the converted model, same timing core."""
    if len(result.input_shapes) != 1:
        raise SpecError("bench", True, "times models with one input; this one takes several --input-shape")
    (shape,) = result.input_shapes
    needed = (result.totals.params * 2 + math.prod(shape)) * settings.dtype.itemsize
    if needed > max_memory:
        raise MemoryLimitError(f"--max-memory {max_memory:,} B: timing this model needs about {needed:,} B")
    model = build_target(found, target, kwargs, "cpu")
    latency = {"original": timing.time_module(copy.deepcopy(model), shape, settings).latency}
    if chosen:
        latency["converted"] = timing.time_module(convert(model, chosen), shape, settings).latency
    return replace(result, latency=latency)


def spec_of(conv: ConvLayer) -> ConvSpec:
    """A candidate conv as the spec ``compare`` counts and times: its pair is the conversion's pair."""
    return resolve_spec(
        rank=conv.rank, in_channels=conv.in_channels, out_channels=conv.out_channels, kernel_size=conv.kernel_size,
        stride=conv.stride, padding=conv.padding if isinstance(conv.padding, str) else tuple(conv.padding),
        dilation=conv.dilation, groups=conv.groups, bias=conv.bias, depthwise_bias=False,
        transposed=conv.transposed, output_padding=conv.output_padding or 0,
    )  # fmt: skip


def _time_candidate(c: Candidate, settings: timing.TimingSettings, max_memory: int) -> CandidateTiming:
    """One candidate alone against its separable pair, with compare's timing core, on its first call's input."""
    comparison = counting.compare(spec_of(c.conv), c.input_shape)
    needed = counting.timing_bytes(comparison, settings.dtype)
    if needed > max_memory:
        raise MemoryLimitError(f"--max-memory {max_memory:,} B: timing candidate {c.path} needs about {needed:,} B")
    ready = {
        "standard": timing.prepare(build_variant(comparison.spec.standard()), c.input_shape, settings),
        "separable": timing.prepare(build_variant(comparison.spec.separable()), c.input_shape, settings),
    }
    latency, per_round = timing.measure_rounds(ready, settings.rounds, settings.min_time)  # interleaved
    return CandidateTiming(c.path, latency["standard"], latency["separable"],
                           comparison.standard.macs / comparison.separable.macs,
                           timing.round_ratios(per_round))  # fmt: skip
