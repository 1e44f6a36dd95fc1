"""Renderers fed literal rows: no torch, exact text."""

from __future__ import annotations

import subprocess
import sys

import pytest


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
