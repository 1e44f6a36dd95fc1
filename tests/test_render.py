"""Renderers fed literal rows: no torch, exact text."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_renderers_do_not_import_torch() -> None:
    code = "import sys, dsconv_cli.present.export, dsconv_cli.core.formatting, dsconv_cli.present.rows, dsconv_cli.present.tables, dsconv_cli.present.render; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_rendering_reads_stored_analyses_and_never_recounts(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from dsconv_cli.core import counting
    from dsconv_cli.core.results import Latency, TimingRow
    from dsconv_cli.core.spec import DType, OutputFormat, TimingCase, resolve_spec
    from dsconv_cli.present import render

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


def test_report_markdown_ends_with_the_summary_the_table_shows() -> None:
    from conftest import invoke

    from dsconv_cli.present import rows

    out = invoke("report", "configs/seed_example.yaml", "configs/mobilenet_v1.yaml", "--no-bench", "-f", "markdown")
    tail = out.stdout.rstrip().splitlines()
    assert "## Summary" in out.stdout and tail[-1].startswith("| mobilenet_v1 | 1 |") and tail[-1].endswith("| pass |")
    headers, _ = rows.summary_table([])
    assert tail[-4] == "| " + " | ".join(h.replace("\n", " ") for h in headers) + " |"


def test_a_noisy_stack_timing_warns_as_compare_does_and_one_block_shows_no_cv() -> None:
    from dataclasses import replace

    from dsconv_cli.core import config
    from dsconv_cli.core.evaluate import count_config
    from dsconv_cli.core.results import Latency
    from dsconv_cli.present import explain, rows

    (stack,) = count_config(config.parse("input_shape: [1, 4, 8, 8]\nlayers: [{name: a, out_channels: 4}]\n", "c"))
    noisy, single = (
        Latency(1.0, 0.3, 50, "cpu", 1, "float32", cv=0.25),
        Latency(1.0, 0.0, 1, "cpu", 1, "float32", cv=None),
    )
    layer = replace(stack.layers[0], latency={"standard": noisy, "separable": single})
    timed = replace(stack, layers=(layer,))
    (warning,) = explain.stack_noise_warnings(timed)
    assert warning.startswith("a: run-to-run spread (CV) over 10% for standard 25%")
    _, body = rows.layer_latency_table(timed)
    assert body[0][3:5] == ["25.0%", "-"]  # std CV, and no CV from a single block
