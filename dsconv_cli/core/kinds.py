"""One registry of layer kinds, as fvcore keeps one table of op handlers.

Each kind is declared once: the config fields it takes and requires, and how it is counted on an
input shape (which fixes the stages in each column). The config loader, the JSON schema, the
counting of stacks and the cross-check all read this table; the module builder (``pt/builder.py``)
keeps one build function per kind beside it, and a test checks that every kind has one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dsconv_cli.core import blocks
from dsconv_cli.core.counting import check_representable, compare, global_avg_pool_stats, linear_stats
from dsconv_cli.core.results import LayerResult, StackResult, VariantStats
from dsconv_cli.core.spec import LAYER_FIELDS, LayerDecl, LayerKind, resolve_spec
from dsconv_cli.errors import LayerError, SpecError

Shape = tuple[int, ...]
Planner = Callable[[dict[str, Any], Shape, str], blocks.Plan]  # (options, input shape, column)


@dataclass(frozen=True)
class Kind:
    """How one layer kind is declared, counted and built."""

    kind: LayerKind
    summary: str  # one line for README and help
    fields: frozenset[str]  # config fields the kind accepts
    required: tuple[str, ...]  # config fields it cannot do without
    count: Callable[[LayerDecl, Shape], LayerResult]
    spatial: bool = True  # needs an input with spatial dims
    plan: Planner | None = None  # block kinds: the parts of each column, which count and build both read


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ")"


# --- conv kinds: a standard conv and its separable pair, placed in the columns by kind ----------

# Which variant of the conv stands in each column (standard, separable).
_CONV_COLUMNS = {
    LayerKind.COMPARE: ("standard", "separable"),
    LayerKind.STANDARD: ("standard", "standard"),
    LayerKind.SEPARABLE: ("separable", "separable"),
}


BLOCK_OPTIONS = ("residual", "width_multiplier", "min_width_multiplier")  # conv kinds' fields beyond the spec's


def _count_conv(decl: LayerDecl, shape: Shape) -> LayerResult:
    options = {k: v for k, v in decl.options.items() if k not in BLOCK_OPTIONS}
    if "out_channels" in options:
        options["out_channels"] = blocks.scaled(int(options["out_channels"]), decl.options)
    declared = options.pop("in_channels", None)
    if declared is not None and declared != shape[1]:
        raise LayerError(
            f"{decl.path}.in_channels",
            f"{decl.path}.in_channels {declared}: the layer's input is {_shape(shape)} "
            f"with {shape[1]} channels; leave in_channels out or make it {shape[1]}",
        )
    try:
        spec = resolve_spec(rank=len(shape) - 2, in_channels=shape[1], **options)
        comparison = compare(spec, shape, analysed=False)
    except SpecError as error:
        raise _located(decl, error, shape) from None
    variants = {"standard": comparison.standard, "separable": comparison.separable}
    stages = {"standard": spec.standard(), "separable": spec.separable()}
    left, right = _CONV_COLUMNS[decl.kind]
    columns = {"standard": variants[left].stages, "separable": variants[right].stages}
    if decl.options.get("residual"):
        for column, variant in (("standard", left), ("separable", right)):
            out = variants[variant].output_shape
            try:
                plan = blocks.with_residual(stages[variant], decl.options, shape, out)
                columns[column] = blocks.count_plan(plan, shape)
            except SpecError as error:
                raise _located(decl, error, shape) from None
    return LayerResult(
        decl.name,
        decl.kind,
        VariantStats("standard", columns["standard"]),
        VariantStats("separable", columns["separable"]),
        comparison,
        options=dict(decl.options),
        column_stages={"standard": stages[left], "separable": stages[right]},
    )


def _located(decl: LayerDecl, error: SpecError, shape: Shape) -> LayerError:
    path = f"{decl.path}.{error.field}"
    return LayerError(path, f"{error.labelled(path)} (layer input {_shape(shape)})")


STACK_FIELDS = frozenset({"add", "share"})  # every kind with an output (share: with weights) takes these


def _conv_kind(kind: LayerKind, summary: str) -> Kind:
    fields = frozenset(f.name for f in LAYER_FIELDS) | STACK_FIELDS | set(BLOCK_OPTIONS)
    return Kind(kind, summary, fields, ("out_channels",), _count_conv)


# --- blocks: a plan of parts per column -------------------------------------------------------------


def _plan_kind_counter(planner: Any) -> Callable[[LayerDecl, Shape], LayerResult]:
    def count(decl: LayerDecl, shape: Shape) -> LayerResult:
        try:
            columns = {c: blocks.count_plan(planner(decl.options, shape, c), shape) for c in ("standard", "separable")}
        except SpecError as error:
            raise _located(decl, error, shape) from None
        return LayerResult(decl.name, decl.kind, VariantStats("standard", columns["standard"]),
                           VariantStats("separable", columns["separable"]), options=dict(decl.options))  # fmt: skip

    return count


def _se_planner(options: dict[str, Any], shape: Shape, column: str) -> blocks.Plan:
    return blocks.squeeze_excite(options, shape)


SE_FIELDS = frozenset({"se", "se_channels", "se_act", "se_gate"})
INVERTED_RESIDUAL_FIELDS = (
    frozenset({"in_channels", "out_channels", "kernel_size", "stride", "dilation", "expand", "norm", "act", "slopes"})
    | SE_FIELDS | STACK_FIELDS | set(BLOCK_OPTIONS)
)  # fmt: skip


# --- pooling with a window ----------------------------------------------------------------------------


def _count_pool(decl: LayerDecl, shape: Shape) -> LayerResult:
    options = dict(decl.options)
    if isinstance(options.get("padding"), str):
        if options["padding"] != "valid":
            raise LayerError(f"{decl.path}.padding", f"{decl.path}.padding {options['padding']}: pooling takes "
                             "integers or valid (0), e.g. 1")  # fmt: skip
        options["padding"] = 0
    try:
        stats, resolved = blocks.pool_stats(decl.name, shape, options)
    except SpecError as error:
        raise _located(decl, error, shape) from None
    return _same_in_both(replace(decl, options={**decl.options, **resolved}), stats)


# --- kinds counted whole: the same module in both columns ----------------------------------------


def _same_in_both(decl: LayerDecl, stats: Any) -> LayerResult:
    return LayerResult(
        decl.name,
        decl.kind,
        VariantStats("standard", (stats,)),
        VariantStats("separable", (stats,)),
        options=dict(decl.options),
    )


def _count_linear(decl: LayerDecl, shape: Shape) -> LayerResult:
    stats = linear_stats(decl.name, shape, decl.options["out_features"], decl.options.get("bias", False))
    return _same_in_both(decl, stats)


def _count_global_avg_pool(decl: LayerDecl, shape: Shape) -> LayerResult:
    return _same_in_both(decl, global_avg_pool_stats(decl.name, shape))


KINDS: dict[LayerKind, Kind] = {
    k.kind: k
    for k in (
        _conv_kind(LayerKind.COMPARE, "a standard conv in one column, its separable pair in the other"),
        _conv_kind(LayerKind.STANDARD, "the standard conv in both columns (a stem conv)"),
        _conv_kind(LayerKind.SEPARABLE, "the separable pair in both columns"),
        Kind(
            LayerKind.LINEAR,
            "flatten, then a fully connected layer",
            frozenset({"out_features", "bias"}) | STACK_FIELDS,
            ("out_features",),
            _count_linear,
            spatial=False,
        ),
        Kind(
            LayerKind.GLOBAL_AVG_POOL,
            "average over all spatial positions",
            frozenset({"add"}),
            (),
            _count_global_avg_pool,
        ),
        Kind(
            LayerKind.MAX_POOL,
            "max pooling with kernel, stride (default: the kernel) and padding",
            frozenset({"kernel_size", "stride", "padding", "add"}),
            ("kernel_size",),
            _count_pool,
        ),
        Kind(
            LayerKind.AVG_POOL,
            "average pooling with kernel, stride (default: the kernel) and padding",
            frozenset({"kernel_size", "stride", "padding", "add"}),
            ("kernel_size",),
            _count_pool,
        ),
        Kind(
            LayerKind.INVERTED_RESIDUAL,
            "expand 1×1, depthwise k×k, optional squeeze-excite, linear 1×1 projection, identity add when shapes "
            "allow (MobileNetV2, EfficientNet); the standard column has a full k×k conv of the same width",
            INVERTED_RESIDUAL_FIELDS,
            ("out_channels",),
            _plan_kind_counter(blocks.inverted_residual),
            plan=blocks.inverted_residual,
        ),
        Kind(
            LayerKind.SQUEEZE_EXCITE,
            "squeeze-excite: global pool, 1×1 conv to se·C (or se_channels), act, 1×1 conv back, gate, scale",
            SE_FIELDS | STACK_FIELDS,
            (),
            _plan_kind_counter(_se_planner),
            plan=_se_planner,
        ),
    )
}

ALL_FIELDS: frozenset[str] = frozenset().union(*(k.fields for k in KINDS.values()))


def count_layer(decl: LayerDecl, input_shape: Sequence[int]) -> LayerResult:
    """Count one declared layer on ``input_shape``; errors name the layer's path and both shapes."""
    shape = tuple(input_shape)
    kind = KINDS[decl.kind]
    if kind.spatial and len(shape) < 3:
        raise LayerError(
            f"{decl.path}.kind",
            f"{decl.path}.kind {decl.kind.value}: needs an input with spatial dims, but the previous "
            f"layer outputs {_shape(shape)}; put it before the linear layer",
        )
    try:
        result = kind.count(decl, shape)
        check_representable(shape, (result.standard, result.separable))
    except LayerError as error:
        if error.path:
            raise
        raise LayerError(decl.path, f"{decl.path}: {error}") from None
    return result


def count_stack(
    name: str, decls: Sequence[LayerDecl], input_shape: Sequence[int], point: dict[str, Any] | None = None
) -> StackResult:
    """Layers in order, each fed the previous layer's output (both columns keep the same shapes)."""
    layers: list[LayerResult] = []
    shape = tuple(input_shape)
    for decl in decls:
        layer = count_layer(decl, decl.input_shape or shape)
        if decl.share is not None:
            layer = _shared(decl, layer, layers)
        if decl.add is not None:
            layer = _added(decl, layer, layers)
        layers.append(layer)
        shape = layer.output_shape
    return StackResult(name, tuple(input_shape), tuple(layers), dict(point or {}))


def _earlier(decl: LayerDecl, field_name: str, target: str, layers: Sequence[LayerResult]) -> LayerResult:
    found = next((layer for layer in layers if layer.name == target), None)
    if found is None:
        names = ", ".join(layer.name for layer in layers) or "none"
        raise LayerError(f"{decl.path}.{field_name}", f"{decl.path}.{field_name} {target}: no earlier layer of "
                         f"that name (earlier: {names})")  # fmt: skip
    return found


def _shared(decl: LayerDecl, layer: LayerResult, layers: Sequence[LayerResult]) -> LayerResult:
    """The layer with its weights counted at the layer it shares them with (its MACs stay its own)."""
    source = _earlier(decl, "share", decl.share or "", layers)
    if source.kind is not layer.kind:
        raise LayerError(f"{decl.path}.share", f"{decl.path}.share {source.name}: {source.name} is a "
                         f"{source.kind.value} layer and this one a {layer.kind.value} layer; a layer shares the "
                         f"weights of its own kind")  # fmt: skip
    if source.standard.params != layer.standard.params or source.separable.params != layer.separable.params:
        raise LayerError(f"{decl.path}.share", f"{decl.path}.share {source.name}: its weights do not fit this layer's "
                         f"input {_shape(layer.input_shape)}: {source.name} has {source.standard.params:,} params "
                         f"(standard column) on {_shape(source.input_shape)}, this input would need "
                         f"{layer.standard.params:,}; the input channels must match")  # fmt: skip

    def unowned(variant: VariantStats) -> VariantStats:
        return VariantStats(variant.name, tuple(replace(st, params=0, buffers=0) for st in variant.stages))

    return replace(layer, standard=unowned(layer.standard), separable=unowned(layer.separable), share=source.name)


def _added(decl: LayerDecl, layer: LayerResult, layers: Sequence[LayerResult]) -> LayerResult:
    """The layer with an earlier layer's output added to its own: one op per element in both columns."""
    source = _earlier(decl, "add", decl.add or "", layers)
    if source.output_shape != layer.output_shape:
        raise LayerError(f"{decl.path}.add", f"{decl.path}.add {source.name}: its output {_shape(source.output_shape)} "
                         f"does not match this layer's {_shape(layer.output_shape)}")  # fmt: skip
    add = blocks.add_stats("add", layer.output_shape)
    return replace(
        layer,
        standard=VariantStats("standard", (*layer.standard.stages, add)),
        separable=VariantStats("separable", (*layer.separable.stages, add)),
        add=source.name,
    )
