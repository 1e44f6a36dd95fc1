"""The conditions of a timing: machine state, the verdict on it, and what a busy machine does to a result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import invoke

from dsconv_cli import environment
from dsconv_cli.environment import MachineState

QUIET = MachineState(load1=0.2, others_running=0.2, steal=0.0, cpus=2, reference_ms=0.10)
BUSY = MachineState(load1=3.1, others_running=2.4, steal=0.0, cpus=2, reference_ms=0.72)
TINY = ["-i", "2", "-o", "4", "--input-shape", "1,2,6,6", "--min-time", "0.01", "--threads", "1", "--no-roofline"]


def test_a_quiet_machine_is_trusted() -> None:
    assert environment.verdict(QUIET, QUIET, threads=2, quiet_reference_ms=0.1, round_spreads=[1.1]) == ()
    assert environment.quiet(QUIET, threads=1)


def test_each_sign_of_a_busy_machine_is_a_reason() -> None:
    reasons = environment.verdict(BUSY, QUIET, threads=2, quiet_reference_ms=0.1, round_spreads=[1.2, 2.0])
    assert reasons[0] == ("the machine was busy before timing: 2.4 other runnable tasks on 2 CPUs while timing "
                          "used 2 thread(s) (load 3.1)")  # fmt: skip
    assert reasons[1].startswith("the reference workload ran 7.2× slower than on the quiet machine")
    assert reasons[2] == "the rounds' speedups disagree by 2.00× (over 1.5×)"
    stolen = MachineState(0.1, 0.0, 0.25, 4, None)
    assert environment.verdict(stolen, stolen, 1, None) == ("the hypervisor stole 25% of CPU time (over 10%)",)
    assert not environment.quiet(BUSY, threads=2)


def test_one_other_task_is_no_contention_when_a_cpu_is_free() -> None:
    one_other = MachineState(load1=1.0, others_running=1.0, steal=0.0, cpus=2, reference_ms=0.1)
    assert environment.verdict(one_other, one_other, threads=1, quiet_reference_ms=0.1) == ()
    assert environment.verdict(one_other, one_other, threads=2, quiet_reference_ms=0.1) != ()


def test_this_process_own_spinning_threads_are_not_other_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3 runnable on the machine, 2 of them this process (its main thread and a spinning OpenMP worker)
    monkeypatch.setattr(environment, "_proc_stat", lambda: ([0] * 8, 3))
    monkeypatch.setattr(environment, "_own_running", lambda: 2)
    monkeypatch.setattr(environment.time, "sleep", lambda _: None)
    state = environment.sample_state(0.1)
    assert state.others_running == 1.0


def test_own_runnable_threads_are_read_from_their_stat_files(tmp_path: Path) -> None:
    states = {"100": "100 (python) R 1 100", "101": "101 (a ) b) S 100 100", "102": "102 (omp worker) R 100 100"}
    for task, line in states.items():
        (tmp_path / task).mkdir()
        (tmp_path / task / "stat").write_text(line)
    assert environment._own_running(str(tmp_path)) == 2  # the name's ")" does not fool it
    assert environment._own_running(str(tmp_path / "gone")) == 1
    assert environment._own_running() >= 1


def test_sampling_this_machine_gives_plausible_figures() -> None:
    state = environment.sample_state()
    assert state.cpus >= 1
    assert state.others_running is None or state.others_running >= 0
    assert state.steal is None or 0 <= state.steal <= 1


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch, private_cache):  # type: ignore[no-untyped-def]
    """Inject what the machine looks like: ``machine(state)`` makes every sample return it."""

    def set_state(state: MachineState) -> None:
        monkeypatch.setattr(environment, "sample_state", lambda reference_ms=None: state)

    return set_state


def test_a_busy_machine_marks_the_result_untrusted_and_strict_timing_fails(machine) -> None:  # type: ignore[no-untyped-def]
    machine(QUIET)
    quiet = json.loads(invoke("compare", *TINY, "-f", "json").stdout)["comparisons"][0]
    # a quiet machine raises no machine reason (tiny layers may still show rounds that disagree)
    assert not any("busy" in reason for reason in quiet["environment"]["untrusted_because"])
    assert quiet["trusted"] == (quiet["environment"]["untrusted_because"] == [])
    machine(BUSY)
    result = invoke("compare", *TINY, "-f", "json")
    assert result.code == 0
    busy = json.loads(result.stdout)["comparisons"][0]
    assert busy["trusted"] is False
    assert busy["environment"]["before"]["others_running"] == 2.4
    assert any(w.startswith("timing not trusted: the machine was busy before timing") for w in busy["warnings"])
    strict = invoke("compare", *TINY, "--strict-timing")
    assert strict.code == 1
    assert strict.stderr.startswith("error: compare: timing not trusted (--strict-timing): the machine was busy")
    assert "environment: " in strict.stdout and "NOT trusted" in strict.stdout


def test_strict_timing_fails_a_config_report_when_busy(machine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    machine(BUSY)
    path = tmp_path / "c.yaml"
    path.write_text("input_shape: [1, 2, 6, 6]\nlayers: [{out_channels: 4}]\n")
    result = invoke("report", str(path), "--min-time", "0.01", "--threads", "1", "--strict-timing", "-f", "json")
    assert result.code == 1
    entry = json.loads(result.stdout)["configs"][0]
    assert entry["trusted"] is False and "timing not trusted" in entry["failures"][0]


def test_untimed_results_carry_no_verdict() -> None:
    c = json.loads(invoke("compare", "--no-bench", "-f", "json").stdout)["comparisons"][0]
    assert "trusted" not in c and "environment" not in c
