"""Machine peaks: the best of repeats over a few sizes, cached when measured on a quiet machine with
repeats that agree, with the conditions stored; otherwise kept apart as measured_busy (the best so far) and
reused while the machine stays busy. ``peaks --check`` compares today with the cache."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from conftest import invoke

from dsconv_cli.core import environment
from dsconv_cli.core.environment import MachineState
from dsconv_cli.core.results import Peaks
from dsconv_cli.pt import timing

QUIET = MachineState(load1=0.1, others_running=0.0, steal=0.0, cpus=2, reference_ms=None)
BUSY = MachineState(load1=3.0, others_running=2.0, steal=0.0, cpus=2, reference_ms=None)
ARGS = ["peaks", "--device", "cpu", "--threads", "1", "-f", "json"]


def fake_peaks(compute: float = 80.0, spread: float = 1.05) -> Peaks:
    return Peaks("cpu", timing.device_name("cpu"), "float32", 1, 20.0, compute, "2026-11-28T00:00:00+00:00", "fake",
                 {"bandwidth_spread": 1.02, "compute_spread": spread})  # fmt: skip


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``measured(state, peaks)``: every machine sample returns ``state``, every measurement ``peaks``."""

    def set_to(state: MachineState, peaks: Peaks) -> None:
        monkeypatch.setattr(environment, "sample_state", lambda reference_ms=None: state)
        monkeypatch.setattr(timing, "measure_peaks", lambda *args, **kwargs: peaks)

    return set_to


def stored(cache: Path) -> dict[str, dict[str, object]]:
    path = cache / "peaks.json"
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("reference|")} if (
        path.exists()) else {}  # fmt: skip


def test_quiet_agreeing_peaks_are_cached_with_their_conditions(measured, private_cache: Path) -> None:  # type: ignore[no-untyped-def]
    measured(QUIET, fake_peaks())
    first = json.loads(invoke(*ARGS).stdout)
    assert first["cached"] is False
    (entry,) = stored(private_cache).values()
    assert entry["compute_gflops"] == 80.0
    assert entry["conditions"]["before"]["others_running"] == 0.0  # type: ignore[index]
    assert entry["conditions"]["compute_spread"] == 1.05  # type: ignore[index]
    again = json.loads(invoke(*ARGS).stdout)
    assert again["cached"] is True and again["peaks"]["compute_gflops"] == 80.0


def test_busy_peaks_are_kept_marked_and_reused_while_busy(measured, private_cache: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    measured(BUSY, fake_peaks(compute=60.0))
    result = invoke(*ARGS)
    assert result.code == 0 and json.loads(result.stdout)["cached"] is False
    assert "note: peaks kept as measured on a busy machine (the best so far) until a quiet run replaces them: the " \
           "machine was busy before (2.0 other runnable tasks on 2 CPUs)" in " ".join(result.stderr.split())  # fmt: skip
    ((key, entry),) = stored(private_cache).items()
    assert key.startswith("busy|cpu|") and entry["compute_gflops"] == 60.0
    assert entry["conditions"]["measured_busy"] is True  # type: ignore[index]

    def no_measuring(*args: object, **kwargs: object) -> Peaks:
        raise AssertionError("busy peaks are reused, not measured again")

    monkeypatch.setattr(timing, "measure_peaks", no_measuring)
    again = invoke(*ARGS)
    doc = json.loads(again.stdout)
    assert doc["cached"] is True and doc["peaks"]["compute_gflops"] == 60.0
    assert doc["peaks"]["conditions"]["measured_busy"] is True
    assert "note: the machine is busy: using peaks measured busy on 2026-11-28T00:00:00+00:00, not measuring again" \
        in again.stderr.replace("\n", " ")  # fmt: skip
    measured(BUSY, fake_peaks(compute=50.0))  # --refresh measures again: the best of the two is kept
    better = json.loads(invoke(*ARGS, "--refresh").stdout)["peaks"]
    assert better["compute_gflops"] == 60.0 and better["conditions"]["busy_measurements"] == 2
    measured(QUIET, fake_peaks(compute=80.0))  # the machine is quiet now: measured again, and kept as quiet
    quiet = json.loads(invoke(*ARGS).stdout)
    assert quiet["cached"] is False and quiet["peaks"]["compute_gflops"] == 80.0
    ((key, entry),) = stored(private_cache).items()
    assert not key.startswith("busy|") and "measured_busy" not in entry["conditions"]  # type: ignore[operator]


def test_a_busy_machine_times_compare_without_measuring_peaks_every_run(measured, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    measured(BUSY, fake_peaks())
    calls: list[object] = []
    monkeypatch.setattr(timing, "measure_peaks", lambda *args, **kwargs: calls.append(args) or fake_peaks())
    tiny = ["-i", "2", "-o", "4", "--input-shape", "1,2,6,6", "--min-time", "0.01", "--threads", "1", "--device", "cpu"]
    for _ in range(3):
        doc = json.loads(invoke("compare", *tiny, "-f", "json").stdout)["comparisons"][0]
        assert doc["peaks"][0]["conditions"]["measured_busy"] is True and doc["trusted"] is False
    assert len(calls) == 1


def test_repeats_that_disagree_are_kept_only_as_busy_peaks(measured, private_cache: Path) -> None:  # type: ignore[no-untyped-def]
    measured(QUIET, fake_peaks(spread=2.0))
    result = invoke(*ARGS)
    assert "the compute repeats disagree by 2.00× (over 1.3×)" in result.stderr.replace("\n", " ")
    assert list(stored(private_cache)) == [f"busy|{timing.peaks_key('cpu', timing.DType.FLOAT32, 1)}"]
    assert json.loads(invoke(*ARGS).stdout)["cached"] is False  # quiet now: measured again, not reused


@pytest.mark.parametrize("bad", [0, None, "fast", -5.0, True])
def test_invalid_cached_values_are_measured_again(measured, private_cache: Path, bad: object) -> None:  # type: ignore[no-untyped-def]
    measured(QUIET, fake_peaks())
    private_cache.mkdir(parents=True)
    key = timing.peaks_key("cpu", timing.DType.FLOAT32, 1)
    entry = asdict(fake_peaks(compute=999.0)) | {"compute_gflops": bad}
    (private_cache / "peaks.json").write_text(json.dumps({key: entry}))
    doc = json.loads(invoke(*ARGS).stdout)
    assert doc["cached"] is False and doc["peaks"]["compute_gflops"] == 80.0


def test_check_compares_today_with_the_cache(measured, private_cache: Path) -> None:  # type: ignore[no-untyped-def]
    measured(QUIET, fake_peaks(compute=100.0))
    invoke(*ARGS)  # caches 100 GFLOP/s
    measured(QUIET, fake_peaks(compute=40.0))
    out = invoke("peaks", "--device", "cpu", "--threads", "1", "--check").stdout
    assert "100.00 GFLOP/s" in out and "40.00 GFLOP/s" in out and "0.40×" in out
    assert "today's machine reaches 40% of the cached compute peak" in out.replace("\n", " ")
    doc = json.loads(invoke("peaks", "--device", "cpu", "--threads", "1", "--check", "-f", "json").stdout)
    assert doc["cached"]["compute_gflops"] == 100.0 and doc["now"]["compute_gflops"] == 40.0
    (entry,) = stored(private_cache).values()
    assert entry["compute_gflops"] == 100.0  # --check never overwrites the cache


def test_a_real_measurement_reports_its_spreads() -> None:
    peaks = timing.measure_peaks("cpu", timing.DType.FLOAT32, 1, min_time=0.06)
    assert peaks.bandwidth_gbps > 0 and peaks.compute_gflops > 0
    assert peaks.conditions["bandwidth_spread"] >= 1 and peaks.conditions["compute_spread"] >= 1
    assert peaks.conditions["matmul_size"] >= 256


def test_invalid_cached_peaks_are_measured_again_with_a_note(measured, private_cache: Path) -> None:  # type: ignore[no-untyped-def]
    measured(QUIET, fake_peaks())
    private_cache.mkdir(parents=True)
    key = timing.peaks_key("cpu", timing.DType.FLOAT32, 1)
    (private_cache / "peaks.json").write_text(json.dumps({key: asdict(fake_peaks()) | {"bandwidth_gbps": 0}}))
    result = invoke(*ARGS)
    assert "were invalid (zero, missing or not numbers); measuring again" in result.stderr.replace("\n", " ")


def test_cached_cpu_peaks_are_read_without_importing_torch(private_cache: Path) -> None:
    import subprocess
    import sys

    from dsconv_cli.core import cache, environment

    cache.save_default_threads(environment.cpu_model(), 3)
    cache.save_peaks(fake_peaks())  # threads 1
    cache.save_peaks(Peaks("cpu", environment.cpu_model(), "float32", 3, 10.0, 50.0, "now", "fake"))
    code = ("import sys; from dsconv_cli.cli.app import run; rc = run(['peaks', '--device', 'cpu', '-f', 'json']); "
            "print('torch' in sys.modules, file=sys.stderr); sys.exit(rc)")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**__import__("os").environ, "DSCONV_CACHE_DIR": str(private_cache)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["peaks"]["threads"] == 3  # the default thread count, remembered
    assert result.stderr.strip().endswith("False")


def test_concurrent_writers_lose_no_entries(private_cache: Path) -> None:
    import subprocess
    import sys

    code = ("import sys; from dsconv_cli.core import cache\n"
            "for i in range(20): cache._update(f'{sys.argv[1]}|{i}', i)\n")  # fmt: skip
    env = {**__import__("os").environ, "DSCONV_CACHE_DIR": str(private_cache)}
    writers = [subprocess.Popen([sys.executable, "-c", code, f"w{n}"], env=env) for n in range(4)]
    assert all(w.wait(timeout=60) == 0 for w in writers)
    data = json.loads((private_cache / "peaks.json").read_text())
    assert {f"w{n}|{i}" for n in range(4) for i in range(20)} <= set(data)
