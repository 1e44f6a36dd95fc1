"""The op rules: one table keyed by aten op name, one normalisation, PyTorch's tags, and a public hook."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dsconv_cli.api import analyze
from dsconv_cli.pt import oprules
from dsconv_cli.pt.oprules import TABLE, Fixed, OpCost, op_name, resolve, set_op_rule

aten = torch.ops.aten


def test_every_row_names_a_real_op_by_its_base_name() -> None:
    for name in TABLE:
        namespace, _, base = name.partition("::")
        assert namespace in ("aten", "prim") and not base.endswith("_"), name
        ops = getattr(torch.ops, namespace)
        assert any(hasattr(ops, v) for v in (base, base + "_")), f"{name}: no such op"


@pytest.mark.parametrize(
    ("op", "name"),
    [(aten.hardswish_.default, "aten::hardswish"), (aten.add.Tensor, "aten::add"), (aten.relu_.default, "aten::relu"),
     (aten._safe_softmax.default, "aten::_safe_softmax"), (aten.im2col.default, "aten::im2col")],
)  # fmt: skip
def test_overloads_and_in_place_variants_are_their_base_op(op: object, name: str) -> None:
    assert op_name(op) == name


def test_each_kind_of_rule_resolves() -> None:
    assert resolve(aten.addmm.default)[1] not in (None, Fixed.MOVE, Fixed.SKIP)  # PyTorch's formula
    assert resolve(aten.hardswish_.default)[1] is not None  # in-place: the base op's row
    assert resolve(aten.im2col.default)[1] is Fixed.MOVE
    assert resolve(aten.is_contiguous.default)[1] is Fixed.SKIP
    assert resolve(aten.mul.Tensor)[1] is not None  # tagged pointwise by PyTorch
    assert resolve(aten.linalg_qr.default)[1] is None  # no rule: listed as uncounted


class Gelu(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(x) + 0


def test_set_op_rule_adds_and_restores_a_rule() -> None:
    shape = (2, 3, 4)
    before = analyze(Gelu(), shape).totals.other_ops
    try:
        set_op_rule("aten::gelu", lambda args, kwargs, out: OpCost(macs=5, other=7 * out.numel()))
        ruled = analyze(Gelu(), shape).totals
        assert ruled.macs == 5 and ruled.other_ops == 7 * 24 + 24  # the rule, then the add (pointwise)
    finally:
        set_op_rule("aten::gelu", None)
    assert analyze(Gelu(), shape).totals.other_ops == before
    assert not oprules._user


def test_in_place_activations_are_counted_like_their_out_of_place_form() -> None:
    in_place = analyze(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Hardswish(inplace=True)), (1, 3, 8, 8)).totals
    plain = analyze(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Hardswish()), (1, 3, 8, 8)).totals
    assert in_place.other_ops == plain.other_ops > 0 and not in_place.uncounted
