"""One forward pass counted op by op and charged to every module on the call stack.

Every op is dispatched through one ``TorchDispatchMode``; its MACs and other ops come from the op rules
(``oprules.py``: PyTorch's own ``FlopCounterMode`` formulas, halved, for what does multiply-accumulates),
decomposing what they do not know exactly as ``FlopCounterMode`` does, so the totals are its totals by
construction. Forward hooks keep each module's calls, shapes and conv calls.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from dsconv_cli.core.formatting import escape_control, exception_text
from dsconv_cli.core.results import ConvCall, ModelRow, ModelTotals, OpCount
from dsconv_cli.core.spec import ConvLayer, DType, PaddingMode
from dsconv_cli.errors import DsconvError, TargetError
from dsconv_cli.pt import oprules
from dsconv_cli.pt.builder import torch_dtype


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
        _, rule, users = oprules.resolve(func)
        if rule is oprules.Fixed.SKIP:
            return NotImplemented
        if not users and not oprules.has_formula(func) and func is not torch.ops.prim.device.default:
            with self:  # as FlopCounterMode: composite ops are counted through what they decompose into
                decomposed = func.decompose(*args, **kwargs)
                if decomposed is not NotImplemented:
                    return decomposed
        out = func(*args, **kwargs)
        if rule is None:
            self.uncounted[str(func._overloadpacket)] += 1
        elif rule is oprules.Fixed.MOVE:
            self.moved[str(func._overloadpacket)] += 1
        else:
            cost = rule(args, kwargs, out)
            for path in dict.fromkeys(self.stack):
                self.tally[path].macs += cost.macs
                self.tally[path].other += cost.other
        return out


@contextmanager
def _hooks(model: nn.Module, counter: _Counter, conv_calls: list[ConvCall]) -> Iterator[None]:
    handles = []
    paths = {id(m): escape_control(p) for p, m in model.named_modules()}  # a model's names print as plain text

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
        if isinstance(module, nn.modules.conv._ConvNd) and module.in_channels and module.out_channels:
            done = tally.macs - entered  # (a conv of 0 channels does nothing, and has no pair to advise)
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


def inputs_of(shapes: Sequence[Sequence[int]], device: str, dtype: torch.dtype) -> list[torch.Tensor]:
    return [torch.zeros(tuple(s), device=device, dtype=dtype) for s in shapes]


@dataclass
class _Run:
    counter: _Counter
    conv_calls: list[ConvCall]
    outputs: tuple[tuple[int, ...], ...]


def _forward(model: nn.Module, shapes: Sequence[Sequence[int]], device: str, dtype: torch.dtype) -> _Run:
    counter, conv_calls = _Counter(), list[ConvCall]()
    xs = inputs_of(shapes, device, dtype)
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
                f"the forward failed in {escape_control(name)} "
                f"({escape_control(type(get_module(model, where)).__name__)}) on inputs {inputs}: {exception_text(exc)}"
            ) from exc
    return _Run(counter, conv_calls, _shapes(y))


def get_module(model: nn.Module, path: str) -> nn.Module:
    """The module at ``path``, given as PyTorch names it or as dsconv's records print it (control characters
    escaped)."""
    if not path:
        return model
    try:
        return model.get_submodule(path)
    except AttributeError:
        for name, module in model.named_modules(remove_duplicate=False):
            if escape_control(name) == path:
                found: nn.Module = module
                return found
        raise


def unique_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())  # parameters() yields each Parameter once


def count_model(model: nn.Module, shapes: Sequence[Sequence[int]], device: str, dtype: DType) -> ModelTotals:
    """Rows, totals, uncounted ops and conv calls of one forward pass."""
    run = _forward(model, shapes, device, torch_dtype(dtype))
    tally = run.counter.tally
    total_macs = tally[""].macs
    rows = []
    for raw, module in model.named_modules():
        path = escape_control(raw)
        t = tally.get(path, _Tally())
        rows.append(ModelRow(
            path, escape_control(type(module).__name__), path.count(".") + 1 if path else 0, t.inputs, t.outputs,
            unique_params(module), t.macs,
            t.other, t.calls, t.macs / total_macs if total_macs else 0.0,
        ))  # fmt: skip
    idle = []
    for raw, module in model.named_modules():
        own = sum(p.numel() for p in module.parameters(recurse=False))
        path = escape_control(raw)
        t = tally.get(path, _Tally())
        if own and t.macs == 0 and t.other == 0:
            idle.append(OpCount(path or escape_control(type(model).__name__), own))
    return ModelTotals(
        params=unique_params(model), macs=total_macs, other_ops=tally[""].other, output_shapes=run.outputs,
        rows=tuple(rows), uncounted=tuple(OpCount(op, n) for op, n in sorted(run.counter.uncounted.items())),
        data_movement=tuple(OpCount(op, n) for op, n in sorted(run.counter.moved.items())),
        idle_params=tuple(idle), conv_calls=tuple(run.conv_calls),
    )  # fmt: skip


def total_check(
    model: nn.Module, shapes: Sequence[Sequence[int]], device: str, dtype: DType, totals: ModelTotals
) -> tuple[tuple[str, int, int], ...]:
    """The whole forward again under PyTorch's own FlopCounterMode."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs_of(shapes, device, torch_dtype(dtype)))
    return (("total MACs (FlopCounterMode / 2)", totals.macs, counter.get_total_flops() // 2),)
