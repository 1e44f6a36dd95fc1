"""Budgets and baselines: pure checks over counted (and timed) stacks."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dsconv_cli.core.results import BudgetCheck, Delta, Latency, ModelAnalysis, StackResult, VariantStats
from dsconv_cli.core.spec import COLUMNS, Budgets
from dsconv_cli.errors import ConfigError

GATED_METRICS = ("params", "macs")  # what --max-increase fails on; latency is too noisy to gate


def _measure(stats: VariantStats, latency: Latency | None, metric: str) -> float | None:
    if metric == "latency_ms":
        return latency.median_ms if latency is not None else None
    return float(getattr(stats, metric))


Totals = Callable[[str, str], float | None]  # (column, metric) -> the total, None where not measured


def stack_totals(stack: StackResult) -> Totals:
    """A stack's totals per column (latency: the whole column timed as one module)."""

    def total(column: str, metric: str) -> float | None:
        if metric == "latency_ms":
            latency = stack.latency.get(column)
            return latency.median_ms if latency is not None else None
        return float(stack.total(column, metric))

    return total


MODEL_COLUMNS = {"standard": "original", "separable": "converted"}  # a model config's columns


def model_totals(analysis: ModelAnalysis) -> Totals:
    """A model's totals: ``standard`` as it is, ``separable`` with the config's conversion applied."""

    def total(column: str, metric: str) -> float | None:
        if metric == "latency_ms":
            latency = analysis.latency.get(MODEL_COLUMNS[column])
            return latency.median_ms if latency is not None else None
        counted = analysis.totals if column == "standard" else analysis.converted
        if counted is None:
            return None
        return float({"params": counted.params, "macs": counted.macs, "elementwise_ops": counted.other_ops}[metric])

    return total


def check_totals(total: Totals, budgets: Budgets) -> list[BudgetCheck]:
    """The total limits and the minimum reduction of ``budgets``."""
    checks: list[BudgetCheck] = []
    for column, limits in budgets.totals.items():
        for metric, limit in limits.items():
            checks.append(BudgetCheck("total", column, metric, limit, total(column, metric)))
    for metric, percent in budgets.min_reduction.items():
        standard, separable = total("standard", metric), total("separable", metric)
        reduction = None if not standard or separable is None else (1 - separable / standard) * 100
        checks.append(BudgetCheck("total", "reduction", metric, percent, reduction, minimum=True))
    return checks


def check_fidelity(analysis: ModelAnalysis, budgets: Budgets) -> list[BudgetCheck]:
    """The converted model's measured fidelity against ``budgets.fidelity``; not measured is a failure, never
    a pass (``actual`` is then NaN)."""
    fidelity = analysis.fidelity
    checks = []
    for key, limit in budgets.fidelity.items():
        metric = key.removeprefix("min_").removeprefix("max_")
        actual = math.nan if fidelity is None else getattr(fidelity, metric)
        checks.append(BudgetCheck("total", "fidelity", metric, limit, actual, minimum=key.startswith("min_")))
    return checks


def check_budgets(stack: StackResult, budgets: Budgets) -> list[BudgetCheck]:
    """Every limit of ``budgets`` against ``stack``: totals, each layer, and the minimum reduction."""
    checks = [ch for ch in check_totals(stack_totals(stack), budgets) if not ch.minimum]
    for column, limits in budgets.per_layer.items():
        for layer in stack.layers:
            for metric, limit in limits.items():
                actual = _measure(layer.column(column), layer.latency.get(column), metric)
                checks.append(BudgetCheck(layer.name, column, metric, limit, actual))
    checks += [ch for ch in check_totals(stack_totals(stack), budgets) if ch.minimum]
    return checks


def describe_failure(check: BudgetCheck, config: str) -> str:
    """One line: which limit, which layer, by how much."""
    assert check.actual is not None and check.margin is not None
    where = f"{config}: {check.scope} {check.column} {check.metric}"
    if check.column == "fidelity":
        if math.isnan(check.actual):
            return f"{where}: not measured (the model was not converted on the CPU), so the limit cannot hold"
        bound = "below the minimum" if check.minimum else "over the limit"
        return f"{where} {check.actual:.4g} is {bound} {check.limit:g}"
    if check.minimum:
        return (
            f"{where}: {check.actual:.1f}% fewer than standard, below the minimum {check.limit:g}% "
            f"by {-check.margin:.1f} points"
        )
    over = -check.margin
    pct = over / check.limit * 100 if check.limit else float("inf")
    return (
        f"{where} {_num(check.actual, check.metric)} exceeds the limit {_num(check.limit, check.metric)} "
        f"by {_num(over, check.metric)} ({pct:.1f}%)"
    )


def _num(value: float, metric: str) -> str:
    return f"{value:.3f} ms" if metric == "latency_ms" else f"{int(round(value)):,}"


# --- baselines ------------------------------------------------------------------------------------

BASELINE_SCHEMAS = (1, 2)  # JSON schema versions whose totals this reader understands (unchanged since 1)


def baseline_totals(document: Mapping[str, Any], source: str) -> dict[str, dict[str, dict[str, float]]]:
    """``{config name: {column: {metric: value}}}`` from an earlier ``--format json`` run."""
    configs = document.get("configs") if isinstance(document, Mapping) else None
    version = document.get("schema_version") if isinstance(document, Mapping) else None
    if isinstance(configs, list) and (type(version) is not int or version not in BASELINE_SCHEMAS):
        readable = " or ".join(map(str, BASELINE_SCHEMAS))
        shown = "missing" if version is None else json.dumps(version)[:20]
        raise ConfigError(f"--baseline {source}: schema_version {shown}: this dsconv reads baselines of schema "
                          f"{readable}; write the baseline again with --format json")  # fmt: skip
    if not isinstance(configs, list):
        raise ConfigError(f"--baseline {source}: not a dsconv JSON report (no 'configs' list); "
                          "write one with --format json")  # fmt: skip
    out: dict[str, dict[str, dict[str, float]]] = {}
    for entry in configs:
        try:
            if isinstance(entry.get("model"), Mapping):  # a model config: its totals sit beside the model
                out[entry["name"]] = {column: _flat_totals(entry["totals"][column]) for column in COLUMNS}
                continue
            points = entry["points"]
            if len(points) != 1:
                continue  # sweeps have no single total to hold
            out[entry["name"]] = {column: _flat_totals(points[0]["totals"][column]) for column in COLUMNS}
        except (KeyError, TypeError, IndexError, AttributeError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError | IndexError) else str(exc)
            name = entry.get("name", "?") if isinstance(entry, Mapping) else "?"
            raise ConfigError(f"--baseline {source}: config {name}: malformed totals ({what}); write the "
                              "baseline with --format json") from None  # fmt: skip
    return out


def _flat_totals(column: Mapping[str, Any]) -> dict[str, float]:
    values = {m: _number(column[m]) for m in ("params", "macs", "elementwise_ops")}
    if isinstance(column.get("latency"), Mapping):
        values["latency_ms"] = _number(column["latency"]["median_ms"])
    return values


def _number(value: Any) -> float:
    """A total from a baseline: a finite number, never text or a boolean."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{str(value)[:40]!r} is not a number")
    if isinstance(value, int) and abs(value) > 2**63 or not math.isfinite(value):  # no count is past int64
        raise TypeError(f"{str(value)[:40]} is not a count dsconv writes")
    return float(value)


def compare_baseline(name: str, total: Totals, old: Mapping[str, Mapping[str, float]]) -> list[Delta]:
    """Every total now against the baseline's totals for the same config."""
    deltas: list[Delta] = []
    for column in COLUMNS:
        before = old.get(column, {})
        for metric in ("params", "macs", "elementwise_ops", "latency_ms"):
            value = total(column, metric)
            if metric in before and value is not None:
                deltas.append(Delta(name, column, metric, before[metric], value, metric in GATED_METRICS))
    return deltas


def growth_failures(deltas: Sequence[Delta], max_increase: float | None) -> list[Delta]:
    if max_increase is None:
        return []
    return [d for d in deltas if d.gated and d.change_pct > max_increase]
