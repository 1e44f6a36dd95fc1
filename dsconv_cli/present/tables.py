"""Rows -> Rich renderables. Returns renderables, never prints."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.color import Color
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.style import Style
from rich.table import Table
from rich.text import Text

from dsconv_cli.present.rows import MetricTable, StageRow, metric_table

LABEL_MIN_WIDTH = 16


class Fitted:
    """A table that prints as a table where it fits the width, and otherwise as one line per row
    (``label: title value; ...``): a narrow terminal never loses a label or a verdict column."""

    def __init__(self, table: MetricTable, title: str | None) -> None:
        self.table = table
        self.title = title

    def needed_width(self) -> int:
        headers, body = self.table
        widths = [max([len(h.split("\n")[-1]) for h in [header]] + [len(row[i]) for row in body])
                  for i, header in enumerate(headers)]  # fmt: skip
        return sum(widths) + 3 * (len(widths) - 1)  # a space of padding each side and the box's divider

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.needed_width() <= options.max_width:
            yield _table(self.table, self.title)
            return
        headers, body = self.table
        if self.title:
            yield Text(self.title, style="bold")
        for row in body:
            cells = "; ".join(f"{h.replace(chr(10), ' ')} {v}" for h, v in zip(headers[1:], row[1:], strict=True))
            yield Text(f"{row[0]}: {cells}" if row[0] else cells)


def rich_table(table: MetricTable, title: str | None = None) -> Fitted:
    """The table, or one line per row where the width is too narrow for every column."""
    return Fitted(table, title)


def _table(table: MetricTable, title: str | None = None) -> Table:
    """A right-aligned numeric table, first column as row labels.

    Value columns never shrink below their widest cell (a cropped number would read as another
    number); the label column folds instead.
    """
    headers, body = table
    out = Table(
        title=Text(title) if title is not None else None,  # names from configs are text, never markup
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for i, header in enumerate(headers):
        out.add_column(
            Text(header),
            justify="left" if i == 0 else "right",
            style="bold" if i == 0 else None,
            no_wrap=i > 0,
            overflow="fold",
            # values never shrink (a cropped number reads as another number); labels fold but stay readable
            min_width=min(LABEL_MIN_WIDTH, max([len(row[0]) for row in body] + [1]))
            if i == 0
            else max([len(row[i]) for row in body] + [len(header.split("\n")[-1])]),
        )
    for row in body:
        out.add_row(*(Text(cell) for cell in row))
    return out


def comparison_view(
    title: str,
    rows: Sequence[StageRow],
    summary: Sequence[str],
    checks: MetricTable | None = None,
    timings: MetricTable | None = None,
    check_notes: Sequence[str] = (),
) -> RenderableType:
    """One comparison: the metric table, the timing cases, the verdict lines and the cross-check."""
    parts: list[RenderableType] = [rich_table(metric_table(rows), title=title)]
    if timings is not None:
        parts.append(rich_table(timings, title="timing cases (median ms)"))
    parts += [Text("  " + line) for line in summary]
    if checks is not None:
        parts.append(rich_table(checks, title="cross-check"))
        parts += [Text("  " + line) for line in check_notes]
    return Group(*parts)


def work_view(table: MetricTable, drawing: Sequence[str], title: str = "working") -> RenderableType:
    """The working (its last column wraps, the labels never do), then the text drawing."""
    headers, body = table
    out = Table(title=Text(title), title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, show_edge=False,
                pad_edge=False)  # fmt: skip
    for i, header in enumerate(headers):
        out.add_column(Text(header), no_wrap=i < len(headers) - 1, style="bold" if i == 0 else None)
    for row in body:
        out.add_row(*(Text(cell) for cell in row))
    return Group(out, Text(""), Text("\n".join(drawing)))


def stack_view(title: str, table: MetricTable, summary: Sequence[str]) -> RenderableType:
    """A per-layer table with its exact totals under it."""
    return Group(rich_table(table, title=title), *[Text("  " + line) for line in summary])


def _gradient(value: float, low: float, high: float) -> Style:
    """Green (lowest MAC ratio: the biggest saving) to red (highest)."""
    t = 0.0 if high <= low else (value - low) / (high - low)
    red, green = int(40 + 180 * t), int(160 - 110 * t)
    return Style(bgcolor=Color.from_rgb(red, green, 60), color="white")


def heatmap(
    title: str, row_key: str, col_key: str, cells: dict[tuple[str, str], float], rows: Sequence[str],
    cols: Sequence[str],
) -> Table:  # fmt: skip
    """A ``row_key`` × ``col_key`` grid of MAC ratios, coloured by value."""
    values = list(cells.values())
    low, high = min(values), max(values)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    table.add_column(f"{row_key} \\ {col_key}", style="bold")
    for col in cols:
        table.add_column(col, justify="right")
    for row in rows:
        rendered: list[RenderableType] = [row]
        for col in cols:
            value = cells.get((row, col))
            rendered.append(Text("-") if value is None else Text(f"{value:.3f}", style=_gradient(value, low, high)))
        table.add_row(*rendered)
    return table


def bars(title: str, labels: Sequence[str], values: Sequence[float], width: int = 40) -> Table:
    """A horizontal bar per point, length proportional to the MAC ratio."""
    high = max(values) if values else 1.0
    table = Table(title=title, title_justify="left", box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    for label, value in zip(labels, values, strict=True):
        length = 0 if high <= 0 else round(value / high * width)
        table.add_row(label, Text("█" * max(length, 1), style="cyan"), f"{value:.3f}")
    return table
