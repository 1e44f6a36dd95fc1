"""Evaluating configs: counting every point, then budgets and baselines."""

from __future__ import annotations

from cases import SEED_TEXT

from dsconv_cli.core import config
from dsconv_cli.core.evaluate import count_config, evaluate


def test_evaluate_collects_every_failure() -> None:
    cfg = config.parse(SEED_TEXT + "budgets:\n  separable: {params: 600}\n  min_reduction: {macs: 99}\n", "seed.yaml")
    result = evaluate(cfg, count_config(cfg))
    assert not result.ok
    assert result.failures == (
        "seed: total separable params 656 exceeds the limit 600 by 56 (9.3%)",
        "seed: total reduction macs: 85.8% fewer than standard, below the minimum 99% by 13.2 points",
    )
