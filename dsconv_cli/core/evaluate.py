"""Config -> counted (and optionally timed) stacks -> budgets, baseline and failures.

Pure orchestration over counting and budgets; timing and cross-checks come in as callbacks so this
module never imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from dsconv_cli.core import budgets, kinds
from dsconv_cli.core.config import Config, override
from dsconv_cli.core.formatting import escape_control, point_label
from dsconv_cli.core.results import BudgetCheck, ConfigReport, Delta, ModelAnalysis, StackResult
from dsconv_cli.core.spec import DEFAULT_MAX_POINTS
from dsconv_cli.errors import ConfigError, LayerError

StackStep = Callable[[StackResult], StackResult]
CrossCheck = Callable[[StackResult], list[str]]


def count_config(
    config: Config,
    *,
    overrides: Mapping[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
) -> list[StackResult]:
    """Every sweep point of ``config`` counted; errors point at the file and line of the layer."""
    stacks = []
    shape = input_shape or config.input_shape
    for point, decls in config.points(max_points):
        if overrides:
            decls = [override(decl, dict(overrides)) for decl in decls]
        try:
            stacks.append(kinds.count_stack(config.name, decls, shape, point))
        except LayerError as error:
            where = f" at sweep point {point_label(point)}" if point else ""
            raise ConfigError(f"{config.where(error.path)}: {error}{where}") from None
    return stacks


def evaluate(
    config: Config,
    stacks: list[StackResult],
    *,
    time_stack: StackStep | None = None,
    cross_check: CrossCheck | None = None,
    baseline: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    max_increase: float | None = None,
    missing_ok: bool = False,
) -> ConfigReport:
    """Time, cross-check and hold budgets and the baseline against counted stacks."""
    if time_stack is not None:
        stacks = [time_stack(stack) for stack in stacks]
    failures: list[str] = []
    checks: list[BudgetCheck] = []
    for stack in stacks:
        found = budgets.check_budgets(stack, config.budgets)
        if stack.point:
            label = point_label(stack.point)
            found = [replace(ch, scope=f"{label}: {ch.scope}") for ch in found]
        checks.extend(found)
        if cross_check is not None:
            failures.extend(cross_check(stack))
    failures.extend(budgets.describe_failure(ch, config.name) for ch in checks if not ch.ok)
    deltas: list[Delta] = []
    if not config.sweep:
        deltas = _against_baseline(config, budgets.stack_totals(stacks[0]), baseline, max_increase, failures,
                                   missing_ok)  # fmt: skip
    return ConfigReport(
        name=escape_control(config.name),  # a file's name is the PR's to choose: printed as plain text
        path=escape_control(config.path),
        stacks=tuple(stacks),
        sweep=dict(config.sweep),
        budgets=tuple(checks),
        deltas=tuple(deltas),
        failures=tuple(failures),
    )


def evaluate_model(
    config: Config,
    analysis: ModelAnalysis,
    *,
    baseline: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    max_increase: float | None = None,
    missing_ok: bool = False,
) -> ConfigReport:
    """Budgets and the baseline against a model config's analysis (standard: the model as it is,
    separable: with the config's conversion applied)."""
    total = budgets.model_totals(analysis)
    checks = budgets.check_totals(total, config.budgets) + budgets.check_fidelity(analysis, config.budgets)
    failures = [budgets.describe_failure(ch, config.name) for ch in checks if not ch.ok]
    failures += [f"{config.name}: cross-check failed: {what}: dsconv {ours:,} vs {theirs:,}"
                 for what, ours, theirs in analysis.failed_checks]  # fmt: skip
    deltas = _against_baseline(config, total, baseline, max_increase, failures, missing_ok)
    return ConfigReport(escape_control(config.name), escape_control(config.path), (), budgets=tuple(checks),
                        deltas=tuple(deltas), failures=tuple(failures), model=analysis)  # fmt: skip


def _against_baseline(
    config: Config,
    total: budgets.Totals,
    baseline: Mapping[str, Mapping[str, Mapping[str, float]]] | None,
    max_increase: float | None,
    failures: list[str],
    missing_ok: bool = False,
) -> list[Delta]:
    """Deltas against the baseline's totals for this config; growth over ``max_increase`` is a failure, and
    so is a baseline with no entry for it (nothing compared is no pass) unless ``missing_ok``."""
    old = baseline.get(config.name) if baseline is not None else None
    if old is None:
        if baseline is not None and max_increase is not None and not missing_ok:
            failures.append(f"{config.name}: the baseline has no totals for this config, so --max-increase "
                            f"{max_increase:g}% compared nothing; pass --baseline-missing ok to let a new config "
                            "pass")  # fmt: skip
        return []
    deltas = budgets.compare_baseline(config.name, total, old)
    for d in budgets.growth_failures(deltas, max_increase):
        failures.append(
            f"{config.name}: total {d.column} {d.metric} grew {d.change_pct:+.1f}% "
            f"({int(d.old):,} -> {int(d.new):,}), over --max-increase {max_increase:g}%"
        )
    return deltas
