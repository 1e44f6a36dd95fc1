"""Command-line text to values: ``3,5``, ``same``, ``512MiB``. Each error names its flag."""

from __future__ import annotations

import re

from dsconv_cli.errors import SpecError
from dsconv_cli.spec import DType, Padding, PaddingMode, validate_input_shape

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


def parse_dtypes(text: str) -> tuple[DType, ...]:
    """``float32`` or ``float32,bfloat16``: distinct dtypes in the order given."""
    values = []
    for part in text.split(","):
        try:
            values.append(DType(part.strip()))
        except ValueError:
            valid = ", ".join(d.value for d in DType)
            raise SpecError("dtype", text, f"{part.strip()!r} is not one of {valid}; give one or a list") from None
    return tuple(dict.fromkeys(values))


def parse_positive_list(field: str, text: str | None) -> tuple[int, ...]:
    """``8`` or ``1,8,32``: distinct positive integers in the order given."""
    if text is None:
        return ()
    values = parse_ints(field, text)
    if any(v < 1 for v in values):
        raise SpecError(field, text, "must be positive integers")
    return tuple(dict.fromkeys(values))


def parse_input_shape(text: str | None, batch: int | None) -> tuple[int, ...] | None:
    """``1,16,50,129`` validated, with N replaced by ``batch`` when given."""
    if text is None:
        return None
    shape = parse_ints("input_shape", text)
    validate_input_shape(shape)
    return (batch, *shape[1:]) if batch is not None else shape


def parse_convert_rule(rule: str) -> tuple[str, float]:
    """``all``, ``top:N`` or ``min-saving:PCT`` -> (kind, N or PCT; 0 for all)."""
    kind, _, value = rule.partition(":")
    if rule == "all":
        return "all", 0
    try:
        if kind == "top" and value and int(value) >= 1:
            return "top", int(value)
        if kind == "min-saving" and value:
            pct = float(value.rstrip("%"))
            if 0 <= pct <= 100:  # also refuses nan
                return "min-saving", pct
    except ValueError:
        pass
    raise SpecError("convert", rule, "expected all, top:N (N >= 1) or min-saving:PCT (0-100), e.g. top:3")
