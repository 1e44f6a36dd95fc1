"""Results -> JSON documents, CSV and Markdown strings. Stdlib only."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from dsconv_cli.core import environment
from dsconv_cli.core.environment import Conditions
from dsconv_cli.core.formatting import describe, fmt_shape, ratio_of, share_of
from dsconv_cli.core.results import (
    ITEMS,
    BudgetCheck,
    Candidate,
    Check,
    Comparison,
    ConfigReport,
    Delta,
    Fidelity,
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
    TensorLeaf,
    TimingRow,
    VariantStats,
)
from dsconv_cli.core.spec import COLUMNS, ConvLayer, ConvSpec
from dsconv_cli.present import explain
from dsconv_cli.present.rows import (
    CONFIG_CSV_COLUMNS,
    CSV_COLUMNS,
    GEOMETRY_COLUMNS,
    StageRow,
    all_stage_rows,
    config_csv_rows,
    geometry,
)
from dsconv_cli.version import __version__

SCHEMA_VERSION = 2  # 2: speedup became {median, min, max, rounds}; environment and trusted added


CONVENTION = {
    "macs": "multiply-accumulates of the convolutions, bias excluded",
    "flops": "2 x macs",
    "elementwise_ops": "bias add 1, batch norm 2, activation 1 per output element",
    "params": "learnable parameters: weights, bias, norm affine, PReLU slopes",
    "buffers": "non-learnable elements: batch norm running statistics",
    "batch": "whole batch as given, not per sample",
}


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
        "depthwise_bias": spec.bias if spec.depthwise_bias is None else spec.depthwise_bias,
        "transposed": spec.transposed,
        "output_padding": list(spec.output_padding),
        "norm": spec.norm.value,
        "act": spec.act.value,
        "placement": spec.placement.value,
        "act_after": spec.act_after.value if spec.act_after else None,
        "slopes": spec.slopes.value,
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


def conditions_dict(conditions: Conditions | None) -> dict[str, Any]:
    """``trusted`` and ``environment`` (with the machine's state before and after timing); empty when untimed."""
    if conditions is None:
        return {}
    return {
        "trusted": conditions.trusted,
        "environment": {
            **conditions.environment,
            "before": environment.state_dict(conditions.before),
            "after": environment.state_dict(conditions.after),
            "quiet_reference_ms": conditions.quiet_reference_ms,
            "untrusted_because": list(conditions.reasons),
        },
    }


def speedup_dict(rounds: Sequence[float], median: float | None) -> dict[str, Any] | None:
    """``{median, min, max, rounds}``: standard over separable, per interleaved round; None when untimed."""
    if median is None:
        return None
    return {"median": median, "min": min(rounds, default=median), "max": max(rounds, default=median),
            "rounds": list(rounds)}  # fmt: skip


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
        "speedup": speedup_dict(row.round_speedups, row.speedup),
        "one_thread_ms": row.one_thread or None,  # CPU runs on several threads: the medians on one
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
        "speedup": speedup_dict(c.timings[0].round_speedups, c.speedup) if c.timings else None,
        "notes": list(c.notes),
    }
    if c.timings:
        out["timings"] = [timing_dict(c, row) for row in c.timings]
        out["explanation"] = [line for row in c.timings if (line := explain.explanation(c, row))]
        out["warnings"] = explain.noise_warnings(c)
        out |= conditions_dict(c.conditions)
    out["interrupted"] = c.interrupted  # always: a reader never takes a cut-short run for a whole one
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
    doc["interrupted"] = any(item.get("interrupted", False) for item in (*comparisons, *(configs or ())))
    return doc


def layer_dict(layer: LayerResult, column_macs: dict[str, int]) -> dict[str, Any]:
    """One layer; ``column_macs`` holds the stack's MAC totals, computed once for all its layers."""
    out: dict[str, Any] = {
        "name": layer.name,
        "kind": layer.kind.value,
        "input_shape": list(layer.input_shape),
        "output_shape": list(layer.output_shape),
        "spec": spec_dict(layer.comparison.spec) if layer.comparison else None,
    }
    for column in COLUMNS:
        out[column] = column_dict(layer.column(column), layer.latency.get(column))
    out["mac_share"] = {column: share_of(layer.column(column).macs, column_macs[column]) for column in COLUMNS}
    out["param_ratio"] = ratio_of(layer.separable.params, layer.standard.params)
    out["mac_ratio"] = ratio_of(layer.separable.macs, layer.standard.macs)
    out["speedup"] = speedup_dict(layer.round_speedups, layer.speedup)
    return out


def stack_dict(stack: StackResult) -> dict[str, Any]:
    column_macs = {column: stack.total(column, "macs") for column in COLUMNS}
    totals: dict[str, dict[str, Any]] = {}
    for column in COLUMNS:
        totals[column] = {
            m: stack.total(column, m) for m in ("params", "macs", "flops", "elementwise_ops", "buffers")
        } | {"output_shape": list(stack.output_shape)}
        if column in stack.latency:
            totals[column]["latency"] = latency_dict(stack.latency[column])
    return {
        "values": stack.point,
        "input_shape": list(stack.input_shape),
        "output_shape": list(stack.output_shape),
        "layers": [layer_dict(layer, column_macs) for layer in stack.layers],
        "totals": totals,
        "param_ratio": ratio_of(stack.total("separable", "params"), stack.total("standard", "params")),
        "mac_ratio": ratio_of(stack.total("separable", "macs"), stack.total("standard", "macs")),
        "speedup": speedup_dict(stack.round_speedups, stack.speedup),
    }


def budget_dict(check: BudgetCheck) -> dict[str, Any]:
    measured = check.actual is not None and not math.isnan(check.actual)  # NaN: could not be measured (fails)
    return {
        "scope": check.scope,
        "column": check.column,
        "metric": check.metric,
        "limit": check.limit,
        "actual": check.actual if measured else None,
        "margin": check.margin if measured else None,
        "kind": "min" if check.minimum else "max",
        "ok": check.ok,
        "measured": measured,
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
    model = {"model": model_dict(r.model), "totals": model_config_totals(r.model)} if r.model is not None else {}
    return {
        "name": r.name,
        "file": r.path,
        "sweep": r.sweep or None,
        "points": [stack_dict(stack) for stack in r.stacks],
        **model,
        "budgets": [budget_dict(b) for b in r.budgets],
        "baseline": [delta_dict(d) for d in r.deltas],
        "failures": list(r.failures),
        "ok": r.ok,
        **conditions_dict(r.conditions),
        "interrupted": r.interrupted,
    }


def to_config_csv(reports: Sequence[ConfigReport]) -> str:
    buffer = io.StringIO()
    writer = _csv_writer(buffer, CONFIG_CSV_COLUMNS)
    for r in reports:
        writer.writerows(config_csv_rows(r))
    return buffer.getvalue()


COMPACT_JSON_ITEMS = 2_000  # documents with more layers or sweep points than this are written compact


def to_json(doc: dict[str, Any]) -> str:
    """Indented JSON; a large document (thousands of layers or points) compact, which the C encoder writes
    in a fraction of the time (indenting falls back to Python's pure-Python encoder)."""
    items = sum(len(point.get("layers", ())) for config in doc.get("configs", ()) for point in config["points"])
    if items > COMPACT_JSON_ITEMS:
        return json.dumps(doc, separators=(",", ":")) + "\n"
    return json.dumps(doc, indent=2) + "\n"


def _csv_writer(buffer: io.StringIO, columns: Sequence[str]) -> csv.DictWriter[str]:
    """A plain ASCII header, then rows with labels quoted and numbers bare."""
    assert all(column.isascii() and column.isidentifier() for column in columns)
    buffer.write(",".join(columns) + "\n")
    return csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)


def to_csv(rows: Sequence[StageRow], convs: Sequence[ConvLayer | None] | None = None) -> str:
    """A row per item and timing case; with ``convs`` (one per row), each stage's conv geometry too."""
    buffer = io.StringIO()
    writer = _csv_writer(buffer, [*CSV_COLUMNS, *GEOMETRY_COLUMNS] if convs is not None else CSV_COLUMNS)
    for i, row in enumerate(rows):
        flat: dict[str, Any] = dict(row)
        flat["input_shape"] = "x".join(map(str, row["input_shape"]))
        flat["output_shape"] = "x".join(map(str, row["output_shape"]))
        if convs is not None:
            flat |= geometry(convs[i])
        writer.writerow({k: "" if v is None else v for k, v in flat.items()})
    return buffer.getvalue()


def comparisons_csv(comparisons: Sequence[Comparison]) -> str:
    """Every comparison's rows (every timing case), each stage with its conv's numbers."""
    rows: list[StageRow] = []
    convs: list[ConvLayer | None] = []
    for c in comparisons:
        (standard,), (depthwise, pointwise) = c.spec.standard(), c.spec.separable()
        by_item = {("standard", "standard"): standard.conv, ("separable", "depthwise"): depthwise.conv,
                   ("separable", "pointwise"): pointwise.conv}  # fmt: skip
        for row in all_stage_rows(c):
            rows.append(row)
            convs.append(by_item.get((row["variant"], row["stage"])))
    return to_csv(rows, convs)


def _shape_lists(shapes: Sequence[Sequence[int]]) -> list[list[int]]:
    return [list(s) for s in shapes]


def _leaf_dicts(leaves: Sequence[TensorLeaf]) -> list[dict[str, Any]]:
    return [{"name": leaf.name, "shape": list(leaf.shape), "dtype": leaf.dtype} for leaf in leaves]


def model_totals_dict(t: ModelTotals) -> dict[str, Any]:
    m = t.memory
    return {"params": t.params, "macs": t.macs, "flops": 2 * t.macs, "other_ops": t.other_ops,
            "output_shapes": _shape_lists(t.output_shapes), "trainable_params": t.trainable_params,
            "frozen_params": t.frozen_params, "buffers": t.buffers, "lower_bound": t.lower_bound,
            "outputs": _leaf_dicts(t.outputs),
            "memory": {"input_bytes": m.input_bytes, "param_bytes": m.param_bytes, "buffer_bytes": m.buffer_bytes,
                       "activation_bytes": m.activation_bytes, "total_bytes": m.total_bytes}}  # fmt: skip


def model_row_dict(row: ModelRow) -> dict[str, Any]:
    return {
        "path": row.path, "type": row.type, "depth": row.depth, "params": row.params, "macs": row.macs,
        "other_ops": row.other_ops, "calls": row.calls, "share": row.share,
        "input_shapes": _shape_lists(row.input_shapes), "output_shapes": _shape_lists(row.output_shapes),
        "trainable_params": row.trainable_params, "param_bytes": row.param_bytes, "buffer_bytes": row.buffer_bytes,
        "activation_bytes": row.activation_bytes,
    }  # fmt: skip


def candidate_dict(c: Candidate) -> dict[str, Any]:
    return {
        "path": c.path, "calls": c.calls, "input_shape": list(c.input_shape), "params": c.params, "macs": c.macs,
        "separable": {"params": c.separable_params, "macs": c.separable_macs},
        "params_saved": c.params_saved, "macs_saved": c.macs_saved,
        "mac_ratio": c.separable_macs / c.macs if c.macs else None, "theoretical_ratio": c.theoretical_ratio,
        "transposed": c.conv.transposed, "multiplier": c.multiplier, "energy_kept": _finite(c.energy_kept),
        "layer_error": _finite(c.layer_error),
    }  # fmt: skip


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def fidelity_dict(f: Fidelity) -> dict[str, Any]:
    return {"output_error": f.output_error, "snr_db": _finite(f.snr_db), "inputs": f.inputs, "probes": f.probes,
            "trained": f.trained, "init": f.init, "output_error_before_refit": f.refit_from}  # fmt: skip


def model_dict(a: ModelAnalysis) -> dict[str, Any]:
    """A model analysis as the documented JSON document."""
    params, macs = a.if_converted()
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION, "tool": "dsconv", "version": __version__, "convention": CONVENTION,
        "target": a.target, "input_shapes": _shape_lists(a.input_shapes), "dtype": a.dtype,
        "inputs": [d | {"keyword": d["name"].split(".")[0] in a.keyword_inputs} for d in _leaf_dicts(a.inputs)],
        "counted_on": a.counted_on, "totals": model_totals_dict(a.totals),
        "layers": [model_row_dict(r) for r in a.totals.rows],
        "uncounted": [{"op": o.name, "calls": o.count} for o in a.totals.uncounted],
        "uncounted_macs": [{"op": o.name, "calls": o.count} for o in a.totals.unruled_macs],
        "data_movement": [{"op": o.name, "calls": o.count} for o in a.totals.data_movement],
        "idle_params": [{"path": o.name, "params": o.count} for o in a.totals.idle_params],
        "by_op": [{"op": o.name, "calls": o.calls, "macs": o.macs, "other_ops": o.other_ops, "kind": o.kind}
                  for o in a.totals.by_op],
        "functional_convs": [{"path": o.name, "calls": o.count} for o in a.totals.functional_convs],
        "shared_params": [{"name": p.name, "params": p.numel, "holders": list(p.holders)}
                          for p in a.totals.shared_params],
        "advisor": {
            "candidates": [candidate_dict(c) for c in a.candidates],
            "existing_separable": [{"depthwise": dw, "pointwise": pw} for dw, pw in a.existing_separable],
            "if_converted": {"params": params, "macs": macs},
            "timed": [
                {"path": t.path, "standard": latency_dict(t.standard), "separable": latency_dict(t.separable),
                 "speedup": speedup_dict(t.round_speedups, t.speedup), "predicted_speedup": t.predicted}
                for t in a.candidate_timings
            ],
        },
        "notes": list(a.notes),
        "interrupted": a.interrupted,
    }  # fmt: skip
    if a.converted is not None:
        out["converted"] = {"paths": list(a.chosen), "totals": model_totals_dict(a.converted),
                            "fidelity": fidelity_dict(a.fidelity) if a.fidelity else None,
                            "not_converted": [{"path": p, "reason": why} for p, why in a.not_converted],
                            "renamed_keys": {old: list(new) for old, new in a.renamed_keys}}  # fmt: skip
    if a.checks:
        out["checks"] = [{"what": w, "dsconv": d, "reference": r, "ok": d == r} for w, d, r in a.checks]
    if a.latency:
        out["latency"] = {name: latency_dict(lat) for name, lat in a.latency.items()}
    return out | conditions_dict(a.conditions)


def model_csv(a: ModelAnalysis) -> str:
    buffer = io.StringIO()
    columns = ["path", "type", "depth", "params", "macs", "other_ops", "calls", "share", "input_shapes",
               "output_shapes", "trainable_params", "param_bytes", "buffer_bytes", "activation_bytes"]  # fmt: skip
    writer = _csv_writer(buffer, columns)
    for row in a.totals.rows:
        d = model_row_dict(row)
        d["input_shapes"] = " ".join("x".join(map(str, s)) for s in row.input_shapes)
        d["output_shapes"] = " ".join("x".join(map(str, s)) for s in row.output_shapes)
        writer.writerow(d)
    return buffer.getvalue()


def model_config_totals(a: ModelAnalysis) -> dict[str, dict[str, Any]]:
    """A model config's totals in the columns of layer configs: standard as it is, separable converted."""
    out: dict[str, dict[str, Any]] = {}
    for column, counted, latency in (("standard", a.totals, a.latency.get("original")),
                                     ("separable", a.converted, a.latency.get("converted"))):  # fmt: skip
        if counted is None:
            continue
        out[column] = {
            "params": counted.params, "macs": counted.macs, "flops": 2 * counted.macs,
            "elementwise_ops": counted.other_ops, "output_shapes": _shape_lists(counted.output_shapes),
        }  # fmt: skip
        if latency is not None:
            out[column]["latency"] = latency_dict(latency)
    return out


def candidates_config(a: ModelAnalysis) -> str:
    """The conversion candidates as a dsconv config (``analyze --emit-config``): one layer per conv call,
    each with its own input, so ``compare --config`` and ``report`` total them as the advisor does."""
    lines = [
        f"# Conversion candidates of {a.target} on {', '.join(fmt_shape(s) for s in a.input_shapes)},",
        "# ranked by MACs saved; written by dsconv analyze --emit-config. Each conv call is a layer with",
        "# its own input: the standard column totals the convs as they are, the separable column as",
        "# converted (depthwise without bias, pointwise with the conv's bias). A conv called k times is",
        "# k layers here, so its params count k times where the model counts them once.",
        f"name: {json.dumps(a.target.rpartition(':')[2] + ' candidates')}",
        "layers:",
    ]
    for c in a.candidates:
        calls = [call for call in a.totals.conv_calls if call.path == c.path] or []
        for i, call in enumerate(calls):
            conv = call.conv
            fields: dict[str, Any] = {
                "name": c.path if i == 0 else f"{c.path} call {i + 1}",
                "input_shape": list(call.input_shape),
                "out_channels": conv.out_channels,
                "kernel_size": list(conv.kernel_size),
                "stride": list(conv.stride),
                "padding": conv.padding if isinstance(conv.padding, str) else list(conv.padding),
                "dilation": list(conv.dilation),
                "bias": conv.bias,
                "depthwise_bias": False,
            }
            if conv.transposed:
                fields |= {"transposed": True, "output_padding": list(conv.output_padding)}
            lines.append("  - {" + ", ".join(f"{k}: {json.dumps(v)}" for k, v in fields.items()) + "}")
    return "\n".join(lines) + "\n"
