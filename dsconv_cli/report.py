"""Results -> plain row dicts -> JSON / CSV / Markdown strings. Stdlib only."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import re
from collections.abc import Sequence
from typing import Any, TypedDict

from dsconv_cli import __version__, explain
from dsconv_cli.results import (
    ITEMS,
    BudgetCheck,
    Candidate,
    Check,
    Comparison,
    ConfigReport,
    Delta,
    ItemAnalysis,
    Latency,
    LayerResult,
    LayerStats,
    ModelAnalysis,
    ModelRow,
    ModelTotals,
    Peaks,
    Roofline,
    StackResult,
    TimingRow,
    VariantStats,
)
from dsconv_cli.spec import COLUMNS, ConvSpec, DType

SCHEMA_VERSION = 1

CONVENTION = {
    "macs": "multiply-accumulates of the convolutions, bias excluded",
    "flops": "2 x macs",
    "elementwise_ops": "bias add 1, batch norm 2, activation 1 per output element",
    "params": "learnable parameters: weights, bias, norm affine, PReLU slopes",
    "buffers": "non-learnable elements: batch norm running statistics",
    "batch": "whole batch as given, not per sample",
}


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


# --- plain values -------------------------------------------------------------------------


def spec_dict(spec: ConvSpec) -> dict[str, Any]:
    """The resolved spec, keys as in YAML configs, tuples as lists."""
    return {
        "in_channels": spec.in_channels,
        "out_channels": spec.out_channels,
        "kernel_size": list(spec.kernel_size),
        "stride": list(spec.stride),
        "padding": spec.padding if isinstance(spec.padding, str) else list(spec.padding),
        "dilation": list(spec.dilation),
        "groups": spec.groups,
        "multiplier": spec.multiplier,
        "bias": spec.bias,
        "transposed": spec.transposed,
        "output_padding": list(spec.output_padding),
        "norm": spec.norm.value,
        "act": spec.act.value,
        "placement": spec.placement.value,
    }


def latency_dict(latency: Latency) -> dict[str, Any]:
    return dataclasses.asdict(latency)


def _counts(stats: LayerStats | VariantStats) -> dict[str, Any]:
    return {
        "params": stats.params,
        "macs": stats.macs,
        "flops": stats.flops,
        "elementwise_ops": stats.elementwise_ops,
        "buffers": stats.buffers,
        "output_shape": list(stats.output_shape),
    }


def check_dict(check: Check) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        return list(v) if isinstance(v, tuple) else v

    return {
        "stage": check.stage,
        "quantity": check.quantity,
        "source": check.source,
        "analytic": plain(check.analytic),
        "reference": plain(check.reference),
        "ok": check.ok,
        "note": check.note,
    }


def column_dict(variant: VariantStats, latency: Latency | None = None) -> dict[str, Any]:
    """A column's counts, each stage by name when it has several, and its latency when timed."""
    out = _counts(variant)
    if len(variant.stages) > 1:
        for stage in variant.stages:
            out[stage.name] = _counts(stage) | {"input_shape": list(stage.input_shape)}
    if latency is not None:
        out["latency"] = latency_dict(latency)
    return out


def memory_dict(item: ItemAnalysis) -> dict[str, Any]:
    t = item.traffic
    out: dict[str, Any] = {
        "weight_bytes": t.weight_bytes,
        "input_bytes": t.input_bytes,
        "output_bytes": t.output_bytes,
        "activation_bytes": t.activation_bytes,
        "min_bytes_moved": t.min_bytes_moved,
    }
    if item.name == "separable":
        out["intermediate_bytes"] = item.intermediate_bytes
    if item.peak_bytes is not None:
        out["peak_bytes"] = item.peak_bytes
    return out


def roofline_dict(line: Roofline) -> dict[str, Any]:
    """The roofline object; its arithmetic intensity is reported beside it, once."""
    out = dataclasses.asdict(line)
    del out["arithmetic_intensity"]
    return out


def item_dict(item: ItemAnalysis) -> dict[str, Any]:
    """Latency, memory, intensity and roofline of one variant or stage (what was measured of it)."""
    out: dict[str, Any] = {"memory": memory_dict(item), "arithmetic_intensity": item.arithmetic_intensity}
    if item.latency is not None:
        out["latency"] = latency_dict(item.latency)
    if item.roofline is not None:
        out["roofline"] = roofline_dict(item.roofline)
    if item.compile_s is not None:
        out["compile_s"] = item.compile_s
    return out


def timing_dict(c: Comparison, row: TimingRow) -> dict[str, Any]:
    items = row.analysis
    return {
        "batch": row.case.batch,
        "dtype": row.case.dtype.value,
        "channels_last": row.case.channels_last,
        "compiled": row.case.compiled,
        "backward": row.case.backward,
        "threads": next((lat.threads for lat in row.latency.values()), row.case.threads),
        **{name: item_dict(items[name]) for name in ITEMS},
        "speedup": row.speedup,
        "explanation": explain.explanation(c, row),
    }


def peaks_dict(peaks: Peaks) -> dict[str, Any]:
    return dataclasses.asdict(peaks) | {"ridge_point": peaks.ridge_point}


def comparison_dict(c: Comparison, name: str = "") -> dict[str, Any]:
    """One comparison as the documented JSON object."""
    items = c.timings[0].analysis if c.timings else c.analysis
    standard = column_dict(c.standard) | item_dict(items["standard"])
    separable = column_dict(c.separable) | item_dict(items["separable"])
    for stage in ("depthwise", "pointwise"):
        separable[stage] |= item_dict(items[stage])
    out: dict[str, Any] = {
        "name": name or describe(c),
        "input_shape": list(c.input_shape),
        "spec": spec_dict(c.spec),
        "standard": standard,
        "separable": separable,
        "param_ratio": c.param_ratio,
        "mac_ratio": c.mac_ratio,
        "theoretical_ratio": c.theoretical_ratio,
        "speedup": c.speedup,
        "notes": list(c.notes),
    }
    if c.timings:
        out["timings"] = [timing_dict(c, row) for row in c.timings]
        out["explanation"] = [line for row in c.timings if (line := explain.explanation(c, row))]
        out["warnings"] = explain.noise_warnings(c)
        out["interrupted"] = c.interrupted
    if c.peaks:
        out["peaks"] = [peaks_dict(p) for p in c.peaks]
    if c.checks:
        out["checks"] = [check_dict(ch) for ch in c.checks]
    return out


def document(
    comparisons: Sequence[dict[str, Any]] = (), configs: Sequence[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The top-level JSON document: ``comparisons`` from flags, ``configs`` from config files."""
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "tool": "dsconv",
        "version": __version__,
        "convention": CONVENTION,
    }
    if configs is None:
        doc["comparisons"] = list(comparisons)
    else:
        doc["configs"] = list(configs)
        doc["ok"] = all(c["ok"] for c in configs)
    return doc


# --- stacks, sweeps, budgets ---------------------------------------------------------------------


def layer_dict(layer: LayerResult, stack: StackResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": layer.name,
        "kind": layer.kind.value,
        "input_shape": list(layer.input_shape),
        "output_shape": list(layer.output_shape),
        "spec": spec_dict(layer.comparison.spec) if layer.comparison else None,
    }
    for column in COLUMNS:
        out[column] = column_dict(layer.column(column), layer.latency.get(column))
    out["mac_share"] = {column: _share(layer.column(column).macs, stack.total(column, "macs")) for column in COLUMNS}
    out["param_ratio"] = _ratio(layer.separable.params, layer.standard.params)
    out["mac_ratio"] = _ratio(layer.separable.macs, layer.standard.macs)
    return out


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def stack_dict(stack: StackResult) -> dict[str, Any]:
    totals: dict[str, dict[str, Any]] = {}
    for column in COLUMNS:
        totals[column] = {
            m: stack.total(column, m) for m in ("params", "macs", "flops", "elementwise_ops", "buffers")
        } | {"output_shape": list(stack.output_shape)}
        if column in stack.latency:
            totals[column]["latency"] = latency_dict(stack.latency[column])
    speedup = None
    if set(COLUMNS) <= set(stack.latency):
        speedup = stack.latency["standard"].median_ms / stack.latency["separable"].median_ms
    return {
        "values": stack.point,
        "input_shape": list(stack.input_shape),
        "output_shape": list(stack.output_shape),
        "layers": [layer_dict(layer, stack) for layer in stack.layers],
        "totals": totals,
        "param_ratio": _ratio(stack.total("separable", "params"), stack.total("standard", "params")),
        "mac_ratio": _ratio(stack.total("separable", "macs"), stack.total("standard", "macs")),
        "speedup": speedup,
    }


def budget_dict(check: BudgetCheck) -> dict[str, Any]:
    return {
        "scope": check.scope,
        "column": check.column,
        "metric": check.metric,
        "limit": check.limit,
        "actual": check.actual,
        "margin": check.margin,
        "kind": "min" if check.minimum else "max",
        "ok": check.ok,
        "measured": check.actual is not None,
    }


def delta_dict(delta: Delta) -> dict[str, Any]:
    return {
        "column": delta.column,
        "metric": delta.metric,
        "old": delta.old,
        "new": delta.new,
        "change_pct": delta.change_pct,
        "gated": delta.gated,
    }


def config_dict(r: ConfigReport) -> dict[str, Any]:
    return {
        "name": r.name,
        "file": r.path,
        "sweep": r.sweep or None,
        "points": [stack_dict(stack) for stack in r.stacks],
        "budgets": [budget_dict(b) for b in r.budgets],
        "baseline": [delta_dict(d) for d in r.deltas],
        "failures": list(r.failures),
        "ok": r.ok,
    }


def fmt_si(n: float) -> str:
    """Four significant digits with k/M/G/T above 9,999: ``4.231M``."""
    if abs(n) < 10_000:
        return f"{int(n):,}"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{unit}"
    raise AssertionError("unreachable")


def layer_table(stack: StackResult, exact: bool = True) -> MetricTable:
    """A row per layer and a total row: output shape, params and MACs per column, share and ratio.

    ``exact=False`` is the terminal's compact form: 4 significant digits and no kind column.
    """
    num = fmt_int if exact else fmt_si
    timed = bool(stack.latency) and exact  # the terminal shows timings in their own table
    headers = [
        "layer",
        "kind",
        "output",
        "std params",
        "sep params",
        "std MACs",
        "sep MACs",
        "sep MAC%",
        "ratio",
    ]
    if timed:
        headers += ["std ms", "sep ms"]
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
        ratio = _ratio(sep_macs, std_macs)
        share = f"{_share(sep_macs, sep_total) * 100:.1f}"
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


def stacked_headers(headers: Sequence[str]) -> list[str]:
    """Two-line headers (``std\\nparams``) so compact tables fit a terminal."""
    return [h.replace(" ", "\n", 1) for h in headers]


def layer_latency_table(stack: StackResult) -> MetricTable:
    """Per layer and for each whole column: medians, CV and the speedup."""
    headers = ["layer", "std ms", "sep ms", "std CV", "sep CV", "speedup"]
    entries = [(layer.name, layer.latency) for layer in stack.layers] + [("whole column", stack.latency)]
    body = []
    for name, latency in entries:
        std, sep = latency.get("standard"), latency.get("separable")
        speedup = f"{std.median_ms / sep.median_ms:.2f}×" if std and sep else "-"
        cvs = [f"{lat.cv:.1%}" if lat else "-" for lat in (std, sep)]
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
    p, m = stack.ratio("params"), stack.ratio("macs")
    lines.append(f"separable: {fmt_pct_fewer(p)} params (ratio {p:.4f}), {fmt_pct_fewer(m)} MACs (ratio {m:.4f})")
    if set(COLUMNS) <= set(stack.latency):
        std, sep = stack.latency["standard"], stack.latency["separable"]
        lines.append(
            f"measured: standard {std.median_ms:.3f} ms, separable {sep.median_ms:.3f} ms, "
            f"speedup {std.median_ms / sep.median_ms:.2f}× "
            f"on {std.device} ({std.dtype}, {fmt_threads(std.threads)})"
        )
    return lines


def point_label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={fmt_value(v)}" for k, v in point.items())


def fmt_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def sweep_table(stacks: Sequence[StackResult], keys: Sequence[str], exact: bool = True) -> MetricTable:
    """A row per sweep point: its values, both columns' totals and the ratios."""
    num = fmt_int if exact else fmt_si
    headers = [*keys, "std params", "sep params", "std MACs", "sep MACs", "param ratio", "MAC ratio"]
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
    if minimum:
        return f"{value:.1f}%"
    return f"{value:.3f} ms" if metric == "latency_ms" else fmt_int(int(round(value)))


def budget_table(checks: Sequence[BudgetCheck]) -> MetricTable:
    headers = ["budget", "limit", "actual", "margin", "verdict"]
    body = []
    for ch in checks:
        limit = f"≥ {ch.limit:g}%" if ch.minimum else "≤ " + _budget_value(ch.limit, ch.metric, False)
        margin = ch.margin
        if margin is None:
            margin_text, verdict = "-", "skipped"
        else:
            margin_text = _budget_value(margin, ch.metric, ch.minimum)
            if not ch.minimum and ch.limit:
                margin_text += f" ({margin / ch.limit * 100:.1f}%)"
            verdict = "pass" if ch.ok else "FAIL"
        name = f"{ch.scope} {ch.column} {ch.metric}"
        body.append([name, limit, _budget_value(ch.actual, ch.metric, ch.minimum), margin_text, verdict])
    return headers, body


def baseline_table(deltas: Sequence[Delta], max_increase: float | None) -> MetricTable:
    headers = ["column", "metric", "baseline", "now", "change", "verdict"]
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


def config_markdown(r: ConfigReport, max_increase: float | None = None) -> str:
    """A CI job summary: headings, tables and a pass/fail line."""
    parts = [f"## {r.name}", "", f"`{r.path}`", ""]
    if r.sweep:
        parts += [markdown_table(*sweep_table(r.stacks, list(r.sweep))), ""]
    else:
        (stack,) = r.stacks
        parts += [f"Input {fmt_shape(stack.input_shape)}", "", markdown_table(*layer_table(stack)), ""]
        parts += [f"- {line}" for line in stack_summary(stack)] + [""]
    if r.budgets:
        parts += ["### Budgets", "", markdown_table(*budget_table(r.budgets)), ""]
    if r.deltas:
        parts += ["### Against the baseline", "", markdown_table(*baseline_table(r.deltas, max_increase)), ""]
    parts.append(f"**{'PASS' if r.ok else 'FAIL'}**: {r.name}")
    parts += [f"- {line}" for line in r.failures]
    return "\n".join(parts) + "\n"


def config_csv_rows(r: ConfigReport) -> list[dict[str, Any]]:
    """A row per layer and sweep point (plus the point's total)."""
    rows = []
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
            rows.append(row)
    return rows


CONFIG_CSV_COLUMNS = [
    "config", "point", "layer", "kind", "output_shape", "standard_params", "separable_params",
    "standard_macs", "separable_macs", "standard_median_ms", "separable_median_ms",
]  # fmt: skip


def to_config_csv(reports: Sequence[ConfigReport]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CONFIG_CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in reports:
        writer.writerows(config_csv_rows(r))
    return buffer.getvalue()


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


# --- text -----------------------------------------------------------------------------------


def fmt_threads(n: int) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ")"


def fmt_tuple(values: Sequence[int]) -> str:
    return "×".join(str(v) for v in values)


def fmt_compact_shape(shape: Sequence[int]) -> str:
    return "(" + ",".join(str(v) for v in shape) + ")"


def fmt_ms(ms: float | None, iqr: float | None = None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.3f}" if iqr is None else f"{ms:.3f} ±{iqr:.3f}"


def fmt_pct_fewer(ratio: float) -> str:
    return f"{(1 - ratio) * 100:.1f}% fewer" if ratio <= 1 else f"{(ratio - 1) * 100:.1f}% more"


def describe(c: Comparison) -> str:
    """A one-line name: ``Conv2d 16→32 k3×3 s1×1 p1×1 on (1, 16, 50, 129)``."""
    s = c.spec
    kind = f"ConvTranspose{s.rank}d" if s.transposed else f"Conv{s.rank}d"
    pad = s.padding if isinstance(s.padding, str) else fmt_tuple(s.padding)
    parts = [f"{kind} {s.in_channels}→{s.out_channels}", f"k{fmt_tuple(s.kernel_size)}"]
    parts += [f"s{fmt_tuple(s.stride)}", f"p{pad}"]
    if any(d != 1 for d in s.dilation):
        parts.append(f"d{fmt_tuple(s.dilation)}")
    if s.transposed and any(s.output_padding):
        parts.append(f"op{fmt_tuple(s.output_padding)}")
    if s.groups != 1:
        parts.append(f"g{s.groups}")
    if s.multiplier != 1:
        parts.append(f"m{s.multiplier}")
    if s.bias:
        parts.append("bias")
    if s.norm.value != "none":
        parts.append(f"+{s.norm.value}norm")
    if s.act.value != "none":
        parts.append(f"+{s.act.value} ({s.placement.value})")
    return " ".join(parts) + f" on {fmt_shape(c.input_shape)}"


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
        lines.append("no roofline: machine peaks were not measured (dsconv peaks, or drop --no-roofline)")
    lines += [f"warning: {w}" for w in explain.noise_warnings(c)]
    if c.interrupted:
        lines.append(f"interrupted: {len(c.timings)} timing case(s) shown are what was measured before Ctrl-C")
    lines.extend(c.notes)
    return lines


MetricTable = tuple[list[str], list[list[str]]]


def metric_table(rows: Sequence[StageRow]) -> MetricTable:
    """Pivot one comparison's rows: a column per stage, a row per metric."""
    headers = ["", *[_column_title(r) for r in rows]]
    timed = any(r["median_ms"] is not None for r in rows)
    metrics: list[tuple[str, Any]] = [
        ("params", lambda r: fmt_int(r["params"])),
        ("MACs", lambda r: fmt_int(r["macs"])),
        ("FLOPs (2×MACs)", lambda r: fmt_int(r["flops"])),
        ("other ops", lambda r: fmt_int(r["elementwise_ops"])),
        ("output shape", lambda r: fmt_compact_shape(r["output_shape"])),
    ]
    if any(r["buffers"] for r in rows):
        metrics.insert(4, ("buffers", lambda r: fmt_int(r["buffers"])))
    metrics.append(("weights", lambda r: fmt_bytes(r["weight_bytes"])))
    metrics.append(("activations", lambda r: fmt_bytes(r["min_bytes_moved"] - r["weight_bytes"])))
    if any(r["intermediate_bytes"] for r in rows):
        metrics.append(
            ("intermediate", lambda r: fmt_bytes(r["intermediate_bytes"]) if r["intermediate_bytes"] else "-")
        )
    metrics.append(("min traffic", lambda r: fmt_bytes(r["min_bytes_moved"])))
    metrics.append(("FLOPs per byte", lambda r: f"{r['arithmetic_intensity']:.2f}"))
    if timed:
        metrics.append(("latency ms", lambda r: fmt_ms(r["median_ms"], r["iqr_ms"])))
        metrics.append(("CV", lambda r: "-" if r["cv"] is None else f"{r['cv']:.1%}"))
    if any(r["peak_bytes"] is not None for r in rows):
        metrics.append(("allocator peak", lambda r: "-" if r["peak_bytes"] is None else fmt_bytes(r["peak_bytes"])))
    if any(r["bound"] for r in rows):
        metrics.append(("GFLOP/s", lambda r: _opt(r["achieved_gflops"], "{:.2f}")))
        metrics.append(("GB/s", lambda r: _opt(r["achieved_gbps"], "{:.2f}")))
        metrics.append(("roof reached", _roof_reached))
    body = [[label, *[fn(r) for r in rows]] for label, fn in metrics]
    return headers, body


def _roof_reached(row: StageRow) -> str:
    if row["bound"] is None or row["fraction_of_roof"] is None:
        return "-"
    return f"{row['fraction_of_roof']:.1%} {row['bound']}"


def _opt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def fmt_bytes(n: int) -> str:
    """Bytes with a binary unit: ``1.2 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


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


def timing_table(c: Comparison) -> MetricTable:
    """A row per timing case: each item's median, the speedup and what MACs predict."""
    headers = ["case", "standard", "depthwise", "pointwise", "separable", "speedup"]
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
    headers = ["stage", "quantity", "reference", "dsconv", "reference value", "verdict"]

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
            ("skipped: " + ch.note) if ch.reference is None else ("ok" if ch.ok else "MISMATCH"),
        ]
        for ch in checks
    ]
    return headers, body


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2) + "\n"


def to_csv(rows: Sequence[StageRow]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = dict(row)
        flat["input_shape"] = "x".join(map(str, row["input_shape"]))
        flat["output_shape"] = "x".join(map(str, row["output_shape"]))
        writer.writerow({k: "" if v is None else v for k, v in flat.items()})
    return buffer.getvalue()


_NUMBER = re.compile(r"^[≤≥+\-\s]*[\d.,]+[\d.,%×\s]*(ms|B|KiB|MiB|GiB|[kMGT])?(\s*\(.*\))?$|^-$")


def markdown_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A GitHub table; columns mostly of numbers are right-aligned, the rest left."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    def numeric(column: int) -> bool:
        hits = sum(bool(_NUMBER.match(row[column].strip())) for row in body)
        return column > 0 and hits * 2 > len(body)

    align = ["---:" if numeric(i) else "---" for i in range(len(headers))]
    return "\n".join([line(headers), "| " + " | ".join(align) + " |", *[line(r) for r in body]])


def comparison_markdown(c: Comparison, name: str = "") -> str:
    parts = [f"### {name or describe(c)}", "", markdown_table(*metric_table(first_case_rows(c, name))), ""]
    if len(c.timings) > 1:
        parts += [markdown_table(*timing_table(c)), ""]
    parts += [f"- {line}" for line in summary_lines(c)]
    if c.checks:
        parts += ["", markdown_table(*checks_table(c.checks))]
    return "\n".join(parts) + "\n"


# --- whole models ---------------------------------------------------------------------------------


def _shape_lists(shapes: Sequence[Sequence[int]]) -> list[list[int]]:
    return [list(s) for s in shapes]


def model_totals_dict(t: ModelTotals) -> dict[str, Any]:
    return {"params": t.params, "macs": t.macs, "flops": 2 * t.macs, "other_ops": t.other_ops,
            "output_shapes": _shape_lists(t.output_shapes)}  # fmt: skip


def model_row_dict(row: ModelRow) -> dict[str, Any]:
    return {
        "path": row.path, "type": row.type, "depth": row.depth, "params": row.params, "macs": row.macs,
        "other_ops": row.other_ops, "calls": row.calls, "share": row.share,
        "input_shapes": _shape_lists(row.input_shapes), "output_shapes": _shape_lists(row.output_shapes),
    }  # fmt: skip


def candidate_dict(c: Candidate) -> dict[str, Any]:
    return {
        "path": c.path, "calls": c.calls, "input_shape": list(c.input_shape), "params": c.params, "macs": c.macs,
        "separable": {"params": c.separable_params, "macs": c.separable_macs},
        "params_saved": c.params_saved, "macs_saved": c.macs_saved,
        "mac_ratio": c.separable_macs / c.macs if c.macs else None, "theoretical_ratio": c.theoretical_ratio,
        "transposed": c.conv.transposed,
    }  # fmt: skip


def model_dict(a: ModelAnalysis) -> dict[str, Any]:
    """A model analysis as the documented JSON document."""
    params, macs = a.if_converted()
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "tool": "dsconv", "version": __version__, "convention": CONVENTION,
        "target": a.target, "input_shapes": _shape_lists(a.input_shapes), "dtype": a.dtype,
        "counted_on": a.counted_on, "totals": model_totals_dict(a.totals),
        "layers": [model_row_dict(r) for r in a.totals.rows],
        "uncounted": [{"op": o.name, "calls": o.count} for o in a.totals.uncounted],
        "data_movement": [{"op": o.name, "calls": o.count} for o in a.totals.data_movement],
        "idle_params": [{"path": o.name, "params": o.count} for o in a.totals.idle_params],
        "advisor": {
            "candidates": [candidate_dict(c) for c in a.candidates],
            "existing_separable": [{"depthwise": dw, "pointwise": pw} for dw, pw in a.existing_separable],
            "if_converted": {"params": params, "macs": macs},
        },
        "notes": list(a.notes),
    }  # fmt: skip
    if a.converted is not None:
        out["converted"] = {"paths": list(a.chosen), "totals": model_totals_dict(a.converted)}
    if a.checks:
        out["checks"] = [{"what": w, "dsconv": d, "reference": r, "ok": d == r} for w, d, r in a.checks]
    if a.latency:
        out["latency"] = {name: latency_dict(lat) for name, lat in a.latency.items()}
    return out


def model_table(a: ModelAnalysis, depth: int | None) -> MetricTable:
    """One row per module down to ``depth``, indented by depth; each row sums its children."""
    headers = ["module", "type", "output", "params", "MACs", "share"]
    body = []
    for r in a.totals.rows:
        if depth is not None and r.depth > depth:
            continue
        name = (r.path.rsplit(".", 1)[-1] if r.path else "(model)") + (f" ×{r.calls}" if r.calls > 1 else "")
        shapes_out = ", ".join(fmt_compact_shape(s) for s in r.output_shapes) or "-"
        body.append(["  " * r.depth + name, r.type, shapes_out, fmt_int(r.params), fmt_int(r.macs), f"{r.share:.1%}"])
    return headers, body


def advisor_table(a: ModelAnalysis) -> MetricTable:
    """Candidates ranked by MACs saved."""
    headers = ["conv", "params", "→ params", "MACs", "→ MACs", "MACs saved", "ratio", "theory"]
    body = [
        [c.path, fmt_int(c.params), fmt_int(c.separable_params), fmt_int(c.macs),
         fmt_int(c.separable_macs), fmt_int(c.macs_saved), f"{c.separable_macs / c.macs:.3f}" if c.macs else "-",
         f"{c.theoretical_ratio:.3f}"]
        for c in a.candidates
    ]  # fmt: skip
    return headers, body


def model_summary(a: ModelAnalysis) -> list[str]:
    t = a.totals
    outputs = ", ".join(fmt_shape(s) for s in t.output_shapes)
    lines = [f"total: {fmt_int(t.params)} params, {fmt_int(t.macs)} MACs ({fmt_si(2 * t.macs)} FLOPs), "
             f"{fmt_int(t.other_ops)} other ops; output {outputs}"]  # fmt: skip
    if a.candidates:
        params, macs = a.if_converted()
        lines.append(f"if every candidate were converted: {fmt_int(params)} params "
                     f"({fmt_pct_fewer(params / t.params) if t.params else '-'}), {fmt_int(macs)} MACs "
                     f"({fmt_pct_fewer(macs / t.macs) if t.macs else '-'})")  # fmt: skip
    else:
        lines.append("no conversion candidates: no standard conv with more than one kernel element")
    if a.existing_separable:
        pairs = ", ".join(f"{dw} → {pw}" for dw, pw in a.existing_separable[:4])
        more = f" (+{len(a.existing_separable) - 4} more)" if len(a.existing_separable) > 4 else ""
        lines.append(f"already separable: {len(a.existing_separable)} depthwise → 1×1 pairs: {pairs}{more}")
    if a.converted is not None:
        c = a.converted
        lines.append(f"converted {len(a.chosen)} conv(s) and re-counted: {fmt_int(c.params)} params, "
                     f"{fmt_int(c.macs)} MACs, as predicted; output shapes unchanged")  # fmt: skip
    if a.totals.uncounted:
        ops = ", ".join(f"{o.name} ×{o.count}" for o in a.totals.uncounted)
        lines.append(f"not counted (no MAC or elementwise rule): {ops}")
    if a.totals.idle_params:
        idle = ", ".join(f"{o.name} ({fmt_int(o.count)})" for o in a.totals.idle_params[:6])
        lines.append(f"modules holding parameters that did no counted work: {idle}")
    for name, lat in a.latency.items():
        lines.append(f"{name}: {fmt_ms(lat.median_ms, lat.iqr_ms)} median on {lat.device}")
    if set(a.latency) == {"original", "converted"}:
        speedup = a.latency["original"].median_ms / a.latency["converted"].median_ms
        predicted = a.totals.macs / a.converted.macs if a.converted and a.converted.macs else float("nan")
        lines.append(f"converted model: {speedup:.2f}× the speed of the original for {predicted:.2f}× fewer MACs")
    lines += [f"note: {n}" for n in a.notes]
    lines += [f"check failed: {w}: dsconv {d:,} vs {r:,}" for w, d, r in a.failed_checks]
    return lines


def model_csv(a: ModelAnalysis) -> str:
    buffer = io.StringIO()
    columns = ["path", "type", "depth", "params", "macs", "other_ops", "calls", "share", "input_shapes",
               "output_shapes"]  # fmt: skip
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in a.totals.rows:
        d = model_row_dict(row)
        d["input_shapes"] = " ".join("x".join(map(str, s)) for s in row.input_shapes)
        d["output_shapes"] = " ".join("x".join(map(str, s)) for s in row.output_shapes)
        writer.writerow(d)
    return buffer.getvalue()


def model_markdown(a: ModelAnalysis, depth: int | None) -> str:
    parts = [f"## {a.target} on {', '.join(fmt_shape(s) for s in a.input_shapes)}", "",
             markdown_table(*model_table(a, depth)), ""]  # fmt: skip
    if a.candidates:
        parts += ["### Conversion candidates", "", markdown_table(*advisor_table(a)), ""]
    parts += [f"- {line}" for line in model_summary(a)]
    return "\n".join(parts) + "\n"
