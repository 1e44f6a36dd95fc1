"""Conversion with weights: standard convs become depthwise-separable pairs that approximate them, and how well.

The closed form is the counting convention's "network decoupling" (docs/counting.md): per input channel i
the ``C_out × prod(k)`` slice ``A_i`` of the weight is cut to its best rank-m approximation (Eckart–Young)
by its SVD, the right singular vectors becoming depthwise filters and the left ones pointwise columns.
Fidelity is measured, never assumed: per conv on the input it really receives in the model, and for the
whole model on probes or on calibration inputs, as ``output_error = ‖y − ŷ‖ / ‖y‖``
and ``snr_db = −20·log10(output_error)``.
"""

from __future__ import annotations

import copy
import math
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum, unique
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_flatten

from dsconv_cli.core import counting
from dsconv_cli.core.advise import is_candidate
from dsconv_cli.core.parse import check_pct, parse_convert_rule, parse_multiplier
from dsconv_cli.core.results import Candidate, Fidelity
from dsconv_cli.core.spec import ConvLayer
from dsconv_cli.errors import DsconvError, OutputError, SpecError, TargetError
from dsconv_cli.pt.trace import conv_layer, get_module

Batch = tuple[torch.Tensor, ...]  # the positional inputs of one forward call
_ConvNd = nn.modules.conv._ConvNd
_ConvTransposeNd = nn.modules.conv._ConvTransposeNd
_STATE_DICT_KEYS = ("state_dict", "model", "model_state_dict")
_LISTED = 3  # keys named in a mismatch message before "..."


class WeightsError(DsconvError):
    """A weights file that cannot be loaded into the model: missing, unsafe, not a state dict, wrong keys."""

    exit_code = 2


class CalibrationError(DsconvError):
    """A calibration file that cannot be read as model inputs."""

    exit_code = 2


@unique
class Init(StrEnum):
    """How a pair's weights are set: the closed form, or PyTorch's fresh initialisation."""

    SVD = "svd"
    RANDOM = "random"


@unique
class Rule(StrEnum):
    """Which candidate convs a conversion replaces."""

    ALL = "all"
    TOP = "top"
    MIN_SAVING = "min-saving"
    MAX_ERROR = "max-error"


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ConvFidelity:
    """One converted conv: its multiplier, the weight energy its pair keeps and its own output error.

    ``layer_error`` is measured on the inputs the conv receives in the original model (all its calls);
    ``energy_kept`` is NaN for ``init="random"``. Params and MACs follow CONVENTIONS.md (whole batch,
    bias excluded from MACs), MACs summed over the conv's calls.
    """

    name: str
    multiplier: int
    energy_kept: float
    layer_error: float
    params: int
    separable_params: int
    macs: int
    separable_macs: int
    refitted: bool = False

    @property
    def macs_saved(self) -> int:
        return self.macs - self.separable_macs

    @property
    def params_saved(self) -> int:
        return self.params - self.separable_params


@dataclass(frozen=True, slots=True)
class Skipped:
    """A standard conv left as it is, and why."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class KeyRename:
    """A state-dict key of a converted conv and the keys that replace it (``conv.weight`` -> ``conv.0.weight``, …)."""

    old: str
    new: tuple[str, ...]


@dataclass(frozen=True, slots=True, eq=False)
class ConversionResult:
    """A converted copy of a model, its measured fidelity, what was converted, what was not and why.

    With ``refit``, ``fidelity`` and each ``layer_error`` are measured on the held-out half of the
    calibration inputs, and ``fidelity_before_refit`` is the closed form's on that same half.
    """

    module: nn.Module
    fidelity: Fidelity
    convs: tuple[ConvFidelity, ...]
    skipped: tuple[Skipped, ...]
    renamed: tuple[KeyRename, ...] = ()
    fidelity_before_refit: Fidelity | None = None

    @property
    def macs_saved(self) -> int:
        return sum(c.macs_saved for c in self.convs)


# --- one conv -------------------------------------------------------------------------------------


def _check_standard(conv: nn.Module) -> _ConvNd:
    if not isinstance(conv, _ConvNd):
        raise SpecError("conv", type(conv).__name__, "is not a Conv1d/2d/3d or ConvTranspose1d/2d/3d")
    if conv.groups != 1:
        raise SpecError("groups", conv.groups, "only a standard conv (groups 1) has a depthwise-separable pair")
    if math.prod(conv.kernel_size) == 1:
        raise SpecError("kernel_size", tuple(conv.kernel_size), "a 1x1 conv has no depthwise-separable pair")
    return conv


def _factors(conv: _ConvNd) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batched SVD of the slices ``A_i`` (``C_in × C_out × prod(k)``, float64): U, σ (descending), Vᵀ."""
    weight = conv.weight.detach().to("cpu", torch.float64)
    if isinstance(conv, _ConvTransposeNd):  # (C_in, C_out, *k)
        slices = weight.reshape(conv.in_channels, conv.out_channels, -1)
    else:  # (C_out, C_in, *k)
        slices = weight.reshape(conv.out_channels, conv.in_channels, -1).transpose(0, 1)
    u, s, vh = torch.linalg.svd(slices, full_matrices=False)
    return u, s, vh


def rank_bound(conv: nn.Module) -> int:
    """The largest useful multiplier: ``min(C_out, prod(k))``, the rank a slice ``A_i`` can have."""
    checked = _check_standard(conv)
    return min(checked.out_channels, math.prod(checked.kernel_size))


def _cumulative_energy(s: torch.Tensor) -> list[float]:
    """Energy kept at m = 1, 2, …: ``Σ_i Σ_{r<m} σ_{i,r}² / ‖W‖²_F``."""
    power = s.square().sum(0)
    total = float(power.sum())
    if total == 0:
        return [1.0] * power.numel()
    return [min(1.0, float(v) / total) for v in power.cumsum(0)]


def energy_kept(conv: nn.Module, multiplier: int) -> float:
    """The fraction of ``‖W‖²_F`` the rank-m pair keeps: ``Σ_i Σ_{r<m} σ_{i,r}² / ‖W‖²_F`` (m capped at the bound)."""
    m = _capped(conv, multiplier)
    return _cumulative_energy(_factors(_check_standard(conv))[1])[m - 1]


def multiplier_for_energy(conv: nn.Module, pct: float) -> int:
    """The smallest multiplier whose pair keeps at least ``pct`` percent of the conv's weight energy."""
    check_pct("multiplier", f"auto:{pct:g}", pct, low_open=True)
    energies = _cumulative_energy(_factors(_check_standard(conv))[1])
    target = pct / 100 - 1e-12  # float noise must not push a rank-deficient weight to its full rank
    return next((m for m, e in enumerate(energies, 1) if e >= target), len(energies))


def _capped(conv: nn.Module, multiplier: int) -> int:
    if isinstance(multiplier, bool) or not isinstance(multiplier, int) or multiplier < 1:
        raise SpecError("multiplier", multiplier, "must be a positive integer or auto:PCT, e.g. 2 or auto:90")
    return min(multiplier, rank_bound(conv))


def _pair_modules(conv: _ConvNd, m: int) -> nn.Sequential:
    """Depthwise (groups C_in, ``m·C_in`` outputs, no bias) then pointwise 1x1 with the original's bias, as
    PyTorch initialises them; the depthwise stage copies kernel, stride, padding, dilation, padding mode and
    output padding."""
    rank = len(conv.kernel_size)
    factory: dict[str, Any] = {"device": conv.weight.device, "dtype": conv.weight.dtype}
    common: dict[str, Any] = {
        "kernel_size": conv.kernel_size, "stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation,
        "groups": conv.in_channels, "bias": False, "padding_mode": conv.padding_mode,
    }  # fmt: skip
    plain = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[rank - 1]
    depthwise: nn.Module
    if isinstance(conv, _ConvTransposeNd):
        common["output_padding"] = conv.output_padding
        transposed = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[rank - 1]
        depthwise = transposed(conv.in_channels, m * conv.in_channels, **common, **factory)
    else:
        depthwise = plain(conv.in_channels, m * conv.in_channels, **common, **factory)
    pointwise = plain(m * conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None, **factory)
    return nn.Sequential(depthwise, pointwise).train(conv.training)


def _set_closed_form(pair: nn.Sequential, conv: _ConvNd, m: int, factors: Sequence[torch.Tensor]) -> None:
    """Depthwise filter (i, r) = √σ_r·v_r, pointwise column (i, r) = √σ_r·u_r; the bias moves to the pointwise."""
    u, s, vh = factors
    root = s[:, :m].sqrt()  # (C_in, m)
    filters = root.unsqueeze(-1) * vh[:, :m, :]  # (C_in, m, prod(k)): output channel i·m + r
    columns = (u[:, :, :m] * root.unsqueeze(1)).permute(1, 0, 2)  # (C_out, C_in, m): column i·m + r
    depthwise, pointwise = pair[0], pair[1]
    assert isinstance(depthwise, _ConvNd) and isinstance(pointwise, _ConvNd)
    kernel = tuple(conv.kernel_size)
    c_in, c_out = conv.in_channels, conv.out_channels
    if isinstance(conv, _ConvTransposeNd):
        shaped = filters.reshape(c_in, m, *kernel)  # ConvTranspose weight: (C_in, out/groups, *k)
    else:
        shaped = filters.reshape(c_in * m, 1, *kernel)  # Conv weight: (out, in/groups, *k)
    ones = (1,) * len(kernel)
    with torch.no_grad():
        depthwise.weight.copy_(shaped.to(depthwise.weight.dtype))
        pointwise.weight.copy_(columns.reshape(c_out, c_in * m, *ones).to(pointwise.weight.dtype))
        if conv.bias is not None:
            assert pointwise.bias is not None
            pointwise.bias.copy_(conv.bias.detach())


def decouple(conv: nn.Module, multiplier: int = 1, init: Init | str = Init.SVD) -> tuple[nn.Sequential, float]:
    """The depthwise → pointwise pair replacing a standard conv, and the weight energy it keeps (NaN for random).

    ``svd``: the rank-m closed form (exact when every ``A_i`` has rank ≤ m); ``random``: PyTorch's own
    initialisation. ``multiplier`` is capped at ``min(C_out, prod(k))``. The output shape is the conv's.
    """
    checked = _check_standard(conv)
    how = parse_init(init)
    m = _capped(checked, multiplier)
    pair = _pair_modules(checked, m)
    if how is Init.RANDOM:
        return pair, math.nan
    factors = _factors(checked)
    _set_closed_form(pair, checked, m, factors)
    return pair, _cumulative_energy(factors[1])[m - 1]


def parse_init(init: Init | str) -> Init:
    """``svd`` (closed-form pairs) or ``random`` (fresh ones)."""
    try:
        return Init(init)
    except ValueError:
        raise SpecError("init", init, "expected svd or random") from None


# --- choices --------------------------------------------------------------------------------------


def parse_rule(rule: str) -> tuple[Rule, float]:
    """``all``, ``top:N``, ``min-saving:PCT`` or ``max-error:PCT`` -> (rule, N or PCT; 0 for all)."""
    kind, number = parse_convert_rule(rule)
    return Rule(kind), number


# --- inputs ---------------------------------------------------------------------------------------


def _batches_of(value: object, source: str) -> list[Batch]:
    """A tensor (one batch), a tuple of tensors (a model's several inputs) or a list of either (several batches)."""
    expected = "expected a tensor, a tuple of tensors (the model's inputs) or a list of either (batches)"
    if isinstance(value, torch.Tensor):
        return [(value,)]
    if isinstance(value, tuple) and value and all(isinstance(v, torch.Tensor) for v in value):
        return [value]
    if isinstance(value, list) and value:
        batches: list[Batch] = []
        for item in value:
            if isinstance(item, torch.Tensor):
                batches.append((item,))
            elif isinstance(item, tuple | list) and item and all(isinstance(v, torch.Tensor) for v in item):
                batches.append(tuple(item))
            else:
                raise CalibrationError(f"{source}: item {len(batches)} is a {type(item).__name__}; {expected}")
        return batches
    raise CalibrationError(f"{source}: holds a {type(value).__name__}; {expected}")


def load_inputs(path: str | Path) -> list[Batch]:
    """Calibration inputs from ``.pt`` (a tensor, a tuple of tensors or a list of either) or ``.npy`` (an array)."""
    file = Path(path)
    if not file.is_file():
        raise CalibrationError(f"{file}: no such file" if not file.exists() else f"{file}: is not a file")
    suffix = file.suffix.lower()
    if suffix == ".npy":
        import numpy as np

        try:
            array = np.load(file, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CalibrationError(f"{file}: not a numeric .npy array ({_first_line(exc)})") from None
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "biufc":
            raise CalibrationError(f"{file}: holds {getattr(array, 'dtype', type(array).__name__)}, not numbers")
        return [(torch.from_numpy(array),)]
    if suffix in (".pt", ".pth"):
        return _batches_of(_torch_load(file, CalibrationError), str(file))
    raise CalibrationError(f"{file}: unknown kind {suffix or '(no suffix)'}; expected .pt or .npy")


def _samples(batches: Sequence[Batch]) -> int:
    return sum(b[0].shape[0] if b[0].dim() else 1 for b in batches)


def _halves(batches: Sequence[Batch]) -> tuple[list[Batch], list[Batch]]:
    """Fit half and held-out half: alternate batches, or a single batch split along its first dim."""
    if len(batches) >= 2:
        return list(batches[0::2]), list(batches[1::2])
    (batch,) = batches
    n = batch[0].shape[0] if batch[0].dim() else 1
    if n < 2 or any(t.dim() == 0 or t.shape[0] != n for t in batch):
        raise SpecError("refit", True, f"needs at least 2 calibration samples batched along the first dim (got {n})")
    half = n // 2
    return [tuple(t[:half] for t in batch)], [tuple(t[half:] for t in batch)]


def _probes(input_shape: Sequence[int] | Sequence[Sequence[int]], dtype: torch.dtype, seed: int) -> list[Batch]:
    if not input_shape:
        raise SpecError("input_shape", input_shape, "give at least one shape, e.g. 1,3,224,224")
    first = input_shape[0]
    shapes = [tuple(input_shape)] if isinstance(first, int) else [tuple(s) for s in input_shape]  # type: ignore[arg-type]
    for shape in shapes:
        if not shape or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in shape):
            raise SpecError("input_shape", shape, "dims must be positive integers, e.g. 1,3,224,224")
    generator = torch.Generator().manual_seed(seed)
    return [tuple(torch.randn(s, generator=generator, dtype=dtype) for s in shapes)]  # type: ignore[arg-type]


def _describe_shapes(batches: Sequence[Batch]) -> str:
    leaves, _ = tree_flatten(list(batches[0]))  # a dict or a list among the inputs: its tensors
    return ", ".join("(" + ", ".join(map(str, t.shape)) + ")" for t in leaves if isinstance(t, torch.Tensor))


def _cast(batches: Sequence[Batch], dtype: torch.dtype) -> list[Batch]:
    """Floating inputs in the model's dtype, on the CPU; integer inputs (token ids) as they are."""
    return [tuple(t.to("cpu", dtype) if t.is_floating_point() else t.to("cpu") for t in b) for b in batches]


# --- running a model ------------------------------------------------------------------------------


@contextmanager
def _evaluating(model: nn.Module) -> Iterator[None]:
    """Eval mode and no grad for a measurement; each module's own mode comes back afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, mode in modes:
            module.training = mode


def _run(
    model: nn.Module,
    batches: Sequence[Batch],
    watched: Mapping[int, nn.Module] | None = None,
    extra: set[int] | None = None,
) -> tuple[list[Any], dict[int, list[torch.Tensor]], list[int]]:
    """The outputs per batch, and each watched module's inputs (per call) and the order modules were first called;
    ``extra`` collects the watched modules called with more than their input (a transposed conv's output_size)."""
    seen: dict[int, list[torch.Tensor]] = {key: [] for key in watched or {}}
    order: list[int] = []
    handles = []

    def watcher(key: int) -> Callable[[nn.Module, tuple[Any, ...], dict[str, Any]], None]:
        def pre(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            if not seen[key]:
                order.append(key)
            x = args[0] if args else kwargs["input"]
            seen[key].append(x.detach().clone())  # a later in-place op must not change what was seen
            if extra is not None and (len(args) + len(kwargs) > 1):
                extra.add(key)

        return pre

    for key, module in (watched or {}).items():
        handles.append(module.register_forward_pre_hook(watcher(key), with_kwargs=True))
    outputs = []
    try:
        with _evaluating(model):
            for batch in batches:
                try:
                    outputs.append(model(*batch))
                except DsconvError:
                    raise
                except Exception as exc:
                    shapes = ", ".join(str(tuple(t.shape)) for t in batch if isinstance(t, torch.Tensor))
                    raise TargetError(f"the forward failed on inputs {shapes}: {type(exc).__name__}: {exc}") from exc
    finally:
        for handle in handles:
            handle.remove()
    return outputs, seen, order


def _leaves(output: Any) -> list[torch.Tensor]:
    leaves, _ = tree_flatten(output)
    found = []
    for leaf in leaves:
        if isinstance(leaf, torch.Tensor) and (leaf.is_floating_point() or leaf.is_complex()):
            found.append(torch.view_as_real(leaf) if leaf.is_complex() else leaf)
    return found


def _sums(reference: Sequence[Any], approximation: Sequence[Any]) -> tuple[float, float]:
    """``‖y − ŷ‖²`` and ``‖y‖²`` over every output element of every batch, in float64."""
    error = power = 0.0
    for y, y_hat in zip(reference, approximation, strict=True):
        ys, y_hats = _leaves(y), _leaves(y_hat)
        if [t.shape for t in ys] != [t.shape for t in y_hats]:
            raise TargetError(
                f"the converted model's outputs {[tuple(t.shape) for t in y_hats]} differ from the original's "
                f"{[tuple(t.shape) for t in ys]}"
            )
        for a, b in zip(ys, y_hats, strict=True):
            a64 = a.detach().to("cpu", torch.float64)
            error += float((a64 - b.detach().to("cpu", torch.float64)).square().sum())
            power += float(a64.square().sum())
    return error, power


def _relative_error(error: float, power: float) -> float:
    if power == 0:
        return 0.0 if error == 0 else math.inf
    return math.sqrt(error / power)


def snr_db(output_error: float) -> float:
    """``−20·log10(output_error)``: inf when exact."""
    if output_error == 0:
        return math.inf
    return -20 * math.log10(output_error) if math.isfinite(output_error) else -math.inf


def _fidelity(reference: Sequence[Any], approximation: Sequence[Any], inputs: str) -> Fidelity:
    error = _relative_error(*_sums(reference, approximation))
    return Fidelity(error, snr_db(error), inputs)


def measure_fidelity(
    original: nn.Module,
    converted: nn.Module,
    inputs: torch.Tensor | Batch | Sequence[torch.Tensor | Batch],
    described: str | None = None,
) -> Fidelity:
    """``output_error`` and ``snr_db`` of ``converted`` against ``original`` on the same inputs (eval mode, no grad).

    Outputs may be tensors or any nesting of tuples, lists and dicts of them; all their elements count."""
    batches = _batches_of(inputs, "inputs")
    y, _, _ = _run(original, batches)
    y_hat, _, _ = _run(converted, batches)
    return _fidelity(y, y_hat, described or f"{_samples(batches)} samples")


# --- the conversion -------------------------------------------------------------------------------


@dataclass(eq=False)
class _Site:
    """A standard conv of the model (one module, maybe at several paths) and its planned pair."""

    conv: _ConvNd
    paths: list[str]
    calls: list[torch.Tensor] = field(default_factory=list)
    multiplier: int = 1
    energy: float = math.nan
    pair: nn.Sequential | None = None
    stats: ConvFidelity | None = None

    @property
    def name(self) -> str:
        return self.paths[0]


def _standard_sites(model: nn.Module) -> dict[int, _Site]:
    sites: dict[int, _Site] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        if path and isinstance(module, _ConvNd) and is_candidate(conv_layer(module)):
            if id(module) in sites:
                sites[id(module)].paths.append(path)
            else:
                sites[id(module)] = _Site(module, [path])
    return sites


def _pair_layers(conv: ConvLayer, m: int) -> tuple[ConvLayer, ConvLayer]:
    depthwise = replace(conv, out_channels=m * conv.in_channels, groups=conv.in_channels, bias=False)
    ones = (1,) * conv.rank
    pointwise = ConvLayer(m * conv.in_channels, conv.out_channels, ones, ones, (0,) * conv.rank, ones, 1, conv.bias)
    return depthwise, pointwise


def _costs(conv: _ConvNd, m: int, calls: Sequence[torch.Tensor]) -> tuple[int, int, int, int]:
    """Params and MACs (summed over calls) of the conv and of its pair at multiplier m, by CONVENTIONS.md."""
    layer = conv_layer(conv)
    depthwise, pointwise = _pair_layers(layer, m)
    macs = separable = 0
    for x in calls:
        shape = tuple(x.shape) if x.dim() == layer.rank + 2 else (1, *x.shape)  # an unbatched call
        out = counting.conv_output_shape(layer, shape)
        mid = counting.conv_output_shape(depthwise, shape)
        macs += counting.conv_macs(layer, shape, out)
        separable += counting.conv_macs(depthwise, shape, mid)
        separable += counting.conv_macs(pointwise, mid, counting.conv_output_shape(pointwise, mid))
    params = counting.conv_params(layer)
    return params, counting.conv_params(depthwise) + counting.conv_params(pointwise), macs, separable


def _layer_error(conv: nn.Module, pair: nn.Module, calls: Sequence[torch.Tensor]) -> float:
    with torch.no_grad():
        return _relative_error(*_sums([conv(x) for x in calls], [pair(x) for x in calls]))


def _install(root: nn.Module, paths: Sequence[str], module: nn.Module) -> None:
    for path in paths:
        parent, _, name = path.rpartition(".")
        setattr(root.get_submodule(parent) if parent else root, name, module)


def renamed_keys(names: Sequence[str], bias: Mapping[str, bool] | None = None) -> tuple[KeyRename, ...]:
    """The state-dict keys that change when the convs at ``names`` become pairs: ``weight`` splits in two,
    ``bias`` moves to the pointwise stage."""
    renames = []
    for name in names:
        renames.append(KeyRename(f"{name}.weight", (f"{name}.0.weight", f"{name}.1.weight")))
        if bias is None or bias.get(name, True):
            renames.append(KeyRename(f"{name}.bias", (f"{name}.1.bias",)))
    return tuple(renames)


def convert(
    model: nn.Module,
    rule: str = "all",
    init: Init | str = Init.SVD,
    multiplier: int | str = 1,
    calibrate: str | Path | torch.Tensor | Batch | list[Any] | None = None,
    input_shape: Sequence[int] | Sequence[Sequence[int]] | None = None,
    *,
    refit: bool = False,
    seed: int = 0,
    probes: tuple[Sequence[Batch], str] | None = None,
) -> ConversionResult:
    """A converted copy of ``model`` (on the CPU; the caller's model is untouched) and its measured fidelity.

    ``rule``: ``all``, ``top:N`` (by MACs saved), ``min-saving:PCT`` (of the conv's own MACs) or
    ``max-error:PCT`` (convs taken by MACs saved per unit of layer error, each kept only while the whole
    model's output error, measured before any refit, stays ≤ PCT%). ``multiplier``: an int or ``auto:PCT``
    (the smallest keeping PCT% of each conv's weight energy), capped at ``min(C_out, prod(k))``; a conv
    whose pair would cost as many MACs as the conv is skipped with its reason. Inputs: ``calibrate`` (a
    ``.pt``/``.npy`` file or tensors), else random normal probes of ``input_shape`` (seeded by ``seed``).
    ``refit`` (calibration only): each pair's pointwise weights and bias refitted by least squares, in
    network order, on half the samples; a refit is kept only where it lowers the output error on the other
    half, on which the result is reported.
    """
    how, pct = parse_rule(rule)
    how_init = parse_init(init)
    wanted = parse_multiplier(multiplier)
    if refit and calibrate is None:
        raise SpecError(
            "refit", True, "needs calibration inputs (calibrate=FILE); random probes say nothing of the data"
        )
    if any(p.is_meta for p in model.parameters()):
        raise TargetError("the model's weights are on the meta device: build it on the CPU or load its weights first")
    original = copy.deepcopy(model).cpu()
    floating = [p for p in original.parameters() if p.is_floating_point()]
    dtype = floating[0].dtype if floating else torch.get_default_dtype()
    if calibrate is None and probes is not None:  # the caller's inputs (token ids, masks) and what they are
        batches = list(probes[0])
        described = f"{probes[1]} of {_describe_shapes(batches)}"
    elif calibrate is None:
        if input_shape is None:
            raise SpecError("input_shape", None, "give input_shape (random probes) or calibrate (a file of inputs)")
        batches = _probes(input_shape, dtype, seed)
        described = f"random normal probes of {_describe_shapes(batches)}"
    else:
        if isinstance(calibrate, str | Path):
            batches, source = load_inputs(calibrate), f"calibration file {Path(calibrate).name}"
        else:
            batches, source = _batches_of(calibrate, "calibrate"), "calibration inputs"
        batches = _cast(batches, dtype)
        described = f"{source}: {_samples(batches)} samples"
    fit, held = _halves(batches) if refit else (batches, batches)
    if refit:
        described += f"; refit on {_samples(fit)}, measured on the other {_samples(held)}"

    sites = _standard_sites(original)
    extra: set[int] = set()
    y_fit, seen, order = _run(original, fit, {key: site.conv for key, site in sites.items()}, extra)
    skipped: list[Skipped] = []
    ready: list[_Site] = []
    for key in order:  # network order: the order convs were first called
        site = sites[key]
        site.calls = seen[key]
        if key in extra:
            skipped.append(Skipped(site.name, "called with output_size, which its pair cannot take"))
            continue
        _plan(site, wanted, how_init, skipped, ready)
    skipped.extend(Skipped(s.name, "not called on these inputs") for k, s in sites.items() if not seen[k])

    converted = copy.deepcopy(original)
    chosen = _choose(how, pct, ready, converted, fit, y_fit, skipped)
    for site in chosen:
        assert site.pair is not None
        _install(converted, site.paths, site.pair)

    y_held = y_fit
    before: Fidelity | None = None
    refitted: set[int] = set()
    if refit:
        y_held, held_seen, _ = _run(original, held, {id(s.conv): s.conv for s in chosen})
        before = _fidelity(y_held, _run(converted, held)[0], described)
        refitted = _refit(chosen, converted, fit, held, y_held)
        for site in chosen:
            site.calls = held_seen[id(site.conv)]
    fidelity = replace(_fidelity(y_held, _run(converted, held)[0], described), probes=calibrate is None,
                       init=how_init.value)  # fmt: skip
    convs = []
    for site in chosen:
        assert site.stats is not None and site.pair is not None
        stats = site.stats
        if refit:  # everything reported is measured on the held-out half
            _, _, macs, separable_macs = _costs(site.conv, stats.multiplier, site.calls)
            stats = replace(stats, layer_error=_layer_error(site.conv, site.pair, site.calls), macs=macs,
                            separable_macs=separable_macs, refitted=id(site) in refitted)  # fmt: skip
        convs.append(stats)
    names = [path for site in chosen for path in site.paths]
    bias = {path: site.conv.bias is not None for site in chosen for path in site.paths}
    return ConversionResult(converted, fidelity, tuple(convs), tuple(skipped), renamed_keys(names, bias), before)


def _plan(site: _Site, wanted: int | float, how: Init, skipped: list[Skipped], ready: list[_Site]) -> None:
    """The site's multiplier, costs, pair and layer error, or the reason it is not converted."""
    conv = site.conv
    factors = _factors(conv)
    energies = _cumulative_energy(factors[1])
    if isinstance(wanted, int):
        m, asked = min(wanted, len(energies)), f"multiplier {wanted}"
    else:
        target = wanted / 100 - 1e-12
        m = next((i for i, e in enumerate(energies, 1) if e >= target), len(energies))
        asked = f"auto:{wanted:g} (multiplier {m})"
    params, separable_params, macs, separable_macs = _costs(conv, m, site.calls)
    if separable_macs >= macs:
        skipped.append(Skipped(site.name, f"at {asked} its pair costs {separable_macs:,} MACs, the conv {macs:,}: "
                                          "no saving"))  # fmt: skip
        return
    pair = _pair_modules(conv, m)
    if how is Init.SVD:
        _set_closed_form(pair, conv, m, factors)
        site.energy = energies[m - 1]
    site.multiplier, site.pair = m, pair
    error = _layer_error(conv, pair, site.calls)
    site.stats = ConvFidelity(site.name, m, site.energy, error, params, separable_params, macs, separable_macs)
    ready.append(site)


def _choose(
    how: Rule, pct: float, ready: list[_Site], converted: nn.Module, fit: Sequence[Batch], y_fit: Sequence[Any],
    skipped: list[Skipped],
) -> list[_Site]:  # fmt: skip
    """The sites the rule converts (in network order); the others go to ``skipped`` with the reason."""

    def stats(site: _Site) -> ConvFidelity:
        assert site.stats is not None
        return site.stats

    by_saving = sorted(ready, key=lambda s: -stats(s).macs_saved)  # stable: network order breaks ties
    if how is Rule.ALL:
        return ready
    if how is Rule.TOP:
        chosen = by_saving[: int(pct)]
        skipped.extend(Skipped(s.name, f"not among the top {int(pct)} by MACs saved") for s in by_saving[int(pct) :])
    elif how is Rule.MIN_SAVING:
        chosen = []
        for site in ready:
            share = 100 * stats(site).macs_saved / stats(site).macs
            if share >= pct:
                chosen.append(site)
            else:
                skipped.append(Skipped(site.name, f"saves {share:.1f}% of its MACs, below min-saving:{pct:g}"))
    else:
        chosen = []
        ranked = sorted(ready, key=lambda s: -stats(s).macs_saved / max(stats(s).layer_error, 1e-12))
        for site in ranked:
            assert site.pair is not None
            previous = converted.get_submodule(site.paths[0])
            _install(converted, site.paths, site.pair)
            error = _relative_error(*_sums(y_fit, _run(converted, fit)[0]))
            if error <= pct / 100:
                chosen.append(site)
                continue
            _install(converted, site.paths, previous)
            skipped.append(Skipped(site.name, f"would raise the output error to {100 * error:.3g}% "
                                              f"(max-error:{pct:g})"))  # fmt: skip
    at = {id(s): i for i, s in enumerate(ready)}
    return sorted(chosen, key=lambda s: at[id(s)])


def _refit(
    chosen: Sequence[_Site], converted: nn.Module, fit: Sequence[Batch], held: Sequence[Batch], y_held: Sequence[Any]
) -> set[int]:
    """Least-squares pointwise weights and bias per pair, in network order, against the original conv's output on
    the original model's activations (so a refit also absorbs the drift of the pairs before it); each kept only
    where it lowers the held-out output error. Returns the ids of the sites refitted."""
    kept: set[int] = set()
    current = _relative_error(*_sums(y_held, _run(converted, held)[0]))
    for site in chosen:
        assert site.pair is not None
        pointwise = site.pair[1]
        assert isinstance(pointwise, _ConvNd)
        _, mids, _ = _run(converted, fit, {0: pointwise})
        if len(mids[0]) != len(site.calls):  # the converted model took another path: nothing to pair up
            continue
        solution = _least_squares(site.conv, mids[0], site.calls, pointwise.bias is not None)
        old = [p.detach().clone() for p in pointwise.parameters()]
        with torch.no_grad():
            weight = solution[: pointwise.in_channels].T
            pointwise.weight.copy_(weight.reshape(pointwise.weight.shape).to(pointwise.weight.dtype))
            if pointwise.bias is not None:
                pointwise.bias.copy_(solution[-1].to(pointwise.bias.dtype))
        error = _relative_error(*_sums(y_held, _run(converted, held)[0]))
        if error < current:
            current = error
            kept.add(id(site))
            continue
        with torch.no_grad():
            for p, value in zip(pointwise.parameters(), old, strict=True):
                p.copy_(value)
    return kept


def _least_squares(conv: _ConvNd, mids: Sequence[torch.Tensor], calls: Sequence[torch.Tensor], bias: bool) -> Any:
    """``argmin ‖[D 1]·P − Y‖²`` over all positions of all calls (normal equations in float64): rows of P are the
    pointwise weights per input channel, then the bias."""
    rank = len(conv.kernel_size)
    gram: torch.Tensor | None = None
    cross: torch.Tensor | None = None
    with torch.no_grad():
        for mid, x in zip(mids, calls, strict=True):
            channels = 1 if mid.dim() == rank + 2 else 0  # an unbatched call has no batch dim
            rows = mid.to(torch.float64).movedim(channels, -1).reshape(-1, mid.shape[channels])
            wanted = conv(x).to(torch.float64).movedim(channels, -1).reshape(rows.shape[0], -1)
            if bias:
                rows = torch.cat([rows, rows.new_ones(rows.shape[0], 1)], dim=1)
            gram = rows.T @ rows if gram is None else gram + rows.T @ rows
            cross = rows.T @ wanted if cross is None else cross + rows.T @ wanted
    assert gram is not None and cross is not None
    return torch.linalg.lstsq(gram, cross, driver="gelsd").solution


# --- weights in and out ---------------------------------------------------------------------------


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _torch_load(file: Path, error: type[DsconvError]) -> Any:
    from dsconv_cli.pt.inputs import read_torch_file

    return read_torch_file(file, lambda reason: error(f"{file}: {reason}"))


def _is_state_dict(value: object) -> bool:
    return (
        isinstance(value, Mapping)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def _listed(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_LISTED])
    return f"{len(keys)} ({shown}{', ...' if len(keys) > _LISTED else ''})"


def load_weights(model: nn.Module, path: str | Path, key: str | None = None) -> nn.Module:
    """Load a state dict into ``model`` in place (strict) and return it.

    The file is read with ``torch.load(weights_only=True)``; the state dict is the file itself, or under
    ``key``, ``state_dict``, ``model`` or ``model_state_dict``. Every failure is a ``WeightsError`` (exit 2).
    """
    file = Path(path)
    if not file.is_file():
        raise WeightsError(f"{file}: no such file" if not file.exists() else f"{file}: is not a file")
    loaded = _torch_load(file, WeightsError)
    state = _find_state_dict(loaded, file, key)
    if all(k.startswith("module.") for k in state) and not any(k.startswith("module.") for k in model.state_dict()):
        state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DataParallel
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = [f"{kind} {_listed(keys)}" for kind, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise WeightsError(f"{file}: keys do not match the model: " + "; ".join(parts))
    wrong = [k for k, v in state.items() if v.shape != expected[k].shape]
    if wrong:
        first = wrong[0]
        raise WeightsError(
            f"{file}: {len(wrong)} shape mismatch(es), first {first}: file {tuple(state[first].shape)}, "
            f"model {tuple(expected[first].shape)}"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{file}: {_first_line(exc)}") from None
    return model


def _find_state_dict(loaded: object, file: Path, key: str | None) -> Mapping[str, torch.Tensor]:
    if key is not None:
        if not isinstance(loaded, Mapping) or key not in loaded:
            keys = sorted(str(k) for k in loaded) if isinstance(loaded, Mapping) else []
            has = f"it has {_listed(keys)}" if keys else f"it holds a {type(loaded).__name__}"
            raise WeightsError(f"{file}: no key {key!r} ({has})")
        loaded = loaded[key]
        if not _is_state_dict(loaded):
            raise WeightsError(f"{file}: {key!r} holds a {type(loaded).__name__}, not a state dict of tensors")
        return loaded  # type: ignore[return-value]
    if _is_state_dict(loaded):
        return loaded  # type: ignore[return-value]
    if isinstance(loaded, Mapping):
        for name in _STATE_DICT_KEYS:
            if _is_state_dict(loaded.get(name)):
                return loaded[name]  # type: ignore[no-any-return]
    raise WeightsError(
        f"{file}: holds a {type(loaded).__name__}, not a state dict (names to tensors) at the top or under "
        f"{', '.join(_STATE_DICT_KEYS)}; name its key with key=..."
    )


def save_model(module: nn.Module, path: str | Path) -> None:
    """The whole module with ``torch.save`` (loading it needs ``weights_only=False`` and its classes importable,
    by the plain module names the user's own code imports them by)."""
    _save(module, Path(path), plain_names=True)


def save_state_dict(module: nn.Module, path: str | Path) -> None:
    """The module's state dict with ``torch.save`` (loads with ``weights_only=True``)."""
    _save(module.state_dict(), Path(path))


def _save(value: object, file: Path, plain_names: bool = False) -> None:
    from dsconv_cli.files import atomic_target
    from dsconv_cli.pt.target import plain_pickle

    try:
        with atomic_target(file) as target:
            torch.save(value, target, pickle_module=plain_pickle if plain_names else pickle)
    except OSError as exc:
        raise OutputError(f"{file}: cannot write ({exc.strerror or _first_line(exc)})") from None


def plan_multipliers(model: nn.Module, multiplier: int | str, init: Init | str) -> dict[str, tuple[int, float | None]]:
    """Each standard conv's depth multiplier (an int capped at its rank bound, or the smallest keeping ``auto:PCT``
    of its weight energy) and the energy its closed-form pair keeps (None for fresh pairs), by path."""
    wanted, how = parse_multiplier(multiplier), parse_init(init)
    planned: dict[str, tuple[int, float | None]] = {}
    for path, module in model.named_modules():
        if path and isinstance(module, _ConvNd) and is_candidate(conv_layer(module)):
            energies = _cumulative_energy(_factors(module)[1])
            m = min(wanted, len(energies)) if isinstance(wanted, int) else multiplier_for_energy(module, wanted)
            planned[path] = (m, energies[m - 1] if how is Init.SVD else None)
    return planned


# --- surgery for counting: the chosen convs replaced by their pairs (weights not computed) -------------


def replace_convs(model: nn.Module, chosen: Sequence[Candidate]) -> nn.Module:
    """A copy of ``model`` with each chosen conv replaced, at every path that holds it, by depthwise → pointwise at
    the candidate's multiplier, freshly initialised (on the meta device: the counts of the converted model)."""
    converted = copy.deepcopy(model)
    replaced: dict[int, nn.Module] = {}
    multiplier = {id(get_module(converted, c.path)): c.multiplier for c in chosen}  # a shared conv: every path
    for path, module in list(converted.named_modules(remove_duplicate=False)):
        if not path or id(module) not in multiplier:
            continue
        if id(module) not in replaced:
            assert isinstance(module, _ConvNd)
            replaced[id(module)] = _pair_modules(module, multiplier[id(module)])
        parent_path, _, name = path.rpartition(".")
        setattr(get_module(converted, parent_path), name, replaced[id(module)])
    return converted
