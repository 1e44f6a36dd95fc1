"""Results -> plain row dicts -> JSON / CSV / Markdown strings. Stdlib only."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any, TypedDict

from dsconv_cli import __version__
from dsconv_cli.spec import Check, Comparison, ConvSpec, Latency, LayerStats, VariantStats

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
    """One row of the exported table: a stage, or a variant's total."""

    comparison: str
    variant: str
    stage: str
    input_shape: list[int]
    output_shape: list[int]
    params: int
    macs: int
    flops: int
    elementwise_ops: int
    buffers: int
    median_ms: float | None
    iqr_ms: float | None
    runs: int | None
    device: str | None
    threads: int | None
    dtype: str | None


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
    return {
        "median_ms": latency.median_ms,
        "iqr_ms": latency.iqr_ms,
        "runs": latency.runs,
        "device": latency.device,
        "threads": latency.threads,
        "dtype": latency.dtype,
    }


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


def comparison_dict(c: Comparison, name: str = "") -> dict[str, Any]:
    """One comparison as the documented JSON object."""
    standard = _counts(c.standard)
    separable = _counts(c.separable)
    for stage in c.separable.stages:
        separable[stage.name] = _counts(stage) | {"input_shape": list(stage.input_shape)}
    for key, variant in (("standard", standard), ("separable", separable)):
        if key in c.latency:
            variant["latency"] = latency_dict(c.latency[key])
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
    if c.checks:
        out["checks"] = [check_dict(ch) for ch in c.checks]
    return out


def document(comparisons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The top-level JSON document."""
    return {
        "schema_version": SCHEMA_VERSION,
        "tool": "dsconv",
        "version": __version__,
        "convention": CONVENTION,
        "comparisons": list(comparisons),
    }


def stage_rows(c: Comparison, name: str = "") -> list[StageRow]:
    """Standard, depthwise, pointwise and separable-total rows of one comparison."""
    label = name or describe(c)

    def row(variant: str, stage: str, stats: LayerStats | VariantStats, lat: Latency | None) -> StageRow:
        return StageRow(
            comparison=label,
            variant=variant,
            stage=stage,
            input_shape=list(stats.input_shape),
            output_shape=list(stats.output_shape),
            params=stats.params,
            macs=stats.macs,
            flops=stats.flops,
            elementwise_ops=stats.elementwise_ops,
            buffers=stats.buffers,
            median_ms=lat.median_ms if lat else None,
            iqr_ms=lat.iqr_ms if lat else None,
            runs=lat.runs if lat else None,
            device=lat.device if lat else None,
            threads=lat.threads if lat else None,
            dtype=lat.dtype if lat else None,
        )

    rows = [row("standard", "standard", c.standard, c.latency.get("standard"))]
    rows += [row("separable", s.name, s, None) for s in c.separable.stages]
    rows.append(row("separable", "total", c.separable, c.latency.get("separable")))
    return rows


# --- text -----------------------------------------------------------------------------------


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
    ]
    if c.speedup is not None:
        lat = c.latency["standard"]
        lines.append(
            f"measured speedup {c.speedup:.2f}× on {lat.device} ({lat.dtype}, {lat.threads} threads; "
            f"median ±IQR of {lat.runs} and {c.latency['separable'].runs} runs); "
            f"MACs predict {1 / c.mac_ratio:.2f}×"
        )
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
    if timed:
        metrics.append(("latency ms", lambda r: fmt_ms(r["median_ms"], r["iqr_ms"])))
    body = [[label, *[fn(r) for r in rows]] for label, fn in metrics]
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


def markdown_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---"] + ["---:"] * (len(headers) - 1)
    return "\n".join([line(headers), "| " + " | ".join(align) + " |", *[line(r) for r in body]])


def comparison_markdown(c: Comparison, name: str = "") -> str:
    parts = [f"### {name or describe(c)}", "", markdown_table(*metric_table(stage_rows(c, name))), ""]
    parts += [f"- {line}" for line in summary_lines(c)]
    if c.checks:
        parts += ["", markdown_table(*checks_table(c.checks))]
    return "\n".join(parts) + "\n"
