"""Results -> rows: the tables (headers and cells) and summary lines every format shows. Stdlib only.

Rich (tables.py), Markdown and CSV (export.py) all draw from these rows, so a column or a line
reads the same in every format.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypedDict

from dsconv_cli.core import environment
from dsconv_cli.core.formatting import (
    describe,
    fmt_bytes,
    fmt_compact_shape,
    fmt_int,
    fmt_ms,
    fmt_pct_fewer,
    fmt_shape,
    fmt_si,
    fmt_threads,
    fmt_tuple,
    fmt_value,
    point_label,
    ratio_of,
    share_of,
    stacked_headers,
)
from dsconv_cli.core.results import (
    ITEMS,
    BudgetCheck,
    Check,
    Comparison,
    ConfigReport,
    Delta,
    Latency,
    LayerResult,
    ModelAnalysis,
    ModelTotals,
    Peaks,
    StackResult,
    TimingRow,
    speedup_of,
)
from dsconv_cli.core.spec import COLUMNS, ConvLayer, DType
from dsconv_cli.present import explain


class StageRow(TypedDict):
    """One row of the exported table: a stage or a variant's total, in one timing case."""

    comparison: str
    variant: str
    stage: str
    batch: int
    input_shape: list[int]
    output_shape: list[int]
    params: int
    macs: int
    flops: int
    elementwise_ops: int
    buffers: int
    weight_bytes: int
    min_bytes_moved: int
    intermediate_bytes: int
    arithmetic_intensity: float
    dtype: str
    channels_last: bool | None
    compiled: bool | None
    backward: bool | None
    median_ms: float | None
    iqr_ms: float | None
    min_ms: float | None
    cv: float | None
    runs: int | None
    device: str | None
    threads: int | None
    achieved_gflops: float | None
    achieved_gbps: float | None
    bound: str | None
    fraction_of_roof: float | None
    peak_bytes: int | None


CSV_COLUMNS = list(StageRow.__annotations__)


def layer_table(stack: StackResult, exact: bool = True) -> MetricTable:
    """A row per layer and a total row: output shape, params and MACs per column, share and ratio.

    ``exact=False`` is the terminal's compact form: 4 significant digits and no kind column.
    """
    num = fmt_int if exact else fmt_si
    timed = bool(stack.latency) and exact  # the terminal shows timings in their own table
    headers = titles("layer", "kind", "output", *PARAMS_MACS, "mac_share", "ratio")
    if timed:
        headers += titles("standard_ms", "separable_ms")
    sep_total = stack.total("separable", "macs")
    rows: list[tuple[str, str, tuple[int, ...], LayerResult | StackResult, dict[str, Latency]]] = [
        (layer.name, layer.kind.value, layer.output_shape, layer, layer.latency) for layer in stack.layers
    ]
    body: list[list[str]] = []
    for name, kind, shape, source, latency in [
        *rows,
        ("total", "", stack.output_shape, stack, stack.latency),
    ]:
        std_params, sep_params, std_macs, sep_macs = (
            _metric(source, column, metric) for metric in ("params", "macs") for column in COLUMNS
        )
        ratio = ratio_of(sep_macs, std_macs)
        share = f"{share_of(sep_macs, sep_total) * 100:.1f}"
        row = [name, kind, fmt_compact_shape(shape), num(std_params), num(sep_params), num(std_macs),
               num(sep_macs), share, "-" if ratio is None else f"{ratio:.3f}"]  # fmt: skip
        if timed:
            row += [fmt_ms(_median(latency.get(c))) for c in COLUMNS]
        body.append(row)
    if not exact:
        headers = stacked_headers(headers)
        headers.pop(1)
        for row in body:
            row.pop(1)
    return headers, body


def layer_latency_table(stack: StackResult) -> MetricTable:
    """Per layer and for each whole column: medians, CV and the speedup."""
    headers = titles("layer", "standard_ms", "separable_ms", "standard_cv", "separable_cv", "speedup")
    entries = [(layer.name, layer.latency, layer.round_speedups) for layer in stack.layers]
    entries.append(("whole column", stack.latency, stack.round_speedups))
    body = []
    for name, latency, rounds in entries:
        std, sep = latency.get("standard"), latency.get("separable")
        ratio = speedup_of(rounds, latency)
        speedup = "-" if ratio is None else f"{ratio:.2f}×"
        cvs = [fmt_cv(lat) for lat in (std, sep)]
        body.append([name, fmt_ms(_median(std)), fmt_ms(_median(sep)), *cvs, speedup])
    return stacked_headers(headers), body


def _metric(source: LayerResult | StackResult, column: str, metric: str) -> int:
    if isinstance(source, StackResult):
        return source.total(column, metric)
    return int(getattr(source.column(column), metric))


def _median(latency: Latency | None) -> float | None:
    return latency.median_ms if latency is not None else None


def stack_summary(stack: StackResult) -> list[str]:
    """Exact totals per column and the reduction."""
    lines = []
    for column in COLUMNS:
        lines.append(
            f"{column}: {fmt_int(stack.total(column, 'params'))} params, "
            f"{fmt_int(stack.total(column, 'macs'))} MACs, "
            f"{fmt_int(stack.total(column, 'elementwise_ops'))} other ops"
        )
    if stack.total("standard", "macs") and stack.total("standard", "params"):
        p, m = stack.ratio("params"), stack.ratio("macs")
        lines.append(f"separable: {fmt_pct_fewer(p)} params (ratio {p:.4f}), {fmt_pct_fewer(m)} MACs (ratio {m:.4f})")
    if set(COLUMNS) <= set(stack.latency):
        std, sep = stack.latency["standard"], stack.latency["separable"]
        lines.append(
            f"measured: standard {std.median_ms:.3f} ms, separable {sep.median_ms:.3f} ms, "
            f"speedup {stack.speedup:.2f}× "
            f"on {std.device} ({std.dtype}, {fmt_threads(std.threads)})"
        )
    return lines


def sweep_table(stacks: Sequence[StackResult], keys: Sequence[str], exact: bool = True) -> MetricTable:
    """A row per sweep point: its values, both columns' totals and the ratios."""
    num = fmt_int if exact else fmt_si
    headers = [*keys, *titles(*PARAMS_MACS, "param_ratio", "mac_ratio")]
    body = [
        [fmt_value(stack.point[k]) for k in keys]
        + [
            num(stack.total("standard", "params")),
            num(stack.total("separable", "params")),
            num(stack.total("standard", "macs")),
            num(stack.total("separable", "macs")),
            f"{stack.ratio('params'):.4f}",
            f"{stack.ratio('macs'):.4f}",
        ]
        for stack in stacks
    ]
    return (headers if exact else stacked_headers(headers)), body


def _budget_value(value: float | None, metric: str, minimum: bool) -> str:
    if value is None:
        return "not timed"
    if math.isnan(value):
        return "not measured"
    if metric == "snr_db":
        return f"{value:.1f} dB"
    if metric == "output_error":
        return f"{value:.4f}"
    if minimum:
        return f"{value:.1f}%"
    return f"{value:.3f} ms" if metric == "latency_ms" else fmt_int(int(round(value)))


def budget_table(checks: Sequence[BudgetCheck]) -> MetricTable:
    headers = titles("budget", "limit", "actual", "margin", "verdict")
    body = []
    for ch in checks:
        if ch.column == "fidelity":
            limit = ("≥ " if ch.minimum else "≤ ") + _budget_value(ch.limit, ch.metric, ch.minimum)
        else:
            limit = f"≥ {ch.limit:g}%" if ch.minimum else "≤ " + _budget_value(ch.limit, ch.metric, False)
        margin = ch.margin
        if margin is None:
            margin_text, verdict = "-", "skipped"
        else:
            margin_text = _budget_value(margin, ch.metric, ch.minimum)
            if not ch.minimum and ch.limit and ch.column != "fidelity":
                margin_text += f" ({margin / ch.limit * 100:.1f}%)"
            verdict = "pass" if ch.ok else "FAIL"
        name = f"{ch.scope} {ch.column} {ch.metric}"
        body.append([name, limit, _budget_value(ch.actual, ch.metric, ch.minimum), margin_text, verdict])
    return headers, body


def baseline_table(deltas: Sequence[Delta], max_increase: float | None) -> MetricTable:
    headers = titles("column", "metric", "baseline", "now", "change", "verdict")
    body = []
    for d in deltas:

        def show(v: float, metric: str = d.metric) -> str:
            return f"{v:.3f} ms" if metric == "latency_ms" else fmt_int(int(v))

        if not d.gated or max_increase is None:
            verdict = "-"
        else:
            verdict = "FAIL" if d.change_pct > max_increase else "pass"
        body.append([d.column, d.metric, show(d.old), show(d.new), f"{d.change_pct:+.1f}%", verdict])
    return headers, body


GEOMETRY_COLUMNS = [
    "in_channels", "out_channels", "groups", "padding_mode",
    *(f"{field}_{dim}" for field in ("kernel", "stride", "padding", "dilation") for dim in (1, 2, 3)),
]  # fmt: skip


def geometry(conv: ConvLayer | None) -> dict[str, Any]:
    """A stage's conv as one CSV column per number (per spatial dim: ``kernel_1`` … ``kernel_3``)."""
    if conv is None:
        return {}
    out: dict[str, Any] = {"in_channels": conv.in_channels, "out_channels": conv.out_channels, "groups": conv.groups}
    padding = conv.padding
    if isinstance(padding, str):
        out["padding_mode"], padding = padding, ()
    for field, values in (("kernel", conv.kernel_size), ("stride", conv.stride), ("padding", padding),
                          ("dilation", conv.dilation)):  # fmt: skip
        out |= {f"{field}_{i}": v for i, v in enumerate(values, 1)}
    return out


def _model_csv_rows(r: ConfigReport) -> list[dict[str, Any]]:
    """A model config: a row per conversion candidate, then the model's totals (separable: converted)."""
    a = r.model
    assert a is not None
    out: list[dict[str, Any]] = []
    for c in a.candidates:
        out.append({
            "config": r.name, "point": "", "layer": c.path, "kind": "candidate", "output_shape": "",
            "standard_params": c.params, "separable_params": c.separable_params, "standard_macs": c.macs,
            "separable_macs": c.separable_macs, "standard_median_ms": "", "separable_median_ms": "",
        })  # fmt: skip
    converted = a.converted
    original, after = a.latency.get("original"), a.latency.get("converted")
    out.append({
        "config": r.name, "point": "", "layer": "total", "kind": "model",
        "output_shape": " ".join("x".join(map(str, s)) for s in a.totals.output_shapes),
        "standard_params": a.totals.params, "separable_params": converted.params if converted else "",
        "standard_macs": a.totals.macs, "separable_macs": converted.macs if converted else "",
        "standard_median_ms": original.median_ms if original else "",
        "separable_median_ms": after.median_ms if after else "",
    })  # fmt: skip
    return out


def config_csv_rows(r: ConfigReport) -> list[dict[str, Any]]:
    """A row per layer and sweep point (plus the point's total)."""
    rows = _model_csv_rows(r) if r.model is not None else []
    for stack in r.stacks:
        entries: list[tuple[str, str, Any]] = [(layer.name, layer.kind.value, layer) for layer in stack.layers]
        for name, kind, layer in [*entries, ("total", "", None)]:
            row: dict[str, Any] = {
                "config": r.name,
                "point": point_label(stack.point),
                "layer": name,
                "kind": kind,
            }
            for column in COLUMNS:
                if layer is None:
                    row[f"{column}_params"] = stack.total(column, "params")
                    row[f"{column}_macs"] = stack.total(column, "macs")
                    latency = stack.latency.get(column)
                else:
                    row[f"{column}_params"] = layer.column(column).params
                    row[f"{column}_macs"] = layer.column(column).macs
                    latency = layer.latency.get(column)
                row[f"{column}_median_ms"] = "" if latency is None else latency.median_ms
            row["output_shape"] = "x".join(map(str, (layer.output_shape if layer else stack.output_shape)))
            standard = list(layer.stages("standard")) if layer is not None else []
            if len(standard) == 1:  # a conv layer: its standard conv's numbers, one column each
                row |= {k: v for k, v in geometry(standard[0].conv).items() if k in CONFIG_CSV_COLUMNS}
            rows.append(row)
    return rows


CONFIG_CSV_COLUMNS = [
    "config", "point", "layer", "kind", "output_shape", "standard_params", "separable_params",
    "standard_macs", "separable_macs", "standard_median_ms", "separable_median_ms", "in_channels", "out_channels",
    "groups", "kernel_1", "kernel_2", "kernel_3", "stride_1", "stride_2", "stride_3",
]  # fmt: skip


def stage_rows(c: Comparison, name: str = "", row: TimingRow | None = None) -> list[StageRow]:
    """Standard, depthwise, pointwise and separable-total rows of one timing case (or untimed)."""
    label = name or describe(c)
    items = row.analysis if row is not None else c.analysis
    rows: list[StageRow] = []
    for item_name in ITEMS:
        item = items[item_name]
        stats, lat, line = item.stats, item.latency, item.roofline
        rows.append(
            StageRow(
                comparison=label,
                variant="standard" if item_name == "standard" else "separable",
                stage="total" if item_name == "separable" else item_name,
                batch=stats.input_shape[0],
                input_shape=list(stats.input_shape),
                output_shape=list(stats.output_shape),
                params=stats.params,
                macs=stats.macs,
                flops=stats.flops,
                elementwise_ops=stats.elementwise_ops,
                buffers=stats.buffers,
                weight_bytes=item.traffic.weight_bytes,
                min_bytes_moved=item.traffic.min_bytes_moved,
                intermediate_bytes=item.intermediate_bytes,
                arithmetic_intensity=item.arithmetic_intensity,
                dtype=row.case.dtype.value if row else DType.FLOAT32.value,
                channels_last=row.case.channels_last if row else None,
                compiled=row.case.compiled if row else None,
                backward=row.case.backward if row else None,
                median_ms=lat.median_ms if lat else None,
                iqr_ms=lat.iqr_ms if lat else None,
                min_ms=lat.min_ms if lat else None,
                cv=lat.cv if lat else None,
                runs=lat.runs if lat else None,
                device=lat.device if lat else None,
                threads=lat.threads if lat else None,
                achieved_gflops=line.achieved_gflops if line else None,
                achieved_gbps=line.achieved_gbps if line else None,
                bound=line.bound if line else None,
                fraction_of_roof=line.fraction_of_roof if line else None,
                peak_bytes=item.peak_bytes,
            )
        )
    return rows


def first_case_rows(c: Comparison, name: str = "") -> list[StageRow]:
    """The rows the main table shows: the first timing case, or the counts alone."""
    return stage_rows(c, name, c.timings[0] if c.timings else None)


def all_stage_rows(c: Comparison, name: str = "") -> list[StageRow]:
    """Rows of every timing case (one untimed set without timing): the CSV export."""
    if not c.timings:
        return stage_rows(c, name)
    return [r for row in c.timings for r in stage_rows(c, name, row)]


def theory_text(c: Comparison) -> str:
    """The MobileNet ratio with its terms filled in."""
    s = c.spec
    k = math.prod(s.kernel_size)
    factor = "" if s.multiplier * s.groups == 1 else f"{s.multiplier * s.groups}·"
    head = "m·g·(1/C_out + 1/prod(k))" if factor else "1/C_out + 1/prod(k)"
    return f"{head} = {factor}(1/{s.out_channels} + 1/{k}) = {c.theoretical_ratio:.4f}"


def summary_lines(c: Comparison) -> list[str]:
    """The plain-language verdict under a comparison."""
    lines = [
        f"separable: {fmt_pct_fewer(c.param_ratio)} params (ratio {c.param_ratio:.4f}), "
        f"{fmt_pct_fewer(c.mac_ratio)} MACs (ratio {c.mac_ratio:.4f})",
        f"theoretical ratio {theory_text(c)} ({fmt_pct_fewer(c.theoretical_ratio)})",
        *([note] if (note := explain.ratio_note(c)) else []),
        f"bytes in {c.timings[0].case.dtype.value if c.timings else 'float32'}: activations are each stage's input "
        "and output, the intermediate is the depthwise output the pair writes and reads back; min traffic moves "
        "each once",
    ]
    if c.speedup is not None:
        lat = c.latency["standard"]
        lines.append(
            f"measured speedup {c.speedup:.2f}× on {lat.device} ({fmt_threads(lat.threads)}; latency is the "
            f"median ±IQR of {lat.runs} and {c.latency['separable'].runs} runs); "
            f"MACs predict {1 / c.mac_ratio:.2f}×"
        )
    lines += [line for row in c.timings if (line := explain.explanation(c, row))]
    if c.timings and not c.peaks:
        lines.append("no roofline: machine peaks were not used (--no-roofline, or dsconv peaks has not measured them)")
    if c.conditions is not None:
        lines.append(environment.summary(c.conditions))
    lines += [f"warning: {w}" for w in explain.noise_warnings(c)]
    if c.interrupted:
        lines.append(f"interrupted: {len(c.timings)} timing case(s) shown are what was measured before Ctrl-C")
    lines.extend(c.notes)
    return lines


MetricTable = tuple[list[str], list[list[str]]]

# Every title a table shows, keyed by the field it shows, as torchinfo keeps its header titles: a
# title changes here once and reads the same in the terminal, Markdown and every command.
TITLES: dict[str, str] = {
    # stack and sweep tables: a column per variant
    "layer": "layer", "kind": "kind", "output": "output",
    "standard_params": "std params", "separable_params": "sep params",
    "standard_macs": "std MACs", "separable_macs": "sep MACs",
    "mac_share": "sep MAC%", "param_ratio": "param ratio", "mac_ratio": "MAC ratio", "ratio": "ratio",
    "standard_ms": "std ms", "separable_ms": "sep ms", "standard_cv": "std CV", "separable_cv": "sep CV",
    "speedup": "speedup", "case": "case",
    "standard": "standard", "depthwise": "depthwise", "pointwise": "pointwise", "separable": "separable",
    # one comparison: a row per metric
    "params": "params", "macs": "MACs", "flops": "FLOPs (2×MACs)", "elementwise_ops": "other ops",
    "output_shape": "output shape", "buffers": "buffers", "weight_bytes": "weights",
    "activation_bytes": "activations", "intermediate_bytes": "intermediate", "min_bytes_moved": "min traffic",
    "arithmetic_intensity": "FLOPs per byte", "median_ms": "latency ms", "cv": "CV",
    "peak_bytes": "allocator peak", "achieved_gflops": "GFLOP/s", "achieved_gbps": "GB/s",
    "fraction_of_roof": "roof reached",
    # budgets, baselines, cross-checks
    "budget": "budget", "limit": "limit", "actual": "actual", "margin": "margin", "verdict": "verdict",
    "column": "column", "metric": "metric", "baseline": "baseline", "now": "now", "change": "change",
    "stage": "stage", "quantity": "quantity", "reference": "reference", "dsconv": "dsconv",
    "reference_value": "reference value", "": "", "cached": "cached",
    # whole models and the conversion advisor
    "config": "config", "points": "points", "budgets": "budgets",
    "module": "module", "type": "type", "share": "share", "conv": "conv",
    "to_params": "→ params", "to_macs": "→ MACs", "macs_saved": "MACs saved", "theoretical_ratio": "theory",
    "predicted": "MACs predict", "multiplier": "m", "energy_kept": "energy", "layer_error": "error",
}  # fmt: skip
PARAMS_MACS = ("standard_params", "separable_params", "standard_macs", "separable_macs")


def titles(*keys: str) -> list[str]:
    """The titles of ``keys``, in order."""
    return [TITLES[key] for key in keys]


def metric_table(rows: Sequence[StageRow]) -> MetricTable:
    """Pivot one comparison's rows: a column per stage, a row per metric."""
    headers = ["", *[_column_title(r) for r in rows]]
    timed = any(r["median_ms"] is not None for r in rows)
    metrics: list[tuple[str, Any]] = [
        ("params", lambda r: fmt_int(r["params"])),
        ("macs", lambda r: fmt_int(r["macs"])),
        ("flops", lambda r: fmt_int(r["flops"])),
        ("elementwise_ops", lambda r: fmt_int(r["elementwise_ops"])),
        ("output_shape", lambda r: fmt_compact_shape(r["output_shape"])),
    ]
    if any(r["buffers"] for r in rows):
        metrics.insert(4, ("buffers", lambda r: fmt_int(r["buffers"])))
    metrics.append(("weight_bytes", lambda r: fmt_bytes(r["weight_bytes"])))
    metrics.append(("activation_bytes", lambda r: fmt_bytes(r["min_bytes_moved"] - r["weight_bytes"])))
    if any(r["intermediate_bytes"] for r in rows):
        metrics.append(
            ("intermediate_bytes", lambda r: fmt_bytes(r["intermediate_bytes"]) if r["intermediate_bytes"] else "-")
        )
    metrics.append(("min_bytes_moved", lambda r: fmt_bytes(r["min_bytes_moved"])))
    metrics.append(("arithmetic_intensity", lambda r: f"{r['arithmetic_intensity']:.2f}"))
    if timed:
        metrics.append(("median_ms", lambda r: fmt_ms(r["median_ms"], r["iqr_ms"])))
        metrics.append(("cv", lambda r: "-" if r["cv"] is None else f"{r['cv']:.1%}"))
    if any(r["peak_bytes"] is not None for r in rows):
        metrics.append(("peak_bytes", lambda r: "-" if r["peak_bytes"] is None else fmt_bytes(r["peak_bytes"])))
    if any(r["bound"] for r in rows):
        metrics.append(("achieved_gflops", lambda r: _opt(r["achieved_gflops"], "{:.2f}")))
        metrics.append(("achieved_gbps", lambda r: _opt(r["achieved_gbps"], "{:.2f}")))
        metrics.append(("fraction_of_roof", _roof_reached))
    body = [[TITLES[key], *[fn(r) for r in rows]] for key, fn in metrics]
    return headers, body


def fmt_cv(latency: Latency | None) -> str:
    """The spread of a timing, or ``-`` where there is none to show (untimed, or a single block)."""
    return "-" if latency is None or latency.cv is None else f"{latency.cv:.1%}"


def _roof_reached(row: StageRow) -> str:
    if row["bound"] is None or row["fraction_of_roof"] is None:
        return "-"
    return f"{row['fraction_of_roof']:.1%} {row['bound']}"


def _opt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def peaks_table(peaks: Peaks, cached: bool, cache_file: str) -> MetricTable:
    """The measured peaks as label/value rows."""
    body = [
        ["device", f"{peaks.device} ({peaks.device_name})"],
        ["dtype, threads", f"{peaks.dtype}, {peaks.threads}"],
        ["memory bandwidth", f"{peaks.bandwidth_gbps:.2f} GB/s (large copy, read + write)"],
        ["compute peak", f"{peaks.compute_gflops:.2f} GFLOP/s (large matrix product)"],
        ["ridge point", f"{peaks.ridge_point:.2f} FLOPs per byte"],
        ["measured", f"{peaks.measured_at} with torch {peaks.torch_version}"],
        ["cache", f"{'cached' if cached else 'measured now'}: {cache_file}"],
    ]
    return ["", "value"], body


def peaks_check_table(cached: Peaks | None, now: Peaks) -> MetricTable:
    """Cached peaks beside today's, with the ratio."""
    body = []
    for label, attr, unit in (("memory bandwidth", "bandwidth_gbps", "GB/s"), ("compute peak", "compute_gflops",
                                                                              "GFLOP/s")):  # fmt: skip
        new = getattr(now, attr)
        old = getattr(cached, attr) if cached is not None else None
        body.append([label, "-" if old is None else f"{old:.2f} {unit}", f"{new:.2f} {unit}",
                     "-" if not old else f"{new / old:.2f}×"])  # fmt: skip
    return titles("", "cached", "now", "change"), body


def peaks_check_summary(cached: Peaks | None, now: Peaks) -> str:
    if cached is None:
        return "no cached peaks to compare with: dsconv peaks measures and caches them"
    ratio = now.compute_gflops / cached.compute_gflops
    if ratio < 0.7:
        return (f"today's machine reaches {ratio:.0%} of the cached compute peak (measured {cached.measured_at}): "
                "it is busy or throttled, so timings now run slow and rooflines read high")  # fmt: skip
    if ratio > 1.3:
        return (f"today's machine reaches {ratio:.0%} of the cached compute peak: the cached figure is too low; "
                "dsconv peaks --refresh on a quiet machine")  # fmt: skip
    return f"today's machine matches the cached peaks within 30% (compute {ratio:.0%})"


def timing_table(c: Comparison) -> MetricTable:
    """A row per timing case: each item's median, the speedup and what MACs predict."""
    headers = titles("case", *ITEMS, "speedup")
    body = []
    for row in c.timings:
        cells = [fmt_ms(_median(row.latency.get(name))) for name in ITEMS]
        speedup = "-" if row.speedup is None else f"{row.speedup:.2f}×"
        body.append([row.case.label, *cells, speedup])
    return headers, body


def _column_title(row: StageRow) -> str:
    if row["variant"] == "standard":
        return "standard"
    return "separable" if row["stage"] == "total" else row["stage"]


def checks_table(checks: Sequence[Check]) -> MetricTable:
    """Rows of a cross-check: stage, quantity, reference, analytic, reference value, verdict."""
    headers = titles("stage", "quantity", "reference", "dsconv", "reference_value", "verdict")
    notes: list[str] = []

    def show(v: Any) -> str:
        if v is None:
            return "-"
        return fmt_shape(v) if isinstance(v, tuple) else fmt_int(v)

    body = [
        [
            ch.stage,
            ch.quantity,
            ch.source,
            show(ch.analytic),
            show(ch.reference),
            _verdict(ch, notes),
        ]
        for ch in checks
    ]
    return headers, body


def _verdict(ch: Check, notes: list[str]) -> str:
    if ch.reference is not None:
        return "ok" if ch.ok else "MISMATCH"
    if ch.note not in notes:
        notes.append(ch.note)
    return f"skipped ({notes.index(ch.note) + 1})"


def check_notes(checks: Sequence[Check]) -> list[str]:
    """Why checks were skipped, numbered as the verdict column numbers them (kept apart so the table's
    label and verdict columns always fit)."""
    notes: list[str] = []
    for ch in checks:
        _verdict(ch, notes)
    return [f"({i}) skipped: {note}" for i, note in enumerate(notes, 1)]


DEFAULT_DEPTH = 3  # the module tree's default depth ...
DEFAULT_MAX_ROWS = 40  # ... or less, where the tree to that depth would be longer than this


def default_depth(a: ModelAnalysis) -> int:
    """The deepest level, at most ``DEFAULT_DEPTH``, whose tree fits ``DEFAULT_MAX_ROWS`` rows (at least 1)."""
    for depth in range(DEFAULT_DEPTH, 1, -1):
        if sum(r.depth <= depth for r in a.totals.rows) <= DEFAULT_MAX_ROWS:
            return depth
    return 1


def folded_note(a: ModelAnalysis, depth: int) -> str | None:
    """How many modules the tree folds at ``depth``, and the flag that shows them."""
    deeper = [r.depth for r in a.totals.rows if r.depth > depth]
    if not deeper:
        return None
    return f"… {len(deeper)} deeper module(s) folded into their parents; --depth {max(deeper)} shows them all"


def _conv_fields(a: ModelAnalysis) -> dict[str, ConvLayer]:
    return {call.path: call.conv for call in reversed(a.totals.conv_calls)}


MODEL_COLUMNS: dict[str, str] = {"kernel": "kernel", "stride": "stride", "groups": "groups", "input": "input",
                                 "trainable": "trainable", "other_ops": "other ops", "calls": "calls"}  # fmt: skip


def model_table(a: ModelAnalysis, depth: int | None, columns: Sequence[str] = ()) -> MetricTable:
    """One row per module down to ``depth``, indented by depth; each row sums its children. ``columns`` adds
    a conv's kernel, stride and groups, the first call's input shapes, trainable params, other ops, calls."""
    headers = [*titles("module", "type"), *(["input"] if "input" in columns else []), *titles("output", "params")]
    headers += [MODEL_COLUMNS[c] for c in columns if c not in ("input", "other_ops", "calls")]
    headers += [*titles("macs"), *[MODEL_COLUMNS[c] for c in columns if c in ("other_ops", "calls")], "share"]
    convs = _conv_fields(a)
    body = []
    for r in a.totals.rows:
        if depth is not None and r.depth > depth:
            continue
        name = (r.path.rsplit(".", 1)[-1] if r.path else "(model)") + (f" ×{r.calls}" if r.calls > 1 else "")
        shapes_out = ", ".join(fmt_compact_shape(s) for s in r.output_shapes) or "-"
        conv = convs.get(r.path)
        extra = {
            "kernel": fmt_tuple(conv.kernel_size) if conv else "-",
            "stride": fmt_tuple(conv.stride) if conv else "-",
            "groups": str(conv.groups) if conv else "-",
            "trainable": fmt_int(r.trainable_params),
            "other_ops": fmt_int(r.other_ops),
            "calls": str(r.calls),
        }
        inputs = [", ".join(fmt_compact_shape(s) for s in r.input_shapes) or "-"] if "input" in columns else []
        body.append([
            "  " * r.depth + name, r.type, *inputs, shapes_out, fmt_int(r.params),
            *[extra[c] for c in columns if c not in ("input", "other_ops", "calls")], fmt_int(r.macs),
            *[extra[c] for c in columns if c in ("other_ops", "calls")], f"{r.share:.1%}",
        ])  # fmt: skip
    return headers, body


def op_table(a: ModelAnalysis) -> MetricTable:
    """``--by-op``: every aten op the forward ran, by MACs then other ops: calls, MACs, other ops, share, kind."""
    t = a.totals
    headers = ["op", "calls", *titles("macs"), "other ops", "share", "kind"]
    body = [[o.name, fmt_int(o.calls), fmt_int(o.macs), fmt_int(o.other_ops),
             f"{share_of(o.macs, t.macs):.1%}" if t.macs else "-", o.kind] for o in t.by_op]  # fmt: skip
    return headers, body


def advisor_table(a: ModelAnalysis) -> MetricTable:
    """Candidates ranked by MACs saved, with each pair's multiplier and, where measured, its fidelity."""
    energy = any(c.energy_kept is not None for c in a.candidates)
    error = any(c.layer_error is not None for c in a.candidates)
    measured = [*(["energy_kept"] if energy else []), *(["layer_error"] if error else [])]
    headers = titles("conv", "params", "to_params", "macs", "to_macs", "macs_saved", "ratio", "theoretical_ratio",
                     "multiplier", *measured)  # fmt: skip
    body = [
        [c.path, fmt_int(c.params), fmt_int(c.separable_params), fmt_int(c.macs),
         fmt_int(c.separable_macs), fmt_int(c.macs_saved), f"{c.separable_macs / c.macs:.3f}" if c.macs else "-",
         f"{c.theoretical_ratio:.3f}", str(c.multiplier),
         *([_share(c.energy_kept)] if energy else []), *([_share(c.layer_error)] if error else [])]
        for c in a.candidates
    ]  # fmt: skip
    return headers, body


def _share(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


FIDELITY_MAX_LISTED = 6  # convs named in a 'not converted' line before "+N more"


def fidelity_lines(a: ModelAnalysis) -> list[str]:
    """What the conversion kept: the model's output error and SNR, on what inputs, and what that is worth."""
    f = a.fidelity
    if f is None:
        return []
    snr = "exact" if math.isinf(f.snr_db) else f"SNR {f.snr_db:.1f} dB"
    lines = [f"fidelity of the converted model ({f.init} pairs): output error {100 * f.output_error:.2f}% ({snr}) "
             f"on {f.inputs}"]  # fmt: skip
    if f.refit_from is not None:
        lines.append(f"refit on calibration inputs: output error {100 * f.refit_from:.2f}% before, "
                     f"{100 * f.output_error:.2f}% after, on the held-out half")  # fmt: skip
    if not f.trained:
        lines.append("warning: the model has fresh weights (no --weights): the fidelity of an untrained model says "
                     "little about a trained one")  # fmt: skip
    if f.probes:
        lines.append("warning: fidelity measured on random normal probes; a model's real inputs can give a very "
                     "different error: pass --calibrate FILE")  # fmt: skip
    lines.append("fine-tuning the converted model on its task is still yours to do; the closed form only starts it "
                 "close to the original")  # fmt: skip
    return lines


def saved_lines(a: ModelAnalysis, path: str, state_dict: bool) -> list[str]:
    """How to load what ``--save`` / ``--save-state-dict`` wrote, and the state-dict keys that changed."""
    if state_dict:
        lines = [f"wrote {path}: the converted model's state dict; load it with torch.load({path!r}, "
                 "weights_only=True) into the converted module"]  # fmt: skip
    else:
        lines = [f"wrote {path}: the converted model; load it with torch.load({path!r}, weights_only=False) where "
                 "its classes import as they do in your code"]  # fmt: skip
    changed = [f"{old} -> {', '.join(new)}" for old, new in a.renamed_keys]
    if changed:
        more = f" (+{len(changed) - 4} more)" if len(changed) > 4 else ""
        lines.append(f"changed keys: {'; '.join(changed[:4])}{more}")
    return lines


def candidate_timing_table(a: ModelAnalysis) -> MetricTable:
    """Each timed candidate: the conv and its pair alone, measured speedup beside what MACs predict."""
    headers = titles("conv", "standard_ms", "separable_ms", "standard_cv", "separable_cv", "speedup", "predicted")
    body = [
        [t.path, fmt_ms(t.standard.median_ms, t.standard.iqr_ms), fmt_ms(t.separable.median_ms, t.separable.iqr_ms),
         fmt_cv(t.standard), fmt_cv(t.separable), f"{t.speedup:.2f}×", f"{t.predicted:.2f}×"]
        for t in a.candidate_timings
    ]  # fmt: skip
    return headers, body


LISTED = 6  # names in a summary line before "+N more"


def listed(items: Sequence[str], limit: int = LISTED, sep: str = ", ") -> str:
    """The first ``limit`` items joined, and how many more there are."""
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return sep.join(items[:limit]) + more


def inputs_text(a: ModelAnalysis) -> str:
    """The inputs a model was counted on: their shapes; named (``name=`` by keyword) and with their dtypes where
    they are not all positional tensors in the run's dtype."""
    if not a.keyword_inputs and all(leaf.dtype == a.dtype and "." not in leaf.name for leaf in a.inputs):
        return ", ".join(fmt_shape(s) for s in a.input_shapes)
    parts = []
    for leaf in a.inputs:
        keyword = leaf.name.split(".")[0] in a.keyword_inputs
        dtype = "" if leaf.dtype == a.dtype else f" {leaf.dtype}"
        parts.append(f"{leaf.name}{'=' if keyword else ' '}{fmt_shape(leaf.shape)}{dtype}")
    return ", ".join(parts)


def outputs_text(t: ModelTotals) -> str:
    """The output shapes, each named where the model returns a dict, a dataclass or nested tuples."""
    if all(not leaf.name or leaf.name.isdigit() for leaf in t.outputs):
        return "output " + ", ".join(fmt_shape(s) for s in t.output_shapes)
    return "outputs " + listed([f"{leaf.name} {fmt_shape(leaf.shape)}" for leaf in t.outputs], 4)


def memory_line(t: ModelTotals) -> str:
    """A forward's memory, as torchinfo's estimated total size."""
    m = t.memory
    return (f"memory: {fmt_bytes(m.param_bytes)} params, {fmt_bytes(m.buffer_bytes)} buffers, "
            f"{fmt_bytes(m.activation_bytes)} activations, {fmt_bytes(m.input_bytes)} inputs; "
            f"{fmt_bytes(m.total_bytes)} in all")  # fmt: skip


def verified_line(a: ModelAnalysis) -> str | None:
    """What ``--verify`` checked, where every check passed."""
    if not a.checks or a.failed_checks:
        return None
    params = sum(w.endswith(" params") for w, _, _ in a.checks)
    calls = sum(w.endswith(" MACs") for w, _, _ in a.checks)
    total = next((r for w, _, r in a.checks if w.startswith("total MACs")), None)
    parts = [f"{params} conv(s)' params and {calls} conv call(s)' MACs against dsconv's formulas"] if params else []
    if total is not None:
        parts.append(f"the total against PyTorch's FlopCounterMode ({fmt_int(total)} MACs)")
    parts.append("and that no op multiplied without a rule")
    return f"verified: {len(a.checks)} checks pass: " + ", ".join(parts)


def model_summary(a: ModelAnalysis) -> list[str]:
    t = a.totals
    split = f" ({fmt_int(t.trainable_params)} trainable, {fmt_int(t.frozen_params)} frozen)" if t.frozen_params else ""
    at_least = "at least " if t.lower_bound else ""
    lines = [f"total: {fmt_int(t.params)} params{split}, {at_least}{fmt_int(t.macs)} MACs ({fmt_si(2 * t.macs)} "
             f"FLOPs), {fmt_int(t.other_ops)} other ops; {outputs_text(t)}"]  # fmt: skip
    if t.lower_bound:
        ops = ", ".join(f"{o.name} ×{o.count}" for o in t.unruled_macs)
        lines.append(f"warning: the MAC total is a lower bound: {ops} multiplied and accumulated with no rule to "
                     "count it (add one with dsconv_cli.pt.oprules.set_op_rule)")  # fmt: skip
    lines.append(memory_line(t))
    if a.candidates:
        params, macs = a.if_converted()
        lines.append(f"if every candidate were converted: {fmt_int(params)} params "
                     f"({fmt_pct_fewer(params / t.params) if t.params else '-'}), {fmt_int(macs)} MACs "
                     f"({fmt_pct_fewer(macs / t.macs) if t.macs else '-'})")  # fmt: skip
    else:
        lines.append("no conversion candidates: " + ("every standard conv's pair would save no MACs at its multiplier "
                     "(see 'not converted')" if a.not_converted else "no standard conv with more than one kernel "
                     "element"))  # fmt: skip
    if t.functional_convs:
        called = listed([f"{o.name} ×{o.count}" for o in t.functional_convs])
        lines.append(f"convs called as functions (counted; not candidates: no conv module to replace): {called}")
    if a.existing_separable:
        pairs = ", ".join(f"{dw} → {pw}" for dw, pw in a.existing_separable[:4])
        more = f" (+{len(a.existing_separable) - 4} more)" if len(a.existing_separable) > 4 else ""
        lines.append(f"already separable: {len(a.existing_separable)} depthwise → 1×1 pairs: {pairs}{more}")
    if t.shared_params:
        tied = listed([f"{s.name} ({fmt_int(s.numel)}: {', '.join(s.holders)})" for s in t.shared_params], 4)
        lines.append(f"tied parameters, each counted once: {tied}")
    if a.converted is not None:
        c = a.converted
        lines.append(f"converted {len(a.chosen)} conv(s) and re-counted: {fmt_int(c.params)} params, "
                     f"{fmt_int(c.macs)} MACs, as predicted; output shapes unchanged")  # fmt: skip
        lines += fidelity_lines(a)
    if a.not_converted:
        named = listed([f"{path}: {why}" for path, why in a.not_converted], FIDELITY_MAX_LISTED, "; ")
        lines.append(f"not converted: {named}")

    if t.uncounted:
        ops = ", ".join(f"{o.name} ×{o.count}" for o in t.uncounted)
        lines.append(f"not counted (no MAC or elementwise rule): {ops}")
    if t.idle_params:
        idle = listed([f"{o.name} ({fmt_int(o.count)})" for o in t.idle_params])
        lines.append(f"modules holding parameters no op read: {idle}")
    for name, lat in a.latency.items():
        lines.append(f"{name}: {fmt_ms(lat.median_ms, lat.iqr_ms)} ms median on {lat.device}")
    if a.candidate_timings:
        slower = [t.path for t in a.candidate_timings if t.speedup < 1]
        lines.append(
            f"timed alone on {a.candidate_timings[0].standard.device}: {len(a.candidate_timings)} candidate(s); "
            + (f"the pair is slower than the conv for {', '.join(slower)}" if slower else "every pair is faster")
        )
    if set(a.latency) == {"original", "converted"}:
        speedup = a.latency["original"].median_ms / a.latency["converted"].median_ms
        predicted = a.totals.macs / a.converted.macs if a.converted and a.converted.macs else float("nan")
        lines.append(f"converted model: {speedup:.2f}× the speed of the original for {predicted:.2f}× fewer MACs")
    lines += [f"note: {n}" for n in a.notes]
    if (verified := verified_line(a)) is not None:
        lines.append(verified)
    lines += [f"check failed: {w}: dsconv {d:,} vs {r:,}" for w, d, r in a.failed_checks]
    return lines


def summary_table(results: Sequence[ConfigReport]) -> MetricTable:
    """The closing summary of ``dsconv report``: a row per config (a model's separable column: converted)."""
    headers = titles("config", "points", *PARAMS_MACS, "budgets", "verdict")
    body = []
    for r in results:
        if r.model is not None:
            a, converted = r.model, r.model.converted
            values: list[int | None] = [a.totals.params, converted.params if converted else None, a.totals.macs,
                                        converted.macs if converted else None]  # fmt: skip
            points = "model"
        else:
            first, points = r.stacks[0], str(len(r.stacks))
            single = len(r.stacks) == 1
            values = [first.total(c, m) if single else None for m in ("params", "macs") for c in COLUMNS]
        cells = ["-" if v is None else fmt_si(v) for v in values]
        body.append([r.name, points, *cells, f"{sum(b.ok for b in r.budgets)}/{len(r.budgets)}",
                     "pass" if r.ok else "FAIL"])  # fmt: skip
    return stacked_headers(headers), body
