"""The cache of machine figures: entries kept beside each other, invalid ones ignored."""

from __future__ import annotations

import json
from pathlib import Path

from dsconv_cli.core import cache
from dsconv_cli.core.results import Peaks


def peaks(threads: int, compute: float) -> Peaks:
    return Peaks("cpu", "Test CPU", "float32", threads, 10.0, compute, "now", "test")


def test_entries_live_beside_each_other(private_cache: Path) -> None:
    cache.save_peaks(peaks(1, 50.0))
    cache.save_peaks(peaks(2, 90.0))
    cache.save_reference("reference|Test CPU|1", 0.1, {"cpus": 2})
    cache.save_default_threads("Test CPU", 2)
    assert cache.load_peaks(peaks(1, 0).key) == peaks(1, 50.0)
    assert cache.load_peaks(peaks(2, 0).key) == peaks(2, 90.0)
    assert cache.load_reference("reference|Test CPU|1") == 0.1
    assert cache.load_default_threads("Test CPU") == 2
    assert cache.cache_file() == private_cache / "peaks.json"


def test_invalid_entries_read_as_missing(private_cache: Path) -> None:
    private_cache.mkdir(parents=True)
    good = peaks(1, 50.0).__class__.__dataclass_fields__  # the fields a stored entry holds
    entry = {name: getattr(peaks(1, 50.0), name) for name in good}
    (private_cache / "peaks.json").write_text(json.dumps({
        "a": entry | {"compute_gflops": "fast"}, "b": entry | {"threads": 0}, "reference|x|1": {"median_ms": -1},
        "default_threads|x": True,
    }))  # fmt: skip
    assert cache.load_peaks("a") is None and cache.load_peaks("b") is None
    assert cache.has_entry("a") and not cache.has_entry("c")
    assert cache.load_reference("reference|x|1") is None and cache.load_default_threads("x") is None


def test_an_unreadable_cache_is_empty(private_cache: Path) -> None:
    private_cache.mkdir(parents=True)
    (private_cache / "peaks.json").write_text("{not json")
    assert cache.load_peaks("anything") is None
    cache.save_peaks(peaks(1, 50.0))  # and is replaced whole by the next save
    assert cache.load_peaks(peaks(1, 0).key) == peaks(1, 50.0)
