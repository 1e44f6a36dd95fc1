"""Exporters: Markdown and CSV strings."""

from __future__ import annotations

from cases import STAGE_ROWS

from dsconv_cli.present import export, markdown, rows


def test_markdown_table() -> None:
    text = markdown.markdown_table(*rows.metric_table(STAGE_ROWS[:1]))
    assert text.splitlines()[:3] == [
        "|  | standard |",
        "| --- | ---: |",
        "| params | 24 |",
    ]


def test_csv_round_trip_columns() -> None:
    text = export.to_csv(STAGE_ROWS)
    header, first = text.splitlines()[:2]
    assert header.split(",") == rows.CSV_COLUMNS
    assert first.startswith(
        '"demo","standard","standard",1,"1x2x4","1x4x4",24,96,192,0,0,96,192,0,1.0,"float32",False,False'
    )
    assert header.isascii()


def test_comparison_csv_has_one_column_per_number_of_each_stage_conv() -> None:
    import csv
    import io

    from dsconv_cli.core import counting
    from dsconv_cli.core.spec import resolve_spec

    c = counting.compare(resolve_spec(rank=2, in_channels=16, out_channels=32, kernel_size=(3, 5), stride=2,
                                      padding=(1, 2)), (1, 16, 50, 129))  # fmt: skip
    standard, depthwise, pointwise, total = csv.DictReader(io.StringIO(export.comparisons_csv([c])))
    assert (standard["kernel_1"], standard["kernel_2"], standard["stride_1"], standard["padding_2"]) == (
        "3",
        "5",
        "2",
        "2",
    )
    assert (depthwise["groups"], depthwise["out_channels"]) == ("16", "16")
    assert (pointwise["kernel_1"], pointwise["in_channels"], pointwise["out_channels"]) == ("1", "16", "32")
    assert total["kernel_1"] == "" and total["stage"] == "total"
