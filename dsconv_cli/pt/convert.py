"""Model surgery: each chosen conv replaced, at every path that holds it, by its depthwise-separable pair."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from torch import nn

from dsconv_cli.core.results import Candidate
from dsconv_cli.pt.trace import get_module


def convert(model: nn.Module, chosen: Sequence[Candidate]) -> nn.Module:
    """A copy of ``model`` with each chosen conv replaced, at every path that holds it, by depthwise → pointwise."""
    converted = copy.deepcopy(model)
    replaced: dict[int, nn.Module] = {}
    targets = {id(get_module(converted, c.path)) for c in chosen}  # a shared conv is replaced at every path holding it
    for path, module in list(converted.named_modules(remove_duplicate=False)):
        if not path or id(module) not in targets:
            continue
        if id(module) not in replaced:
            replaced[id(module)] = _separable_module(module)
        parent_path, _, name = path.rpartition(".")
        setattr(get_module(converted, parent_path), name, replaced[id(module)])
    return converted


def _separable_module(conv: nn.Module) -> nn.Sequential:
    assert isinstance(conv, nn.modules.conv._ConvNd)
    rank = len(conv.kernel_size)
    weight = conv.weight
    factory: dict[str, Any] = {"device": weight.device, "dtype": weight.dtype}
    plain = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[rank - 1]
    common: dict[str, Any] = {
        "kernel_size": conv.kernel_size, "stride": conv.stride, "padding": conv.padding, "dilation": conv.dilation,
        "groups": conv.in_channels, "bias": False, "padding_mode": conv.padding_mode,
    }  # fmt: skip
    if isinstance(conv, nn.modules.conv._ConvTransposeNd):
        transposed = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[rank - 1]
        common["output_padding"] = conv.output_padding
        depthwise: nn.Module = transposed(conv.in_channels, conv.in_channels, **common, **factory)
    else:
        depthwise = plain(conv.in_channels, conv.in_channels, **common, **factory)
    pointwise = plain(conv.in_channels, conv.out_channels, 1, bias=conv.bias is not None, **factory)
    return nn.Sequential(depthwise, pointwise)
