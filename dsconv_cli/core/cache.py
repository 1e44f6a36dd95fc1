"""Measured machine peaks, cached per device, dtype and thread count in the user's cache directory."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeGuard

from dsconv_cli.core.results import Peaks
from dsconv_cli.files import write_atomic

ENV_DIR = "DSCONV_CACHE_DIR"


def cache_file() -> Path:
    """``$DSCONV_CACHE_DIR/peaks.json``, else the platform's user cache directory for dsconv."""
    root = os.environ.get(ENV_DIR)
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("dsconv")
    return Path(root) / "peaks.json"


def _read() -> dict[str, Any]:
    try:
        data = json.loads(cache_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no cache yet, or one that is unreadable: measure again
    return data if isinstance(data, dict) else {}


def has_entry(key: str) -> bool:
    return key in _read()


def load_peaks(key: str) -> Peaks | None:
    """The cached peaks for ``key`` (``Peaks.key``), if any."""
    entry = _read().get(key)
    if not isinstance(entry, dict):
        return None
    try:
        values = {f.name: entry[f.name] for f in dataclasses.fields(Peaks) if f.name in entry or f.name != "conditions"}
        peaks = Peaks(**values)
    except (KeyError, TypeError):
        return None
    if not all(_positive(v) for v in (peaks.bandwidth_gbps, peaks.compute_gflops, peaks.threads)):
        return None  # a damaged or hand-edited entry: measure again
    return peaks


def _positive(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < float("inf")


def save_peaks(peaks: Peaks) -> Path:
    """Store ``peaks`` beside any others; returns the cache file."""
    return _update(peaks.key, dataclasses.asdict(peaks))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``'s lock file, so concurrent writers never lose each other's entries
    (each re-reads the cache under the lock before writing it back)."""
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a+", encoding="utf-8") as handle:
        try:
            import fcntl
        except ImportError:  # no POSIX locks on this platform: writes stay atomic, not serialised
            yield
            return
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _update(key: str, value: Any) -> Path:
    """Set one entry of the cache: read, change and write it back atomically, under the lock."""
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        data = _read()
        data[key] = value
        write_atomic(path, json.dumps(data, indent=2) + "\n")
    return path


def reference_key(cpu_model: str, threads: int) -> str:
    return f"reference|{cpu_model}|{threads}"


def load_reference(key: str) -> float | None:
    """The reference workload's quiet figure (ms) for ``key``, if one was recorded and is valid."""
    entry = _read().get(key)
    value = entry.get("median_ms") if isinstance(entry, dict) else None
    return float(value) if _positive(value) else None


def save_reference(key: str, median_ms: float, conditions: dict[str, Any]) -> None:
    """Record the reference workload's figure on a quiet machine, with what the machine looked like."""
    _update(key, {"median_ms": median_ms, "conditions": conditions})


def load_default_threads(cpu_model: str) -> int | None:
    """PyTorch's default intra-op thread count on this CPU, as recorded when it last ran here."""
    value = _read().get(f"default_threads|{cpu_model}")
    return value if _positive(value) and isinstance(value, int) else None


def save_default_threads(cpu_model: str, threads: int) -> None:
    _update(f"default_threads|{cpu_model}", threads)
