"""The op rules: how each aten op of a forward is counted, one table keyed by op name.

An op is counted by the first of these that knows it:

1. a rule set with ``set_op_rule`` (a user's rule wins over everything below, decomposition included);
2. PyTorch's own ``FlopCounterMode`` formula, halved, for ops that multiply-accumulate (``linear``,
   ``mm``, ``addmm``, ``bmm``, ``convolution``, attention...); the bias add of ``addmm``, ``baddbmm`` and
   a conv with bias is an other op per output element;
3. PyTorch's own ``pointwise`` tag on the op: one other op per output element, except for the copies the table
   lists as data movement (``clone``, ``_to_copy``);
4. this module's table: activations PyTorch does not tag (one op per output element), norms (two per
   output element), reductions, pooling and softmax (one per input element read), data movement and
   creation (no arithmetic), and metadata queries (not ops at all);
5. a view: data movement;
6. none of these: listed as uncounted, never silently 0.

Names are normalised once: the overload is dropped (``aten::add.Tensor`` is ``aten::add``) and an
in-place variant is its base op (``aten::hardswish_`` is ``aten::hardswish``).

Add or override a rule as fvcore's ``set_op_handle`` does::

    from dsconv_cli.pt.oprules import OpCost, set_op_rule

    set_op_rule("mylib::fused_gate", lambda args, kwargs, out: OpCost(macs=0, other=2 * out.numel()))
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import torch
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry


@dataclass(frozen=True, slots=True)
class OpCost:
    """What one call of an op costs: multiply-accumulates and other (elementwise) ops."""

    macs: int = 0
    other: int = 0


Rule = Callable[[tuple[Any, ...], dict[str, Any], Any], OpCost]  # (args, kwargs, output) -> cost


class Fixed(StrEnum):
    """Ops with no arithmetic: counted as data movement, or not seen at all."""

    MOVE = "data movement"
    SKIP = "metadata"


def numel(value: Any) -> int:
    """Elements of every tensor in ``value`` (a tensor, or a tuple, list or dict of them)."""
    leaves, _ = tree_flatten(value)
    return sum(leaf.numel() for leaf in leaves if isinstance(leaf, torch.Tensor))


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, tuple) else value


def per_output(n: int) -> Rule:
    """``n`` other ops per element of the (first) output."""
    return lambda args, kwargs, out: OpCost(other=n * numel(_first(out)))


def per_input(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
    """One other op per element of the first input read (reductions, pooling, softmax)."""
    return OpCost(other=numel(args[0]))


ACTIVATIONS = (
    "aten::glu",
    "aten::hardswish",
    "aten::log_sigmoid_forward",
)  # activations PyTorch does not tag pointwise: one op per output element, as every activation
NORMS = (
    "aten::_native_batch_norm_legit",
    "aten::_native_batch_norm_legit_no_training",
    "aten::native_batch_norm",
    "aten::native_group_norm",
    "aten::native_layer_norm",
)  # inference BatchNorm folds to a multiply and an add per element, as in the counting convention
PER_INPUT = (
    "aten::_adaptive_avg_pool2d",
    "aten::_adaptive_avg_pool3d",
    "aten::_log_softmax",
    "aten::_prelu_kernel",
    "aten::_safe_softmax",
    "aten::_softmax",
    "aten::adaptive_max_pool2d",
    "aten::adaptive_max_pool3d",
    "aten::amax",
    "aten::amin",
    "aten::avg_pool1d",
    "aten::avg_pool2d",
    "aten::avg_pool3d",
    "aten::cumsum",
    "aten::linalg_vector_norm",
    "aten::logsumexp",
    "aten::max",
    "aten::max_pool2d_with_indices",
    "aten::max_pool3d_with_indices",
    "aten::mean",
    "aten::min",
    "aten::norm",
    "aten::prod",
    "aten::std",
    "aten::sum",
    "aten::var",
    "aten::var_mean",
)  # reductions, pooling and softmax: one op per input element read
MOVES = (
    "aten::_to_copy",
    "aten::alias",
    "aten::arange",
    "aten::as_strided_",
    "aten::bernoulli_",
    "aten::cat",
    "aten::channel_shuffle",
    "aten::chunk",
    "aten::clone",
    "aten::constant_pad_nd",
    "aten::contiguous",
    "aten::copy_",
    "aten::detach",
    "aten::embedding",
    "aten::empty",
    "aten::empty_like",
    "aten::empty_strided",
    "aten::fill_",
    "aten::flip",
    "aten::full",
    "aten::full_like",
    "aten::gather",
    "aten::index",
    "aten::index_put_",
    "aten::index_select",
    "aten::lift_fresh",
    "aten::lift_fresh_copy",
    "aten::masked_fill",
    "aten::new_empty",
    "aten::new_full",
    "aten::new_ones",
    "aten::new_zeros",
    "aten::ones",
    "aten::ones_like",
    "aten::pixel_shuffle",
    "aten::reflection_pad1d",
    "aten::reflection_pad2d",
    "aten::reflection_pad3d",
    "aten::repeat",
    "aten::replication_pad1d",
    "aten::replication_pad2d",
    "aten::replication_pad3d",
    "aten::resize_",
    "aten::roll",
    "aten::scalar_tensor",
    "aten::select_scatter",
    "aten::set_",
    "aten::slice_scatter",
    "aten::split",
    "aten::split_with_sizes",
    "aten::squeeze_",
    "aten::stack",
    "aten::t_",
    "aten::transpose_",
    "aten::unbind",
    "aten::unsafe_chunk",
    "aten::unsafe_split",
    "aten::unsafe_split_with_sizes",
    "aten::unsqueeze_",
    "aten::upsample_nearest2d",
    "aten::where",
    "aten::zero_",
    "aten::zeros",
    "aten::zeros_like",
    "aten::im2col",
    "aten::col2im",
    "aten::_local_scalar_dense",
    "aten::tril",
    "aten::triu",
)  # data movement and creation: no arithmetic (listed in JSON as ``data_movement``)
METADATA = (
    "aten::dim",
    "aten::is_contiguous",
    "aten::is_non_overlapping_and_dense",
    "aten::is_strides_like_format",
    "aten::numel",
    "aten::size",
    "aten::storage_offset",
    "aten::stride",
    "aten::sym_numel",
    "aten::sym_size",
    "aten::sym_storage_offset",
    "aten::sym_stride",
    "prim::layout",
)  # queries of sizes and layout: not ops


def base_name(name: str) -> str:
    """``aten::hardswish_`` is ``aten::hardswish``: an in-place variant is counted as its base op."""
    return name[:-1] if name.endswith("_") and not name.endswith("__") else name


TABLE: dict[str, Rule | Fixed] = {
    **{base_name(name): per_output(1) for name in ACTIVATIONS},
    **{base_name(name): per_output(2) for name in NORMS},
    **dict.fromkeys(map(base_name, PER_INPUT), per_input),
    **dict.fromkeys(map(base_name, MOVES), Fixed.MOVE),
    **dict.fromkeys(map(base_name, METADATA), Fixed.SKIP),
}  # the built-in rows below PyTorch's formulas and its pointwise tag (see the module's docstring)

BIAS_ADDED = ("aten::addmm", "aten::baddbmm")  # the bias add of Linear/addmm is elementwise work, not MACs
CONVS = ("aten::convolution", "aten::_convolution", "aten::convolution_overrideable", "aten::cudnn_convolution")

_user: dict[str, Rule] = {}
_resolved: dict[Any, tuple[str, Rule | Fixed | None, bool]] = {}  # op overload -> (name, rule, user's)


def op_name(func: Any) -> str:
    """The op's table name: namespace and base name, no overload; an in-place variant is its base op."""
    if hasattr(func, "_schema"):
        return base_name(str(func._schema.name))
    return base_name(getattr(func, "_qualified_op_name", str(func)))


def set_op_rule(name: str, rule: Rule | None) -> None:
    """Count op ``name`` (``aten::gelu``, ``mylib::my_op``; in-place variants follow) with ``rule``, or
    with the built-in rules again when ``rule`` is None."""
    name = base_name(name)
    if rule is None:
        _user.pop(name, None)
    else:
        _user[name] = rule
    _resolved.clear()


def _formula(packet: Any) -> Rule:
    formula = flop_registry[packet]
    name = op_name(packet)
    bias_added = name in BIAS_ADDED
    conv = name in CONVS

    def rule(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> OpCost:
        macs = int(formula(*args, **kwargs, out_val=out)) // 2
        biased = bias_added or (conv and len(args) > 2 and args[2] is not None)
        return OpCost(macs, numel(out) if biased else 0)

    return rule


def resolve(func: Any) -> tuple[str, Rule | Fixed | None, bool]:
    """(name, rule, whether a user set it) for one op overload; None means uncounted."""
    found = _resolved.get(func)
    if found is not None:
        return found
    name = op_name(func)
    packet = getattr(func, "_overloadpacket", None)
    rule: Rule | Fixed | None
    if name in _user:
        rule = _user[name]
    elif packet in flop_registry:
        rule = _formula(packet)
    elif TABLE.get(name) is Fixed.MOVE:  # copies PyTorch tags pointwise (clone, _to_copy) move data, no arithmetic
        rule = Fixed.MOVE
    elif torch.Tag.pointwise in getattr(func, "tags", ()):
        rule = per_output(1)
    elif name in TABLE:
        rule = TABLE[name]
    elif getattr(func, "is_view", False) or name.startswith("aten::_unsafe_view"):
        rule = Fixed.MOVE
    else:
        rule = None
    found = (name, rule, name in _user)
    _resolved[func] = found
    return found


MULTIPLIES = re.compile(r"conv|matmul|linear|attention|lstm|gru|rnn|einsum|(^|_)(mm|bmm|mv|addmv|dot|vdot)$")


def multiplies(name: str) -> bool:
    """Whether an op multiplies and accumulates, by its name (``aten::_native_multi_head_attention``,
    ``aten::mkldnn_rnn_layer``, ``aten::_int_mm``): run without a rule, it makes the MAC total a lower bound."""
    return MULTIPLIES.search(name.rpartition("::")[2]) is not None


def has_formula(func: Any) -> bool:
    """Whether PyTorch's ``FlopCounterMode`` has a formula for the op (else it may be decomposed first)."""
    return getattr(func, "_overloadpacket", None) in flop_registry
