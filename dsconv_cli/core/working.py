"""Show the working: each count of a comparison as its formula in symbols, then with the layer's numbers
substituted, then the value (the counting convention, docs/counting.md). Standard library only.

The records are built from a comparison's spec and its counted records; every value is the counted one, never
worked out here, so a test that evaluates each substituted expression holds the formula to the count.
Spatial dims are named ``L`` (1-D), ``H, W`` (2-D) and ``D, H, W`` (3-D); ``I`` is a stage's input size,
``O`` its output size, ``m`` the depth multiplier and ``g`` the standard conv's groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dsconv_cli.core.counting import ACT_OPS_PER_ELEMENT, BIAS_OPS_PER_ELEMENT, NORM_OPS_PER_ELEMENT
from dsconv_cli.core.results import Comparison, ConfigReport, LayerResult, LayerStats
from dsconv_cli.core.spec import COLUMNS, Activation, ConvSpec, Norm, PaddingMode, Slopes, Stage

DIM_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}

Value = int | float | tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    """One count worked out: ``formula = substituted (= terms summed) = value``."""

    quantity: str  # params, macs, other_ops, buffers, output_size, output_shape, param_ratio, mac_ratio, ...
    formula: str  # in symbols
    substituted: str  # the same with this layer's numbers in; evaluates to ``value``
    value: Value  # the counted value
    terms: tuple[int, ...] = ()  # a sum's parts, each a counted value (separable: depthwise + pointwise)
    dim: str = ""  # output_size: the spatial dim
    note: str = ""  # what the terms are, or which rule of the convention applies

    def to_dict(self) -> dict[str, Any]:
        """The JSON object: quantity, formula, substituted, value, and terms, dim and note where they apply."""
        out: dict[str, Any] = {
            "quantity": self.quantity,
            "formula": self.formula,
            "substituted": self.substituted,
            "value": list(self.value) if isinstance(self.value, tuple) else self.value,
        }
        if self.terms:
            out["terms"] = list(self.terms)
        if self.dim:
            out["dim"] = self.dim
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class ItemWork:
    """The working of one item: ``standard``, ``depthwise``, ``pointwise`` or ``separable``."""

    item: str
    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class Working:
    """A comparison's working: per item, then the ratios of the pair to the standard conv."""

    items: tuple[ItemWork, ...]
    ratios: tuple[Entry, ...]

    def item(self, name: str) -> ItemWork:
        return next(i for i in self.items if i.item == name)


# --- expressions: symbols and numbers built side by side ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Expr:
    sym: str
    num: str


def _x(symbol: str, value: int) -> _Expr:
    return _Expr(symbol, str(value))


def _const(value: int) -> _Expr:
    """A number of the convention itself (the 2 of batch norm's two params per channel)."""
    return _Expr(str(value), str(value))


def _join(separator: str, parts: Sequence[_Expr | None]) -> _Expr:
    kept = [p for p in parts if p is not None]
    return _Expr(separator.join(p.sym for p in kept), separator.join(p.num for p in kept))


def _mul(*factors: _Expr | None) -> _Expr:
    return _join(" · ", factors)


def _add(*terms: _Expr | None) -> _Expr:
    return _join(" + ", terms)


def _ratio(a: _Expr, b: _Expr) -> _Expr:
    return _Expr(f"({a.sym} / {b.sym})", f"({a.num} / {b.num})")


def _wrap(e: _Expr, head: str = "", tail: str = "") -> _Expr:
    return _Expr(f"{head}{e.sym}{tail}", f"{head}{e.num}{tail}")


# --- one stage ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Roles:
    """A stage's channels in the spec's symbols, and the factors its weights and MACs multiply by."""

    c_in: _Expr
    c_out: _Expr
    fan: _Expr | None  # input channels each output sees (C_in / g); None: one (depthwise)
    fan_transposed: _Expr | None  # output channels each input feeds (C_out / g), for transposed convs
    kernel: _Expr | None  # k_H · k_W; None for the 1×1 pointwise stage


def _kernel(k: Sequence[int]) -> _Expr:
    return _mul(*(_x(f"k_{d}", v) for d, v in zip(DIM_NAMES[len(k)], k, strict=True)))


def _roles(stage: Stage, spec: ConvSpec) -> _Roles:
    conv = stage.conv
    c_in, c_out, g = _x("C_in", spec.in_channels), _x("C_out", spec.out_channels), _x("g", conv.groups)
    m = _x("m", spec.multiplier) if spec.multiplier != 1 else None
    if stage.name == "depthwise":
        return _Roles(c_in, _mul(c_in, m), None, m, _kernel(conv.kernel_size))
    if stage.name == "pointwise":
        return _Roles(_mul(c_in, m), c_out, _mul(c_in, m), None, None)
    one = conv.groups == 1
    return _Roles(c_in, c_out, c_in if one else _ratio(c_in, g), c_out if one else _ratio(c_out, g),
                  _kernel(conv.kernel_size))  # fmt: skip


def _positions(letter: str, shape: Sequence[int]) -> list[_Expr]:
    """``O_H · O_W`` (or ``I_...``) of a shape's spatial dims."""
    spatial = shape[2:]
    return [_x(f"{letter}_{d}", v) for d, v in zip(DIM_NAMES[len(spatial)], spatial, strict=True)]


def _output_sizes(stage: Stage, stats: LayerStats) -> list[Entry]:
    """Per spatial dim: the conv's output-size formula, or the transposed conv's."""
    conv = stage.conv
    entries = []
    for i, d in enumerate(DIM_NAMES[conv.rank]):
        size_in, k = _x(f"I_{d}", stats.input_shape[2 + i]), _x(f"k_{d}", conv.kernel_size[i])
        s, dil = _x(f"s_{d}", conv.stride[i]), _x(f"d_{d}", conv.dilation[i])
        extent = _mul(dil, _wrap(k, "(", " − 1)"))  # d·(k − 1)
        note = ""
        if conv.transposed:
            op = _x(f"op_{d}", conv.output_padding[i] if conv.output_padding else 0)
            assert not isinstance(conv.padding, PaddingMode)  # 'same' is refused for transposed convs
            pad = _mul(_const(2), _x(f"p_{d}", conv.padding[i]))
            e = _Expr(f"({size_in.sym} − 1) · {s.sym} − {pad.sym} + {extent.sym} + {op.sym} + 1",
                      f"({size_in.num} − 1) · {s.num} − {pad.num} + {extent.num} + {op.num} + 1")  # fmt: skip
        else:
            if conv.padding == PaddingMode.SAME:
                pad = _Expr(f"P_{d}", f"({extent.num})")
                note = f"'same' pads P_{d} = d_{d} · (k_{d} − 1) in total (the extra one at the end for even kernels)"
            else:
                p = 0 if conv.padding == PaddingMode.VALID else conv.padding[i]
                pad = _mul(_const(2), _x(f"p_{d}", p))
                note = "'valid' pads nothing: p = 0" if conv.padding == PaddingMode.VALID else ""
            e = _Expr(f"floor(({size_in.sym} + {pad.sym} − {extent.sym} − 1) / {s.sym}) + 1",
                      f"floor(({size_in.num} + {pad.num} − {extent.num} − 1) / {s.num}) + 1")  # fmt: skip
        entries.append(Entry("output_size", e.sym, e.num, stats.output_shape[2 + i], dim=d, note=note))
    return entries


def _params(stage: Stage, roles: _Roles, stats: LayerStats) -> Entry:
    conv = stage.conv
    if conv.transposed:
        weights = _mul(roles.c_in, roles.fan_transposed, roles.kernel)
    else:
        weights = _mul(roles.c_out, roles.fan, roles.kernel)
    parts: list[tuple[str, _Expr]] = [("weights", weights)]
    if conv.bias:
        parts.append(("bias", roles.c_out))
    if stage.norm is Norm.BATCH:
        parts.append(("batch norm weight and bias", _mul(_const(2), roles.c_out)))
    if stage.act is Activation.PRELU:
        parts.append(("PReLU slopes", _const(1) if stage.slopes is Slopes.ONE else roles.c_out))
    e = _add(*(expr for _, expr in parts))
    note = " + ".join(label for label, _ in parts) if len(parts) > 1 else ""
    return Entry("params", e.sym, e.num, stats.params, note=note)


def _macs(stage: Stage, roles: _Roles, stats: LayerStats) -> Entry:
    n = _x("N", stats.input_shape[0])
    if stage.conv.transposed:
        e = _mul(n, roles.c_in, *_positions("I", stats.input_shape), roles.fan_transposed, roles.kernel)
        note = "transposed: each input element is scattered once"
    else:
        e = _mul(n, roles.c_out, *_positions("O", stats.output_shape), roles.fan, roles.kernel)
        note = ""
    return Entry("macs", e.sym, e.num, stats.macs, note=note)


def _other_ops(stage: Stage, roles: _Roles, stats: LayerStats) -> Entry | None:
    per_element = [(label, ops) for label, ops, present in (
        ("bias add", BIAS_OPS_PER_ELEMENT, stage.conv.bias),
        ("batch norm", NORM_OPS_PER_ELEMENT, stage.norm is Norm.BATCH),
        (stage.act.value, ACT_OPS_PER_ELEMENT, stage.act is not Activation.NONE),
    ) if present]  # fmt: skip
    if not per_element:
        return None
    elements = _mul(_x("N", stats.output_shape[0]), roles.c_out, *_positions("O", stats.output_shape))
    counts = [_const(ops) for _, ops in per_element]
    if len(counts) > 1:
        e = _mul(_wrap(_add(*counts), "(", ")"), elements)
    else:
        e = elements if per_element[0][1] == 1 else _mul(counts[0], elements)
    note = ", ".join(f"{label} {ops}" for label, ops in per_element) + " per output element; not MACs"
    return Entry("other_ops", e.sym, e.num, stats.elementwise_ops, note=note)


def _output_shape(roles: _Roles, stats: LayerStats) -> Entry:
    e = _wrap(_join(", ", [_x("N", stats.output_shape[0]), roles.c_out, *_positions("O", stats.output_shape)]),
              "(", ")")  # fmt: skip
    note = "1×1, stride 1, no padding: the spatial size is kept" if roles.kernel is None else ""
    return Entry("output_shape", e.sym, e.num, tuple(stats.output_shape), note=note)


def stage_work(stage: Stage, stats: LayerStats, spec: ConvSpec) -> ItemWork:
    """The working of one counted stage (``standard``, ``depthwise`` or ``pointwise``) of ``spec``."""
    roles = _roles(stage, spec)
    entries = [_params(stage, roles, stats), _macs(stage, roles, stats)]
    if roles.kernel is not None:
        entries += _output_sizes(stage, stats)
    entries.append(_output_shape(roles, stats))
    if (ops := _other_ops(stage, roles, stats)) is not None:
        entries.append(ops)
    if stage.norm is Norm.BATCH:
        e = _add(_mul(_const(2), roles.c_out), _const(1))
        entries.append(Entry("buffers", e.sym, e.num, stats.buffers,
                             note="batch norm running mean and variance + num_batches_tracked"))  # fmt: skip
    return ItemWork(stage.name, tuple(entries))


SUMMED = ("params", "macs", "other_ops", "buffers")


def sum_work(name: str, parts: Sequence[ItemWork], totals: dict[str, int]) -> ItemWork:
    """A variant's working: each summed quantity as its stages' formulas added, with each stage's value."""
    entries = []
    for quantity in SUMMED:
        found = [e for part in parts for e in part.entries if e.quantity == quantity]
        if not found:
            continue
        sym, num = " + ".join(e.formula for e in found), " + ".join(e.substituted for e in found)
        terms = tuple(int(e.value) for e in found if isinstance(e.value, int)) if len(found) > 1 else ()
        entries.append(Entry(quantity, sym, num, totals[quantity], terms=terms))
    return ItemWork(name, tuple(entries))


def _ratio_entries(c: Comparison) -> tuple[Entry, ...]:
    s = c.spec
    std, sep = c.standard, c.separable
    entries = [Entry("param_ratio", "params_sep / params_std", f"{sep.params} / {std.params}", c.param_ratio)]
    if std.macs == 0 and c.per_sample_macs:
        one_std, one_sep = c.per_sample_macs
        entries.append(Entry("mac_ratio", "MACs_sep / MACs_std", f"{one_sep} / {one_std}", c.mac_ratio,
                             note="batch 0: the MACs of one sample"))  # fmt: skip
    else:
        entries.append(Entry("mac_ratio", "MACs_sep / MACs_std", f"{sep.macs} / {std.macs}", c.mac_ratio))
    k = _kernel(s.kernel_size)
    k = _wrap(k, "(", ")") if len(s.kernel_size) > 1 else k
    core = _wrap(_add(_wrap(_x("C_out", s.out_channels), "1/"), _wrap(k, "1/")), "(", ")")
    factors = [_x("m", s.multiplier) if s.multiplier != 1 else None, _x("g", s.groups) if s.groups != 1 else None]
    e = _mul(*factors, core) if any(factors) else _Expr(core.sym[1:-1], core.num[1:-1])
    note = "MobileNet eq. 5" + (", generalised to multiplier m and groups g" if any(factors) else "")
    if s.transposed:
        note += ("; not the MAC ratio of transposed convs: their MACs scale with the input, the pointwise "
                 "stage's with the output")  # fmt: skip
    entries.append(Entry("theoretical_ratio", e.sym, e.num, c.theoretical_ratio, note=note))
    return tuple(entries)


def comparison_work(c: Comparison) -> Working:
    """The working of a comparison: standard, depthwise, pointwise, separable, then the ratios."""
    (standard,), separable = c.spec.standard(), c.spec.separable()
    items = [stage_work(standard, c.standard.stages[0], c.spec)]
    stages = [stage_work(stage, stats, c.spec) for stage, stats in zip(separable, c.separable.stages, strict=True)]
    totals = {q: int(getattr(c.separable, "elementwise_ops" if q == "other_ops" else q)) for q in SUMMED}
    items += [*stages, sum_work("separable", stages, totals)]
    return Working(tuple(items), _ratio_entries(c))


def layer_work(layer: LayerResult) -> Working | None:
    """The working of a conv layer of a stack: the items its columns hold, and the ratios where its columns are
    a standard conv and its pair; None for other kinds and for residual layers (their columns add a shortcut)."""
    c = layer.comparison
    if c is None or layer.options.get("residual"):
        return None
    names: list[str] = []
    for column in COLUMNS:
        stages = [s.name for s in layer.stages(column)]
        names += [*stages, "separable"] if len(stages) > 1 else stages
    work = comparison_work(c)
    pair = names == ["standard", "depthwise", "pointwise", "separable"]
    return Working(tuple(i for i in work.items if i.item in names), work.ratios if pair else ())


def layers_work(r: ConfigReport) -> list[tuple[str, Working, Comparison | None]]:
    """Each conv layer's working, with its comparison where its columns are a pair (to draw), for a config
    without a sweep (a sweep's working is in its JSON)."""
    found = []
    for stack in r.stacks if not r.sweep else ():
        for layer in stack.layers:
            if (work := layer_work(layer)) is not None:
                found.append((layer.name, work, layer.comparison if work.ratios else None))
    return found
