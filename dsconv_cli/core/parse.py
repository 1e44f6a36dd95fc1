"""Command-line text to values: ``3,5``, ``same``, ``512MiB``. Each error names its flag."""

from __future__ import annotations

import re
from typing import Any

from dsconv_cli.core.formatting import escape_control
from dsconv_cli.core.spec import DType, validate_input_shape
from dsconv_cli.core.spec import parse_ints as parse_ints  # flag text, kept with the spec it fills
from dsconv_cli.core.spec import parse_padding as parse_padding
from dsconv_cli.errors import ConfigError, SpecError

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
    if number * scale >= 2**63:  # also inf, from a number too long for a float
        raise SpecError(field_name, text if len(text) <= 40 else text[:37] + "...", "expected a size below 8 EiB, "
                        "such as 512MiB, 2GiB or 4GB")  # fmt: skip
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
    """``all``, ``top:N``, ``min-saving:PCT`` or ``max-error:PCT`` -> (kind, N or PCT; 0 for all)."""
    kind, _, value = rule.partition(":")
    if rule == "all":
        return "all", 0
    try:
        if kind == "top" and value and int(value) >= 1:
            return "top", int(value)
        if kind in ("min-saving", "max-error") and value:
            pct = float(value.rstrip("%"))
            if 0 <= pct <= 100:  # also refuses nan
                return kind, pct
    except ValueError:
        pass
    raise SpecError(
        "convert", rule, "expected all, top:N (N >= 1), min-saving:PCT or max-error:PCT (0-100), e.g. top:3"
    )


MAX_KWARGS_CHARS = 1_000_000  # a mapping of a model's arguments is a line; more is not a --kwargs


def parse_kwargs(text: str | None) -> dict[str, Any]:
    """``--kwargs`` as a JSON or YAML mapping, through the bounded loader configs go through."""
    if text is None:
        return {}
    from dsconv_cli.core.loader import load_json, load_yaml

    shown = escape_control(text if len(text) <= 60 else f"{text[:40]}... ({len(text):,} characters)")
    if len(text) > MAX_KWARGS_CHARS:
        raise SpecError("kwargs", shown, f"is over {MAX_KWARGS_CHARS:,} characters; give a model's arguments")
    try:
        value = load_json(text)
    except ValueError as exc:
        if "nested" in str(exc):
            raise SpecError("kwargs", shown, str(exc)) from None
        try:
            _, value = load_yaml(text, "--kwargs", config=False)
        except ConfigError as error:
            reason = str(error).removeprefix("--kwargs").lstrip(":0123456789").strip()
            raise SpecError("kwargs", shown, f"is neither JSON nor YAML: {reason}") from None
    if not isinstance(value, dict):
        raise SpecError("kwargs", shown, 'must be a mapping, e.g. {"width_mult": 0.5} or "num_classes: 10"')
    if any(not isinstance(key, str) or not key.isidentifier() for key in value):
        bad = next(key for key in value if not isinstance(key, str) or not key.isidentifier())
        raise SpecError("kwargs", shown, f"key {bad!r} is not an argument name; keys are names, e.g. width_mult")
    return value


def check_pct(name: str, text: object, pct: float, *, low_open: bool = False) -> None:
    """A percentage in [0, 100], or (0, 100] with ``low_open``; nan refused."""
    if not (0 < pct <= 100 if low_open else 0 <= pct <= 100):  # also refuses nan
        span = "(0, 100]" if low_open else "[0, 100]"
        raise SpecError(name, text, f"the percentage must be in {span}")


def parse_multiplier(value: int | str) -> int | float:
    """An int multiplier as it is; ``auto:PCT`` as the float PCT (the energy to keep, in percent)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise SpecError("multiplier", value, "must be a positive integer or auto:PCT, e.g. 2 or auto:90")
        return value
    text = str(value).strip()
    kind, sep, rest = text.partition(":")
    try:
        if not sep and text.isdigit() and int(text) >= 1:
            return int(text)
        if kind == "auto" and rest:
            pct = float(rest.rstrip("%"))
            check_pct("multiplier", value, pct, low_open=True)
            return pct
    except ValueError:
        pass
    raise SpecError("multiplier", value, "expected a positive integer or auto:PCT (0-100], e.g. 2 or auto:90")
