"""Documents as Rich renderables for the terminal: titled tables, indented lines, a sweep's picture.

Returns renderables; the CLI prints them.
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text

from dsconv_cli.core.formatting import fmt_value, point_label
from dsconv_cli.present import tables, worksheet
from dsconv_cli.present.document import Chart, Conditions, Document, Heading, Lines, Table, Verdict, Work

CHART_MAX_POINTS = 200  # more sweep points than this are left to --plot


def write(document: Document) -> list[RenderableType]:
    """Every block of ``document``, in order."""
    out: list[RenderableType] = []
    for block in document:
        match block:
            case Heading():
                if block.banner is not None:
                    out.append(Text(block.banner, style="bold"))
            case Table():
                headers, body = block.short or block.table
                shown = body if block.max_rows is None else body[: block.max_rows]
                out.append(tables.rich_table((headers, shown), title=block.title))
                if len(shown) < len(body):
                    out.append(Text(f"  … {len(body) - len(shown)} more points; --format csv or json lists all"))
            case Lines():
                out.extend(Text(line if block.plain else "  " + line) for line in block.lines)
            case Conditions():
                out.append(Text(block.summary))
                out.extend(Text(f"warning: {w}") for w in block.warnings)
            case Chart():
                out.append(chart(block))
            case Work():
                out.append(tables.work_view(worksheet.work_rows(block.work), block.drawing, title=block.title))
            case Verdict():
                out.append(Text(f"{'PASS' if block.ok else 'FAIL'}: {block.name}",
                                style="bold green" if block.ok else "bold red"))  # fmt: skip
                out.extend(Text(f"  {line}") for line in block.failures)
    return out


def chart(c: Chart) -> RenderableType:
    """A heatmap over two swept keys, else one bar per point."""
    if len(c.points) > CHART_MAX_POINTS:
        return Text(f"  ({len(c.points)} points: too many to draw here; use --plot)")
    title = "MAC ratio (separable / standard)"
    if len(c.keys) == 2:
        first, second = c.keys
        rows = list(dict.fromkeys(fmt_value(p[first]) for p in c.points))
        cols = list(dict.fromkeys(fmt_value(p[second]) for p in c.points))
        cells = {(fmt_value(p[first]), fmt_value(p[second])): r for p, r in zip(c.points, c.ratios, strict=True)}
        return tables.heatmap(title, first, second, cells, rows, cols)
    return tables.bars(title, [point_label(p) for p in c.points], list(c.ratios))
