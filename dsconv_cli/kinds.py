"""One registry of layer kinds, as fvcore keeps one table of op handlers.

Each kind is declared once: the config fields it takes and requires, how it is counted on an
input shape (which fixes the stages in each column), and how it is built as a real module. The
config loader, the counting of stacks, the module builder and the cross-check all read this table;
adding a kind means adding its entry here, its tests and its README line.

Nothing here imports torch at module level: ``build`` functions import the builder when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dsconv_cli.counting import compare, global_avg_pool_stats, linear_stats
from dsconv_cli.errors import LayerError, SpecError
from dsconv_cli.results import LayerResult, StackResult, VariantStats
from dsconv_cli.spec import LAYER_FIELDS, LayerDecl, LayerKind, resolve_spec

if TYPE_CHECKING:
    from torch import nn  # noqa: TID251 (types only; build functions import the builder when called)

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Kind:
    """How one layer kind is declared, counted and built."""

    kind: LayerKind
    summary: str  # one line for README and help
    fields: frozenset[str]  # config fields the kind accepts
    required: tuple[str, ...]  # config fields it cannot do without
    count: Callable[[LayerDecl, Shape], LayerResult]
    build: Callable[[LayerResult, str, Any], nn.Module]  # (layer, column, device)
    spatial: bool = True  # needs an input with spatial dims


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ")"


# --- conv kinds: a standard conv and its separable pair, placed in the columns by kind ----------

# Which variant of the conv stands in each column (standard, separable).
_CONV_COLUMNS = {
    LayerKind.COMPARE: ("standard", "separable"),
    LayerKind.STANDARD: ("standard", "standard"),
    LayerKind.SEPARABLE: ("separable", "separable"),
}


def _count_conv(decl: LayerDecl, shape: Shape) -> LayerResult:
    options = dict(decl.options)
    declared = options.pop("in_channels", None)
    if declared is not None and declared != shape[1]:
        raise LayerError(
            f"{decl.path}.in_channels",
            f"{decl.path}.in_channels {declared}: the layer's input is {_shape(shape)} "
            f"with {shape[1]} channels; leave in_channels out or make it {shape[1]}",
        )
    try:
        spec = resolve_spec(rank=len(shape) - 2, in_channels=shape[1], **options)
        comparison = compare(spec, shape)
    except SpecError as error:
        path = f"{decl.path}.{error.field}"
        raise LayerError(path, f"{error.labelled(path)} (layer input {_shape(shape)})") from None
    variants = {"standard": comparison.standard, "separable": comparison.separable}
    stages = {"standard": spec.standard(), "separable": spec.separable()}
    left, right = _CONV_COLUMNS[decl.kind]
    return LayerResult(
        decl.name,
        decl.kind,
        VariantStats("standard", variants[left].stages),
        VariantStats("separable", variants[right].stages),
        comparison,
        options=dict(decl.options),
        column_stages={"standard": stages[left], "separable": stages[right]},
    )


def _build_conv(layer: LayerResult, column: str, device: Any) -> nn.Module:
    from dsconv_cli.builder import build_variant

    return build_variant(layer.stages(column), device)


def _conv_kind(kind: LayerKind, summary: str) -> Kind:
    fields = frozenset(f.name for f in LAYER_FIELDS)
    return Kind(kind, summary, fields, ("out_channels",), _count_conv, _build_conv)


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


def _build_linear(layer: LayerResult, column: str, device: Any) -> nn.Module:
    from dsconv_cli.builder import build_linear

    in_features = math.prod(layer.input_shape[1:])
    return build_linear(in_features, layer.output_shape[1], bool(layer.options.get("bias", False)), device)


def _count_global_avg_pool(decl: LayerDecl, shape: Shape) -> LayerResult:
    return _same_in_both(decl, global_avg_pool_stats(decl.name, shape))


def _build_global_avg_pool(layer: LayerResult, column: str, device: Any) -> nn.Module:
    from dsconv_cli.builder import build_global_avg_pool

    return build_global_avg_pool(len(layer.input_shape) - 2)


KINDS: dict[LayerKind, Kind] = {
    k.kind: k
    for k in (
        _conv_kind(LayerKind.COMPARE, "a standard conv in one column, its separable pair in the other"),
        _conv_kind(LayerKind.STANDARD, "the standard conv in both columns (a stem conv)"),
        _conv_kind(LayerKind.SEPARABLE, "the separable pair in both columns"),
        Kind(
            LayerKind.LINEAR,
            "flatten, then a fully connected layer",
            frozenset({"out_features", "bias"}),
            ("out_features",),
            _count_linear,
            _build_linear,
            spatial=False,
        ),
        Kind(
            LayerKind.GLOBAL_AVG_POOL,
            "average over all spatial positions",
            frozenset(),
            (),
            _count_global_avg_pool,
            _build_global_avg_pool,
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
    return kind.count(decl, shape)


def count_stack(
    name: str, decls: Sequence[LayerDecl], input_shape: Sequence[int], point: dict[str, Any] | None = None
) -> StackResult:
    """Layers in order, each fed the previous layer's output (both columns keep the same shapes)."""
    layers: list[LayerResult] = []
    shape = tuple(input_shape)
    for decl in decls:
        layer = count_layer(decl, decl.input_shape or shape)
        layers.append(layer)
        shape = layer.output_shape
    return StackResult(name, tuple(input_shape), tuple(layers), dict(point or {}))


def build_layer(layer: LayerResult, column: str, device: Any = "cpu") -> nn.Module:
    """One stack layer as it stands in ``column``, as a real module."""
    return KINDS[layer.kind].build(layer, column, device)
