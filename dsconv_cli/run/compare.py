"""``dsconv compare`` as a run: one layer counted against its separable pair, cross-checked and timed
as the options ask. Never prints: progress and notes go to the callbacks in ``RunOptions``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dsconv_cli.core import counting, formatting
from dsconv_cli.core.results import Comparison, TimingRow
from dsconv_cli.core.spec import (
    DEFAULT_IN_CHANNELS,
    DEFAULT_OUT_CHANNELS,
    LAYER_FIELDS,
    SPATIAL_FIELDS,
    Norm,
    default_input_shape,
    infer_rank,
    resolve_spec,
)
from dsconv_cli.errors import SpecError, format_value

if TYPE_CHECKING:
    pass

from dsconv_cli.run.options import RunOptions, TimingAxes, TimingWatch, fvcore_budget, memory_error, timing_settings
from dsconv_cli.run.peaks import peaks


def comparison_from_layer(layer: dict[str, Any], shape: tuple[int, ...] | None, batch: int | None) -> Comparison:
    options = dict(layer)
    in_channels = options.pop("in_channels", None)
    options.setdefault("out_channels", DEFAULT_OUT_CHANNELS)
    rank = infer_rank(shape, *(options.get(k) for k in SPATIAL_FIELDS))
    channels = in_channels if in_channels is not None else (shape[1] if shape else DEFAULT_IN_CHANNELS)
    spec = resolve_spec(rank=rank, in_channels=channels, **options)
    notes: list[str] = []
    if shape is None:
        shape = default_input_shape(rank, channels, batch or 1)
        default = formatting.fmt_shape(shape)
        notes.append(f"default {rank}-D input shape {default}; set --input-shape to change it")
    return counting.compare(spec, shape, notes)


def time_comparison(comparison: Comparison, options: RunOptions, axes: TimingAxes) -> Comparison:
    """Every timing case in turn; Ctrl-C keeps what was measured and marks the comparison interrupted."""
    cases = axes.cases(comparison.input_shape[0])
    if any(case.batch == 0 for case in cases):
        raise SpecError("batch", 0, "has nothing to time; count it with --no-bench, or time a batch of 1 or more")
    if axes.channels_last and comparison.spec.rank == 1:
        raise SpecError("channels_last", True, "applies to 2-D and 3-D convs only; this one is 1-D")
    if axes.backward and comparison.spec.norm is Norm.BATCH:
        # training-mode BatchNorm needs more than one value per channel (batch x spatial positions)
        smallest = min(c.batch for c in cases)
        for stage in (*comparison.standard.stages, *comparison.separable.stages):
            if smallest * math.prod(stage.output_shape[2:]) < 2:
                raise SpecError(
                    "backward", True, f"trains BatchNorm, which needs more than one value per channel; the "
                    f"{stage.name} output {formatting.fmt_shape(stage.output_shape)} at batch {smallest} has one; "
                    "use a larger --batch or input, or --norm none",
                )  # fmt: skip
    widest = max(axes.dtypes, key=lambda d: d.itemsize)
    largest = counting.compare(comparison.spec, (max(c.batch for c in cases), *comparison.input_shape[1:]))
    # timing holds both variants and each stage; training also keeps activations and gradients
    needed = counting.timing_bytes(largest, widest) * (3 if axes.backward else 1)
    if needed > options.max_memory:
        raise memory_error(options.max_memory, needed, widest)
    from dsconv_cli.pt import timing

    settings = timing_settings(options)
    try:  # Ctrl-C before the first round ends still prints the counts, marked interrupted
        measured = (
            tuple(
                peaks(settings.device, d, t, options=options)
                for d in axes.dtypes
                for t in (axes.threads or (settings.threads,))
            )
            if axes.roofline
            else ()
        )
        watch = TimingWatch(settings.device, settings.threads, options)
    except KeyboardInterrupt:
        return replace(comparison, interrupted=True)
    rows: list[TimingRow] = []
    current: list[TimingRow] = []
    interrupted = False
    with options.progress(len(cases) * (len(timing.TIMED) + options.rounds)) as step:
        try:
            for case in cases:
                current.clear()
                rows.append(timing.time_case(comparison, case, settings, on_step=step, partial=_keep(current)))
        except KeyboardInterrupt:
            interrupted = True
            rows.extend(current)
    if interrupted and not rows:
        return replace(comparison, peaks=measured, interrupted=True)
    conditions = watch.finish([row.speedup_spread for row in rows])
    timed = replace(comparison, timings=tuple(rows), peaks=measured, interrupted=interrupted, conditions=conditions)
    return counting.analyse_timings(timed)


def _keep(store: list[TimingRow]) -> Callable[[TimingRow], None]:
    def keep(row: TimingRow) -> None:
        store[:] = [row]

    return keep


def parse_layer_text(raw: dict[str, Any]) -> dict[str, Any]:
    """Layer values as given (``None`` = not given), text ones parsed per ``LAYER_FIELDS``."""
    from dsconv_cli.core.parse import parse_ints, parse_padding

    kinds = {f.name: f.text for f in LAYER_FIELDS}
    given: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key not in kinds:
            valid = ", ".join(kinds)
            raise SpecError(key, value, f"is not a layer field; valid: {valid}")
        if isinstance(value, str) and kinds[key] == "ints":
            value = parse_ints(key, value)
        elif isinstance(value, str) and kinds[key] == "padding":
            value = parse_padding(value)
        given[key] = value
    return given


def compare_layer(
    layer: dict[str, Any],
    input_shape: tuple[int, ...] | None,
    options: RunOptions,
    axes: TimingAxes | None = None,
) -> Comparison:
    """Count one layer against its separable pair; cross-check and time it as ``options`` ask."""
    axes = axes or TimingAxes((), (options.dtype,), False, False, False, True)
    batch = axes.batches[0] if axes.batches else None
    comparison = comparison_from_layer(layer, input_shape, batch)
    if options.verify:
        from dsconv_cli.pt.crosscheck import verify

        # fvcore traces with real tensors: never more of them than --max-memory allows (input + output, float32)
        comparison = replace(comparison, checks=verify(comparison, fvcore_max_elements=fvcore_budget(options)))
    if options.bench:
        comparison = time_comparison(comparison, options, axes)
    return comparison


def check_failures(comparison: Comparison) -> str | None:
    """The line that fails a run whose cross-check disagreed, else None."""
    failed = [ch for ch in comparison.checks if not ch.ok]
    if not failed:
        return None
    first = failed[0]
    return (
        f"cross-check failed: {len(failed)} disagreement(s); first: {first.stage} {first.quantity} "
        f"dsconv {format_value(first.analytic)} vs {first.source} {format_value(first.reference)}"
    )
