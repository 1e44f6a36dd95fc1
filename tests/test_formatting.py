"""Number, shape and time formats."""

from __future__ import annotations

from dsconv_cli.core import formatting


def test_number_formats() -> None:
    assert formatting.fmt_int(29_721_600) == "29,721,600"
    assert formatting.fmt_shape([1, 32, 50, 129]) == "(1, 32, 50, 129)"
    assert formatting.fmt_pct_fewer(656 / 4608) == "85.8% fewer"
    assert formatting.fmt_pct_fewer(1.25) == "25.0% more"


def test_si_keeps_four_significant_digits() -> None:
    assert formatting.fmt_si(9_999) == "9,999"
    assert formatting.fmt_si(29_721_600) == "29.72M"
    assert formatting.fmt_si(4_089_184_256) == "4.089G"


def test_bytes_and_times() -> None:
    assert formatting.fmt_bytes(512) == "512 B"
    assert formatting.fmt_bytes(3 * 1024**2 // 2) == "1.5 MiB"
    assert formatting.fmt_ms(None) == "-"
    assert formatting.fmt_ms(1.23456, 0.1) == "1.235 ±0.100"


def test_describe_names_every_non_default_field() -> None:
    from dsconv_cli.core import counting
    from dsconv_cli.core.spec import resolve_spec

    spec = resolve_spec(rank=2, in_channels=16, out_channels=32, kernel_size=(3, 5), stride=2, dilation=2,
                        groups=2, bias=True, norm="batch", act="relu")  # fmt: skip
    text = formatting.describe(counting.compare(spec, (1, 16, 50, 129)))
    assert text.startswith("Conv2d 16→32 k3×5 s2×2 ")
    for part in ("d2×2", "g2", "bias", "+batchnorm", "+relu"):
        assert part in text.split(), (part, text)
    assert text.endswith("on (1, 16, 50, 129)")
