"""Files, pipes and encodings: what the user asked to write is written whole, in the right place,
and nothing else is touched; a closed pipe, a full disk or a narrow encoding never ends in a traceback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import invoke

CONFIGS = Path(__file__).parent.parent / "configs"
DSCONV = [sys.executable, "-m", "dsconv_cli"]


def test_a_link_is_followed_and_its_target_replaced_keeping_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "real.json"
    target.write_text("old")
    target.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert invoke("compare", "--no-bench", "-f", "json", "--output", str(link)).code == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text().startswith("{") and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real.json"]  # no temporary left


def test_a_new_file_gets_the_usual_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        assert invoke("compare", "--no-bench", "-f", "csv", "--output", str(tmp_path / "new.csv")).code == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == 0o644


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = invoke("compare", "--no-bench", "-f", "csv", "--output", str(fifo))
    reader.join(timeout=10)
    assert result.code == 0 and stat.S_ISFIFO(fifo.stat().st_mode)
    assert received and received[0].startswith("comparison,")


def test_dev_null_stays_a_device() -> None:
    assert invoke("compare", "--no-bench", "-f", "json", "--output", "/dev/null").code == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_path_ending_in_a_slash_is_refused(tmp_path: Path) -> None:
    result = invoke("compare", "--no-bench", "--output", f"{tmp_path}/out/")
    assert (result.code, result.stderr) == (2, f"error: --output {tmp_path}/out/: ends in /, which names a "
                                               "directory; give a file path, e.g. out.json\n")  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_line_and_exit_3() -> None:
    to_file = subprocess.run([*DSCONV, "compare", "--no-bench", "-f", "json", "--output", "/dev/full"],
                             capture_output=True, text=True)  # fmt: skip
    assert (to_file.returncode, to_file.stderr) == (3, "error: cannot write /dev/full: No space left on device\n")
    with open("/dev/full", "w") as full:
        to_stdout = subprocess.run([*DSCONV, "compare", "--no-bench"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert (to_stdout.returncode, to_stdout.stderr) == (3, "error: cannot write to stdout: No space left on device\n")


def test_a_closed_stdout_is_one_line_and_exit_3() -> None:
    result = subprocess.run([*DSCONV, "compare", "--no-bench"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, preexec_fn=lambda: os.close(1))  # fmt: skip
    assert result.returncode == 3 and result.stderr.startswith("error: cannot write to stdout: it is closed")


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_a_reader_that_goes_away_ends_the_run_quietly_with_141(fmt: str) -> None:
    """The reader is gone before the first write (closed as soon as the process starts), so every run sees it."""
    child = subprocess.Popen([*DSCONV, "report", str(CONFIGS / "mobilenet_v1.yaml"), "--no-bench", "-f", fmt],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    with child.stderr:
        stderr = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141
    assert "Traceback" not in stderr and "error" not in stderr


def test_an_ascii_only_output_spells_the_symbols_in_ascii() -> None:
    env = os.environ | {"PYTHONIOENCODING": "ascii"}
    table = subprocess.run([*DSCONV, "compare", "--no-bench"], capture_output=True, text=True, env=env)
    assert table.returncode == 0 and "Traceback" not in table.stderr
    assert "Conv2d 16->32 k3x3 s1x1 p1x1" in table.stdout
    markdown = subprocess.run([*DSCONV, "compare", "--no-bench", "-f", "markdown"], capture_output=True, text=True,
                              env=env)  # fmt: skip
    assert markdown.returncode == 0 and "FLOPs (2xMACs)" in markdown.stdout


def test_names_are_text_never_markup_and_control_characters_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text('name: "[bold red]evil\\x1b[31m"\ninput_shape: [1, 4, 8, 8]\n'
                    'layers:\n  - {name: "[/x] a|b\\nc", out_channels: 8}\n')  # fmt: skip
    for fmt in ("table", "markdown", "csv", "json"):
        out = invoke("report", str(path), "--no-bench", "-f", fmt).stdout
        assert "\x1b" not in out and "a|b\nc" not in out, fmt
        assert "evil\\x1b[31m" in out or "evil\\\\x1b[31m" in out, fmt  # JSON escapes the backslash itself
    table = invoke("report", str(path), "--no-bench").stdout
    assert "[bold red]evil" in table and "[/x] a|b\\x0ac" in table
