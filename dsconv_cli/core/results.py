"""Frozen result records: what counting, timing and checking produce and what renderers read.

``dsconv_cli.to_dict(record)`` gives the JSON object the CLI prints for a top-level record (``present/export.py``).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dsconv_cli.core.environment import Conditions
from dsconv_cli.core.spec import ConvLayer, ConvSpec, LayerKind, Stage, TimingCase

ITEMS = ("standard", "depthwise", "pointwise", "separable")  # what a comparison times and analyses


def spread_of(ratios: Sequence[float]) -> float:
    """Largest ratio over the smallest (1.0 where fewer than two: nothing to disagree)."""
    return max(ratios) / min(ratios) if len(ratios) > 1 else 1.0


def speedup_of(round_speedups: tuple[float, ...], latency: dict[str, Latency]) -> float | None:
    """Standard over separable: the median of per-round ratios where rounds were timed, else the ratio of
    the two medians; None when either side was not timed."""
    if round_speedups:
        return statistics.median(round_speedups)
    if "standard" in latency and "separable" in latency:
        return latency["standard"].median_ms / latency["separable"].median_ms
    return None


@dataclass(frozen=True, slots=True)
class LayerStats:
    """Exact counts for one stage (see CONVENTIONS: MACs exclude bias, whole batch)."""

    name: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    macs: int
    elementwise_ops: int = 0
    buffers: int = 0

    @property
    def flops(self) -> int:
        return 2 * self.macs


@dataclass(frozen=True, slots=True)
class VariantStats:
    """One column of a comparison: its stages and their sums."""

    name: str
    stages: tuple[LayerStats, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.stages[0].input_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.stages[-1].output_shape

    @property
    def params(self) -> int:
        return sum(s.params for s in self.stages)

    @property
    def macs(self) -> int:
        return sum(s.macs for s in self.stages)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def elementwise_ops(self) -> int:
        return sum(s.elementwise_ops for s in self.stages)

    @property
    def buffers(self) -> int:
        return sum(s.buffers for s in self.stages)


@dataclass(frozen=True, slots=True)
class Latency:
    """A timing result from ``torch.utils.benchmark``: statistics over its timed blocks."""

    median_ms: float
    iqr_ms: float
    runs: int
    device: str
    threads: int
    dtype: str
    min_ms: float = 0.0
    cv: float | None = 0.0  # standard deviation / mean of the blocks; None from a single block (no spread)

    NOISY_CV = 0.10  # above this the spread says the median is not to be trusted

    @property
    def noisy(self) -> bool:
        return self.cv is not None and self.cv > self.NOISY_CV


@dataclass(frozen=True, slots=True)
class ItemAnalysis:
    """One timed item (a variant or a stage) of one timing case."""

    name: str
    stats: LayerStats | VariantStats
    traffic: Traffic
    intermediate_bytes: int
    latency: Latency | None = None
    roofline: Roofline | None = None
    compile_s: float | None = None
    peak_bytes: int | None = None

    @property
    def arithmetic_intensity(self) -> float:
        return self.stats.flops / self.traffic.min_bytes_moved


@dataclass(frozen=True, slots=True)
class TimingRow:
    """All timings of one case: ``standard``, ``separable`` and its ``depthwise`` and ``pointwise`` stages."""

    case: TimingCase
    latency: dict[str, Latency] = field(default_factory=dict)
    compile_s: dict[str, float] = field(default_factory=dict)
    peak_bytes: dict[str, int] = field(default_factory=dict)
    analysis: dict[str, ItemAnalysis] = field(default_factory=dict)  # counts, traffic, roofline per item
    round_speedups: tuple[float, ...] = ()  # standard / separable within each interleaved round
    one_thread: dict[str, float] = field(default_factory=dict)  # CPU, several threads: median ms at one

    @property
    def speedup(self) -> float | None:
        """The median of the rounds' ratios (the ratio of the medians where no rounds were recorded)."""
        return speedup_of(self.round_speedups, self.latency)

    @property
    def speedup_spread(self) -> float:
        """Largest round ratio over the smallest (1.0: the rounds agree)."""
        return spread_of(self.round_speedups)


@dataclass(frozen=True, slots=True)
class Traffic:
    """The least memory traffic of a stage: each input, weight and output moved once."""

    weight_bytes: int  # params and buffers
    input_bytes: int
    output_bytes: int

    @property
    def activation_bytes(self) -> int:
        return self.input_bytes + self.output_bytes

    @property
    def min_bytes_moved(self) -> int:
        return self.weight_bytes + self.input_bytes + self.output_bytes


@dataclass(frozen=True, slots=True)
class Peaks:
    """A machine's measured memory bandwidth and compute peak for one device, dtype and thread count."""

    device: str
    device_name: str
    dtype: str
    threads: int
    bandwidth_gbps: float
    compute_gflops: float
    measured_at: str
    torch_version: str
    conditions: dict[str, Any] = field(default_factory=dict)  # repeats' spreads, the machine's state

    @property
    def ridge_point(self) -> float:
        """FLOPs per byte above which compute, not memory, bounds a kernel."""
        return self.compute_gflops / self.bandwidth_gbps

    @property
    def key(self) -> str:
        return f"{self.device}|{self.device_name}|{self.dtype}|{self.threads}"


@dataclass(frozen=True, slots=True)
class Roofline:
    """Where one timed stage sits under the machine's roofs."""

    arithmetic_intensity: float  # FLOPs per byte of least traffic
    achieved_gflops: float
    achieved_gbps: float
    bound: str  # "memory" or "compute"
    fraction_of_roof: float


Measured = int | tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Check:
    """One analytic number against one reference (``reference`` None: the reference can't count it)."""

    stage: str
    quantity: str
    source: str
    analytic: Measured
    reference: Measured | None
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.reference is None or self.reference == self.analytic


@dataclass(frozen=True, slots=True)
class Comparison:
    """A standard conv against its depthwise-separable counterpart on one input."""

    spec: ConvSpec
    input_shape: tuple[int, ...]
    standard: VariantStats
    separable: VariantStats
    notes: tuple[str, ...] = ()
    timings: tuple[TimingRow, ...] = ()
    checks: tuple[Check, ...] = ()
    peaks: tuple[Peaks, ...] = ()  # per timed dtype
    interrupted: bool = False  # timing stopped by the user: ``timings`` holds what was measured
    analysis: dict[str, ItemAnalysis] = field(default_factory=dict)  # untimed: counts and traffic per item
    conditions: Conditions | None = None  # where it was timed, and whether that can be trusted
    per_sample_macs: tuple[int, int] | None = None  # batch 0: (standard, separable) MACs of one sample

    @property
    def trusted(self) -> bool | None:
        """None when untimed; False when the machine was busy or the rounds disagreed."""
        return None if self.conditions is None else self.conditions.trusted

    @property
    def latency(self) -> dict[str, Latency]:
        """The first timing case's latencies (the one the main table shows)."""
        return self.timings[0].latency if self.timings else {}

    @property
    def param_ratio(self) -> float:
        return self.separable.params / self.standard.params

    @property
    def mac_ratio(self) -> float:
        """Separable over standard MACs (per sample at batch 0, where both are 0)."""
        if self.standard.macs == 0 and self.per_sample_macs:
            return self.per_sample_macs[1] / self.per_sample_macs[0]
        return self.separable.macs / self.standard.macs

    @property
    def theoretical_ratio(self) -> float:
        """MobileNet eq. 5, generalised to groups g and multiplier m: ``m*g*(1/C_out + 1/prod(k))``."""
        s = self.spec
        return s.multiplier * s.groups * (1 / s.out_channels + 1 / math.prod(s.kernel_size))

    @property
    def speedup(self) -> float | None:
        return self.timings[0].speedup if self.timings else None


@dataclass(frozen=True, slots=True)
class LayerResult:
    """One layer of a stack, counted in both columns."""

    name: str
    kind: LayerKind
    standard: VariantStats
    separable: VariantStats
    comparison: Comparison | None = None  # conv kinds: the full comparison, spec included
    latency: dict[str, Latency] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)  # as declared (linear: out_features, bias)
    column_stages: dict[str, tuple[Stage, ...]] = field(default_factory=dict)  # conv stages per column
    round_speedups: tuple[float, ...] = ()  # standard / separable in each interleaved timing round
    add: str | None = None  # adds this earlier layer's output to its own
    share: str | None = None  # reuses this earlier layer's weights (its params count there)

    @property
    def speedup(self) -> float | None:
        return speedup_of(self.round_speedups, self.latency)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.standard.input_shape

    def stages(self, column: str) -> tuple[Stage, ...]:
        """The conv stages in ``column`` (empty for kinds counted whole, such as linear and pooling)."""
        return self.column_stages.get(column, ())

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.standard.output_shape

    def column(self, name: str) -> VariantStats:
        return self.standard if name == "standard" else self.separable


@dataclass(frozen=True, slots=True)
class StackResult:
    """A whole stack (or one sweep point of it): its layers and per-column totals."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[LayerResult, ...]
    point: dict[str, Any] = field(default_factory=dict)  # sweep values; empty outside sweeps
    latency: dict[str, Latency] = field(default_factory=dict)  # whole column, timed as one module
    round_speedups: tuple[float, ...] = ()  # whole columns: standard / separable in each round

    @property
    def speedup(self) -> float | None:
        return speedup_of(self.round_speedups, self.latency)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape

    @property
    def chained(self) -> bool:
        """Each layer takes the previous one's output (not so where a layer declares its own input)."""
        shapes = [self.input_shape, *(layer.output_shape for layer in self.layers[:-1])]
        return all(layer.input_shape == shape for layer, shape in zip(self.layers, shapes, strict=True))

    def total(self, column: str, metric: str) -> int:
        """Sum of ``metric`` (params, macs, flops, elementwise_ops, buffers) over a column."""
        return sum(int(getattr(layer.column(column), metric)) for layer in self.layers)

    def ratio(self, metric: str) -> float:
        return self.total("separable", metric) / self.total("standard", metric)


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One budget held against one measured value (``actual`` None: not measured, e.g. untimed)."""

    scope: str  # "total" or a layer name
    column: str  # standard, separable, or "reduction" for min_reduction
    metric: str  # params, macs, latency_ms
    limit: float
    actual: float | None
    minimum: bool = False  # True: actual must reach the limit (min_reduction)

    @property
    def ok(self) -> bool:
        if self.actual is None:
            return True
        if math.isnan(self.actual):  # a limit on something that could not be measured fails
            return False
        return self.actual >= self.limit if self.minimum else self.actual <= self.limit

    @property
    def margin(self) -> float | None:
        """How far inside the limit (negative: by how much it is exceeded)."""
        if self.actual is None:
            return None
        return self.actual - self.limit if self.minimum else self.limit - self.actual


@dataclass(frozen=True, slots=True)
class Delta:
    """One total now against the same total in a baseline run."""

    config: str
    column: str
    metric: str
    old: float
    new: float
    gated: bool

    @property
    def change_pct(self) -> float:
        if self.old == 0:
            return 0.0 if self.new == 0 else float("inf")
        return (self.new - self.old) / self.old * 100


@dataclass(frozen=True, slots=True)
class ConfigReport:
    """Everything one config file produced: its stacks (one per sweep point) and its verdicts."""

    name: str
    path: str
    stacks: tuple[StackResult, ...]
    sweep: dict[str, list[Any]] = field(default_factory=dict)
    budgets: tuple[BudgetCheck, ...] = ()
    deltas: tuple[Delta, ...] = ()
    failures: tuple[str, ...] = ()  # one line per failed budget, growth or cross-check
    model: ModelAnalysis | None = None  # a config that names a whole model (then ``stacks`` is empty)
    conditions: Conditions | None = None  # where it was timed, and whether that can be trusted
    interrupted: bool = False  # Ctrl-C cut its timing short: what was measured is kept, the rest counted only

    @property
    def ok(self) -> bool:
        return not self.failures


# --- whole models (dsconv analyze) ---------------------------------------------------------------

Shapes = tuple[tuple[int, ...], ...]


@dataclass(frozen=True, slots=True)
class OpCount:
    """An op name (or a module path) and a number: calls, or parameters."""

    name: str
    count: int


@dataclass(frozen=True, slots=True)
class TensorLeaf:
    """One tensor of a forward's inputs or outputs: where it sits (``input_ids``, ``logits``, ``0.1``; empty for
    a lone output), its shape and dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True, slots=True)
class SharedParam:
    """A parameter held by several modules (a tied weight): its numel counts once; ``holders`` are their paths."""

    name: str
    numel: int
    holders: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OpTally:
    """One aten op over the forward: its calls, MACs and other ops, and how it was counted."""

    name: str
    calls: int
    macs: int
    other_ops: int
    kind: str  # counted, data movement, or uncounted


@dataclass(frozen=True, slots=True)
class Memory:
    """Bytes of a forward, as torchinfo's estimated total size for inference: the inputs, the parameters and
    buffers, and the activations (every output of every call of a leaf module)."""

    input_bytes: int = 0
    param_bytes: int = 0
    buffer_bytes: int = 0
    activation_bytes: int = 0

    @property
    def total_bytes(self) -> int:
        return self.input_bytes + self.param_bytes + self.buffer_bytes + self.activation_bytes


@dataclass(frozen=True, slots=True)
class ConvCall:
    """One call of a conv module in the forward: its layer, shapes and the MACs PyTorch's formula gave it;
    ``source``: the depthwise conv whose output (through norms, activations, elementwise ops) is its input."""

    path: str
    conv: ConvLayer
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    macs: int
    source: str | None = None


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One module: what ran inside it (MACs and other ops summed over its calls and children)."""

    path: str
    type: str
    depth: int  # 0 for the model itself
    input_shapes: Shapes
    output_shapes: Shapes
    params: int  # unique parameters of the module and its children
    macs: int
    other_ops: int
    calls: int
    share: float  # of the model's MACs
    trainable_params: int = 0  # of ``params``, those with requires_grad
    param_bytes: int = 0  # of the module's unique parameters
    buffer_bytes: int = 0
    activation_bytes: int = 0  # every output of every call of the leaf modules inside it (or of itself)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A standard conv and what its depthwise-separable replacement would cost (all its calls)."""

    path: str
    conv: ConvLayer
    params: int
    macs: int
    separable_params: int
    separable_macs: int
    calls: int
    input_shape: tuple[int, ...]
    multiplier: int = 1  # depth multiplier m of the pair's depthwise stage
    energy_kept: float | None = None  # share of the weight's energy the closed-form pair keeps (real weights)
    layer_error: float | None = None  # relative L2 error of the pair's output on this conv's real input

    @property
    def params_saved(self) -> int:
        return self.params - self.separable_params

    @property
    def macs_saved(self) -> int:
        return self.macs - self.separable_macs

    @property
    def theoretical_ratio(self) -> float:
        """MobileNet eq. 5: ``1/C_out + 1/prod(k)``."""
        return 1 / self.conv.out_channels + 1 / math.prod(self.conv.kernel_size)


@dataclass(frozen=True, slots=True)
class CandidateTiming:
    """One candidate conv timed alone against its separable pair, on its own (first call's) input."""

    path: str
    standard: Latency
    separable: Latency
    predicted: float  # MACs before / after: the speedup the MAC count alone predicts
    round_speedups: tuple[float, ...] = ()

    @property
    def speedup(self) -> float:
        found = speedup_of(self.round_speedups, {"standard": self.standard, "separable": self.separable})
        assert found is not None
        return found

    @property
    def speedup_spread(self) -> float:
        return spread_of(self.round_speedups)


@dataclass(frozen=True, slots=True)
class Fidelity:
    """How closely the converted model reproduces the original's outputs, and on which inputs."""

    output_error: float  # ‖y − ŷ‖ / ‖y‖ over every output element
    snr_db: float  # −20·log10(output_error); inf when exact
    inputs: str  # what it was measured on: random normal probes, or a calibration file
    probes: bool = True  # measured on random probes (real inputs can differ widely)
    trained: bool = True  # the model had loaded weights (fidelity of fresh weights means little)
    init: str = "svd"  # svd (closed form) or random (fresh pairs)
    refit_from: float | None = None  # output error before the refit, on the same held-out inputs


@dataclass(frozen=True, slots=True)
class ModelTotals:
    """Everything one forward pass of a model counted."""

    params: int
    macs: int
    other_ops: int
    output_shapes: Shapes
    rows: tuple[ModelRow, ...] = ()
    uncounted: tuple[OpCount, ...] = ()  # ops that ran and dsconv did not count
    data_movement: tuple[OpCount, ...] = ()  # views, copies, creation: no arithmetic
    idle_params: tuple[OpCount, ...] = ()  # modules holding parameters that no op read
    conv_calls: tuple[ConvCall, ...] = ()
    trainable_params: int = 0  # params with requires_grad; the rest are frozen
    buffers: int = 0  # elements of the buffers (running statistics, fixed tables), each once
    memory: Memory = field(default_factory=Memory)
    outputs: tuple[TensorLeaf, ...] = ()  # each output tensor, named by where it sits
    shared_params: tuple[SharedParam, ...] = ()  # tied parameters, each counted once in ``params``
    functional_convs: tuple[OpCount, ...] = ()  # modules calling a conv op themselves (F.conv2d): calls
    unruled_macs: tuple[OpCount, ...] = ()  # uncounted ops that multiply-accumulate: MACs is a lower bound
    by_op: tuple[OpTally, ...] = ()

    @property
    def frozen_params(self) -> int:
        return self.params - self.trainable_params

    @property
    def lower_bound(self) -> bool:
        """Whether an op that multiplies and accumulates ran without a rule, so ``macs`` undercounts."""
        return bool(self.unruled_macs)


def _within(path: str, module: str) -> bool:
    """Whether ``path`` is the module at ``module`` or inside it."""
    return path == module or path.startswith(module + ".")


@dataclass(frozen=True, slots=True)
class ModelAnalysis:
    """A model counted layer by layer, the conversion advice and, when asked, the converted model re-counted."""

    target: str
    input_shapes: Shapes
    dtype: str
    counted_on: str  # meta, or cpu where the model needs real values
    totals: ModelTotals
    candidates: tuple[Candidate, ...]
    existing_separable: tuple[tuple[str, str], ...]
    chosen: tuple[str, ...] = ()
    converted: ModelTotals | None = None
    notes: tuple[str, ...] = ()
    checks: tuple[tuple[str, int, int], ...] = ()  # (what, dsconv, reference)
    interrupted: bool = False  # Ctrl-C stopped the timing: the counts are complete, the timings what was measured
    latency: dict[str, Latency] = field(default_factory=dict)  # original, converted
    candidate_timings: tuple[CandidateTiming, ...] = ()  # top candidates timed alone (with --bench)
    conditions: Conditions | None = None  # where it was timed, and whether that can be trusted
    fidelity: Fidelity | None = None  # the converted model measured against the original
    not_converted: tuple[tuple[str, str], ...] = ()  # (conv, why it was not converted)
    renamed_keys: tuple[tuple[str, tuple[str, ...]], ...] = ()  # state-dict keys the conversion changed
    converted_model: Any = field(default=None, compare=False, repr=False)  # the converted CPU nn.Module
    comparisons: tuple[tuple[str, Comparison], ...] = ()  # each candidate as compare counts it (--show-work)
    inputs: tuple[TensorLeaf, ...] = ()  # each input tensor, named by the forward's parameters
    keyword_inputs: tuple[str, ...] = ()  # the inputs given by keyword

    def if_converted(self, paths: tuple[str, ...] | None = None) -> tuple[int, int]:
        """Predicted (params, MACs) of the model with ``paths`` converted (default: every candidate).

        Each parameter counts once: a candidate's ``params`` are those only it holds, and a weight tied between
        convs goes only when every conv holding it is converted."""
        chosen = [c for c in self.candidates if paths is None or c.path in paths]
        converted = {c.path for c in chosen}
        tied = sum(s.numel for s in self.totals.shared_params
                   if all(any(_within(h, p) for p in converted) for h in s.holders))  # fmt: skip
        return (self.totals.params - sum(c.params_saved for c in chosen) - tied,
                self.totals.macs - sum(c.macs_saved for c in chosen))  # fmt: skip

    @property
    def failed_checks(self) -> list[tuple[str, int, int]]:
        return [c for c in self.checks if c[1] != c[2]]
