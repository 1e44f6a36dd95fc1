"""Formatting helpers: numbers, shapes, times and one-line names, shared by every renderer. Stdlib only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dsconv_cli.core.results import (
    Comparison,
)


def share_of(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def ratio_of(num: int, den: int) -> float | None:
    return num / den if den else None


def fmt_si(n: float) -> str:
    """Four significant digits with k/M/G/T above 9,999: ``4.231M``."""
    if abs(n) < 10_000:
        return f"{int(n):,}"
    for unit, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{unit}"
    raise AssertionError("unreachable")


def stacked_headers(headers: Sequence[str]) -> list[str]:
    """Two-line headers (``std\\nparams``) so compact tables fit a terminal."""
    return [h.replace(" ", "\n", 1) for h in headers]


def point_label(point: dict[str, Any]) -> str:
    return " ".join(f"{k}={fmt_value(v)}" for k, v in point.items())


def fmt_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def fmt_threads(n: int) -> str:
    return f"{n} thread" if n == 1 else f"{n} threads"


def fmt_int(n: int) -> str:
    return f"{n:,}"


def fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ")"


def fmt_tuple(values: Sequence[int]) -> str:
    return "×".join(str(v) for v in values)


def fmt_compact_shape(shape: Sequence[int]) -> str:
    return "(" + ",".join(str(v) for v in shape) + ")"


def fmt_ms(ms: float | None, iqr: float | None = None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.3f}" if iqr is None else f"{ms:.3f} ±{iqr:.3f}"


def fmt_pct_fewer(ratio: float) -> str:
    return f"{(1 - ratio) * 100:.1f}% fewer" if ratio <= 1 else f"{(ratio - 1) * 100:.1f}% more"


def describe(c: Comparison) -> str:
    """A one-line name: ``Conv2d 16→32 k3×3 s1×1 p1×1 on (1, 16, 50, 129)``."""
    s = c.spec
    kind = f"ConvTranspose{s.rank}d" if s.transposed else f"Conv{s.rank}d"
    pad = s.padding if isinstance(s.padding, str) else fmt_tuple(s.padding)
    parts = [f"{kind} {s.in_channels}→{s.out_channels}", f"k{fmt_tuple(s.kernel_size)}"]
    parts += [f"s{fmt_tuple(s.stride)}", f"p{pad}"]
    if any(d != 1 for d in s.dilation):
        parts.append(f"d{fmt_tuple(s.dilation)}")
    if s.transposed and any(s.output_padding):
        parts.append(f"op{fmt_tuple(s.output_padding)}")
    if s.groups != 1:
        parts.append(f"g{s.groups}")
    if s.multiplier != 1:
        parts.append(f"m{s.multiplier}")
    if s.bias:
        parts.append("bias")
    if s.norm.value != "none":
        parts.append(f"+{s.norm.value}norm")
    if s.act.value != "none":
        parts.append(f"+{s.act.value} ({s.placement.value})")
    return " ".join(parts) + f" on {fmt_shape(c.input_shape)}"


def fmt_bytes(n: int) -> str:
    """Bytes with a binary unit: ``1.2 MiB``."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def escape_control(text: str) -> str:
    """``text`` with control characters (escape, newline, NUL, ...) written as ``\\xNN``: a name from a
    config prints as one line of plain text in every format."""
    return "".join(f"\\x{ord(ch):02x}" if ord(ch) < 32 or 127 <= ord(ch) < 160 else ch for ch in text)


def exception_text(exc: BaseException) -> str:
    """``Type: message`` on one line: PyTorch's C++ backtrace cut off, lines joined, at most 500 characters."""
    try:
        message = str(exc).split("\nException raised from ")[0]
    except Exception:  # a message that cannot be made (a model's own exception class)
        message = ""
    text = " ".join(line.strip() for line in message.splitlines() if line.strip())
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return escape_control(text if len(text) <= 500 else text[:497] + "...")
