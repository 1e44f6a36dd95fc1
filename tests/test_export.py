"""Exporters: Markdown and CSV strings."""

from __future__ import annotations

from cases import STAGE_ROWS

from dsconv_cli import export, rows


def test_markdown_table() -> None:
    text = export.markdown_table(*rows.metric_table(STAGE_ROWS[:1]))
    assert text.splitlines()[:3] == [
        "|  | standard |",
        "| --- | ---: |",
        "| params | 24 |",
    ]


def test_csv_round_trip_columns() -> None:
    text = export.to_csv(STAGE_ROWS)
    header, first = text.splitlines()[:2]
    assert header.split(",") == rows.CSV_COLUMNS
    assert first.startswith("demo,standard,standard,1,1x2x4,1x4x4,24,96,192,0,0,96,192,0,1.0,float32,False,False")
