"""YAML config files -> plain ``LayerDecl`` lists, sweeps and budgets.

The file format is a pydantic model (every error at once, each with its path and line, unknown
keys with a suggestion, and a JSON Schema for editors); the core only sees plain dataclasses.
"""

from __future__ import annotations

import difflib
import itertools
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    WithJsonSchema,
    create_model,
)

from dsconv_cli.core.formatting import escape_control, fmt_bytes
from dsconv_cli.core.kinds import ALL_FIELDS, KINDS
from dsconv_cli.core.loader import load_yaml, max_values
from dsconv_cli.core.parse import parse_convert_rule, parse_multiplier
from dsconv_cli.core.spec import (
    BLOCK_FIELDS,
    DEFAULT_IN_CHANNELS,
    DEFAULT_MAX_LAYERS,
    DEFAULT_MAX_POINTS,
    LAYER_FIELDS,
    Budgets,
    Conversion,
    LayerDecl,
    LayerField,
    LayerKind,
    ModelInputs,
    Slopes,
    default_input_shape,
    model_inputs,
    parse_input_kw,
    validate_input_shape,
)
from dsconv_cli.errors import ConfigError, SpecError
from dsconv_cli.files import MIB, TooLarge, read_bounded

# --- the file format ----------------------------------------------------------------------------


def _int_list(minimum: int, example: str) -> Any:
    def convert(value: Any) -> Any:
        items = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if (
            not isinstance(items, list | tuple)
            or not items
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in items)
        ):
            what = "a positive integer" if minimum == 1 else "a non-negative integer"
            raise ValueError(f"expected {what} or a list of them, e.g. {example}")
        return list(items)

    return BeforeValidator(convert)


def _shape_list(value: Any) -> Any:
    """``[1, 3, 224, 224]`` or ``[[1, 3, 224, 224], [1, 10]]`` -> a list of shapes."""
    one = _int_list(0, "[1, 3, 224, 224] or a list of such shapes").func
    if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
        return [one(v) for v in value]
    return [one(value)]


def _padding(value: Any) -> Any:
    if isinstance(value, str):
        if value.lower() in ("same", "valid"):
            return value.lower()
        raise ValueError("expected same, valid, a non-negative integer or a list of them, e.g. 1 or [0, 1]")
    return _int_list(0, "1 or [0, 1]").func(value)


def _strict(kind: type) -> Any:
    """No quiet conversions: ``true`` is not 1, ``"2"`` is not 2, ``1.0`` is not an integer."""

    def check(value: Any) -> Any:
        wrong = isinstance(value, bool | str) or (kind is int and isinstance(value, float))
        if wrong:
            what = "an integer" if kind is int else "a number"
            raise ValueError(f"expected {what}, got {type(value).__name__} {value!r}")
        return value

    return BeforeValidator(check)


Positive = Annotated[int, Field(ge=1), _strict(int)]
Count = Annotated[int, Field(ge=0), _strict(int)]
Real = _strict(float)


def _ints_schema(minimum: int) -> WithJsonSchema:
    """What the loader takes, in the schema: one integer (broadcast) or one per spatial dim."""
    one = {"type": "integer", "minimum": minimum}
    return WithJsonSchema({"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]})


IntTuple = Annotated[list[int], _int_list(1, "3 or [3, 5]"), _ints_schema(1)]
NonNegTuple = Annotated[list[int], _int_list(0, "0 or [0, 1]"), _ints_schema(0)]
PaddingValue = Annotated[
    list[int] | str,
    BeforeValidator(_padding),
    WithJsonSchema({"anyOf": [*_ints_schema(0).json_schema["anyOf"], {"enum": ["same", "valid"]}]}),
]
SHAPE_SCHEMA = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


_VALUES: dict[str, Any] = {
    "positive": Positive,
    "ints1": IntTuple,
    "ints0": NonNegTuple,
    "padding": PaddingValue,
    "slopes": Annotated[Slopes, BeforeValidator(str), WithJsonSchema({"enum": [1, "1", "channel"]})],
    "real_positive": Annotated[float, Field(gt=0, allow_inf_nan=False), Real],
    "real_nonneg": Annotated[float, Field(ge=0, allow_inf_nan=False), Real],
    "fraction": Annotated[float, Field(gt=0, le=1, allow_inf_nan=False), Real],
}  # what a config value of each ``LayerField.check`` must be; enums, bools and names by their type


def _annotation(f: LayerField) -> Any:
    if f.check:
        return _VALUES[f.check]
    return StrictBool if f.value is bool else f.value


# Layer fields: generated from spec's one table of fields (the long flags of ``dsconv compare`` in
# snake_case, and the block fields), so a field is declared once for the flags, the loader and the schema.
LayerFields: type[_Strict] = create_model(  # type: ignore[call-overload]
    "LayerFields",
    __base__=_Strict,
    __doc__="Layer fields: the long flags of ``dsconv compare`` in snake_case, and the block fields.",
    **{
        f.name: (_annotation(f) | None, Field(None, description=f.doc or f.help))
        for f in (*LAYER_FIELDS, *BLOCK_FIELDS)
    },
)


class LayerModel(LayerFields):
    name: str | None = None
    kind: LayerKind = LayerKind.COMPARE
    repeat: Positive = Field(1, description="Repeat the layer this many times in sequence.")
    input_shape: Annotated[list[int], _int_list(0, "[1, 16, 50, 129]")] | None = Field(
        None,
        description="This layer's own input (N, C, *spatial) instead of the previous layer's output, for "
        "configs listing independent layers (as analyze --emit-config writes them).",
    )


class Limits(_Strict):
    params: Count | None = None
    macs: Count | None = None
    latency_ms: Annotated[float, Field(gt=0, allow_inf_nan=False), Real] | None = None


class ColumnLimits(_Strict):
    standard: Limits | None = None
    separable: Limits | None = None


class Reduction(_Strict):
    """Minimum percent fewer in the separable column than in the standard one."""

    params: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False), Real] | None = None
    macs: Annotated[float, Field(ge=0, le=100, allow_inf_nan=False), Real] | None = None


class FidelityLimits(_Strict):
    """How closely the converted model must reproduce the original (model configs)."""

    min_snr_db: Annotated[float, Field(allow_inf_nan=False), Real] | None = Field(
        None, description="Lowest SNR of the converted model's outputs against the original's, in dB."
    )
    max_output_error: Annotated[float, Field(ge=0, allow_inf_nan=False), Real] | None = Field(
        None, description="Largest relative L2 error of the outputs, as a fraction (0.05 = 5%)."
    )


class BudgetsModel(_Strict):
    standard: Limits | None = Field(None, description="Limits on the standard column's totals.")
    separable: Limits | None = Field(None, description="Limits on the separable column's totals.")
    per_layer: ColumnLimits | None = Field(None, description="Limits every layer must hold, per column.")
    min_reduction: Reduction | None = None
    fidelity: FidelityLimits | None = Field(None, description="Limits on the converted model's fidelity (models).")


class ModelSection(_Strict):
    """A whole PyTorch model, analysed as ``dsconv analyze`` does; budgets hold its totals."""

    target: str = Field(description="MODULE:ATTR or FILE.py:ATTR (a relative FILE is found beside the config).")
    kwargs: dict[str, Any] | None = Field(None, description="Passed to the class or factory.")
    input_shape: Annotated[
        list[list[int]] | None,
        BeforeValidator(_shape_list),
        WithJsonSchema({"anyOf": [SHAPE_SCHEMA, {"type": "array", "items": SHAPE_SCHEMA, "minItems": 1}]}),
    ] = Field(None, description="One forward input, [1, 3, 224, 224], or a list of them for several.")
    input_dtype: list[str] | None = Field(None, description="The dtype of each input_shape, in order: int64 for "
                                          "token ids, bool for masks, a float type.")  # fmt: skip
    input_kw: dict[str, str | list[int]] | None = Field(
        None, description="Keyword inputs: {attention_mask: '1,128:bool'} (SHAPE[:DTYPE]) or {x: [1, 10]}."
    )
    example_inputs: str | None = Field(None, description="The exact inputs, a .pt file (a relative path: beside "
                                       "the config): a tensor, a tuple or list, or a dict of keywords.")  # fmt: skip
    vocab: int | None = Field(None, ge=1, description="Integer inputs are token ids drawn below it (default: zeros).")
    convert: str = Field("all", description="Which candidates the separable column converts: all, top:N, "
                         "min-saving:PCT or max-error:PCT.")  # fmt: skip
    weights: str | None = Field(None, description="A checkpoint to load first (a relative path: beside the config).")
    weights_key: str | None = Field(None, description="The key of the state dict inside the checkpoint.")
    init: Literal["svd", "random"] = Field("svd", description="svd: closed-form pairs; random: fresh ones.")
    multiplier: Annotated[int, Field(ge=1), _strict(int)] | str = Field(
        1, description="Depth multiplier of every pair, or auto:PCT (the smallest keeping PCT% of the weight energy)."
    )
    calibrate: str | None = Field(None, description="Real inputs (.pt or .npy) to measure fidelity on.")
    refit: StrictBool = Field(False, description="Refit the pairs' pointwise weights on half of calibrate.")


class ConfigModel(_Strict):
    """A dsconv config: an input, optional defaults, layers in order, an optional sweep and budgets;
    or a whole model and budgets."""

    name: str | None = None
    description: str | None = None
    input_shape: Annotated[list[int], _int_list(1, "[1, 16, 50, 129]")] | None = Field(
        None, description="N, C, *spatial; default: 1, first layer's in_channels, 50, 129."
    )
    defaults: LayerFields = Field(LayerFields(), description="Applied to every layer.")
    layers: list[LayerModel] | None = Field(None, min_length=1, description="The layers, in order.")
    model: ModelSection | None = Field(None, description="A whole PyTorch model instead of layers.")
    sweep: dict[str, list[Any]] | None = Field(
        None, description="A grid over layer fields, e.g. {out_channels: [32, 64], kernel_size: [3, 5]}."
    )
    budgets: BudgetsModel | None = None


def json_schema() -> dict[str, Any]:
    """The config's JSON Schema, for editors."""
    schema = ConfigModel.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "dsconv config"
    schema["oneOf"] = [{"required": ["layers"]}, {"required": ["model"]}]  # a stack of layers or a whole model
    schema["$defs"]["ModelSection"]["anyOf"] = [{"required": [key]} for key in ("input_shape", "input_kw",
                                                                             "example_inputs")]  # fmt: skip
    return schema


# --- plain results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelTarget:
    """A config's ``model:`` section, its FILE.py resolved against the config's folder."""

    target: str
    kwargs: dict[str, Any]
    input_shapes: tuple[tuple[int, ...], ...]
    convert: str
    conversion: Conversion = field(default_factory=Conversion)
    inputs: ModelInputs | None = None  # dtypes, keyword and example inputs (None: float inputs of input_shapes)


@dataclass(frozen=True)
class Config:
    path: str
    name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerDecl, ...]
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    budgets: Budgets = field(default_factory=Budgets)
    lines: dict[str, int] = field(default_factory=dict)
    model: ModelTarget | None = None  # a whole model instead of layers

    @property
    def point_count(self) -> int:
        return math.prod(len(values) for values in self.sweep.values()) if self.sweep else 1

    def where(self, path: str) -> str:
        """``FILE:LINE`` of the deepest declared part of ``path``."""
        return locate(self.path, self.lines, path)

    def points(self, max_points: int = DEFAULT_MAX_POINTS) -> Iterator[tuple[dict[str, Any], list[LayerDecl]]]:
        """Each sweep point (one, empty, without a sweep) and the layers with its values applied."""
        if self.point_count > max_points:
            raise ConfigError(
                f"{self.where('sweep')}: sweep has {self.point_count:,} points, over the limit of "
                f"{max_points:,}; pass --max-points {self.point_count} to allow it or shrink the grid"
            )
        keys = list(self.sweep)
        for values in itertools.product(*(self.sweep[k] for k in keys)) if keys else [()]:
            point = dict(zip(keys, values, strict=True))
            yield point, [override(decl, point) for decl in self.layers]


def override(decl: LayerDecl, values: dict[str, Any]) -> LayerDecl:
    """``decl`` with the values that apply to its kind replaced."""
    applicable = {k: v for k, v in values.items() if k in KINDS[decl.kind].fields}
    return replace(decl, options={**decl.options, **applicable}) if applicable else decl


# --- loading ------------------------------------------------------------------------------------


def load(path: str | Path, max_layers: int = DEFAULT_MAX_LAYERS) -> Config:
    """Read, validate and convert one config file; ``ConfigError`` lists every problem found."""
    file = Path(path)
    limit = max_file_bytes(max_layers)
    try:
        text = read_bounded(file, limit)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file") from None
    except TooLarge:
        raise ConfigError(f"{file}: over {fmt_bytes(limit)}, too large to be a dsconv config (a config with more "
                          "layers needs a larger --max-layers)") from None  # fmt: skip
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    return parse(text, str(file), max_layers)


def max_file_bytes(max_layers: int = DEFAULT_MAX_LAYERS) -> int:
    """The largest config file read: 16 MiB, or 1 KiB a layer where ``--max-layers`` allows more."""
    return max(16 * MIB, 1024 * max_layers)


def parse(text: str, source: str = "<config>", max_layers: int = DEFAULT_MAX_LAYERS) -> Config:
    node, data = load_yaml(text, source, max_values(max_layers))
    lines = _node_lines(node) if node is not None else {}
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ConfigError(f"{source}: expected a mapping with input_shape and layers, got {kind}")
    problems: list[str] = []
    if "layers" not in data and "model" not in data:
        problems.append(f"{source}: layers: required (or model, for a whole PyTorch model)")
    try:
        model = ConfigModel.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(*problems, *[_describe(err, source, lines) for err in exc.errors()]) from None
    layers = sum(layer.repeat for layer in model.layers or ())
    if layers > max_layers:
        where = locate(source, lines, "layers")
        raise ConfigError(f"{where}: layers: the stack expands to {layers:,} layers (repeats counted), over the "
                          f"limit of {max_layers:,}; pass --max-layers {layers} to allow it")  # fmt: skip
    config = _convert(model, source, lines, problems)
    if problems:
        raise ConfigError(*problems)
    return config


def locate(source: str, lines: dict[str, int], path: str) -> str:
    """``FILE:LINE`` of the deepest part of ``path`` the file declares (``FILE`` if none)."""
    probe = path
    while probe and probe not in lines:
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return f"{source}:{lines[probe]}" if probe else source


def _convert(model: ConfigModel, source: str, lines: dict[str, int], problems: list[str]) -> Config:
    def at(path: str) -> str:
        return locate(source, lines, path)

    if model.layers is None and model.model is None:
        return Config(source, model.name or Path(source).stem, (), ())  # reported as required
    if model.layers is not None and model.model is not None:
        problems.append(f"{locate(source, lines, 'model')}: model: give layers (a stack of layers) or model "
                        "(a whole PyTorch model), not both")  # fmt: skip
        return Config(source, model.name or Path(source).stem, (), ())
    if model.model is not None:
        return _model_config(model, model.model, source, lines, problems)
    assert model.layers is not None
    if model.budgets is not None and model.budgets.fidelity is not None:
        problems.append(f"{at('budgets.fidelity')}: budgets.fidelity: applies to model configs, whose conversion "
                        "is measured; a layer config's pairs are counted, not fitted")  # fmt: skip

    defaults = model.defaults.model_dump(exclude_none=True)
    for key in sorted(defaults.keys() & {"add", "share"}):
        problems.append(f"{at(f'defaults.{key}')}: defaults.{key}: names one earlier layer, so it belongs on the "
                        f"layer that uses it, not in defaults (which apply to every layer)")  # fmt: skip
    decls: list[LayerDecl] = []
    for index, layer in enumerate(model.layers):
        path = f"layers[{index}]"
        given = layer.model_dump(exclude_none=True, exclude={"name", "kind", "repeat", "input_shape"})
        own_input = tuple(layer.input_shape) if layer.input_shape is not None else None
        if own_input is not None:
            try:
                validate_input_shape(own_input)
            except SpecError as error:
                problems.append(f"{at(f'{path}.input_shape')}: {error.labelled(f'{path}.input_shape')}")
        sharing = getattr(layer, "share", None)  # a generated field: mypy does not see it
        shared = next((d for d in decls if d.name == escape_control(sharing)), None) if sharing else None
        # a shared layer is of its source's kind: taken from it where not given, refused where it differs
        kind = shared.kind if shared is not None and "kind" not in layer.model_fields_set else layer.kind
        allowed = KINDS[kind].fields
        for key in sorted(set(given) - allowed):
            valid = ", ".join(sorted(allowed)) or "none"
            problems.append(f"{at(f'{path}.{key}')}: {path}.{key}: not a field of {kind.value} layers (valid: {valid})")
        # in_channels is inferred from the previous layer; a default for it only fits the first
        inherited = {k: v for k, v in defaults.items()
                     if k in allowed and (k != "in_channels" or index == 0) and k not in ("add", "share")}  # fmt: skip
        options = inherited | given
        add, share = (escape_control(ref) if (ref := options.pop(key, None)) else None for key in ("add", "share"))
        if share is not None:
            extra = ", ".join(sorted(given.keys() - {"share", "add"}))
            if shared is None:
                problems.append(f"{at(f'{path}.share')}: {path}.share {share}: no earlier layer of that name")
            elif kind is not shared.kind:
                problems.append(f"{at(f'{path}.kind')}: {path}.share {share}: {share} is a {shared.kind.value} "
                                f"layer and this one a {kind.value} layer; a layer shares the weights of its own "
                                f"kind: leave kind out (it is taken from {share})")  # fmt: skip
            elif extra:
                problems.append(f"{at(f'{path}.share')}: {path}.share {share}: a shared layer takes its fields "
                                f"from {share}; leave out {extra}")  # fmt: skip
            if shared is not None:  # never asked for a field it must then leave out
                options = {k: v for k, v in shared.options.items() if k != "in_channels"}
        for key in KINDS[kind].required:
            if key not in options and shared is None:
                problems.append(f"{at(path)}: {path}.{key}: required for {kind.value} layers")
        base = escape_control(layer.name) if layer.name else f"{kind.value}{index}"
        for copy in range(layer.repeat):
            name = base if layer.repeat == 1 else f"{base}.{copy + 1}"
            opts = options if copy == 0 else {k: v for k, v in options.items() if k != "in_channels"}
            decls.append(LayerDecl(name, kind, opts, path, own_input if copy == 0 else None, add, share))
    input_shape = _input_shape(model, decls, at, problems)
    sweep = _sweep(model.sweep or {}, at, problems)
    return Config(
        path=source,
        name=escape_control(model.name or Path(source).stem),
        input_shape=input_shape,
        layers=tuple(decls),
        sweep=sweep,
        budgets=_budgets(model.budgets),
        lines=lines,
    )


def _model_config(
    model: ConfigModel, section: ModelSection, source: str, lines: dict[str, int], problems: list[str]
) -> Config:
    """A config that names a model: only the model, a name, a description and total budgets apply."""
    for key in ("input_shape", "sweep"):
        if getattr(model, key) is not None:
            problems.append(f"{locate(source, lines, key)}: {key}: not used with model (the model section has "
                            "its own input_shape)")  # fmt: skip
    if model.defaults.model_dump(exclude_none=True):
        problems.append(f"{locate(source, lines, 'defaults')}: defaults: not used with model")
    if model.budgets is not None and model.budgets.per_layer is not None:
        problems.append(f"{locate(source, lines, 'budgets.per_layer')}: budgets.per_layer: applies to layer "
                        "configs; a model config holds totals (standard: as it is, separable: converted)")  # fmt: skip
    try:
        parse_convert_rule(section.convert)
    except SpecError as error:
        problems.append(f"{locate(source, lines, 'model.convert')}: {error.labelled('model.convert')}")
    module, sep, attr = section.target.rpartition(":")
    if sep and module.endswith(".py") and not Path(module).is_absolute():
        module = os.path.normpath(Path(source).parent / module)

    def beside(path: str | None) -> str | None:
        return path if path is None or Path(path).is_absolute() else os.path.normpath(Path(source).parent / path)

    multiplier = section.multiplier
    if isinstance(multiplier, str) and not _auto_multiplier(multiplier):  # "2" as text: YAML numbers are numbers
        problems.append(f"{locate(source, lines, 'model.multiplier')}: model.multiplier {multiplier}: expected a "
                        "positive integer or auto:PCT (0-100], e.g. 2 or auto:90")  # fmt: skip
    if section.refit and section.calibrate is None:
        problems.append(f"{locate(source, lines, 'model.refit')}: model.refit true: needs model.calibrate (real "
                        "inputs); a refit on random probes says nothing of the data")  # fmt: skip
    conversion = Conversion(section.init, multiplier, beside(section.calibrate), section.refit,
                            beside(section.weights), section.weights_key)  # fmt: skip
    shapes = tuple(tuple(s) for s in section.input_shape or ())
    inputs = None
    try:
        keyword = [parse_input_kw(f"{k}={v}") if isinstance(v, str) else (k, tuple(v), None)
                   for k, v in (section.input_kw or {}).items()]  # fmt: skip
        inputs = model_inputs(shapes, section.input_dtype or (), keyword, beside(section.example_inputs),
                              section.vocab)  # fmt: skip
    except SpecError as error:
        key = error.field if error.field in ("input_dtype", "input_kw", "example_inputs", "vocab") else "input_shape"
        problems.append(f"{locate(source, lines, f'model.{key}')}: {error.labelled(f'model.{key}')}")
    target = ModelTarget(f"{module}{sep}{attr}", dict(section.kwargs or {}), shapes, section.convert, conversion,
                         inputs)  # fmt: skip
    return Config(source, escape_control(model.name) if model.name else Path(source).stem,
                  shapes[0] if shapes else (), (), budgets=_budgets(model.budgets), lines=lines,
                  model=target)  # fmt: skip


def _input_shape(model: ConfigModel, decls: Sequence[LayerDecl], at: Any, problems: list[str]) -> tuple[int, ...]:
    first = decls[0].options if decls else {}
    if model.input_shape is None and decls and decls[0].input_shape is not None:
        return decls[0].input_shape
    if model.input_shape is None:
        channels = first.get("in_channels", DEFAULT_IN_CHANNELS)
        return default_input_shape(2, channels)
    shape = tuple(model.input_shape)
    try:
        validate_input_shape(shape)
    except SpecError as error:
        problems.append(f"{at('input_shape')}: {error.labelled('input_shape')}")
    return shape


def _sweep(sweep: dict[str, list[Any]], at: Any, problems: list[str]) -> dict[str, list[Any]]:
    valid = sorted(ALL_FIELDS - {"add", "share"})
    clean: dict[str, list[Any]] = {}
    for key, values in sweep.items():
        path = f"sweep.{key}"
        if key not in valid:
            hint = difflib.get_close_matches(key, valid, n=1)
            suggestion = f"did you mean {hint[0]}? " if hint else ""
            problems.append(f"{at(path)}: {path}: not a layer field; {suggestion}valid: {', '.join(valid)}")
            continue
        if not values:
            problems.append(f"{at(path)}: {path}: the grid is empty; give at least one value")
            continue
        converted = []
        for i, value in enumerate(values):
            try:
                checked = LayerFields.model_validate({key: value})
            except ValidationError as exc:
                reason = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
                problems.append(f"{at(f'{path}[{i}]')}: {path}[{i}] {_show(value)}: {reason}")
                continue
            converted.append(getattr(checked, key))
        clean[key] = converted
    return clean


def _budgets(model: BudgetsModel | None) -> Budgets:
    if model is None:
        return Budgets()

    def limits(obj: Limits | None) -> dict[str, float]:
        return obj.model_dump(exclude_none=True) if obj is not None else {}

    totals = {c: limits(getattr(model, c)) for c in ("standard", "separable")}
    per_layer = {c: limits(getattr(model.per_layer, c)) for c in ("standard", "separable")} if model.per_layer else {}
    reduction = model.min_reduction.model_dump(exclude_none=True) if model.min_reduction else {}
    return Budgets(
        totals={c: v for c, v in totals.items() if v},
        per_layer={c: v for c, v in per_layer.items() if v},
        min_reduction=reduction,
        fidelity=model.fidelity.model_dump(exclude_none=True) if model.fidelity else {},
    )


def _auto_multiplier(text: str) -> bool:
    """``auto:PCT`` with 0 < PCT <= 100, as the conversion parses it."""
    try:
        return isinstance(parse_multiplier(text), float)
    except SpecError:
        return False


# --- error text ---------------------------------------------------------------------------------


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(err: Any, source: str, lines: dict[str, int]) -> str:
    loc = tuple(err["loc"])
    path = _path(loc)
    where = locate(source, lines, path)
    if err["type"] == "extra_forbidden":
        valid = _fields_at(loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), valid, n=1)
        suggestion = f"did you mean {hint[0]}? " if hint else ""
        return f"{where}: {path}: unknown key; {suggestion}valid: {', '.join(valid)}"
    if err["type"] == "missing":
        return f"{where}: {path}: required"
    reason = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {path} {_show(err.get('input'))}: {reason}"


def _fields_at(loc: Sequence[int | str]) -> list[str]:
    """Valid keys of the model that sits at ``loc`` in a config."""
    model: type[BaseModel] = ConfigModel
    for part in loc:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            break
        nested = _model_in(info.annotation)
        if nested is None:
            break
        model = nested
    return sorted(model.model_fields)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _show(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value)


def _node_lines(node: yaml.Node, path: str = "") -> dict[str, int]:
    """Map each path (``layers[3].kernel_size``) to its 1-based line in the file (the tree is already
    bounded by ``loader.check_tree``)."""
    lines = {path: node.start_mark.line + 1} if path else {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = f"{path}.{key.value}" if path else str(key.value)
            lines[child] = key.start_mark.line + 1
            lines |= {k: v for k, v in _node_lines(value, child).items() if k != child}
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines |= _node_lines(item, f"{path}[{index}]")
    return lines
