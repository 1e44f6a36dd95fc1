"""Rows -> Rich renderables. Returns renderables, never prints."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dsconv_cli.report import MetricTable, StageRow, metric_table


def rich_table(table: MetricTable, title: str | None = None) -> Table:
    """A right-aligned numeric table, first column as row labels."""
    headers, body = table
    out = Table(
        title=title,
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for i, header in enumerate(headers):
        out.add_column(
            header, justify="left" if i == 0 else "right", style="bold" if i == 0 else None, no_wrap=True
        )
    for row in body:
        out.add_row(*row)
    return out


def comparison_view(
    title: str, rows: Sequence[StageRow], summary: Sequence[str], checks: MetricTable | None = None
) -> RenderableType:
    """One comparison: the metric table, the verdict lines and, when asked, the cross-check."""
    parts: list[RenderableType] = [rich_table(metric_table(rows), title=title)]
    parts += [Text("  " + line) for line in summary]
    if checks is not None:
        parts.append(rich_table(checks, title="cross-check"))
    return Group(*parts)
