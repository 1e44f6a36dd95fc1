"""``dsconv analyze`` as a run: count a model layer by layer, advise, convert and check, time on request.

Orchestration only, like the other runs: the torch layer traces, converts and times; the core advises and
checks; nothing here prints (notes go to ``RunOptions.note``, results into the records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from dsconv_cli.core.advise import (
    advise,
    candidate_comparisons,
    capped_multiplier,
    check_conversion,
    choose,
    conv_checks,
    is_candidate,
)
from dsconv_cli.core.parse import parse_convert_rule, parse_multiplier
from dsconv_cli.core.results import Candidate, ModelAnalysis
from dsconv_cli.core.spec import Conversion, Device, DType, ModelInputs, model_inputs
from dsconv_cli.errors import MemoryLimitError, SpecError, TargetError
from dsconv_cli.run.guard import guarded
from dsconv_cli.run.options import RunOptions, TimingWatch

BENCH_TOP = 3  # candidates timed alone when no --convert chooses them
NO_OPTIONS = Conversion()  # closed-form pairs at multiplier 1, measured on random probes


@guarded
def analyze_model(
    model_or_target: Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]] | ModelInputs,
    options: RunOptions,
    *,
    kwargs: dict[str, Any] | None = None,
    convert_rule: str | None = None,
    conversion: Conversion = NO_OPTIONS,
    channels_last: bool = False,
    compiled: bool = False,
    bench_top: int = BENCH_TOP,
    show_work: bool = False,
) -> ModelAnalysis:
    """Count a model (an ``nn.Module`` or a ``MODULE:ATTR`` / ``FILE.py:ATTR`` target) layer by layer, advise
    which convs to make depthwise-separable, and convert them as ``conversion`` says, measuring the fidelity.

    ``input_shape``: one shape or several (float positional inputs), or ``ModelInputs`` (dtypes, keyword
    inputs, or the exact example inputs).

    The counts come from the meta device; weights (``conversion.weights``) load into a CPU build, where the
    conversion runs and is measured. With ``options.bench``, the original and converted models are timed end to
    end, and the chosen candidates (the first ``bench_top`` by MACs saved without a conversion) each alone
    against their pair."""
    from dsconv_cli.pt import bench, timing, trace
    from dsconv_cli.pt import convert as converting
    from dsconv_cli.pt import inputs as making
    from dsconv_cli.pt import target as targets

    spec = input_shape if isinstance(input_shape, ModelInputs) else model_inputs(shape_list(input_shape))
    if convert_rule is not None:
        parse_convert_rule(convert_rule)  # a malformed rule is refused before any work
    parse_multiplier(conversion.multiplier)
    converting.parse_init(conversion.init)
    if conversion.refit and conversion.calibrate is None:
        raise SpecError("refit", True, "needs --calibrate FILE: a refit on random probes says nothing of the data")
    device: Device | str = options.device
    if options.bench:
        device = timing.resolve_device(Device(device))  # CUDA asked for and missing: refused before any work
    dtype = DType(options.dtype)
    shapes = [leaf.shape for leaf in making.leaves_of(list(making.make_inputs(spec, "meta", dtype)))]
    notes: list[str] = []
    if isinstance(model_or_target, str):
        target = model_or_target
        found = targets.resolve_target(target)  # the user's code is imported once; later builds reuse what it gave
    else:
        target, found = type(model_or_target).__name__, model_or_target
    built = targets.build_for_counting(found, target, kwargs, notes).eval()
    weighted = None  # the model with real weights on the CPU, where weights are loaded or the conversion runs
    if conversion.weights is not None:
        weighted = targets.build_on_cpu(found, target, kwargs, built, shapes, dtype, options.max_memory, "--weights")
        converting.load_weights(weighted, conversion.weights, conversion.weights_key)
        built = weighted
    model, counted_on = targets.place(built, notes)
    call = making.make_inputs(spec, counted_on, dtype)
    try:
        totals = trace.count_model(model, call)
    except TargetError:
        if counted_on != "meta":
            raise
        if weighted is not None:  # the loaded weights are on the CPU already: no second build
            model, counted_on = weighted, "cpu"
            notes.append(targets.CPU_COUNT_NOTE)
        else:
            model, counted_on = targets.materialize(found, target, kwargs, model, shapes, dtype, options.max_memory,
                                                    notes)  # fmt: skip
        call = making.make_inputs(spec, counted_on, dtype)
        totals = trace.count_model(model, call)
    wants_weights = convert_rule is not None or conversion.multiplier != 1
    if wants_weights and weighted is None:
        why = "--convert" if convert_rule is not None else "--multiplier"
        try:
            weighted = targets.build_on_cpu(found, target, kwargs, built, shapes, dtype, options.max_memory, why)
        except MemoryLimitError:
            if not _counts_alone(convert_rule, conversion):
                raise
            notes.append("fidelity not measured: the model's weights do not fit --max-memory on the CPU, so the "
                         "conversion is counted on the meta device only")  # fmt: skip
    if weighted is not None:
        planned = converting.plan_multipliers(weighted, conversion.multiplier, conversion.init)
    else:
        planned = {c.path: (capped_multiplier(c.conv, int(conversion.multiplier)), None)
                   for c in totals.conv_calls if is_candidate(c.conv)}  # fmt: skip
    candidates, pairs, no_saving = advise(totals.conv_calls, totals.rows, {p: m for p, (m, _) in planned.items()},
                                          totals.shared_params)  # fmt: skip
    candidates = [replace(c, energy_kept=planned[c.path][1]) if c.path in planned else c for c in candidates]
    checks = conv_checks(totals) + trace.total_check(model, call, totals) if options.verify else ()
    result = ModelAnalysis(target, tuple(tuple(s) for s in shapes), dtype.value, counted_on, totals,
                           tuple(candidates), tuple(pairs), notes=tuple(notes), checks=checks,
                           not_converted=tuple(no_saving), inputs=making.input_leaves(model, call),
                           keyword_inputs=tuple(call[1]))  # fmt: skip
    chosen: list[Candidate] = []
    if convert_rule is not None and weighted is None:
        chosen = choose(candidates, convert_rule)
        converted = trace.count_model(converting.replace_convs(model, chosen), call)
        result = replace(result, chosen=tuple(c.path for c in chosen), converted=converted, notes=tuple(notes))
        check_conversion(result)
    elif convert_rule is not None:
        assert weighted is not None
        done = converting.convert(weighted, convert_rule, conversion.init, conversion.multiplier,
                                  conversion.calibrate, shapes, refit=conversion.refit,
                                  probes=_probes(weighted, spec, dtype))  # fmt: skip
        measured = {c.name: c for c in done.convs}
        chosen = [replace(c, layer_error=measured[c.path].layer_error) for c in candidates if c.path in measured]
        candidates = [next((k for k in chosen if k.path == c.path), c) for c in candidates]
        before = done.fidelity_before_refit
        probed = conversion.calibrate is None and spec.example is None
        fidelity = replace(done.fidelity, probes=probed, trained=conversion.weights is not None,
                           init=conversion.init, refit_from=before.output_error if before else None)  # fmt: skip
        converted = trace.count_model(converting.replace_convs(model, chosen), call)
        passed_over = dict(no_saving) | {s.name: s.reason for s in done.skipped}
        result = replace(
            result, candidates=tuple(candidates), chosen=tuple(c.path for c in chosen), converted=converted,
            fidelity=fidelity, converted_model=done.module, not_converted=tuple(passed_over.items()),
            renamed_keys=tuple((k.old, k.new) for k in done.renamed),
        )  # fmt: skip
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
    if show_work:
        result = replace(result, comparisons=candidate_comparisons(result.candidates))
    return result


def _probes(model: Any, spec: ModelInputs, dtype: DType) -> tuple[list[tuple[Any, ...]], str] | None:
    """What a conversion is measured on where random normal probes of the shapes will not do: the example inputs,
    or made-up ones that take token ids, masks or keywords (keywords placed among the forward's parameters)."""
    from dsconv_cli.pt import inputs as making

    plain = spec.example is None and not spec.keyword and all(t.dtype is None for t in spec.positional)
    if plain:
        return None
    call = making.probe_inputs(spec, dtype)
    args = making.as_positional(model, call)
    if args is None:
        keywords = ", ".join(call[1])
        raise SpecError("convert", True, "measures the converted model by calling it with positional inputs; the "
                        f"keyword inputs {keywords} have no place among the forward's parameters")  # fmt: skip
    return [args], "the example inputs" if spec.example is not None else "random probes"


def _counts_alone(rule: str | None, conversion: Conversion) -> bool:
    """Whether a conversion can be counted without the model's weights (no fidelity asked of it by name)."""
    needs = (conversion.weights, conversion.calibrate, conversion.refit)
    return not any(needs) and isinstance(conversion.multiplier, int) and not (rule or "").startswith("max-error")


def save_converted(result: ModelAnalysis, path: str, state_dict: bool = False) -> None:
    """Write the converted model (``torch.save`` of the whole module) or its state dict."""
    from dsconv_cli.pt import convert as converting

    if result.converted_model is None:
        raise SpecError("save", path, "needs a conversion: give --convert RULE")
    if state_dict:
        converting.save_state_dict(result.converted_model, path)
    else:
        converting.save_model(result.converted_model, path)


def shape_list(input_shape: Sequence[int] | Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """One shape or several, each a tuple of non-negative ints."""
    if isinstance(input_shape, str):
        raise SpecError("input_shape", input_shape, "give a shape as integers, e.g. (1, 3, 224, 224)")
    if not input_shape:
        raise SpecError("input_shape", input_shape, "give at least one shape, e.g. 1,3,224,224")
    first = input_shape[0]
    shapes = [tuple(input_shape)] if isinstance(first, int) else [tuple(s) for s in input_shape]  # type: ignore[arg-type]
    for shape in shapes:
        if not shape or any(not isinstance(v, int) or v < 0 for v in shape):
            raise SpecError("input_shape", shape, "dims must be non-negative integers, e.g. 1,3,224,224")
    return shapes  # type: ignore[return-value]
