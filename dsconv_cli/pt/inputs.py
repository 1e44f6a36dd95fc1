"""A model's forward inputs made real, and the tensors of inputs and outputs named by where they sit.

Made-up inputs are zeros (a float input in the run's dtype unless given), token ids below ``vocab`` where given
(else zeros, a valid index for any embedding) and masks all true; ``example`` inputs are the exact tensors of a
``.pt`` file (or the objects themselves, from the API), floats cast to the run's dtype.
"""

from __future__ import annotations

import dataclasses
import inspect
import pickle
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils._pytree import tree_map

from dsconv_cli.core.results import TensorLeaf
from dsconv_cli.core.spec import DType, InputDType, ModelInputs, TensorInput
from dsconv_cli.errors import DsconvError, SpecError
from dsconv_cli.pt.builder import torch_dtype

Call = tuple[tuple[Any, ...], dict[str, Any]]  # the positional and keyword inputs of one forward

_SEED = 0  # made-up token ids are the same on every run
_MAX_DEPTH = 16  # nesting followed into outputs


def torch_input_dtype(dtype: InputDType) -> torch.dtype:
    """The torch dtype of an input dtype choice."""
    found = getattr(torch, dtype.value)
    assert isinstance(found, torch.dtype)
    return found


def make_inputs(spec: ModelInputs, device: str, dtype: DType) -> Call:
    """The forward's inputs on ``device``: made up from shapes and dtypes, or the exact example inputs."""
    if spec.example is not None:
        args, kwargs = example_call(spec.example)
        dt = torch_dtype(dtype)

        def place(t: Any) -> Any:
            if not isinstance(t, torch.Tensor):
                return t
            return t.to(device, dt) if t.is_floating_point() else t.to(device)

        return tuple(tree_map(place, list(args))), dict(tree_map(place, kwargs))
    generator = torch.Generator().manual_seed(_SEED)
    args = tuple(_made_up(t, device, dtype, spec.vocab, generator) for t in spec.positional)
    kwargs = {name: _made_up(t, device, dtype, spec.vocab, generator) for name, t in spec.keyword}
    return args, kwargs


def _made_up(t: TensorInput, device: str, dtype: DType, vocab: int | None, generator: torch.Generator) -> torch.Tensor:
    dt = torch_dtype(dtype) if t.dtype is None else torch_input_dtype(t.dtype)
    if t.dtype is not None and t.dtype.integral and vocab is not None:
        ids = torch.randint(0, vocab, t.shape, generator=generator, dtype=dt)  # drawn on the CPU: same on any device
        return ids.to(device)
    if t.dtype is InputDType.BOOL:
        return torch.ones(t.shape, dtype=dt, device=device)
    return torch.zeros(t.shape, dtype=dt, device=device)


def example_call(value: Any) -> Call:
    """Example inputs as (positional, keyword): a tensor (one input), a tuple or list (positional inputs), a dict
    (keyword inputs; ``{"args": [...], "kwargs": {...}}`` for both), or a ``.pt`` file holding one of these."""
    source = str(value) if isinstance(value, str | Path) else "example_inputs"
    if isinstance(value, str | Path):
        value = load_example(Path(value))
    if isinstance(value, torch.Tensor):
        return (value,), {}
    if isinstance(value, tuple | list):
        return tuple(value), {}
    if isinstance(value, Mapping) and value and all(isinstance(k, str) for k in value):
        if set(value) <= {"args", "kwargs"}:
            args, kwargs = value.get("args", ()), value.get("kwargs", {})
            if isinstance(args, tuple | list) and isinstance(kwargs, Mapping):
                return tuple(args), dict(kwargs)
        return (), dict(value)
    raise SpecError("example_inputs", source, f"holds a {type(value).__name__}; expected a tensor, a tuple or list "
                    "(positional inputs) or a dict with string keys (keyword inputs)")  # fmt: skip


def load_example(file: Path) -> Any:
    """What a ``.pt`` file of inputs holds (``weights_only``: tensors and plain containers, no code run)."""
    if not file.is_file():
        raise SpecError("example_inputs", str(file), "no such file" if not file.exists() else "is not a file")
    return read_torch_file(file, lambda reason: SpecError("example_inputs", str(file), reason))


def read_torch_file(file: Path, fail: Callable[[str], DsconvError]) -> Any:
    """``torch.load(file, weights_only=True)``: tensors, state dicts and plain containers, no code run. Every
    failure is ``fail(reason)``, one line of dsconv's own (never PyTorch's advice to load without
    ``weights_only``): the file is the user's input, whatever is wrong with it."""
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except DsconvError:
        raise
    except MemoryError:
        raise fail("is too large to load into this machine's memory") from None
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if found is not None:
            raise fail(f"holds a pickled {found.group(1)}, which only weights_only=False loads, and that can run "
                       "code from the file, which dsconv never does; save tensors or a state dict instead, e.g. "
                       "torch.save(model.state_dict(), PATH)") from None  # fmt: skip
        raise fail("is not a file torch.load reads (not a PyTorch checkpoint or tensor file)") from None
    except Exception:  # a text file, a truncated file: torch.load's parsers fail in many ways
        raise fail("is not a file torch.load reads (not a PyTorch checkpoint or tensor file)") from None


def tensor_leaves(value: Any, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """Every tensor in ``value`` (tensors, tuples, lists, dicts, named tuples, dataclasses and dataclass-like model
    outputs), each named by its keys and indices joined with dots."""
    found: list[tuple[str, torch.Tensor]] = []
    _walk(value, prefix, found, 0, set())
    return found


def _walk(value: Any, name: str, found: list[tuple[str, torch.Tensor]], depth: int, seen: set[int]) -> None:
    if isinstance(value, torch.Tensor):
        found.append((name, value))
        return
    if depth > _MAX_DEPTH or id(value) in seen:
        return
    items: list[tuple[str, Any]]
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
        items = [(str(k), getattr(value, k)) for k in value._fields]
    elif isinstance(value, tuple | list):
        items = [(str(i), v) for i, v in enumerate(value)]
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    else:
        return
    seen.add(id(value))
    for key, item in items:
        _walk(item, f"{name}.{key}" if name else key, found, depth + 1, seen)


def leaves_of(value: Any, prefix: str = "") -> tuple[TensorLeaf, ...]:
    """``tensor_leaves`` as records: name, shape and dtype of each."""
    return tuple(
        TensorLeaf(n, tuple(t.shape), str(t.dtype).removeprefix("torch.")) for n, t in tensor_leaves(value, prefix)
    )


def input_leaves(model: nn.Module, call: Call) -> tuple[TensorLeaf, ...]:
    """The input tensors, positional ones named by the forward's parameters (their index where it takes ``*args``)."""
    args, kwargs = call
    names = [str(i) for i in range(len(args))]
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names[: len(positional)] = positional[: len(args)]
    found: list[TensorLeaf] = []
    for name, value in [*zip(names, args, strict=True), *kwargs.items()]:
        found.extend(leaves_of(value, name))
    return tuple(found)


def input_bytes(call: Call) -> int:
    """Bytes of every input tensor."""
    return sum(t.numel() * t.element_size() for _, t in tensor_leaves([call[0], call[1]]))


def probe_inputs(spec: ModelInputs, dtype: DType, seed: int = 0) -> Call:
    """Inputs to measure a conversion on, on the CPU: the example inputs, else random normal floats, token ids
    below ``vocab`` (zeros without it) and masks all true."""
    if spec.example is not None:
        return make_inputs(spec, "cpu", dtype)
    generator = torch.Generator().manual_seed(seed)

    def probe(t: TensorInput) -> torch.Tensor:
        if t.dtype is None or t.dtype.value.startswith(("float", "bfloat")):
            dt = torch_dtype(dtype) if t.dtype is None else torch_input_dtype(t.dtype)
            return torch.randn(t.shape, generator=generator, dtype=dt)
        return _made_up(t, "cpu", dtype, spec.vocab, generator)

    return tuple(probe(t) for t in spec.positional), {name: probe(t) for name, t in spec.keyword}


def as_positional(model: nn.Module, call: Call) -> tuple[Any, ...] | None:
    """The call with its keyword inputs moved to their places among the forward's positional parameters (the
    defaults filling gaps), or None where a keyword has no place."""
    args, kwargs = call
    if not kwargs:
        return args
    try:
        parameters = list(inspect.signature(model.forward).parameters.values())
    except (TypeError, ValueError):
        return None
    placed, left = list(args), dict(kwargs)
    for p in parameters[len(args) :]:
        if not left or p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            break
        if p.name in left:
            placed.append(left.pop(p.name))
        elif p.default is not p.empty:
            placed.append(p.default)
        else:
            return None
    return tuple(placed) if not left else None
