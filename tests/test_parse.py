"""Parsers of flag text."""

from __future__ import annotations

import pytest

from dsconv_cli.core.parse import parse_ints, parse_padding, parse_size
from dsconv_cli.core.spec import PaddingMode
from dsconv_cli.errors import SpecError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", (3,)), ("3,5", (3, 5)), (" (3, 5) ", (3, 5)), ("1,16,50,129", (1, 16, 50, 129))],
)
def test_parse_ints(text: str, expected: tuple[int, ...]) -> None:
    assert parse_ints("kernel_size", text) == expected


@pytest.mark.parametrize("text", ["", "abc", "3,,5", "3.5", "3;5"])
def test_parse_ints_refuses_malformed(text: str) -> None:
    with pytest.raises(SpecError, match="expected an integer or comma-separated integers") as info:
        parse_ints("stride", text)
    assert info.value.field == "stride"


def test_parse_padding() -> None:
    assert parse_padding("same") is PaddingMode.SAME
    assert parse_padding("VALID") is PaddingMode.VALID
    assert parse_padding("0,1") == (0, 1)
    with pytest.raises(SpecError, match="expected same, valid"):
        parse_padding("full")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512MiB", 512 * 2**20), ("2GiB", 2 * 2**30), ("4GB", 4 * 10**9), ("1000", 1000), ("1.5k", 1500)],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size("max_memory", text) == expected
