"""Model timings: the original and converted model end to end, and each candidate alone against its pair."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from dsconv_cli.core import counting
from dsconv_cli.core.advise import spec_of
from dsconv_cli.core.results import Candidate, CandidateTiming, ModelAnalysis
from dsconv_cli.errors import MemoryLimitError, SpecError
from dsconv_cli.pt import timing
from dsconv_cli.pt.builder import build_variant
from dsconv_cli.pt.convert import replace_convs
from dsconv_cli.pt.target import build_target


def time_models(
    result: ModelAnalysis, found: Any, target: str, kwargs: dict[str, Any] | None, chosen: Sequence[Candidate],
    settings: timing.TimingSettings, max_memory: int, partial: Callable[[ModelAnalysis], None] | None = None,
) -> ModelAnalysis:  # fmt: skip
    """End-to-end latency of the original and (with ``--convert``) the converted model, same timing core.
    ``partial`` sees the result once the original is timed, so an interrupted run keeps it."""
    if len(result.input_shapes) != 1:
        raise SpecError("bench", True, "times models with one input; this one takes several --input-shape")
    if result.inputs and result.inputs[0].dtype != result.dtype:
        raise SpecError("bench", True, f"times models with one {result.dtype} input; this one takes "
                        f"{result.inputs[0].dtype}")  # fmt: skip
    (shape,) = result.input_shapes
    # weights of both models, the input, and every module's output (the meta pass measured them)
    needed = (result.totals.params * 2 + math.prod(shape) + activation_elements(result)) * settings.dtype.itemsize
    if needed > max_memory:
        raise MemoryLimitError(f"--max-memory {max_memory:,} B: timing this model needs about {needed:,} B (weights, "
                               "input and activations); raise --max-memory or shrink --input-shape")  # fmt: skip
    model = build_target(found, target, kwargs, "cpu")
    latency = {"original": timing.time_module(copy.deepcopy(model), shape, settings).latency}
    if partial is not None:
        partial(replace(result, latency=dict(latency)))
    if chosen:
        latency["converted"] = timing.time_module(replace_convs(model, chosen), shape, settings).latency
    return replace(result, latency=latency)


def activation_elements(result: ModelAnalysis) -> int:
    """Elements every leaf module's outputs hold in one forward (a module called k times, k times over)."""
    rows = result.totals.rows
    parents = {row.path.rpartition(".")[0] for row in rows if row.path}
    return sum(row.calls * sum(math.prod(s) for s in row.output_shapes)
               for row in rows if row.path and row.path not in parents)  # fmt: skip


def time_candidate(c: Candidate, settings: timing.TimingSettings, max_memory: int) -> CandidateTiming:
    """One candidate alone against its separable pair, with compare's timing core, on its first call's input."""
    comparison = counting.compare(spec_of(c.conv), c.input_shape)
    needed = counting.timing_bytes(comparison, settings.dtype)
    if needed > max_memory:
        raise MemoryLimitError(f"--max-memory {max_memory:,} B: timing candidate {c.path} needs about {needed:,} B")
    ready = {
        "standard": timing.prepare(build_variant(comparison.spec.standard()), c.input_shape, settings),
        "separable": timing.prepare(build_variant(comparison.spec.separable()), c.input_shape, settings),
    }
    latency, per_round = timing.measure_rounds(ready, settings.rounds, settings.min_time)  # interleaved
    return CandidateTiming(c.path, latency["standard"], latency["separable"],
                           comparison.standard.macs / comparison.separable.macs,
                           timing.round_ratios(per_round))  # fmt: skip
