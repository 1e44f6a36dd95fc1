"""Renderers fed literal rows: no torch, exact text."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.console import Console

from dsconv_cli import export, formatting, rows, tables
from dsconv_cli.rows import StageRow


def _row(variant: str, stage: str, params: int, macs: int, median: float | None = None) -> StageRow:
    timed = median is not None
    return StageRow(
        comparison="demo", variant=variant, stage=stage, batch=1, input_shape=[1, 2, 4], output_shape=[1, 4, 4],
        params=params, macs=macs, flops=2 * macs, elementwise_ops=0, buffers=0,
        weight_bytes=4 * params, min_bytes_moved=4 * params + 96, intermediate_bytes=0,
        arithmetic_intensity=2 * macs / (4 * params + 96), dtype="float32",
        channels_last=False if timed else None, compiled=False if timed else None, backward=False if timed else None,
        median_ms=median, iqr_ms=0.01 if timed else None, min_ms=median, cv=0.02 if timed else None,
        runs=10 if timed else None, device="cpu" if timed else None, threads=1 if timed else None,
        achieved_gflops=2 * macs / median / 1e6 if median else None, achieved_gbps=1.0 if timed else None,
        bound="memory" if timed else None, fraction_of_roof=0.25 if timed else None,
        peak_bytes=2048 if timed else None,
    )  # fmt: skip


ROWS = [
    _row("standard", "standard", 24, 96, 0.5),
    _row("separable", "depthwise", 6, 24),
    _row("separable", "pointwise", 8, 32),
    _row("separable", "total", 14, 56, 0.25),
]


def test_metric_table_pivots_rows_into_columns() -> None:
    headers, body = rows.metric_table(ROWS)
    assert headers == ["", "standard", "depthwise", "pointwise", "separable"]
    assert body[0] == ["params", "24", "6", "8", "14"]
    assert body[1] == ["MACs", "96", "24", "32", "56"]
    by_label = {row[0]: row[1:] for row in body}
    assert by_label["latency ms"] == ["0.500 ±0.010", "-", "-", "0.250 ±0.010"]
    assert by_label["CV"] == ["2.0%", "-", "-", "2.0%"]
    assert by_label["roof reached"] == ["25.0% memory", "-", "-", "25.0% memory"]
    assert by_label["min traffic"] == ["192 B", "120 B", "128 B", "152 B"]  # 4*params + 96
    assert by_label["weights"] == ["96 B", "24 B", "32 B", "56 B"]  # 4*params
    assert by_label["allocator peak"] == ["2.0 KiB", "-", "-", "2.0 KiB"]
    # column sums equal totals
    assert int(body[0][2]) + int(body[0][3]) == int(body[0][4])


def test_markdown_table() -> None:
    text = export.markdown_table(*rows.metric_table(ROWS[:1]))
    assert text.splitlines()[:3] == [
        "|  | standard |",
        "| --- | ---: |",
        "| params | 24 |",
    ]


def test_csv_round_trip_columns() -> None:
    text = export.to_csv(ROWS)
    header, first = text.splitlines()[:2]
    assert header.split(",") == rows.CSV_COLUMNS
    assert first.startswith("demo,standard,standard,1,1x2x4,1x4x4,24,96,192,0,0,96,192,0,1.0,float32,False,False")


def test_rich_table_renders_without_colour() -> None:
    buffer = io.StringIO()
    Console(file=buffer, width=100, no_color=True).print(tables.rich_table(rows.metric_table(ROWS)))
    lines = buffer.getvalue().splitlines()
    assert lines[0].split() == ["standard", "depthwise", "pointwise", "separable"]
    assert lines[2].split() == ["params", "24", "6", "8", "14"]


def test_number_formats() -> None:
    assert formatting.fmt_int(29_721_600) == "29,721,600"
    assert formatting.fmt_shape([1, 32, 50, 129]) == "(1, 32, 50, 129)"
    assert formatting.fmt_pct_fewer(656 / 4608) == "85.8% fewer"
    assert formatting.fmt_pct_fewer(1.25) == "25.0% more"


def test_renderers_do_not_import_torch() -> None:
    code = "import sys, dsconv_cli.export, dsconv_cli.formatting, dsconv_cli.rows, dsconv_cli.tables, dsconv_cli.render; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_rendering_reads_stored_analyses_and_never_recounts(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from dsconv_cli import counting, render
    from dsconv_cli.results import Latency, TimingRow
    from dsconv_cli.spec import DType, OutputFormat, TimingCase, resolve_spec

    spec = resolve_spec(rank=2, in_channels=16, out_channels=32)
    c = counting.compare(spec, (1, 16, 50, 129))
    lat = Latency(1.0, 0.1, 10, "cpu", 1, "float32")
    items = ("standard", "depthwise", "pointwise", "separable")
    rows = tuple(TimingRow(TimingCase(b, DType.FLOAT32), dict.fromkeys(items, lat)) for b in (1, 8))
    c = counting.analyse_timings(replace(c, timings=rows))

    def forbidden(*_: object, **__: object) -> None:
        raise AssertionError("rendering counted again")

    monkeypatch.setattr(counting, "compare", forbidden)
    monkeypatch.setattr(counting, "analyse", forbidden)
    for fmt in OutputFormat:
        assert render.render_comparisons([c], fmt)
    # batch 8 was analysed at batch 8 when the results were made
    assert c.timings[1].analysis["standard"].stats.macs == 8 * c.standard.macs


RENDERING = ("formatting", "rows", "export", "tables", "render", "explain")
WORK = {"counting", "kinds", "timing", "builder", "crosscheck", "model", "runner", "evaluate"}


@pytest.mark.parametrize("module", RENDERING)
def test_rendering_modules_import_no_counting_or_timing(module: str) -> None:
    """Rendering reads results; it never reaches back into the modules that produce them."""
    import ast
    from pathlib import Path

    import dsconv_cli

    tree = ast.parse((Path(dsconv_cli.__file__).parent / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.removeprefix("dsconv_cli.").removeprefix("dsconv_cli"))
            if node.module == "dsconv_cli":
                imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            imported.update(alias.name.removeprefix("dsconv_cli.") for alias in node.names)
    assert not imported & (WORK | {"torch"}), imported & (WORK | {"torch"})
