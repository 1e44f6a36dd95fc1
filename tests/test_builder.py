"""The built modules are the layers the counting describes."""

from __future__ import annotations

import torch
from torch import nn

from dsconv_cli.core.spec import resolve_spec
from dsconv_cli.pt.builder import build_variant


def test_classic_placement_order() -> None:
    spec = resolve_spec(rank=2, in_channels=16, out_channels=32, norm="batch", act="prelu")
    model = build_variant(spec.separable())
    assert list(dict(model.named_children())) == ["depthwise", "pointwise"]
    assert isinstance(model.depthwise, nn.Conv2d) and model.depthwise.groups == 16
    kinds = [type(m) for m in model.pointwise]
    assert kinds == [nn.Conv2d, nn.BatchNorm2d, nn.PReLU]
    assert model.pointwise[2].num_parameters == 32


def test_mobilenet_placement_norms_each_stage() -> None:
    spec = resolve_spec(rank=1, in_channels=8, out_channels=8, norm="batch", act="relu6", placement="mobilenet")
    model = build_variant(spec.separable())
    assert [type(m) for m in model.depthwise] == [nn.Conv1d, nn.BatchNorm1d, nn.ReLU6]
    assert [type(m) for m in model.pointwise] == [nn.Conv1d, nn.BatchNorm1d, nn.ReLU6]


def test_transposed_depthwise_stage() -> None:
    spec = resolve_spec(rank=2, in_channels=16, out_channels=16, kernel_size=(1, 3), stride=(1, 2),
                        padding=(0, 1), output_padding=(0, 1), transposed=True)  # fmt: skip
    model = build_variant(spec.separable())
    assert isinstance(model.depthwise, nn.ConvTranspose2d) and model.depthwise.groups == 16
    assert isinstance(model.pointwise, nn.Conv2d)
    assert model(torch.zeros(1, 16, 50, 65)).shape == (1, 16, 50, 130)


def test_same_padding_reaches_pytorch_as_same() -> None:
    spec = resolve_spec(rank=2, in_channels=4, out_channels=4, kernel_size=(2, 4), padding="same")
    assert build_variant(spec.standard()).standard.padding == "same"
