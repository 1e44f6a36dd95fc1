"""Measured machine peaks, cached per device, dtype and thread count in the user's cache directory."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from dsconv_cli.files import write_atomic
from dsconv_cli.results import Peaks

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


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < float("inf")


def save_peaks(peaks: Peaks) -> Path:
    """Store ``peaks`` beside any others, atomically; returns the cache file."""
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read()
    data[peaks.key] = dataclasses.asdict(peaks)
    write_atomic(path, json.dumps(data, indent=2) + "\n")
    return path


def reference_key(cpu_model: str, threads: int) -> str:
    return f"reference|{cpu_model}|{threads}"


def load_reference(key: str) -> float | None:
    """The reference workload's quiet figure (ms) for ``key``, if one was recorded and is valid."""
    entry = _read().get(key)
    value = entry.get("median_ms") if isinstance(entry, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < float("inf"):
        return float(value)
    return None


def save_reference(key: str, median_ms: float, conditions: dict[str, Any]) -> None:
    """Record the reference workload's figure on a quiet machine, with what the machine looked like."""
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    data = _read()
    data[key] = {"median_ms": median_ms, "conditions": conditions}
    write_atomic(path, json.dumps(data, indent=2) + "\n")
