"""Analytic counts against PyTorch itself (real modules, meta-device forward, ``FlopCounterMode``)
and fvcore where fvcore supports the op."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from dsconv_cli.core.results import Check, Comparison, LayerStats, StackResult, VariantStats
from dsconv_cli.core.spec import COLUMNS, PaddingMode, Stage
from dsconv_cli.pt.builder import build_layer, build_stack, build_stage

FLOP_COUNTER = "FlopCounterMode / 2"
FVCORE = "fvcore"


TORCH_MAX_ELEMENTS = 2**60  # beyond this PyTorch's int64 storage sizes overflow, even on the meta device


def check_stage(stage: Stage, stats: LayerStats, *, fvcore_max_elements: int) -> list[Check]:
    """Params (sum of ``numel``), buffers, output shape and MACs of one stage."""
    if max(math.prod(stats.input_shape), math.prod(stats.output_shape)) > TORCH_MAX_ELEMENTS:
        note = "too large for PyTorch's int64 tensor sizes; counted analytically only"
        return [Check(stats.name, q, "nn.Module numel / meta forward", getattr(stats, q), None, note)
                for q in ("params", "macs")]  # fmt: skip
    module = build_stage(stage, device="meta").eval()
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    x = torch.empty(stats.input_shape, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        y = module(x)
    checks = [
        Check(stats.name, "params", "nn.Module numel", stats.params, params),
        Check(stats.name, "buffers", "nn.Module numel", stats.buffers, buffers),
        Check(stats.name, "output_shape", "meta forward", stats.output_shape, tuple(y.shape)),
        Check(stats.name, "macs", FLOP_COUNTER, stats.macs, counter.get_total_flops() // 2),
    ]
    checks.append(_fvcore_check(stage, stats, fvcore_max_elements))
    return checks


def _fvcore_check(stage: Stage, stats: LayerStats, max_elements: int) -> Check:
    if stage.conv.padding == PaddingMode.SAME:
        return Check(stats.name, "macs", FVCORE, stats.macs, None, "fvcore counts padding='same' as 0 MACs")
    elements = math.prod(stats.input_shape) + math.prod(stats.output_shape)
    if elements > max_elements:
        return Check(stats.name, "macs", FVCORE, stats.macs, None, "input too large to trace with real tensors")
    try:
        with warnings.catch_warnings():
            # fvcore scripts and traces with torch.jit, which recent PyTorch marks deprecated.
            warnings.simplefilter("ignore")
            from fvcore.nn import FlopCountAnalysis

            module = build_stage(stage).eval()
            analysis = FlopCountAnalysis(module, torch.zeros(stats.input_shape))
            analysis.unsupported_ops_warnings(False)
            analysis.uncalled_modules_warnings(False)
            conv_macs = int(analysis.by_operator().get("conv", 0))  # fvcore: one MAC = one flop
    except ImportError:
        return Check(stats.name, "macs", FVCORE, stats.macs, None, "fvcore is not installed")
    return Check(stats.name, "macs", FVCORE, stats.macs, conv_macs)


def verify(comparison: Comparison, *, fvcore_max_elements: int = 50_000_000) -> tuple[Check, ...]:
    """Every stage of both variants, checked against PyTorch and fvcore."""
    checks: list[Check] = []
    for stages, variant in (
        (comparison.spec.standard(), comparison.standard),
        (comparison.spec.separable(), comparison.separable),
    ):
        checks.extend(_check_variant(stages, variant.stages, fvcore_max_elements))
    return tuple(checks)


def _check_variant(stages: Sequence[Stage], stats: Sequence[LayerStats], fvcore_max_elements: int) -> list[Check]:
    checks: list[Check] = []
    for stage, stage_stats in zip(stages, stats, strict=True):
        checks.extend(check_stage(stage, stage_stats, fvcore_max_elements=fvcore_max_elements))
    return checks


def verify_stack(stack: StackResult, *, fvcore_max_elements: int = 50_000_000) -> list[Check]:
    """Every layer of a stack, then each whole column as one module.

    Plain conv layers are checked stage by stage (with fvcore); blocks, residuals, adds, linear and
    pooling layers as the whole module their kind builds, in each column; a layer that shares another's
    weights is checked for MACs and shape (its params count at the layer it shares)."""
    checks: list[Check] = []
    for layer in stack.layers:
        plain = layer.stages("standard") and not (layer.options.get("residual") or layer.add or layer.share)
        if plain:
            for column in COLUMNS:
                checks.extend(
                    replace(ch, stage=f"{layer.name}/{ch.stage}")
                    for ch in _check_variant(layer.stages(column), layer.column(column).stages, fvcore_max_elements)
                )
            continue
        same = layer.standard.stages == layer.separable.stages
        for column in ("standard",) if same else COLUMNS:
            label = layer.name if same else f"{layer.name}/{column}"
            module = build_layer(layer, column, device="meta").eval()
            checks += _whole(label, module, layer.input_shape, layer.column(column), params=layer.share is None)
    for column in COLUMNS if stack.chained else ():  # independent layers are no single module
        whole = build_stack(stack, column, device="meta").eval()
        checks += _whole(f"whole {column} column", whole, stack.input_shape, stack, column=column)
    return checks


def _whole(
    label: str, module: nn.Module, shape: tuple[int, ...], counted: VariantStats | StackResult, *, params: bool = True,
    column: str = "",
) -> list[Check]:  # fmt: skip
    """Params (each parameter once), output shape and MACs of a built module on the meta device."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        y = module(torch.empty(shape, device="meta"))
    if isinstance(counted, StackResult):
        want_params, want_macs, want_shape = (counted.total(column, "params"), counted.total(column, "macs"),
                                              counted.output_shape)  # fmt: skip
    else:
        want_params, want_macs, want_shape = counted.params, counted.macs, counted.output_shape
    unique = {id(p): p.numel() for p in module.parameters()}
    checks = [
        Check(label, "output_shape", "meta forward", want_shape, tuple(y.shape)),
        Check(label, "macs", FLOP_COUNTER, want_macs, counter.get_total_flops() // 2),
    ]
    if params:
        checks.insert(0, Check(label, "params", "nn.Module numel", want_params, sum(unique.values())))
    return checks
