"""Command-line text to values: ``3,5``, ``same``, ``512MiB``. Each error names its flag."""

from __future__ import annotations

import re

from dsconv_cli.errors import SpecError
from dsconv_cli.spec import Padding, PaddingMode

_INT_LIST = re.compile(r"^\s*\(?\s*(-?\d+(\s*,\s*-?\d+)*)\s*,?\s*\)?\s*$")


def parse_ints(field_name: str, text: str) -> tuple[int, ...]:
    """Parse ``3``, ``3,5`` or ``(3, 5)`` into a tuple of ints."""
    match = _INT_LIST.match(text)
    if not match:
        raise SpecError(field_name, text, "expected an integer or comma-separated integers, e.g. 3 or 3,5")
    return tuple(int(part) for part in match.group(1).split(","))


def parse_padding(text: str) -> Padding:
    """Parse ``same``, ``valid``, ``1`` or ``1,2``."""
    lowered = text.strip().lower()
    if lowered in (PaddingMode.SAME, PaddingMode.VALID):
        return PaddingMode(lowered)
    match = _INT_LIST.match(text)
    if not match:
        raise SpecError("padding", text, "expected same, valid, an integer or comma-separated integers, e.g. 1 or 0,1")
    return tuple(int(part) for part in match.group(1).split(","))


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)


_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def parse_size(field_name: str, text: str) -> int:
    """Bytes from ``512MiB``, ``2GB``, ``4g`` or a plain byte count."""
    match = _SIZE.match(text)
    if not match:
        raise SpecError(field_name, text, "expected a size such as 512MiB, 2GiB or 4GB")
    number, unit = float(match.group(1)), match.group(2).lower()
    prefix = unit[:1] if unit[:1] != "b" else ""
    scale = 1024 ** ("kmgt".index(prefix) + 1) if "i" in unit else _UNITS[prefix]
    return int(number * scale)
