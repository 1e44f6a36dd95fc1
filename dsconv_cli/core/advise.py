"""The advisor's arithmetic: which convs are worth converting, what their pairs cost, which pairs exist.

Pure: it reads the conv calls a traced forward recorded and counts with the analytic core.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from dsconv_cli.core import counting
from dsconv_cli.core.parse import parse_convert_rule
from dsconv_cli.core.results import Candidate, Comparison, ConvCall, ModelAnalysis, ModelRow, ModelTotals, SharedParam
from dsconv_cli.core.spec import ConvLayer, ConvSpec, resolve_spec
from dsconv_cli.errors import CheckFailed, SpecError


def is_candidate(conv: ConvLayer) -> bool:
    """A standard conv worth converting: groups 1 and more than one kernel element (transposed too)."""
    return conv.groups == 1 and math.prod(conv.kernel_size) > 1


def capped_multiplier(conv: ConvLayer, multiplier: int = 1) -> int:
    """A depth multiplier no larger than the rank of a weight slice, ``min(C_out, prod(k))``: beyond it the pair
    only grows."""
    return min(multiplier, conv.out_channels, math.prod(conv.kernel_size))


def separable_of(conv: ConvLayer, multiplier: int = 1) -> tuple[ConvLayer, ConvLayer]:
    """The convention's replacement: depthwise ``C_in -> m·C_in`` (no bias), then pointwise 1x1 ``m·C_in -> C_out``
    with the original bias."""
    depthwise = replace(conv, out_channels=multiplier * conv.in_channels, groups=conv.in_channels, bias=False)
    ones = (1,) * conv.rank
    pointwise = ConvLayer(multiplier * conv.in_channels, conv.out_channels, ones, ones, (0,) * conv.rank, ones, 1,
                          conv.bias)  # fmt: skip
    return depthwise, pointwise


def _pair_cost(conv: ConvLayer, input_shape: tuple[int, ...], multiplier: int = 1) -> tuple[int, int]:
    depthwise, pointwise = separable_of(conv, multiplier)
    mid = counting.conv_output_shape(depthwise, input_shape)
    out = counting.conv_output_shape(pointwise, mid)
    macs = counting.conv_macs(depthwise, input_shape, mid) + counting.conv_macs(pointwise, mid, out)
    return counting.conv_params(depthwise) + counting.conv_params(pointwise), macs


Advice = tuple[list[Candidate], list[tuple[str, str]], list[tuple[str, str]]]


def advise(
    calls: Sequence[ConvCall], rows: Sequence[ModelRow], multipliers: Mapping[str, int] | None = None,
    shared: Sequence[SharedParam] = (),
) -> Advice:  # fmt: skip
    """Candidates ranked by MACs saved (each at its depth multiplier, default 1), existing depthwise → 1x1 pairs
    (in call order), and the standard convs whose pair would save no MACs, with the reason.

    A candidate's params are those only it holds: a weight tied with another module (``shared``) goes only when
    every module holding it is converted (``ModelAnalysis.if_converted``)."""
    owned = {row.path: row.params for row in rows}  # the module's real parameters, parametrizations included
    for s in shared:
        for path in {p for p in owned if any(h == p or h.startswith(p + ".") for h in s.holders)}:
            owned[path] -= s.numel
    by_path: dict[str, list[ConvCall]] = defaultdict(list)
    for call in calls:
        by_path[call.path].append(call)
    candidates = []
    no_saving = []
    for path, path_calls in by_path.items():
        conv = path_calls[0].conv
        if not is_candidate(conv):
            continue
        m = (multipliers or {}).get(path, 1)
        sep_params, _ = _pair_cost(conv, path_calls[0].input_shape, m)
        macs = sum(counting.conv_macs(conv, c.input_shape, c.output_shape) for c in path_calls)
        sep_macs = sum(_pair_cost(conv, c.input_shape, m)[1] for c in path_calls)
        if sep_macs >= macs:
            no_saving.append(
                (path, f"at multiplier {m} its pair costs {sep_macs:,} MACs, the conv {macs:,}: no saving")
            )
            continue
        candidates.append(Candidate(
            path, conv, owned[path], macs, sep_params, sep_macs, len(path_calls), path_calls[0].input_shape, m,
        ))  # fmt: skip
    candidates.sort(key=lambda c: (-c.macs_saved, c.path))
    convs = {call.path: call.conv for call in calls}
    pairs: list[tuple[str, str]] = []
    for call in calls:  # by data flow: the 1x1 conv whose input is the depthwise conv's output
        if call.source is None or call.source not in convs or any(dw == call.source for dw, _ in pairs):
            continue
        a, b = convs[call.source], call.conv
        pointwise = math.prod(b.kernel_size) == 1 and b.groups == 1 and b.in_channels == a.out_channels
        if is_depthwise(a) and pointwise:
            pairs.append((call.source, call.path))
    return candidates, pairs, no_saving


def is_depthwise(conv: ConvLayer) -> bool:
    """Groups equal to the input channels (more than one), each group giving a multiple of one channel."""
    return conv.groups == conv.in_channels > 1 and conv.out_channels % conv.in_channels == 0


def choose(candidates: Sequence[Candidate], rule: str) -> list[Candidate]:
    """``all``, ``top:N`` or ``min-saving:PCT`` (percent of that conv's MACs saved)."""
    kind, value = parse_convert_rule(rule)
    if kind == "max-error":
        raise SpecError("convert", rule, "measures the converted model's error, which needs its weights on the CPU; "
                        "raise --max-memory, or choose by all, top:N or min-saving:PCT")  # fmt: skip
    if kind == "top":
        return list(candidates[: int(value)])
    if kind == "min-saving":
        return [c for c in candidates if c.macs and 100 * c.macs_saved / c.macs >= value]
    return list(candidates)


def spec_of(conv: ConvLayer, multiplier: int = 1) -> ConvSpec:
    """A candidate conv as the spec ``compare`` counts and times: its pair is the conversion's pair."""
    return resolve_spec(multiplier=multiplier,
        rank=conv.rank, in_channels=conv.in_channels, out_channels=conv.out_channels, kernel_size=conv.kernel_size,
        stride=conv.stride, padding=conv.padding if isinstance(conv.padding, str) else tuple(conv.padding),
        dilation=conv.dilation, groups=conv.groups, bias=conv.bias, depthwise_bias=False,
        transposed=conv.transposed, output_padding=conv.output_padding or 0,
    )  # fmt: skip


def candidate_comparisons(candidates: Sequence[Candidate]) -> tuple[tuple[str, Comparison], ...]:
    """Each candidate counted as ``compare`` counts it (on its first call's input, at its multiplier): the
    records its working (``--show-work``) is written from."""
    return tuple((c.path, counting.compare(spec_of(c.conv, c.multiplier), c.input_shape)) for c in candidates)


def conv_checks(totals: ModelTotals) -> tuple[tuple[str, int, int], ...]:
    """Each conv: dsconv's analytic params against the module's own, and per call its analytic MACs against
    FlopCounterMode's formula on the same call."""
    owned = {row.path: row.params for row in totals.rows}
    params = {
        call.path: (f"{call.path} params", counting.conv_params(call.conv), owned[call.path])
        for call in totals.conv_calls
    }
    macs = tuple(
        (f"{call.path} MACs", counting.conv_macs(call.conv, call.input_shape, call.output_shape), call.macs)
        for call in totals.conv_calls
    )
    return tuple(params.values()) + macs


def check_conversion(result: ModelAnalysis) -> None:
    assert result.converted is not None
    predicted, real = result.if_converted(result.chosen), result.converted
    problems = []
    for name, want, got in (("params", predicted[0], real.params), ("MACs", predicted[1], real.macs),
                            ("other ops", result.totals.other_ops, real.other_ops)):  # fmt: skip
        if want != got:
            problems.append(f"{name}: predicted {want:,}, converted model has {got:,}")
    if real.output_shapes != result.totals.output_shapes:
        problems.append(f"output shapes changed: {result.totals.output_shapes} -> {real.output_shapes}")
    if problems:
        raise CheckFailed("conversion check failed: " + "; ".join(problems))
