"""Layer specs, result records and choices: plain frozen data, validated on the way in."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum, unique
from typing import Any, TypeVar

from dsconv_cli.errors import SpecError


@unique
class Device(StrEnum):
    CPU = "cpu"
    CUDA = "cuda"
    AUTO = "auto"


@unique
class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"


@unique
class DType(StrEnum):
    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"

    @property
    def itemsize(self) -> int:
        return 4 if self is DType.FLOAT32 else 2


@unique
class Norm(StrEnum):
    NONE = "none"
    BATCH = "batch"


@unique
class Activation(StrEnum):
    NONE = "none"
    RELU = "relu"
    RELU6 = "relu6"
    PRELU = "prelu"
    HARDSWISH = "hardswish"
    SILU = "silu"
    TANH = "tanh"


@unique
class Placement(StrEnum):
    """Where norm and activation go in the separable pair."""

    CLASSIC = "classic"  # depthwise -> pointwise -> norm -> act
    MOBILENET = "mobilenet"  # depthwise -> norm -> act -> pointwise -> norm -> act


@unique
class ActAfter(StrEnum):
    """Which stages of the separable pair an activation follows (default: as ``placement`` puts it)."""

    DEPTHWISE = "depthwise"
    POINTWISE = "pointwise"
    BOTH = "both"
    NONE = "none"


@unique
class Slopes(StrEnum):
    """PReLU slopes: one shared slope (GTCRN's ``nn.PReLU()``) or one per channel."""

    ONE = "1"
    CHANNEL = "channel"


@unique
class LayerKind(StrEnum):
    """What a config layer is; conv kinds say what goes in each column."""

    COMPARE = "compare"  # standard conv in one column, its separable pair in the other
    STANDARD = "standard"  # the standard conv in both columns (a stem conv)
    SEPARABLE = "separable"  # the separable pair in both columns
    LINEAR = "linear"  # flatten, then a fully connected layer
    GLOBAL_AVG_POOL = "global_avg_pool"
    MAX_POOL = "max_pool"
    AVG_POOL = "avg_pool"
    INVERTED_RESIDUAL = "inverted_residual"  # MobileNetV2 / EfficientNet block; standard: full k×k conv
    SQUEEZE_EXCITE = "squeeze_excite"

    @property
    def is_conv(self) -> bool:
        return self in (LayerKind.COMPARE, LayerKind.STANDARD, LayerKind.SEPARABLE)


COLUMNS = ("standard", "separable")


@unique
class PaddingMode(StrEnum):
    SAME = "same"
    VALID = "valid"


Padding = tuple[int, ...] | PaddingMode


@unique
class Gate(StrEnum):
    """The squeeze-excite gate: sigmoid (SENet, EfficientNet) or hard sigmoid (MobileNetV3)."""

    SIGMOID = "sigmoid"
    HARDSIGMOID = "hardsigmoid"


@dataclass(frozen=True, slots=True)
class LayerField:
    """One field of a layer: YAML key = dataclass field = JSON key; the flag is its kebab form.

    Declared once in ``LAYER_FIELDS`` (conv fields: a ``dsconv compare`` flag each) or ``BLOCK_FIELDS``
    (config only); the config's model and JSON Schema are generated from both tables, the flags from the
    first, and each kind in ``kinds.py`` names the fields it takes."""

    name: str
    help: str
    value: type  # what the flag takes: int, bool, str (text parsed by ``text``) or a StrEnum
    short: str = ""
    text: str = ""  # "ints" or "padding": how a str value is parsed
    check: str = ""  # what a config value must be (config.py's annotations): positive, ints, ... ("" = by value)
    doc: str = ""  # the config's description where it differs from the flag's help

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


# The layer fields of ``dsconv compare``, declared once: the CLI's options are generated from this table,
# and tests hold the config model, ``ConvSpec`` and README to it.
LAYER_FIELDS: tuple[LayerField, ...] = (
    LayerField(
        "in_channels",
        "Input channels (default: from --input-shape, else 16).",
        int,
        "-i",
        check="positive",
        doc="Input channels; inferred from the previous layer.",
    ),
    LayerField(
        "out_channels",
        "Output channels (default: 32).",
        int,
        "-o",
        check="positive",
        doc="Output channels (conv kinds).",
    ),
    LayerField(
        "kernel_size",
        "Kernel: 3, or one per spatial dim: 3,5 (default: 3).",
        str,
        "-k",
        "ints",
        "ints1",
        doc="3 or [3, 5].",
    ),
    LayerField("stride", "Stride: 1 or 1,2 (default: 1).", str, text="ints", check="ints1"),
    LayerField(
        "padding",
        "Padding: 1, 0,1, same or valid (default: dilation·(k−1)//2, size-keeping at stride 1).",
        str,
        text="padding",
        check="padding",
        doc="1, [0, 1], same or valid.",
    ),  # fmt: skip
    LayerField("dilation", "Dilation: 1 or 2,1 (default: 1).", str, text="ints", check="ints1"),
    LayerField("groups", "Groups of the standard conv (default: 1).", int, check="positive"),
    LayerField("multiplier", "Depth multiplier of the depthwise stage (default: 1).", int, check="positive"),
    LayerField("bias", "Bias on every conv (default: no bias).", bool),
    LayerField(
        "depthwise_bias",
        "Bias on the depthwise stage (default: as --bias; off is how analyze converts a biased conv).",
        bool,
    ),  # fmt: skip
    LayerField("transposed", "Transposed convs, ConvTranspose*d (default: no).", bool),
    LayerField(
        "output_padding", "Output padding of transposed convs: 0 or 0,1 (default: 0).", str, text="ints", check="ints0"
    ),
    LayerField("norm", "Normalisation after convs (default: none).", Norm),
    LayerField("act", "Activation after convs (default: none).", Activation),
    LayerField(
        "placement",
        "classic: dw → pw → norm → act; mobilenet: norm + act after each stage (default: classic).",
        Placement,
    ),  # fmt: skip
    LayerField(
        "act_after",
        "Which separable stages the activation follows: depthwise, pointwise, both or none (default: by placement).",
        ActAfter,
    ),  # fmt: skip
    LayerField(
        "slopes",
        "PReLU slopes: 1 (one shared) or channel (default: channel).",
        Slopes,
        check="slopes",
        doc="PReLU slopes: 1 or channel.",
    ),
)

# The fields of block, linear and stack layers: config only (``dsconv compare`` has no flag for them).
BLOCK_FIELDS: tuple[LayerField, ...] = (
    LayerField("out_features", "Output features (linear layers).", int, check="positive"),
    LayerField("expand", "Expansion ratio of an inverted residual (default 6).", float, check="real_positive"),
    LayerField(
        "se",
        "Squeeze-excite: squeeze channels = max(1, int(block input channels × se)), e.g. 0.25.",
        float,
        check="fraction",
    ),
    LayerField("se_channels", "Squeeze-excite width, instead of se.", int, check="positive"),
    LayerField("se_act", "Squeeze-excite activation (default: the block's).", Activation),
    LayerField("se_gate", "Squeeze-excite gate: sigmoid or hardsigmoid (default sigmoid).", Gate),
    LayerField("residual", "Add the layer's input to its output (a 1×1 projection where shapes differ).", bool),
    LayerField("add", "Add this earlier layer's output to this layer's output.", str),
    LayerField("share", "Reuse this earlier layer's weights: params once, MACs per call.", str),
    LayerField(
        "width_multiplier",
        "Scale out_channels, rounded to a multiple of 8 (MobileNet's alpha).",
        float,
        check="real_positive",
    ),
    LayerField(
        "min_width_multiplier",
        "Floor of the multiplier for this layer (MobileNetV2's last conv: 1.0).",
        float,
        check="real_nonneg",
    ),
)


# The fields given per spatial dim (or as text such as 'same'): they also tell the rank when no input shape does.
SPATIAL_FIELDS = tuple(f.name for f in LAYER_FIELDS if f.text)

# Spatial size used when the user gives channels but no --input-shape, by rank.
DEFAULT_SPATIAL: dict[int, tuple[int, ...]] = {1: (1000,), 2: (50, 129), 3: (16, 32, 32)}
DEFAULT_IN_CHANNELS = 16
DEFAULT_OUT_CHANNELS = 32
DEFAULT_KERNEL = 3
DEFAULT_MAX_POINTS = 10_000  # largest sweep grid expanded unless --max-points raises it
DEFAULT_MAX_LAYERS = 10_000  # most layers a stack expands to (repeats counted) unless --max-layers raises it


@dataclass(frozen=True, slots=True)
class ConvLayer:
    """One concrete convolution, exactly as ``nn.Conv*d`` / ``nn.ConvTranspose*d`` takes it."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Padding
    dilation: tuple[int, ...]
    groups: int = 1
    bias: bool = False
    transposed: bool = False
    output_padding: tuple[int, ...] = ()

    @property
    def rank(self) -> int:
        return len(self.kernel_size)


@dataclass(frozen=True, slots=True)
class Stage:
    """A conv followed by optional norm and activation: one row of a variant."""

    name: str
    conv: ConvLayer
    norm: Norm = Norm.NONE
    act: Activation = Activation.NONE
    slopes: Slopes = Slopes.CHANNEL  # PReLU only


@dataclass(frozen=True, slots=True)
class ConvSpec:
    """A standard conv and the options of its depthwise-separable counterpart."""

    in_channels: int
    out_channels: int
    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Padding
    dilation: tuple[int, ...]
    groups: int = 1
    multiplier: int = 1
    bias: bool = False
    depthwise_bias: bool | None = None  # None: as bias
    transposed: bool = False
    output_padding: tuple[int, ...] = ()
    norm: Norm = Norm.NONE
    act: Activation = Activation.NONE
    placement: Placement = Placement.CLASSIC
    act_after: ActAfter | None = None  # None: as placement puts it
    slopes: Slopes = Slopes.CHANNEL

    @property
    def rank(self) -> int:
        return len(self.kernel_size)

    def standard(self) -> tuple[Stage, ...]:
        """The standard conv (+ norm + act) as one stage."""
        conv = ConvLayer(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.bias,
            self.transposed,
            self.output_padding,
        )
        act = Activation.NONE if self.act_after is ActAfter.NONE else self.act
        return (Stage("standard", conv, self.norm, act, self.slopes),)

    def separable(self) -> tuple[Stage, ...]:
        """Depthwise ``C_in -> C_in*m`` (groups=C_in) then pointwise 1x1 ``C_in*m -> C_out``."""
        mid = self.in_channels * self.multiplier
        depthwise = ConvLayer(
            self.in_channels,
            mid,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            self.in_channels,
            self.bias if self.depthwise_bias is None else self.depthwise_bias,
            self.transposed,
            self.output_padding,
        )
        ones = (1,) * self.rank
        pointwise = ConvLayer(mid, self.out_channels, ones, ones, (0,) * self.rank, ones, 1, self.bias)
        mobilenet = self.placement is Placement.MOBILENET
        after = self.act_after or (ActAfter.BOTH if mobilenet else ActAfter.POINTWISE)
        dw_act = self.act if after in (ActAfter.DEPTHWISE, ActAfter.BOTH) else Activation.NONE
        pw_act = self.act if after in (ActAfter.POINTWISE, ActAfter.BOTH) else Activation.NONE
        return (
            Stage("depthwise", depthwise, self.norm if mobilenet else Norm.NONE, dw_act, self.slopes),
            Stage("pointwise", pointwise, self.norm, pw_act, self.slopes),
        )


@dataclass(frozen=True, slots=True)
class TimingCase:
    """One combination of the timing axes; each is a row of the timing table."""

    batch: int
    dtype: DType
    channels_last: bool = False
    compiled: bool = False
    backward: bool = False
    threads: int | None = None  # None: the run's thread count

    @property
    def label(self) -> str:
        parts = [f"batch {self.batch}", self.dtype.value]
        if self.threads is not None:
            parts.append(f"{self.threads} thread" if self.threads == 1 else f"{self.threads} threads")
        if self.channels_last:
            parts.append("channels-last")
        if self.compiled:
            parts.append("compiled")
        parts.append("forward+backward" if self.backward else "forward")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class LayerDecl:
    """A layer as a config declares it; ``in_channels`` and the rank come from its input."""

    name: str
    kind: LayerKind
    options: dict[str, Any]  # resolve_spec keywords for conv kinds; out_features, bias for linear
    path: str  # where it was declared, e.g. ``layers[3]``, for error messages
    input_shape: tuple[int, ...] | None = None  # its own input; None: the previous layer's output
    add: str | None = None  # name of an earlier layer whose output is added to this one's
    share: str | None = None  # name of an earlier layer whose weights this one reuses


@dataclass(frozen=True, slots=True)
class Budgets:
    """Plain budgets: ``totals[column][metric]``, ``per_layer[column][metric]``, ``min_reduction[metric]``."""

    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    per_layer: dict[str, dict[str, float]] = field(default_factory=dict)
    min_reduction: dict[str, float] = field(default_factory=dict)
    fidelity: dict[str, float] = field(default_factory=dict)  # min_snr_db, max_output_error (model configs)

    def __bool__(self) -> bool:
        return bool(self.totals or self.per_layer or self.min_reduction or self.fidelity)


# --- parsing and resolution -------------------------------------------------------------


IntOrTuple = int | Sequence[int]


def _as_tuple(value: IntOrTuple) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


def infer_rank(input_shape: Sequence[int] | None, *values: IntOrTuple | str | None) -> int:
    """Spatial rank: from the input shape if given, else the longest tuple among ``values``, else 2."""
    if input_shape is not None:
        return len(input_shape) - 2
    lengths = [len(v) for v in values if v is not None and not isinstance(v, int | str)]
    longest = max(lengths, default=1)
    return longest if longest > 1 else 2


def broadcast(field_name: str, value: IntOrTuple, rank: int, minimum: int) -> tuple[int, ...]:
    """One value per spatial dim from ``3`` or ``(3, 5)``, each at least ``minimum``; errors name the field."""
    given = _as_tuple(value)
    values = given
    if len(values) == 1:
        values = values * rank
    elif len(values) != rank:
        raise SpecError(
            field_name,
            given,
            f"has {len(values)} values but the input has {rank} spatial dims; "
            f"give 1 value or {rank} (one per spatial dim)",
        )
    for v in values:
        if v < minimum:
            what = "positive integers" if minimum == 1 else "non-negative integers"
            raise SpecError(field_name, given, f"must be {what}")
    return values


def _check_positive(field_name: str, value: int) -> None:
    if value < 1:
        raise SpecError(field_name, value, "must be a positive integer")


def resolve_spec(
    *,
    rank: int,
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrTuple = DEFAULT_KERNEL,
    stride: IntOrTuple = 1,
    padding: IntOrTuple | str | None = None,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    multiplier: int = 1,
    bias: bool = False,
    depthwise_bias: bool | None = None,
    transposed: bool = False,
    output_padding: IntOrTuple = 0,
    norm: Norm | str = Norm.NONE,
    act: Activation | str = Activation.NONE,
    placement: Placement | str = Placement.CLASSIC,
    act_after: ActAfter | str | None = None,
    slopes: Slopes | str | int = Slopes.CHANNEL,
) -> ConvSpec:
    """Broadcast scalars to ``rank``, fill in the default padding and validate the result."""
    if rank not in DEFAULT_SPATIAL:
        raise SpecError("input_shape", rank, "spatial rank must be 1, 2 or 3 (shape N,C,L / N,C,H,W / N,C,D,H,W)")
    _check_positive("in_channels", in_channels)
    _check_positive("out_channels", out_channels)
    _check_positive("groups", groups)
    _check_positive("multiplier", multiplier)
    k = broadcast("kernel_size", kernel_size, rank, 1)
    s = broadcast("stride", stride, rank, 1)
    d = broadcast("dilation", dilation, rank, 1)
    op = broadcast("output_padding", output_padding, rank, 0)
    pad: Padding
    if padding is None:
        pad = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d, strict=True))
    elif isinstance(padding, str):
        pad = parse_padding(padding)
        if not isinstance(pad, PaddingMode):
            pad = broadcast("padding", pad, rank, 0)
    else:
        pad = broadcast("padding", padding, rank, 0)
    if isinstance(pad, PaddingMode) and transposed:
        # PyTorch's ConvTranspose takes no padding mode (it would read 'valid' as five numbers)
        raise SpecError("padding", pad.value, "is not supported for transposed convs; give integers, e.g. 0")
    if pad == PaddingMode.VALID:
        pad = (0,) * rank
    spec = ConvSpec(
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=k,
        stride=s,
        padding=pad,
        dilation=d,
        groups=groups,
        multiplier=multiplier,
        bias=bias,
        depthwise_bias=depthwise_bias,
        transposed=transposed,
        output_padding=op,
        norm=_choice("norm", Norm, norm),
        act=_choice("act", Activation, act),
        placement=_choice("placement", Placement, placement),
        act_after=None if act_after is None else _choice("act_after", ActAfter, act_after),
        slopes=_choice("slopes", Slopes, str(slopes)),
    )
    validate(spec)
    return spec


E = TypeVar("E", bound=StrEnum)


def _choice(field_name: str, enum: type[E], value: E | str) -> E:
    try:
        return enum(value)
    except ValueError:
        valid = ", ".join(e.value for e in enum)
        raise SpecError(field_name, value, f"is not one of {valid}") from None


def _divisors_in_common(a: int, b: int) -> str:
    g = math.gcd(a, b)
    return ", ".join(str(x) for x in range(1, g + 1) if g % x == 0)


def validate(spec: ConvSpec, input_shape: Sequence[int] | None = None) -> None:
    """Raise ``SpecError`` naming the field when ``spec`` is not a layer PyTorch can build."""
    if spec.in_channels % spec.groups or spec.out_channels % spec.groups:
        raise SpecError(
            "groups",
            spec.groups,
            f"in_channels {spec.in_channels} and out_channels {spec.out_channels} must both be "
            f"divisible by groups; valid: {_divisors_in_common(spec.in_channels, spec.out_channels)}",
        )
    if spec.padding == PaddingMode.SAME:
        if spec.transposed:
            raise SpecError("padding", "same", "is not supported for transposed convs; give integers, e.g. 1")
        if any(s != 1 for s in spec.stride):
            raise SpecError(
                "padding",
                "same",
                f"needs stride 1 (got stride {','.join(map(str, spec.stride))}); "
                "give integer padding for strided convs",
            )
    if any(spec.output_padding):
        if not spec.transposed:
            raise SpecError(
                "output_padding",
                spec.output_padding,
                "applies to transposed convs only; add --transposed or leave it 0",
            )
        for op, s, d in zip(spec.output_padding, spec.stride, spec.dilation, strict=True):
            if op >= max(s, d):
                raise SpecError(
                    "output_padding",
                    spec.output_padding,
                    "must be smaller than stride or dilation in each dim "
                    f"(stride {','.join(map(str, spec.stride))}, "
                    f"dilation {','.join(map(str, spec.dilation))})",
                )
    if input_shape is not None:
        validate_input_shape(input_shape, spec.in_channels)


def validate_input_shape(input_shape: Sequence[int], in_channels: int | None = None) -> None:
    """An input is ``(N, C, *spatial)`` with 1-3 spatial dims, all positive; the batch may be 0, as in PyTorch."""
    shape = tuple(input_shape)
    if not 3 <= len(shape) <= 5:
        raise SpecError(
            "input_shape",
            shape,
            f"has {len(shape)} dims; give N,C plus 1-3 spatial dims, e.g. 1,16,50,129",
        )
    if shape[0] < 0 or any(v < 1 for v in shape[1:]):
        raise SpecError("input_shape", shape, "the batch must be 0 or more and the other dims positive integers")
    if in_channels is not None and shape[1] != in_channels:
        raise SpecError(
            "input_shape",
            shape,
            f"has {shape[1]} channels but in_channels is {in_channels}; make dim 1 of the input shape {in_channels}",
        )


def default_input_shape(rank: int, in_channels: int, batch: int = 1) -> tuple[int, ...]:
    """``(batch, in_channels, *DEFAULT_SPATIAL[rank])``."""
    return (batch, in_channels, *DEFAULT_SPATIAL[rank])


# --- text to spec values (the flags and configs share these) ---------------------------------------

_INT_LIST = re.compile(r"^\s*\(?\s*(-?\d+(\s*,\s*-?\d+)*)\s*,?\s*\)?\s*$")


def parse_ints(field_name: str, text: str) -> tuple[int, ...]:
    """Parse ``3``, ``3,5`` or ``(3, 5)`` into a tuple of ints."""
    match = _INT_LIST.match(text)
    if not match:
        raise SpecError(field_name, text, "expected an integer or comma-separated integers, e.g. 3 or 3,5")
    return _ints(field_name, text, match.group(1))


def _ints(field_name: str, text: str, listed: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in listed.split(","))
    except ValueError:  # Python reads no integer of over 4,300 digits; none is a layer's size either
        raise SpecError(
            field_name,
            f"{text[:20]}...",
            f"has {len(text):,} characters; give a size up to 9,223,372,036,854,775,807 (int64)",
        ) from None


def parse_padding(text: str) -> Padding:
    """Parse ``same``, ``valid``, ``1`` or ``1,2``."""
    lowered = text.strip().lower()
    if lowered in (PaddingMode.SAME, PaddingMode.VALID):
        return PaddingMode(lowered)
    match = _INT_LIST.match(text)
    if not match:
        raise SpecError("padding", text, "expected same, valid, an integer or comma-separated integers, e.g. 1 or 0,1")
    return _ints("padding", text, match.group(1))


@dataclass(frozen=True, slots=True)
class Conversion:
    """How ``analyze`` converts a model's chosen convs: closed-form (``svd``) or fresh (``random``) pairs at a
    depth multiplier (an int, or ``auto:PCT`` of each conv's weight energy), measured on random probes or on
    calibration inputs (and optionally refitted on them), starting from a checkpoint's weights."""

    init: str = "svd"
    multiplier: int | str = 1
    calibrate: str | None = None
    refit: bool = False
    weights: str | None = None
    weights_key: str | None = None


# --- a whole model's inputs (dsconv analyze) --------------------------------------------------------


@unique
class InputDType(StrEnum):
    """The dtype of one forward input: the float ones follow ``--dtype`` unless given; ints are ids, bools masks."""

    FLOAT32 = "float32"
    FLOAT16 = "float16"
    BFLOAT16 = "bfloat16"
    FLOAT64 = "float64"
    INT64 = "int64"
    INT32 = "int32"
    INT16 = "int16"
    INT8 = "int8"
    UINT8 = "uint8"
    BOOL = "bool"

    @property
    def integral(self) -> bool:
        return self.value.startswith(("int", "uint"))


@dataclass(frozen=True, slots=True)
class TensorInput:
    """One tensor a forward takes: its shape and dtype (None: the run's ``--dtype``)."""

    shape: tuple[int, ...]
    dtype: InputDType | None = None


@dataclass(frozen=True, slots=True)
class ModelInputs:
    """What a model's forward is called with: tensors by position and by keyword (made up: zeros, ids below
    ``vocab`` where given, masks all true), or ``example``: the exact inputs (a ``.pt`` file, or in the API the
    objects themselves)."""

    positional: tuple[TensorInput, ...] = ()
    keyword: tuple[tuple[str, TensorInput], ...] = ()
    example: Any = field(default=None, compare=False)
    vocab: int | None = None

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """The made-up tensors' shapes, positional then keyword."""
        return tuple(t.shape for t in self.positional) + tuple(t.shape for _, t in self.keyword)


def model_inputs(
    shapes: Sequence[Sequence[int]] = (),
    dtypes: Sequence[str] = (),
    keyword: Sequence[tuple[str, Sequence[int], str | None]] = (),
    example: Any = None,
    vocab: int | None = None,
) -> ModelInputs:
    """Validated inputs: ``dtypes`` pair with ``shapes`` in order (fewer: the rest follow ``--dtype``)."""
    if example is not None and (shapes or keyword):
        raise SpecError("example_inputs", example if isinstance(example, str) else type(example).__name__,
                        "holds the exact inputs; give it instead of --input-shape and --input-kw")  # fmt: skip
    if example is None and not shapes and not keyword:
        raise SpecError("input_shape", "(none)", "give the forward's inputs: --input-shape 1,3,224,224 (repeat for "
                        "several), --input-kw NAME=SHAPE[:DTYPE] or --example-inputs FILE")  # fmt: skip
    if len(dtypes) > len(shapes):
        raise SpecError("input_dtype", ",".join(dtypes), f"{len(dtypes)} dtype(s) for {len(shapes)} input shape(s); "
                        "give one per input shape, in order")  # fmt: skip
    if vocab is not None and (isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 1):
        raise SpecError("vocab", vocab, "must be a positive integer: token ids are drawn below it")
    positional = tuple(
        TensorInput(_input_shape("input_shape", s), _input_dtype("input_dtype", d))
        for s, d in zip(shapes, [*dtypes, *[None] * (len(shapes) - len(dtypes))], strict=True)
    )
    names: set[str] = set()
    kw = []
    for name, shape, dtype in keyword:
        if not name.isidentifier() or name in names:
            why = "is given twice" if name in names else "must be the forward's keyword, e.g. attention_mask"
            raise SpecError("input_kw", name, why)
        names.add(name)
        kw.append((name, TensorInput(_input_shape("input_kw", shape), _input_dtype("input_kw", dtype))))
    return ModelInputs(positional, tuple(kw), example, vocab)


def _input_shape(field_name: str, shape: Sequence[int]) -> tuple[int, ...]:
    dims = tuple(shape)
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in dims):
        raise SpecError(field_name, dims, "dims must be non-negative integers, e.g. 1,3,224,224")
    return dims


def _input_dtype(field_name: str, dtype: str | None) -> InputDType | None:
    if dtype is None:
        return None
    try:
        return InputDType(dtype.strip().lower())
    except ValueError:
        valid = ", ".join(d.value for d in InputDType)
        raise SpecError(field_name, dtype, f"is not a dtype; valid: {valid}") from None


def parse_input_kw(text: str) -> tuple[str, tuple[int, ...], str | None]:
    """``attention_mask=1,128:bool`` -> (name, shape, dtype); the dtype is optional."""
    name, sep, rest = text.partition("=")
    if not sep or not name.strip():
        raise SpecError("input_kw", text, "expected NAME=SHAPE[:DTYPE], e.g. attention_mask=1,128:bool")
    shape_text, _, dtype = rest.partition(":")
    return name.strip(), parse_ints("input_kw", shape_text), dtype or None


@unique
class ModelColumn(StrEnum):
    """A column ``analyze --columns`` adds to the module tree."""

    KERNEL = "kernel"
    STRIDE = "stride"
    GROUPS = "groups"
    INPUT = "input"
    TRAINABLE = "trainable"
    OTHER_OPS = "other_ops"
    CALLS = "calls"


def parse_model_columns(text: str | Sequence[str] | None) -> tuple[ModelColumn, ...]:
    """``kernel,stride,input`` (or a list of names): the columns, in the order given."""
    if text is None:
        return ()
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    try:
        return tuple(dict.fromkeys(ModelColumn(n.replace("-", "_")) for n in names))
    except ValueError:
        valid = ", ".join(c.value for c in ModelColumn)
        raise SpecError("columns", text, f"expected a comma-separated list of {valid}") from None
