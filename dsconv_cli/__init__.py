"""dsconv: exact cost of a convolution layer and of its depthwise-separable counterpart.

The public API (``compare``, ``count``, ``load_config``, ``run_config``, ``analyze``, ``convert``, ``to_dict``)
is imported on first use, so ``import dsconv_cli`` stays light and never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dsconv_cli.version import __version__

__all__ = ["__version__", "analyze", "compare", "convert", "count", "load_config", "run_config", "to_dict"]

_API = {
    "compare": "api",
    "count": "api",
    "load_config": "api",
    "run_config": "api",
    "to_dict": "api",
    "analyze": "api",
    "convert": "api",
}

if TYPE_CHECKING:
    from dsconv_cli.api import analyze, compare, convert, count, load_config, run_config, to_dict


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'dsconv_cli' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"dsconv_cli.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
