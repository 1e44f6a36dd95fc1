"""Rich tables."""

from __future__ import annotations

import io

from cases import STAGE_ROWS
from rich.console import Console

from dsconv_cli.present import rows, tables


def test_rich_table_renders_without_colour() -> None:
    buffer = io.StringIO()
    Console(file=buffer, width=100, no_color=True).print(tables.rich_table(rows.metric_table(STAGE_ROWS)))
    lines = buffer.getvalue().splitlines()
    assert lines[0].split() == ["standard", "depthwise", "pointwise", "separable"]
    assert lines[2].split() == ["params", "24", "6", "8", "14"]
