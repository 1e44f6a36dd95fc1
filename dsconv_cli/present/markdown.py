"""Documents as Markdown: headings, GitHub tables and bullets, for CI job summaries and PR comments."""

from __future__ import annotations

import re
from collections.abc import Sequence

from dsconv_cli.present import worksheet
from dsconv_cli.present.document import Chart, Conditions, Document, Heading, Lines, Table, Verdict, Work

_NUMBER = re.compile(r"^[≤≥+\-\s]*[\d.,]+[\d.,%×\s]*(ms|B|KiB|MiB|GiB|[kMGT])?(\s*\(.*\))?$|^-$")


def markdown_table(headers: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A GitHub table; columns mostly of numbers are right-aligned, the rest left."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |"

    def numeric(column: int) -> bool:
        hits = sum(bool(_NUMBER.match(row[column].strip())) for row in body)
        return column > 0 and hits * 2 > len(body)

    align = ["---:" if numeric(i) else "---" for i in range(len(headers))]
    return "\n".join([line(headers), "| " + " | ".join(align) + " |", *[line(r) for r in body]])


def write(document: Document) -> str:
    """Every block of ``document``, in order, ending in one newline."""
    parts: list[str] = []
    for block in document:
        match block:
            case Heading():
                parts += ["#" * block.level + " " + block.title, ""]
                for line in block.lines:
                    parts += [line, ""]
            case Table():
                if block.section:
                    parts += ["### " + block.title[:1].upper() + block.title[1:], ""]
                parts += [markdown_table(*block.table), ""]
            case Lines():
                parts += [f"- {line}" for line in block.lines] + [""]
            case Conditions():
                parts += [block.summary, ""]
                if block.warnings:
                    parts += [f"- warning: {w}" for w in block.warnings] + [""]
            case Chart():
                pass  # the terminal's picture of the ratios the sweep table above lists
            case Work():
                parts += [f"#### {block.title}", "", *worksheet.markdown_lines(block.work)]
                parts += ["```text", *block.drawing, "```", ""] if block.drawing else []
            case Verdict():
                parts += [
                    f"**{'PASS' if block.ok else 'FAIL'}**: {block.name}",
                    *[f"- {x}" for x in block.failures],
                    "",
                ]
    return "\n".join(parts).rstrip("\n") + "\n"
