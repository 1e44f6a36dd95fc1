"""One document per result: the Markdown and terminal writers render every block of the same document."""

from __future__ import annotations

import io
from dataclasses import fields

import pytest
from rich.console import Console

from dsconv_cli.core import counting
from dsconv_cli.core.spec import resolve_spec
from dsconv_cli.core.working import comparison_work
from dsconv_cli.present import document, markdown, terminal
from dsconv_cli.present.document import Chart, Conditions, Heading, Lines, Table, Verdict, Work


def terminal_text(doc: document.Document, width: int = 400) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, no_color=True, highlight=False, force_terminal=False)
    for item in terminal.write(doc):
        console.print(item)
    return buffer.getvalue()


SEED = counting.compare(resolve_spec(rank=2, in_channels=16, out_channels=32), (1, 16, 50, 129))
EVERY_BLOCK: document.Document = (
    Heading("seed", lines=("`configs/seed.yaml`", "Input (1, 16, 50, 129)"), banner="seed (configs/seed.yaml)"),
    Table(
        "layers",
        (["layer", "std MACs"], [["conv", "29,721,600"], ["total", "29,721,600"]]),
        short=(["layer", "std MACs"], [["conv", "29.72M"], ["total", "29.72M"]]),
        section=False,
    ),  # fmt: skip
    Lines(("standard: 4,608 params",)),
    Table("latency (median)", (["layer", "std ms"], [["conv", "1.500"]])),
    Lines(("warning: conv: run-to-run spread over 10%",), plain=True),
    Conditions("environment: 2 of 2 CPUs; NOT trusted", ("timing not trusted: the machine was busy",)),
    Chart(("kernel_size",), ({"kernel_size": 3}, {"kernel_size": 5}), (0.14, 0.08)),
    Work("conv: working", comparison_work(SEED), ("standard  depthwise-separable",)),
    Verdict(False, "seed", ("total separable macs 4,231,200 > 4,000,000",)),
)


def test_every_block_kind_is_in_the_sample() -> None:
    assert {type(b) for b in EVERY_BLOCK} == set(document.Block.__args__)  # type: ignore[attr-defined]


@pytest.mark.parametrize("write", [markdown.write, terminal_text], ids=["markdown", "terminal"])
def test_each_writer_shows_every_line_and_table_row(write: object) -> None:
    text = write(EVERY_BLOCK)  # type: ignore[operator]
    for line in ("standard: 4,608 params", "warning: conv: run-to-run spread over 10%",
                 "environment: 2 of 2 CPUs; NOT trusted", "timing not trusted: the machine was busy",
                 "total separable macs 4,231,200 > 4,000,000", "1.500", "seed", "conv: working",
                 "standard  depthwise-separable"):  # fmt: skip
        assert line in text, (line, text)
    assert "FAIL" in text


def test_markdown_keeps_exact_figures_and_the_terminal_rounds() -> None:
    assert "29,721,600" in markdown.write(EVERY_BLOCK) and "29.72M" not in markdown.write(EVERY_BLOCK)
    assert "29.72M" in terminal_text(EVERY_BLOCK)


def test_the_terminal_shows_a_long_table_in_part_and_says_how_many_more() -> None:
    body = [[str(i), str(i)] for i in range(60)]
    doc = (Table("sweep", (["point", "ratio"], body), max_rows=50),)
    assert "… 10 more points" in terminal_text(doc) and "| 59 | 59 |" in markdown.write(doc)


def test_blocks_are_plain_records() -> None:
    for block in EVERY_BLOCK:
        assert fields(block)  # type: ignore[arg-type]


def test_a_timed_report_shows_the_same_in_markdown_and_the_terminal() -> None:
    """One timed report rendered both ways: the environment line, every warning (trust and noise) and the
    per-layer latency table are in both."""
    from dsconv_cli.core.config import load
    from dsconv_cli.core.spec import OutputFormat
    from dsconv_cli.present import render
    from dsconv_cli.run.configs import run_config
    from dsconv_cli.run.options import RunOptions

    report = run_config(load("configs/seed_example.yaml"), RunOptions(bench=True, min_time=0.01, rounds=1, threads=1))
    assert report.conditions is not None
    md = render.render_configs([report], OutputFormat.MARKDOWN, None)
    doc = document.config_document(report, None)
    table = terminal_text(doc)
    assert isinstance(md, str)
    for text in (md, table):
        assert document.environment.summary(report.conditions) in text
        assert "atency (median)" in text and "whole column" in text
    md_warnings = {line.removeprefix("- ") for line in md.splitlines() if line.startswith("- warning: ")}
    table_warnings = {line for line in table.splitlines() if line.startswith("warning: ")}
    assert md_warnings == table_warnings
    assert len(md_warnings) == len(document.explain.trust_warnings(report.conditions)) + len(
        document.explain.stack_noise_warnings(report.stacks[0])
    )
