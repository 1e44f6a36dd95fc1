"""The runner: count, then cross-check and time as asked; refusals before work; progress by callback."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from dsconv_cli.core.results import ITEMS
from dsconv_cli.core.spec import DType
from dsconv_cli.errors import SpecError
from dsconv_cli.run import compare as run_compare
from dsconv_cli.run import options as run_options


def test_compare_layer_counts_without_timing_or_checks() -> None:
    c = run_compare.compare_layer({"in_channels": 16, "out_channels": 32}, (1, 16, 50, 129), run_options.RunOptions())
    assert (c.standard.params, c.separable.params) == (4608, 656)
    assert c.timings == () and c.checks == ()


def test_verify_attaches_checks_and_a_wrong_one_is_a_failure_line() -> None:
    from dataclasses import replace

    c = run_compare.compare_layer(
        {"in_channels": 4, "out_channels": 8}, (1, 4, 9, 9), run_options.RunOptions(verify=True)
    )
    assert c.checks and run_compare.check_failures(c) is None
    wrong = replace(c, checks=(replace(c.checks[0], reference=-1),))
    line = run_compare.check_failures(wrong)
    assert line is not None and line.startswith("cross-check failed: 1 disagreement(s)")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (run_options.RunOptions(min_time=0), "min_time"),
        (run_options.RunOptions(threads=0), "threads"),
        (run_options.RunOptions(max_points=0), "max_points"),
        (run_options.RunOptions(max_increase=5), "max_increase"),  # no baseline
    ],
)
def test_bad_options_are_refused_before_work(options: run_options.RunOptions, field: str) -> None:
    with pytest.raises(SpecError) as caught:
        options.check()
    assert caught.value.field == field


def test_timing_axes_expand_to_every_combination() -> None:
    axes = run_options.TimingAxes((1, 8), (DType.FLOAT32, DType.BFLOAT16), True, False, False, True)
    cases = axes.cases(default_batch=1)
    assert len(cases) == 2 * 2 * 2
    assert len({(c.batch, c.dtype, c.channels_last) for c in cases}) == len(cases)
    with pytest.raises(SpecError, match="takes one value with --config"):
        axes.single_for_configs()


def test_timing_reports_each_case_through_the_progress_callback() -> None:
    seen: list[str] = []
    totals: list[int] = []

    @contextmanager
    def progress(total: int) -> Iterator[run_options.Step]:
        totals.append(total)
        yield seen.append

    options = run_options.RunOptions(bench=True, threads=1, min_time=0.01, rounds=2, progress=progress)
    axes = run_options.TimingAxes((1, 2), (DType.FLOAT32,), False, False, False, False)
    c = run_compare.compare_layer({"in_channels": 2, "out_channels": 4}, (1, 2, 6, 6), options, axes)
    assert totals == [2 * (len(ITEMS) + 2)]  # each case: every item prepared, then each round
    assert len(seen) == totals[0]
    assert [row.case.batch for row in c.timings] == [1, 2]
    assert all(math.isfinite(row.speedup or math.nan) for row in c.timings)
