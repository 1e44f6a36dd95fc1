"""Budgets and baselines over counted stacks."""

from __future__ import annotations

import pytest
from cases import SEED_TEXT

from dsconv_cli.core import budgets, config
from dsconv_cli.core.evaluate import count_config
from dsconv_cli.core.spec import Budgets
from dsconv_cli.errors import ConfigError


def _stack():  # type: ignore[no-untyped-def]
    return count_config(config.parse(SEED_TEXT, "seed.yaml"))[0]


def test_budgets_pass_and_fail_with_margins() -> None:
    checks = budgets.check_budgets(
        _stack(),
        Budgets(
            totals={"separable": {"params": 700, "macs": 4_000_000}},
            per_layer={"standard": {"params": 5_000}},
            min_reduction={"params": 90},
        ),
    )
    by_name = {(c.scope, c.column, c.metric): c for c in checks}
    assert by_name[("total", "separable", "params")].ok
    assert by_name[("total", "separable", "params")].margin == 700 - 656
    macs = by_name[("total", "separable", "macs")]
    assert not macs.ok and macs.margin == 4_000_000 - 4_231_200
    assert by_name[("conv", "standard", "params")].ok  # 4,608 <= 5,000
    reduction = by_name[("total", "reduction", "params")]
    assert not reduction.ok and reduction.actual == pytest.approx((1 - 656 / 4608) * 100)


def test_failure_lines_say_which_limit_and_by_how_much() -> None:
    stack = _stack()
    (over,) = budgets.check_budgets(stack, Budgets(totals={"separable": {"macs": 4_000_000}}))
    assert budgets.describe_failure(over, "seed") == (
        "seed: total separable macs 4,231,200 exceeds the limit 4,000,000 by 231,200 (5.8%)"
    )
    (short,) = budgets.check_budgets(stack, Budgets(min_reduction={"macs": 90}))
    assert budgets.describe_failure(short, "seed") == (
        "seed: total reduction macs: 85.8% fewer than standard, below the minimum 90% by 4.2 points"
    )


def test_latency_budget_without_timing_is_skipped_not_failed() -> None:
    (check,) = budgets.check_budgets(_stack(), Budgets(totals={"standard": {"latency_ms": 0.001}}))
    assert check.actual is None and check.ok and check.margin is None


def test_baseline_growth_fails_over_max_increase() -> None:
    stack = _stack()
    old = {
        "standard": {"params": 4_608.0, "macs": 29_721_600.0},
        "separable": {"params": 500.0, "macs": 4_231_200.0},
    }
    deltas = budgets.compare_baseline("seed", budgets.stack_totals(stack), old)
    sep_params = next(d for d in deltas if d.column == "separable" and d.metric == "params")
    assert sep_params.change_pct == pytest.approx((656 - 500) / 500 * 100)  # +31.2%
    assert [(d.column, d.metric) for d in budgets.growth_failures(deltas, 10)] == [("separable", "params")]
    assert budgets.growth_failures(deltas, 50) == []
    assert budgets.growth_failures(deltas, None) == []


def test_baseline_document_must_be_a_config_report() -> None:
    with pytest.raises(ConfigError, match="not a dsconv JSON report"):
        budgets.baseline_totals({"comparisons": []}, "old.json")
    with pytest.raises(ConfigError, match=r"config x: malformed totals \(missing 'totals'\)"):
        budgets.baseline_totals({"schema_version": 2, "configs": [{"name": "x", "points": [{}]}]}, "old.json")
    column = {"params": "abc", "macs": 1, "elementwise_ops": 0}
    bad = {
        "schema_version": 2,
        "configs": [{"name": "x", "points": [{"totals": {"standard": column, "separable": column}}]}],
    }
    with pytest.raises(ConfigError, match=r"config x: malformed totals \('abc' is not a number\)"):
        budgets.baseline_totals(bad, "old.json")
