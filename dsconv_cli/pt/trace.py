"""One forward pass counted op by op and charged to every module on the call stack.

Every op is dispatched through one ``TorchDispatchMode``; its MACs and other ops come from the op rules
(``oprules.py``: PyTorch's own ``FlopCounterMode`` formulas, halved, for what does multiply-accumulates),
decomposing what they do not know exactly as ``FlopCounterMode`` does, so the totals are its totals by
construction. Forward hooks keep each module's calls, shapes and conv calls.

The same forward runs on the meta device or, where a model reads values, on the CPU; PyTorch's fused fast paths
(MultiheadAttention's, the CPU's fused scaled-dot-product attention, oneDNN's LSTM) are switched off while
counting, so both run the same ops and count the same. The trace also follows two things through the ops: which
parameters each op read (a parameter no op read is idle, whichever module called the op), and where each
depthwise conv's output goes through norms, activations and elementwise ops (the 1x1 conv that consumes it is
its existing separable pair).
"""

from __future__ import annotations

import sys
import types
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode
from torch.utils.weak import WeakIdKeyDictionary

from dsconv_cli.core.advise import is_depthwise
from dsconv_cli.core.formatting import escape_control, exception_text
from dsconv_cli.core.results import ConvCall, Memory, ModelRow, ModelTotals, OpCount, OpTally, SharedParam
from dsconv_cli.core.spec import ConvLayer, PaddingMode
from dsconv_cli.errors import DsconvError, TargetError
from dsconv_cli.pt import oprules
from dsconv_cli.pt.inputs import Call, input_bytes, leaves_of, tensor_leaves

KIND_COUNTED, KIND_MOVED, KIND_UNCOUNTED = "counted", "data movement", "uncounted"


def _shapes(value: Any) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(t.shape) for _, t in tensor_leaves(value))


def _bytes(value: Any) -> int:
    return sum(t.numel() * t.element_size() for _, t in {id(t): (n, t) for n, t in tensor_leaves(value)}.values())


@dataclass
class _Tally:
    macs: int = 0
    other: int = 0
    calls: int = 0
    inputs: tuple[tuple[int, ...], ...] = ()
    outputs: tuple[tuple[int, ...], ...] = ()
    activation_bytes: int = 0


@dataclass
class _OpTally:
    calls: int = 0
    macs: int = 0
    other: int = 0
    kind: str = KIND_COUNTED


@dataclass
class _Flow:
    """What the forward's tensors came from: parameters (read or viewed) and depthwise convs' outputs."""

    params: dict[int, str]  # id of each parameter -> its name
    views: WeakIdKeyDictionary = field(default_factory=WeakIdKeyDictionary)  # view or copy -> parameter names
    read: set[str] = field(default_factory=set)  # parameters some op other than a view or copy read
    carried: WeakIdKeyDictionary = field(default_factory=WeakIdKeyDictionary)  # tensor -> depthwise conv path


_PASS_ON = frozenset({"aten::_to_copy", "aten::clone", "aten::contiguous", "aten::alias", "aten::detach",
                      "aten::lift_fresh", "aten::lift_fresh_copy"})  # fmt: skip


class _Counter(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Charges every op's MACs and elementwise work to each module on the stack when it ran."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        return False  # else PyTorch wraps __torch_dispatch__ in dynamo's disable, importing dynamo to do so

    def __init__(self, params: dict[int, str]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.stack: list[str] = []
        self.in_conv: list[bool] = []  # whether each open module is a conv module
        self.entry_macs: list[int] = []  # each open module's MACs when it was entered
        self.tally: dict[str, _Tally] = defaultdict(_Tally)
        self.ops: dict[str, _OpTally] = defaultdict(_OpTally)
        self.flow = _Flow(params)
        self.functional: Counter[str] = Counter()  # module path -> conv ops it called itself

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name, rule, users = oprules.resolve(func)
        if rule is oprules.Fixed.SKIP:
            return NotImplemented
        if not users and not oprules.has_formula(func) and func is not torch.ops.prim.device.default:
            with self:  # as FlopCounterMode: composite ops are counted through what they decompose into
                decomposed = func.decompose(*args, **kwargs)
                if decomposed is not NotImplemented:
                    return decomposed
        out = func(*args, **kwargs)
        op = self.ops[name]
        op.calls += 1
        if rule is None:
            op.kind = KIND_UNCOUNTED
        elif rule is oprules.Fixed.MOVE:
            op.kind = KIND_MOVED
        else:
            cost = rule(args, kwargs, out)
            op.macs += cost.macs
            op.other += cost.other
            for path in dict.fromkeys(self.stack):
                self.tally[path].macs += cost.macs
                self.tally[path].other += cost.other
            if name in oprules.CONVS and not (self.in_conv and self.in_conv[-1]):
                self.functional[self.stack[-1] if self.stack else ""] += 1
        self._follow(func, name, rule, args, kwargs, out)
        return out

    def _follow(self, func: Any, name: str, rule: Any, args: Any, kwargs: Any, out: Any) -> None:
        """Which parameters the op read, or passed on in a view or copy; and a depthwise output passed on."""
        flow = self.flow
        tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        tensors += [b for a in args if isinstance(a, list | tuple) for b in a if isinstance(b, torch.Tensor)]
        if not tensors:
            return
        first = out[0] if isinstance(out, tuple | list) and out else out
        passes = not oprules.has_formula(func)  # elementwise ops, views and copies pass a depthwise output on
        sources: set[str] = set()
        for t in tensors:
            param = flow.params.get(id(t))
            if param is not None:
                sources.add(param)
            elif t in flow.views:
                sources |= flow.views[t]
            if passes and isinstance(first, torch.Tensor) and t is not first and t in flow.carried:
                if t.shape == first.shape:
                    flow.carried[first] = flow.carried[t]
        if not sources:
            return
        if (getattr(func, "is_view", False) or name in _PASS_ON) and isinstance(first, torch.Tensor):
            flow.views[first] = frozenset(sources)
        else:
            flow.read |= sources


@contextmanager
def _hooks(model: nn.Module, counter: _Counter, conv_calls: list[ConvCall]) -> Iterator[None]:
    handles = []
    paths = {id(m): escape_control(p) for p, m in model.named_modules()}  # a model's names print as plain text
    leaves = {id(m) for m in model.modules() if next(m.children(), None) is None}
    sources: list[str | None] = []

    def pre(module: nn.Module, args: Any, kwargs: Any) -> None:
        path = paths[id(module)]
        counter.stack.append(path)
        conv = isinstance(module, nn.modules.conv._ConvNd)
        counter.in_conv.append(conv)
        tally = counter.tally[path]
        tally.calls += 1
        if tally.calls == 1:
            tally.inputs = _shapes([args, kwargs])
        counter.entry_macs.append(tally.macs)
        if conv and module.in_channels and module.out_channels:
            x = args[0] if args else kwargs.get("input")
            carried = counter.flow.carried
            sources.append(carried[x] if isinstance(x, torch.Tensor) and x in carried else None)

    def post(module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        path = counter.stack.pop()
        counter.in_conv.pop()
        tally = counter.tally[path]
        entered = counter.entry_macs.pop()
        if tally.calls == 1:
            tally.outputs = _shapes(output)
        if id(module) in leaves:
            written = _bytes(output)
            for open_path in dict.fromkeys([*counter.stack, path]):
                counter.tally[open_path].activation_bytes += written
        if isinstance(module, nn.modules.conv._ConvNd) and module.in_channels and module.out_channels:
            done = tally.macs - entered  # (a conv of 0 channels does nothing, and has no pair to advise)
            layer = conv_layer(module)
            x = args[0] if args else kwargs.get("input")
            conv_calls.append(ConvCall(path, layer, _shapes(x)[0], _shapes(output)[0], done, sources.pop()))
            if is_depthwise(layer) and isinstance(output, torch.Tensor):
                counter.flow.carried[output] = path

    for module in model.modules():
        handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(module.register_forward_hook(post, with_kwargs=True))
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


# --- the same ops on every device -----------------------------------------------------------------


def _plain(value: Any) -> bool:
    """A plain bool or int, or a tuple or list of them (a shape): not one of PyTorch's symbolic values."""
    kind = type(value)
    if kind is bool or kind is int:
        return True
    return isinstance(value, tuple | list) and all(type(v) is int or type(v) is bool for v in value)  # torch.Size


def _sym_eq(x: Any, y: Any) -> bool:
    if isinstance(x, tuple | list) and isinstance(y, tuple | list):
        return len(x) == len(y) and all(_sym_eq(a, b) for a, b in zip(x, y, strict=True))
    return bool(x == y)


_PLAIN_ANSWERS: dict[str, dict[str, Any]] = {
    "torch.fx.experimental.symbolic_shapes": {
        "expect_true": lambda a, skip=0: a,
        "guard_bool": lambda a: a,
        "guard_or_true": lambda a: a,
        "guard_or_false": lambda a: a,
        "guard_size_oblivious": lambda a: bool(a),
        "statically_known_true": lambda a: a,
        "statically_known_false": lambda a: not a,
        "definitely_true": lambda a: bool(a),
        "definitely_false": lambda a: not a,
        "sym_and": lambda x, *others: x and all(others),
        "sym_or": lambda x, *others: x or any(others),
        "sym_eq": _sym_eq,
        "guard_int": lambda a: a,
        "guarding_hint_or_throw": lambda a: a,
        "has_guarding_hint": lambda a: True,
        "is_concrete_int": lambda a: True,
        "is_nested_int": lambda s: False,
    },
}  # what PyTorch's meta kernels ask of plain (not symbolic) bools and ints, answered without importing sympy


class _AnyBasic(type):
    """``isinstance(x, sympy.Basic)`` answered without importing sympy: nothing is an instance of a class of a
    library not yet imported; once it is, the real class answers."""

    def __instancecheck__(cls, obj: Any) -> bool:
        real = sys.modules.get("sympy")
        return real is not None and not isinstance(real, _StandIn) and isinstance(obj, real.Basic)

    def __subclasscheck__(cls, sub: Any) -> bool:
        real = sys.modules.get("sympy")
        return real is not None and not isinstance(real, _StandIn) and issubclass(sub, real.Basic)


class _Basic(metaclass=_AnyBasic):
    """Stands for ``sympy.Basic`` in ``isinstance`` checks (``_prims_common.elementwise_dtypes``)."""


class _StandIn(types.ModuleType):
    """Stands in, while counting, for a module that PyTorch imports on a Python meta kernel's first call only to
    answer a question whose answer is plain for plain values: ``torch._dynamo`` (1.6 s to import), asked by
    ``torch._disable_dynamo`` to mark the kernels as not to be compiled; ``torch.fx.experimental.symbolic_shapes``
    (0.7 s), asked by ``torch._check`` and the meta kernels whether a bool is true or two sizes are equal; and
    ``sympy`` (0.4 s), asked by the elementwise kernels whether an argument is a symbolic expression. A symbolic
    value, or any other question, imports the real module, which then answers for good (a module that keeps a
    stand-in it imported meanwhile reaches the real one through it)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.marked: list[Any] = []  # what dynamo was asked to mark, to be unmarked after
        for attr, plain in _PLAIN_ANSWERS.get(name, {}).items():
            setattr(self, attr, self._answer(attr, plain))

    def _answer(self, attr: str, plain: Any) -> Any:
        def answer(*args: Any, **kwargs: Any) -> Any:
            if not kwargs and all(map(_plain, args)):
                return plain(*args)
            return getattr(self._real(), attr)(*args, **kwargs)

        return answer

    def disable(self, fn: Any = None, recursive: bool = True, *, reason: Any = None, wrapping: bool = True) -> Any:
        if self.__name__ != "torch._dynamo" or fn is None:
            return self._real().disable(fn, recursive, reason=reason, wrapping=wrapping)
        self.marked.append(fn)
        return fn

    def _real(self) -> Any:
        import importlib

        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return importlib.import_module(self.__name__)

    def __getattr__(self, name: str) -> Any:
        if name == "__path__" and self.__name__ in _PACKAGES:  # a submodule imported: the real package
            return self._real().__path__
        if name.startswith("__") and name.endswith("__"):  # the import system's questions (``__path__``: a module)
            raise AttributeError(name)
        stand_in = _UNTIL_IMPORTED.get(self.__name__, {}).get(name)
        if stand_in is not None and sys.modules.get(self.__name__) in (None, self):
            return stand_in  # asked again each time: the real one once the real module is imported
        return getattr(self._real(), name)


_UNTIL_IMPORTED: dict[str, dict[str, Any]] = {"sympy": {"Basic": _Basic}}
_DEFERRED = ("torch._dynamo", "torch.fx.experimental.symbolic_shapes", "sympy")
_PACKAGES = ("torch._dynamo", "sympy")


@contextmanager
def _deferred_imports() -> Iterator[None]:
    stand_ins = [_StandIn(name) for name in _DEFERRED if name not in sys.modules]
    for stand_in in stand_ins:
        sys.modules[stand_in.__name__] = stand_in
    try:
        yield
    finally:
        for stand_in in stand_ins:
            if sys.modules.get(stand_in.__name__) is stand_in:
                del sys.modules[stand_in.__name__]
            for fn in stand_in.marked:  # unmarked: the real dynamo marks them on their next call
                vars(fn).pop("__dynamo_disable", None)


@contextmanager
def counting_paths() -> Iterator[None]:
    """PyTorch's fused fast paths off, so the CPU runs the ops the meta device runs and every op is counted:
    MultiheadAttention's and TransformerEncoderLayer's fast path, the fused CPU kernels of scaled-dot-product
    attention (the math one is used), and oneDNN (its fused LSTM)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with ExitStack() as stack:
        fast = torch.backends.mha.get_fastpath_enabled()
        torch.backends.mha.set_fastpath_enabled(False)
        stack.callback(torch.backends.mha.set_fastpath_enabled, fast)
        mkldnn = torch._C._get_mkldnn_enabled()
        torch._C._set_mkldnn_enabled(False)  # not torch.backends.mkldnn.flags(), which also resets TF32 and warns
        stack.callback(torch._C._set_mkldnn_enabled, mkldnn)
        stack.enter_context(sdpa_kernel([SDPBackend.MATH]))
        stack.enter_context(_deferred_imports())
        yield


# --- counting -------------------------------------------------------------------------------------


@dataclass
class _Run:
    counter: _Counter
    conv_calls: list[ConvCall]
    output: Any


def _describe(shapes: tuple[tuple[int, ...], ...]) -> str:
    return ", ".join("(" + ", ".join(map(str, s)) + ")" for s in shapes)


def _forward(model: nn.Module, call: Call, params: dict[int, str]) -> _Run:
    counter, conv_calls = _Counter(params), list[ConvCall]()
    args, kwargs = call
    with _hooks(model, counter, conv_calls), torch.no_grad(), counting_paths():
        try:
            with counter:
                y = model(*args, **kwargs)  # the root's own hooks push it as path ""
        except DsconvError:
            raise
        except Exception as exc:
            where = counter.stack[-1] if counter.stack else ""
            name = where or type(model).__name__
            seen = counter.tally[where].inputs if where else _shapes([args, kwargs])
            raise TargetError(
                f"the forward failed in {escape_control(name)} "
                f"({escape_control(type(get_module(model, where)).__name__)}) on inputs {_describe(seen)}: "
                f"{exception_text(exc)}"
            ) from exc
    return _Run(counter, conv_calls, y)


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


def _param_names(model: nn.Module) -> dict[int, str]:
    return {id(p): escape_control(name) for name, p in model.named_parameters()}  # each once, by its first name


def shared_params(model: nn.Module) -> tuple[SharedParam, ...]:
    """Parameters held by more than one module (tied weights), with the paths of the modules holding them."""
    names = _param_names(model)
    holders: dict[int, list[str]] = defaultdict(list)
    sizes: dict[int, int] = {}
    for path, module in model.named_modules():
        for p in module.parameters(recurse=False):
            holders[id(p)].append(escape_control(path))
            sizes[id(p)] = p.numel()
    return tuple(SharedParam(names[key], sizes[key], tuple(paths)) for key, paths in holders.items() if len(paths) > 1)


def _element_bytes(tensors: Mapping[int, torch.Tensor]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def count_model(model: nn.Module, call: Call) -> ModelTotals:
    """Rows, totals, uncounted ops and conv calls of one forward pass on ``call`` (its device's inputs)."""
    params = _param_names(model)
    run = _forward(model, call, params)
    counter = run.counter
    tally = counter.tally
    total_macs = tally[""].macs
    rows = []
    for raw, module in model.named_modules():
        path = escape_control(raw)
        t = tally.get(path, _Tally())
        own = {id(p): p for p in module.parameters()}
        trainable = sum(p.numel() for p in own.values() if p.requires_grad)
        rows.append(ModelRow(
            path, escape_control(type(module).__name__), path.count(".") + 1 if path else 0, t.inputs, t.outputs,
            unique_params(module), t.macs,
            t.other, t.calls, t.macs / total_macs if total_macs else 0.0, trainable, _element_bytes(own),
            _element_bytes({id(b): b for b in module.buffers()}), t.activation_bytes,
        ))  # fmt: skip
    idle = []
    for raw, module in model.named_modules():
        unread = sum(p.numel() for p in module.parameters(recurse=False) if params[id(p)] not in counter.flow.read)
        if unread:
            idle.append(OpCount(escape_control(raw) or escape_control(type(model).__name__), unread))
    ops = counter.ops
    by_kind: dict[str, list[OpCount]] = defaultdict(list)
    for name, op in sorted(ops.items()):
        by_kind[op.kind].append(OpCount(name, op.calls))
    unruled = tuple(o for o in by_kind[KIND_UNCOUNTED] if oprules.multiplies(o.name))
    by_op = sorted((OpTally(n, o.calls, o.macs, o.other, o.kind) for n, o in ops.items()),
                   key=lambda o: (-o.macs, -o.other_ops, o.name))  # fmt: skip
    all_params = {id(p): p for p in model.parameters()}
    buffers = {id(b): b for b in model.buffers()}
    memory = Memory(input_bytes(call), _element_bytes(all_params), _element_bytes(buffers), tally[""].activation_bytes)
    outputs = leaves_of(run.output)
    return ModelTotals(
        params=unique_params(model), macs=total_macs, other_ops=tally[""].other,
        output_shapes=tuple(leaf.shape for leaf in outputs), rows=tuple(rows),
        uncounted=tuple(by_kind[KIND_UNCOUNTED]), data_movement=tuple(by_kind[KIND_MOVED]),
        idle_params=tuple(idle), conv_calls=tuple(run.conv_calls),
        trainable_params=sum(p.numel() for p in all_params.values() if p.requires_grad),
        buffers=sum(b.numel() for b in buffers.values()), memory=memory, outputs=outputs,
        shared_params=shared_params(model),
        functional_convs=tuple(OpCount(p or escape_control(type(model).__name__), n)
                               for p, n in counter.functional.items()),
        unruled_macs=unruled, by_op=tuple(by_op),
    )  # fmt: skip


def total_check(model: nn.Module, call: Call, totals: ModelTotals) -> tuple[tuple[str, int, int], ...]:
    """The whole forward again under PyTorch's own FlopCounterMode (on the same paths), and that no op which
    multiplies and accumulates ran without a rule."""
    args, kwargs = call
    with FlopCounterMode(display=False) as counter, torch.no_grad(), counting_paths():
        model(*args, **kwargs)
    unruled = sum(o.count for o in totals.unruled_macs)
    return (("total MACs (FlopCounterMode / 2)", totals.macs, counter.get_total_flops() // 2),
            ("calls of ops that multiply-accumulate without a rule", unruled, 0))  # fmt: skip
