"""A model target: ``package.module:attr`` or ``path/file.py:attr`` imported, then built on a device."""

from __future__ import annotations

import copy
import importlib
import importlib.util
import math
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dsconv_cli.core.spec import DType
from dsconv_cli.errors import BuildError, MemoryLimitError, TargetError
from dsconv_cli.pt.builder import torch_dtype
from dsconv_cli.pt.trace import unique_params


def resolve_target(target: str) -> Any:
    """Import ``package.module:attr`` or ``path/file.py:attr`` (once) and return ``attr``."""
    module_name, sep, attr = target.rpartition(":")
    if not sep or not module_name or not attr:
        raise TargetError(f"{target}: expected MODULE:ATTR or FILE.py:ATTR, e.g. torchvision.models:mobilenet_v2")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise TargetError(f"{target}: no such file {module_name}")
            spec = importlib.util.spec_from_file_location(f"dsconv_target_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # as importlib's recipe: a dataclass in the file looks its module up
            LOADED[spec.name] = path.stem  # how the user's own code imports it (see ``PlainNamePickler``)
            folder = str(path.resolve().parent)
            sys.path.insert(0, folder)  # the file's own imports of its neighbours
            try:
                spec.loader.exec_module(module)
            finally:
                sys.path.remove(folder)
        else:
            module = importlib.import_module(module_name)
    except TargetError:
        raise
    except ModuleNotFoundError as exc:
        raise TargetError(f"{target}: module {exc.name or module_name} not found (is it installed?)") from exc
    except Exception as exc:  # the user's module raising on import
        raise TargetError(f"{target}: importing {module_name} raised {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, attr):
        public = sorted(n for n in vars(module) if not n.startswith("_"))[:8]
        raise TargetError(f"{target}: {module_name} has no attribute {attr!r} (it has {', '.join(public)}, ...)")
    found = getattr(module, attr)
    if not isinstance(found, nn.Module) and not callable(found):
        raise TargetError(f"{target}: {attr} is a {type(found).__name__}, not an nn.Module, a subclass or a factory")
    return found


LOADED: dict[str, str] = {}  # model files imported under a name of dsconv's own -> their plain module name


class PlainNamePickler(pickle.Pickler):
    """Pickles the classes of a model file by the plain module name the user's own code imports them by
    (``net`` for ``path/net.py``), however dsconv imported the file, so a saved model loads with a plain
    ``torch.load(PATH, weights_only=False)`` where ``net`` imports."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type) and obj.__module__ in LOADED:
            return getattr, (_Module(LOADED[obj.__module__]), obj.__qualname__)
        if isinstance(obj, _Module):
            return importlib.import_module, (obj.name,)
        return NotImplemented


@dataclass(frozen=True)
class _Module:
    """A module named in a pickle: unpickled as ``importlib.import_module(name)``."""

    name: str


class plain_pickle:  # noqa: N801 (stands in for the ``pickle`` module that ``torch.save`` takes)
    """``torch.save(..., pickle_module=plain_pickle)``: the standard pickle, with model-file classes named
    plainly."""

    Pickler = PlainNamePickler
    __name__ = "pickle"


def build_target(found: Any, target: str, kwargs: dict[str, Any] | None, device: str) -> nn.Module:
    """The model ``found`` names: the instance itself, or the class or factory called under ``device``."""
    if isinstance(found, nn.Module):
        if kwargs:
            raise TargetError(f"{target}: is a module instance; --kwargs applies to a class or factory only")
        return found
    attr = target.rpartition(":")[2]
    try:
        with torch.device(device):
            built = found(**(kwargs or {}))
    except Exception as exc:
        raise BuildError(f"{target}: {attr}(**{kwargs or {}}) raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(built, nn.Module):
        raise TargetError(f"{target}: {attr}(...) returned a {type(built).__name__}, not an nn.Module")
    return built


def load_target(target: str, kwargs: dict[str, Any] | None = None, device: str = "cpu") -> nn.Module:
    """``package.module:attr`` or ``path/file.py:attr``: an ``nn.Module`` instance, subclass or factory."""
    return build_target(resolve_target(target), target, kwargs, device)


def build_for_counting(found: Any, target: str, kwargs: dict[str, Any] | None, notes: list[str]) -> nn.Module:
    """Built under the meta device (no weight memory); on the CPU where the constructor needs real tensors."""
    try:
        return build_target(found, target, kwargs, "meta")
    except BuildError:
        notes.append("built on the CPU: the model's constructor does not run on the meta device")
        return build_target(found, target, kwargs, "cpu")


def place(model: nn.Module, notes: list[str]) -> tuple[nn.Module, str]:
    """A copy of the model on the meta device where it can go there; a CUDA model stays where it is."""
    device = _weights_device(model)
    if device != "cpu":  # built on meta already, or a CUDA model
        return model, device
    try:
        return meta_copy(model), "meta"  # a copy: the caller's model keeps its weights
    except Exception as exc:  # a module that cannot live on meta
        notes.append(f"counted on the CPU: the model does not move to the meta device ({type(exc).__name__})")
        return model, "cpu"


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` on the meta device, made without copying a weight (``.to("meta")`` of a deep copy would
    hold every weight twice first, and would untie a parameter shared by two modules: each gets its own)."""
    memo: dict[int, Any] = {}
    for p in model.parameters():  # each once, however many modules hold it: shared on the copy too
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    for b in model.buffers():
        memo[id(b)] = torch.empty_like(b, device="meta")
    return copy.deepcopy(model, memo)


def _weights_device(model: nn.Module) -> str:
    first = next(iter(model.parameters()), None)
    return first.device.type if first is not None else "cpu"


def build_on_cpu(
    found: Any, target: str, kwargs: dict[str, Any] | None, counted: nn.Module, shapes: Sequence[Sequence[int]],
    dtype: DType, max_memory: int, why: str,
) -> nn.Module:  # fmt: skip
    """The model built with real weights on the CPU (bounded by ``max_memory``: weights and inputs, twice over for
    a converted copy beside it); ``why`` says what needs them."""
    dt = torch_dtype(dtype)
    needed = 2 * (unique_params(counted) + sum(math.prod(s) for s in shapes)) * dt.itemsize
    if needed > max_memory:
        raise MemoryLimitError(f"--max-memory {max_memory:,} B: {why} needs the model's weights on the CPU, about "
                               f"{needed:,} B with its converted copy; raise --max-memory")  # fmt: skip
    with torch.random.fork_rng(devices=[]):  # fresh weights the same on every run, the caller's RNG untouched
        torch.manual_seed(0)
        return build_target(found, target, kwargs, "cpu").to(dtype=dt).eval()


def materialize(
    found: Any, target: str, kwargs: dict[str, Any] | None, counted: nn.Module, shapes: Sequence[Sequence[int]],
    dtype: DType, max_memory: int, notes: list[str],
) -> tuple[nn.Module, str]:  # fmt: skip
    """The model with real weights on the CPU, for forwards that need values (bounded by ``max_memory``)."""
    dt = torch_dtype(dtype)
    needed = (unique_params(counted) + sum(math.prod(s) for s in shapes)) * dt.itemsize
    if needed > max_memory:
        raise MemoryLimitError(
            f"--max-memory {max_memory:,} B: the forward needs real values on the CPU, and the weights and inputs "
            f"alone take {needed:,} B; raise --max-memory or shrink --input-shape"
        )
    notes.append("counted on the CPU: the forward needs real values (it does not run on the meta device)")
    return build_target(found, target, kwargs, "cpu").to(dtype=dt).eval(), "cpu"
