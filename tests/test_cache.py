"""The cache of machine figures: entries kept beside each other, invalid ones ignored."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest
from conftest import invoke

from dsconv_cli.core import cache, environment
from dsconv_cli.core.environment import MachineState, QuietReference
from dsconv_cli.core.results import Peaks


def peaks(threads: int, compute: float) -> Peaks:
    return Peaks("cpu", "Test CPU", "float32", threads, 10.0, compute, "now", "test")


def test_entries_live_beside_each_other(private_cache: Path) -> None:
    cache.save_peaks(peaks(1, 50.0))
    cache.save_peaks(peaks(2, 90.0))
    for figure in (0.1, 0.12, 0.11, 0.1, 0.13):
        cache.save_reference("reference|Test CPU|1", figure, {"cpus": 2})
    cache.save_default_threads("Test CPU", 2)
    assert cache.load_peaks(peaks(1, 0).key) == peaks(1, 50.0)
    assert cache.load_peaks(peaks(2, 0).key) == peaks(2, 90.0)
    assert cache.load_reference("reference|Test CPU|1") == 0.11
    assert cache.load_default_threads("Test CPU") == 2
    assert cache.cache_file() == private_cache / "peaks.json"


def test_invalid_entries_read_as_missing(private_cache: Path) -> None:
    private_cache.mkdir(parents=True)
    good = peaks(1, 50.0).__class__.__dataclass_fields__  # the fields a stored entry holds
    entry = {name: getattr(peaks(1, 50.0), name) for name in good}
    (private_cache / "peaks.json").write_text(json.dumps({
        "a": entry | {"compute_gflops": "fast"}, "b": entry | {"threads": 0},
        "reference|x|1": {"median_ms": 0.1, "samples_ms": [-1, 0.1, "fast", None, 0.1, 0.1, True, 0.1]},
        "reference|x|2": {"median_ms": 0.1, "samples_ms": [-1, 0.1, 0.1, 0.2, 0.2, 0.3, True]},
        "default_threads|x": True,
    }))  # fmt: skip
    assert cache.load_peaks("a") is None and cache.load_peaks("b") is None
    assert cache.has_entry("a") and not cache.has_entry("c")
    assert cache.load_reference("reference|x|1") is None  # four valid figures: too few
    assert cache.load_reference("reference|x|2") == QuietReference([0.1, 0.1, 0.2, 0.2, 0.3])
    assert cache.load_default_threads("x") is None


def test_an_unreadable_cache_is_empty(private_cache: Path) -> None:
    private_cache.mkdir(parents=True)
    (private_cache / "peaks.json").write_text("{not json")
    assert cache.load_peaks("anything") is None
    cache.save_peaks(peaks(1, 50.0))  # and is replaced whole by the next save
    assert cache.load_peaks(peaks(1, 0).key) == peaks(1, 50.0)


def test_the_reference_keeps_the_latest_quiet_figures(private_cache: Path) -> None:
    key = "reference|Test CPU|2"
    for figure in (0.1, 0.2, 0.3, 0.4):
        cache.save_reference(key, figure, {"cpus": 2})
    assert cache.load_reference(key) is None  # four: too few to know their spread
    for figure in (0.5, 0.6, 0.7, 0.8, 0.9):
        cache.save_reference(key, figure, {"cpus": 2, "n": figure})
    quiet = cache.load_reference(key)
    assert isinstance(quiet, QuietReference) and quiet.samples == (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    entry = json.loads((private_cache / "peaks.json").read_text())[key]
    assert entry == {"median_ms": 0.6, "samples_ms": [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], "conditions": {"cpus": 2,
                     "n": 0.9}}  # fmt: skip


def test_a_single_cached_figure_is_replaced_by_quiet_runs(private_cache: Path) -> None:
    private_cache.mkdir(parents=True)
    (private_cache / "peaks.json").write_text(json.dumps({"reference|x|1": {"median_ms": 0.09, "conditions": {}}}))
    assert cache.load_reference("reference|x|1") is None  # timed cold, and alone: measure again
    cache.save_reference("reference|x|1", 0.12, {})
    assert json.loads((private_cache / "peaks.json").read_text())["reference|x|1"]["samples_ms"] == [0.12]


def test_busy_peaks_keep_the_best_and_quiet_ones_replace_them(private_cache: Path) -> None:
    first = cache.save_busy_peaks(Peaks("cpu", "Test CPU", "float32", 1, 8.0, 30.0, "then", "test"), ["busy"])
    assert first.conditions == {"measured_busy": True, "busy_because": ["busy"], "busy_measurements": 1}
    second = Peaks("cpu", "Test CPU", "float32", 1, 6.0, 45.0, "now", "test", {"compute_spread": 1.1})
    best = cache.save_busy_peaks(second, ["busier"])
    assert (best.bandwidth_gbps, best.compute_gflops, best.measured_at) == (8.0, 45.0, "now")
    assert best.conditions == {"compute_spread": 1.1, "measured_busy": True, "busy_because": ["busier"],
                               "busy_measurements": 2}  # fmt: skip
    assert cache.load_busy_peaks(peaks(1, 0).key) == best
    assert cache.load_peaks(peaks(1, 0).key) is None and not cache.has_entry(peaks(1, 0).key)  # no quiet peaks
    cache.save_peaks(peaks(1, 50.0))
    assert cache.load_peaks(peaks(1, 0).key) == peaks(1, 50.0) and cache.load_busy_peaks(peaks(1, 0).key) is None


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the cache that a planted link points to: it must never change."""
    path = tmp_path / "victim.txt"
    path.write_text("precious\n")
    return path


@pytest.mark.parametrize("name", ["peaks.json", "peaks.json.lock"])
def test_a_planted_link_is_never_followed(private_cache: Path, victim: Path, name: str) -> None:
    private_cache.mkdir(parents=True)
    (private_cache / name).symlink_to(victim)
    with pytest.raises(cache.CacheLinkError, match=f"{name} is a symbolic link, which the cache never follows; "):
        cache.save_peaks(peaks(1, 50.0))
    assert victim.read_text() == "precious\n" and (private_cache / name).is_symlink()
    assert cache.load_peaks(peaks(1, 0).key) is None  # a linked cache reads as empty


@pytest.mark.parametrize("name", ["peaks.json", "peaks.json.lock"])
def test_a_dangling_link_creates_no_file(private_cache: Path, tmp_path: Path, name: str) -> None:
    private_cache.mkdir(parents=True)
    (private_cache / name).symlink_to(tmp_path / "created")
    with pytest.raises(cache.CacheLinkError):
        cache.save_default_threads("Test CPU", 2)
    assert not (tmp_path / "created").exists()


def test_a_planted_fifo_is_refused_without_hanging(private_cache: Path) -> None:
    private_cache.mkdir(parents=True)
    os.mkfifo(private_cache / "peaks.json")
    done = threading.Event()

    def read_and_save() -> None:
        assert cache.load_peaks("x") is None
        with pytest.raises(cache.CacheLinkError, match="peaks.json is not a regular file; remove it"):
            cache.save_peaks(peaks(1, 50.0))
        done.set()

    worker = threading.Thread(target=read_and_save, daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert done.is_set()


@pytest.mark.parametrize("name", ["peaks.json", "peaks.json.lock"])
def test_a_timed_compare_never_writes_through_a_link(
    private_cache: Path, victim: Path, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    quiet = MachineState(load1=0.1, others_running=0.0, steal=0.0, cpus=2, reference_ms=0.1)
    monkeypatch.setattr(environment, "sample_state", lambda reference_ms=None: quiet)  # quiet: it would cache
    private_cache.mkdir(parents=True)
    (private_cache / name).symlink_to(victim)
    args = ["-i", "2", "-o", "4", "--input-shape", "1,2,6,6", "--min-time", "0.01", "--threads", "1"]
    result = invoke("compare", *args, "--no-roofline", "-f", "json")
    assert result.code == 0
    assert victim.read_text() == "precious\n" and (private_cache / name).is_symlink()
    assert f"could not cache the reference workload in {private_cache / 'peaks.json'}: {private_cache / name} is " \
           "a symbolic link, which the cache never follows; remove it" in result.stderr.replace("\n", " ")  # fmt: skip
