"""``dsconv analyze`` as a run: count a model layer by layer, advise, convert and check, time on request.

Orchestration only, like the other runs: the torch layer traces, converts and times; the core advises and
checks; nothing here prints (notes go to ``RunOptions.note``, results into the records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from dsconv_cli.core.advise import advise, check_conversion, choose, conv_checks
from dsconv_cli.core.results import Candidate, ModelAnalysis
from dsconv_cli.core.spec import Device, DType
from dsconv_cli.errors import SpecError, TargetError
from dsconv_cli.run.guard import guarded
from dsconv_cli.run.options import RunOptions, TimingWatch

BENCH_TOP = 3  # candidates timed alone when no --convert chooses them


@guarded
def analyze_model(
    model_or_target: Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]],
    options: RunOptions,
    *,
    kwargs: dict[str, Any] | None = None,
    convert_rule: str | None = None,
    channels_last: bool = False,
    compiled: bool = False,
    bench_top: int = BENCH_TOP,
) -> ModelAnalysis:
    """Count a model (an ``nn.Module`` or a ``MODULE:ATTR`` / ``FILE.py:ATTR`` target) layer by layer, advise
    which convs to make depthwise-separable, and check the conversion.

    With ``options.bench``, the original and converted models are timed end to end, and the chosen candidates
    (the first ``bench_top`` by MACs saved without a conversion) each alone against their pair."""
    from dsconv_cli.pt import bench, timing, trace
    from dsconv_cli.pt import target as targets
    from dsconv_cli.pt.convert import replace_convs

    shapes = shape_list(input_shape)
    if convert_rule is not None:
        choose((), convert_rule)  # a malformed rule is refused before any work
    device: Device | str = options.device
    if options.bench:
        device = timing.resolve_device(Device(device))  # CUDA asked for and missing: refused before any work
    dtype = DType(options.dtype)
    notes: list[str] = []
    if isinstance(model_or_target, str):
        target = model_or_target
        found = targets.resolve_target(target)  # the user's code is imported once; later builds reuse what it gave
    else:
        target, found = type(model_or_target).__name__, model_or_target
    model, counted_on = targets.place(targets.build_for_counting(found, target, kwargs, notes).eval(), notes)
    try:
        totals = trace.count_model(model, shapes, counted_on, dtype)
    except TargetError:
        if counted_on != "meta":
            raise
        model, counted_on = targets.materialize(found, target, kwargs, model, shapes, dtype, options.max_memory, notes)
        totals = trace.count_model(model, shapes, counted_on, dtype)
    candidates, pairs = advise(totals.conv_calls, totals.rows)
    checks = conv_checks(totals) + trace.total_check(model, shapes, counted_on, dtype, totals) if options.verify else ()
    result = ModelAnalysis(target, tuple(tuple(s) for s in shapes), dtype.value, counted_on, totals,
                           tuple(candidates), tuple(pairs), notes=tuple(notes), checks=checks)  # fmt: skip
    chosen: list[Candidate] = []
    if convert_rule is not None:
        chosen = choose(candidates, convert_rule)
        converted = trace.count_model(replace_convs(model, chosen), shapes, counted_on, dtype)
        result = replace(result, chosen=tuple(c.path for c in chosen), converted=converted)
        check_conversion(result)
    if options.bench:
        settings = timing.TimingSettings(str(device), dtype, options.threads or timing.default_threads(),
                                         options.min_time, channels_last=channels_last, compiled=compiled,
                                         rounds=options.rounds)  # fmt: skip
        timings: list[Any] = []  # what was timed before any Ctrl-C
        latest: list[ModelAnalysis] = []
        try:  # Ctrl-C keeps the counts (complete by now) and the timings measured before it
            watch = TimingWatch(settings.device, settings.threads, options)
            result = bench.time_models(result, found, target, kwargs, chosen, settings, options.max_memory,
                                       latest.append)  # fmt: skip
            timed = chosen[:bench_top] if convert_rule is not None else candidates[:bench_top]
            for c in timed:
                timings.append(bench.time_candidate(c, settings, options.max_memory))
            spreads = [t.speedup_spread for t in timings]
            result = replace(result, candidate_timings=tuple(timings), conditions=watch.finish(spreads))
        except KeyboardInterrupt:
            result = replace(latest[-1] if latest else result, candidate_timings=tuple(timings), interrupted=True)
    return result


def shape_list(input_shape: Sequence[int] | Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """One shape or several, each a tuple of non-negative ints."""
    if not input_shape:
        raise SpecError("input_shape", input_shape, "give at least one shape, e.g. 1,3,224,224")
    first = input_shape[0]
    shapes = [tuple(input_shape)] if isinstance(first, int) else [tuple(s) for s in input_shape]  # type: ignore[arg-type]
    for shape in shapes:
        if not shape or any(not isinstance(v, int) or v < 0 for v in shape):
            raise SpecError("input_shape", shape, "dims must be non-negative integers, e.g. 1,3,224,224")
    return shapes  # type: ignore[return-value]
