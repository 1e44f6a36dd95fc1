"""The cross-check agrees on the reference cases and catches a wrong count."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cases import STANDARD_CASES, Case
from hypothesis import given, settings
from hypothesis import strategies as st

from dsconv_cli.core import config, counting
from dsconv_cli.core.evaluate import count_config
from dsconv_cli.core.spec import resolve_spec
from dsconv_cli.pt.crosscheck import FLOP_COUNTER, FVCORE, verify, verify_stack


@pytest.mark.parametrize("case", STANDARD_CASES, ids=lambda c: c.name)
def test_reference_cases_agree_with_pytorch_and_fvcore(case: Case) -> None:
    spec = resolve_spec(rank=len(case.input_shape) - 2, **case.layer)
    checks = verify(counting.compare(spec, case.input_shape))
    assert all(ch.ok for ch in checks), [ch for ch in checks if not ch.ok]
    standard_macs = {ch.source: ch.reference for ch in checks if ch.stage == "standard" and ch.quantity == "macs"}
    assert standard_macs[FLOP_COUNTER] == case.macs
    # fvcore gets 'same' wrong (0 MACs), so the check is skipped there, never silently passed
    assert standard_macs[FVCORE] == (None if spec.padding == "same" else case.macs)


def test_a_wrong_count_is_reported() -> None:
    spec = resolve_spec(rank=2, in_channels=16, out_channels=32)
    c = counting.compare(spec, (1, 16, 50, 129))
    wrong_stage = replace(c.standard.stages[0], macs=c.standard.macs + 1, params=1)
    wrong = replace(c, standard=replace(c.standard, stages=(wrong_stage,)))
    failed = {(ch.stage, ch.quantity, ch.source) for ch in verify(wrong) if not ch.ok}
    assert failed == {
        ("standard", "macs", FLOP_COUNTER),
        ("standard", "macs", FVCORE),
        ("standard", "params", "nn.Module numel"),
    }


def test_fvcore_is_skipped_for_inputs_too_large_to_trace() -> None:
    spec = resolve_spec(rank=2, in_channels=16, out_channels=32)
    checks = verify(counting.compare(spec, (1, 16, 50, 129)), fvcore_max_elements=10)
    fvcore = [ch for ch in checks if ch.source == FVCORE]
    assert fvcore and all(ch.reference is None and "too large" in ch.note for ch in fvcore)


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.sampled_from([2, 4, 6]), min_size=1, max_size=3),
    kinds=st.lists(st.sampled_from(["compare", "standard", "separable"]), min_size=3, max_size=3),
    stride=st.sampled_from([1, 2]),
    head=st.booleans(),
)
def test_random_stacks_agree_with_pytorch(widths: list[int], kinds: list[str], stride: int, head: bool) -> None:
    """Whole stacks (linear and pooling layers included) count as their built modules do."""
    lines = [f"  - {{kind: {kind}, out_channels: {w}, stride: {stride}, norm: batch, act: relu}}"
             for w, kind in zip(widths, kinds, strict=False)]  # fmt: skip
    if head:
        lines += ["  - {kind: global_avg_pool}", "  - {kind: linear, out_features: 3, bias: true}"]
    text = "input_shape: [2, 3, 9, 9]\nlayers:\n" + "\n".join(lines) + "\n"
    (stack,) = count_config(config.parse(text, "c.yaml"))
    checks = verify_stack(stack)
    assert checks and all(ch.ok for ch in checks), [ch for ch in checks if not ch.ok]
    assert {ch.quantity for ch in checks} >= {"params", "macs", "output_shape"}
