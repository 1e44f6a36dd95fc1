"""A model target: ``package.module:attr`` or ``path/file.py:attr`` imported, then built on a device."""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import inspect
import math
import os
import pickle
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from dsconv_cli.core.formatting import escape_control, exception_text
from dsconv_cli.core.spec import DType
from dsconv_cli.errors import BuildError, MemoryLimitError, TargetError
from dsconv_cli.pt.builder import torch_dtype
from dsconv_cli.pt.trace import unique_params


def resolve_target(target: str) -> Any:
    """Import ``package.module:attr`` or ``path/file.py:attr`` and return ``attr``: an ``nn.Module`` subclass or
    instance, or a function defined in that module (or its package). Builtins and other callables are refused
    (``os:system`` is no model)."""
    module_name, sep, attr = target.rpartition(":")
    shown = escape_control(target)
    if not sep or not module_name or not attr:
        raise TargetError(f"{shown}: expected MODULE:ATTR or FILE.py:ATTR, e.g. torchvision.models:mobilenet_v2")
    source = module_name.endswith(".py")
    if not source and (module_name.endswith(NOT_SOURCE) or "/" in module_name or os.sep in module_name):
        raise TargetError(f"{shown}: a file target is Python source, FILE.py:ATTR (e.g. model.py:Net); "
                          f"{escape_control(module_name)} is not a .py file")  # fmt: skip
    try:
        if source:
            path = Path(module_name)
            if not path.is_file():
                raise TargetError(f"{shown}: no such file {escape_control(module_name)}")
            module = import_file(path)
        else:
            module = importlib.import_module(module_name)
    except TargetError:
        raise
    except ModuleNotFoundError as exc:
        missing = escape_control(exc.name or module_name)
        raise TargetError(f"{shown}: module {missing} not found (is it installed?)") from exc
    except Exception as exc:  # the user's module raising on import
        raise TargetError(f"{shown}: importing {escape_control(module_name)} raised {exception_text(exc)}") from exc
    if not hasattr(module, attr):
        public = sorted(escape_control(n) for n in vars(module) if not n.startswith("_"))[:8]
        raise TargetError(f"{shown}: {escape_control(module_name)} has no attribute {escape_control(repr(attr))} "
                          f"(it has {', '.join(public)}, ...)")  # fmt: skip
    found = getattr(module, attr)
    if isinstance(found, nn.Module) or (isinstance(found, type) and issubclass(found, nn.Module)):
        return found
    if inspect.isfunction(found) and _defined_in(found, module.__name__):
        return found
    raise TargetError(f"{shown}: {escape_control(attr)} is {_kind_of(found)}; a target is an nn.Module subclass, an "
                      f"nn.Module instance or a function defined in {escape_control(module_name)}")  # fmt: skip


NOT_SOURCE = (".pyc", ".pyo", ".pyw", ".pyd", ".so", ".pyi", ".ipynb")


def _defined_in(function: Any, module: str) -> bool:
    """Defined in ``module`` or a module of its package (torchvision.models re-exports its submodules')."""
    home = getattr(function, "__module__", None) or ""
    return home == module or home.startswith(module + ".")


def _kind_of(found: Any) -> str:
    if inspect.isbuiltin(found) or inspect.ismethoddescriptor(found):
        return f"a built-in function ({escape_control(getattr(found, '__name__', '?'))})"
    if isinstance(found, type):
        return f"the class {escape_control(found.__name__)}, not an nn.Module subclass"
    if inspect.isfunction(found):
        return f"a function defined in {escape_control(found.__module__ or '?')}, not here; name it from there"
    return f"a {escape_control(type(found).__name__)}, not a model, a model class or a factory function"


def import_file(path: Path) -> ModuleType:
    """Import a model file in isolation: under a module name of its own, its folder first on ``sys.path`` only
    while it runs, and its folder's modules (``helpers.py`` beside it) taken out of ``sys.modules`` afterwards,
    so another target's sibling of the same name is that target's own."""
    folder = path.resolve().parent
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
    name = f"dsconv_target_{''.join(c if c.isalnum() else '_' for c in path.stem)}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    LOADED[name] = path.stem  # how the user's own code imports it (see ``PlainNamePickler``)
    local = _local_names(folder)
    clash = local - KEEP
    hidden = {n: m for n, m in sys.modules.items() if n.partition(".")[0] in clash and not _within(m, folder)}
    for n in hidden:
        del sys.modules[n]
    before = set(sys.modules)
    sys.modules[name] = module  # dataclasses, pickling and typing look the module up by name
    sys.path.insert(0, str(folder))
    bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ left in the user's folder
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.dont_write_bytecode = bytecode
        if str(folder) in sys.path:
            sys.path.remove(str(folder))
        for n in set(sys.modules) - before:
            if _within(sys.modules[n], folder):
                del sys.modules[n]
        sys.modules.update(hidden)
    return module


# never hidden from a model file, whatever its folder holds: the standard library and what dsconv runs on
KEEP = frozenset(sys.stdlib_module_names) | {"torch", "torchvision", "numpy", "dsconv_cli", "fvcore", "typer",
                                             "rich", "yaml", "pydantic", "click", "platformdirs"}  # fmt: skip


def _local_names(folder: Path) -> set[str]:
    """Top-level module names a file in ``folder`` would import from beside it."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return set()
    return {entry.partition(".")[0] for entry in entries if entry.endswith((".py", ".so", ".pyd"))
            or (folder / entry).is_dir()}  # fmt: skip


def _within(module: Any, folder: Path) -> bool:
    """Whether ``module`` was loaded from ``folder`` (or below it)."""
    files = [getattr(module, "__file__", None), *list(getattr(module, "__path__", None) or [])]
    for file in files:
        if isinstance(file, str):
            try:
                if Path(file).resolve().is_relative_to(folder):
                    return True
            except (OSError, ValueError):
                continue
    return False


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
            raise TargetError(f"{escape_control(target)}: is a module instance; --kwargs applies to a class or factory "
                              "only")  # fmt: skip
        return found
    attr = target.rpartition(":")[2]
    if not (isinstance(found, type) and issubclass(found, nn.Module)) and not inspect.isfunction(found):
        raise TargetError(f"{escape_control(target)}: is {_kind_of(found)}; give an nn.Module subclass, an nn.Module "
                          "instance or a function that returns one")  # fmt: skip
    try:
        with torch.device(device):
            built = found(**(kwargs or {}))
    except Exception as exc:
        raise BuildError(f"{escape_control(target)}: {escape_control(attr)}(**{escape_control(_short(kwargs or {}))}) "
                         f"raised {exception_text(exc)}") from exc  # fmt: skip
    if not isinstance(built, nn.Module):
        raise TargetError(f"{escape_control(target)}: {escape_control(attr)}(...) returned a "
                          f"{escape_control(type(built).__name__)}, not an nn.Module")  # fmt: skip
    return built


def _short(kwargs: dict[str, Any]) -> str:
    try:
        text = repr(kwargs)
    except (ValueError, RecursionError):  # an integer past 4,300 digits, a self-containing dict
        return "..."
    return text if len(text) <= 200 else text[:197] + "..."


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


CPU_COUNT_NOTE = "counted on the CPU: the forward needs real values (it does not run on the meta device)"


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
    notes.append(CPU_COUNT_NOTE)
    return build_target(found, target, kwargs, "cpu").to(dtype=dt).eval(), "cpu"
