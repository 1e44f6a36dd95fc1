"""Atomic writes and the output-path check."""

from __future__ import annotations

from pathlib import Path

import pytest

from dsconv_cli.errors import SpecError
from dsconv_cli.files import atomic_target, check_output_path, write_atomic


def test_write_atomic_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary left beside it


def test_a_failure_inside_the_block_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_target(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize(
    ("relative", "reason"),
    [("missing/out.json", "does not exist"), ("adir", "is a directory")],
)
def test_bad_output_paths_are_refused_naming_the_path(tmp_path: Path, relative: str, reason: str) -> None:
    (tmp_path / "adir").mkdir()
    with pytest.raises(SpecError, match=reason) as caught:
        check_output_path(tmp_path / relative)
    assert str(tmp_path / relative) in str(caught.value)
    assert str(caught.value).startswith("--output ")


def test_no_output_and_a_writable_path_pass(tmp_path: Path) -> None:
    check_output_path(None)
    check_output_path(tmp_path / "new.md")
    assert not (tmp_path / "new.md").exists()  # checking writes nothing
