"""The cross-check agrees on the reference cases and catches a wrong count."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cases import STANDARD_CASES, Case

from dsconv_cli import counting
from dsconv_cli.crosscheck import FLOP_COUNTER, FVCORE, verify
from dsconv_cli.spec import resolve_spec


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
