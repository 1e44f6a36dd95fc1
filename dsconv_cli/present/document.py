"""One document per result: what a comparison, a config report or a model analysis shows, built once.

A document is a list of format-neutral blocks (headings, tables, lines, the machine's conditions, a
verdict); the Markdown and terminal writers each render every block, so a table, a warning or the
environment line added here shows in both and cannot drift. JSON and CSV are data formats with their
own schemas (``export.py``), built from the same records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dsconv_cli.core import environment
from dsconv_cli.core.formatting import describe, escape_control, fmt_shape
from dsconv_cli.core.results import Comparison, ConfigReport, ModelAnalysis
from dsconv_cli.core.working import Working, comparison_work, layers_work
from dsconv_cli.present import explain, rows, worksheet
from dsconv_cli.present.rows import MetricTable

TABLE_MAX_ROWS = 50  # the terminal shows this many sweep points; Markdown, CSV and JSON show all
CONFIG_MODEL_DEPTH = 1  # a model config's report shows the model's top-level modules


@dataclass(frozen=True, slots=True)
class Heading:
    """A document's title. Markdown: a heading with ``lines`` under it. Terminal: the ``banner`` line where
    there is one (elsewhere the first table's title names the document)."""

    title: str
    level: int = 2
    lines: tuple[str, ...] = ()
    banner: str | None = None


@dataclass(frozen=True, slots=True)
class Table:
    """A table of exact figures; ``short`` is the terminal's rounded version where it rounds.

    ``section``: Markdown puts ``title`` as a heading over it (otherwise the heading above says what it
    is); ``max_rows``: the terminal shows that many rows and says how many more there are."""

    title: str
    table: MetricTable
    short: MetricTable | None = None
    section: bool = True
    max_rows: int | None = None


@dataclass(frozen=True, slots=True)
class Lines:
    """Lines that belong to the table above them (totals, verdicts, notes): bullets in Markdown,
    indented in the terminal; ``plain``: a line of its own in both."""

    lines: tuple[str, ...]
    plain: bool = False


@dataclass(frozen=True, slots=True)
class Conditions:
    """The machine a timing ran on, and why it may not be trusted."""

    summary: str
    warnings: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Chart:
    """A sweep's MAC ratio per point: a heatmap over two swept keys, else bars. The terminal draws it;
    Markdown has the same ratios in the sweep table above it."""

    keys: tuple[str, ...]
    points: tuple[dict[str, Any], ...]
    ratios: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class Work:
    """How each count comes about (``--show-work``): the working of one layer, and its pair drawn in text."""

    title: str
    work: Working
    drawing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    """Pass or fail, and each failure."""

    ok: bool
    name: str
    failures: tuple[str, ...]


Block = Heading | Table | Lines | Conditions | Chart | Work | Verdict
Document = tuple[Block, ...]


def _conditions(c: environment.Conditions | None) -> list[Block]:
    if c is None:
        return []
    return [Conditions(environment.summary(c), tuple(explain.trust_warnings(c)))]


def comparison_document(c: Comparison, name: str = "", show_work: bool = False) -> Document:
    """One layer against its separable pair: the metric table, the timing cases, the verdict lines and the
    cross-check; with ``show_work``, how each count comes about."""
    title = name or describe(c)
    blocks: list[Block] = [
        Heading(title, level=3),
        Table(title, rows.metric_table(rows.first_case_rows(c, name)), section=False),
    ]
    if len(c.timings) > 1:
        blocks.append(Table("timing cases (median ms)", rows.timing_table(c)))
    blocks.append(Lines(tuple(rows.summary_lines(c))))
    if c.checks:
        blocks += [Table("cross-check", rows.checks_table(c.checks)), Lines(tuple(rows.check_notes(c.checks)))]
    if show_work:
        work = comparison_work(c)
        blocks.append(Work("Working", work, tuple(worksheet.text_drawing(c, work))))
    return tuple(blocks)


def model_blocks(a: ModelAnalysis, depth: int | None, columns: Sequence[str] = (), by_op: bool = False) -> list[Block]:
    """A model's tree (to ``depth``; None: a readable default), its ops (``by_op``), its conversion candidates,
    their timings, the summary and the machine's conditions."""
    shown = rows.default_depth(a) if depth is None else depth
    title = f"{a.target} on {rows.inputs_text(a)} (counted on {a.counted_on})"
    blocks: list[Block] = [Table(title, rows.model_table(a, shown, columns), section=False)]
    if (folded := rows.folded_note(a, shown)) is not None:
        blocks.append(Lines((folded,)))
    if by_op:
        blocks.append(Table("by op", rows.op_table(a)))
    if a.candidates:
        blocks.append(Table("conversion candidates", rows.advisor_table(a)))
    if a.candidate_timings:
        blocks.append(Table("candidates timed alone (median ms)", rows.candidate_timing_table(a)))
    blocks.append(Lines(tuple(rows.model_summary(a)), plain=True))
    return blocks + _conditions(a.conditions)


def model_document(a: ModelAnalysis, depth: int | None, columns: Sequence[str] = (), by_op: bool = False) -> Document:
    """``dsconv analyze``: the model under a heading naming it and its inputs; with ``--show-work`` (the
    analysis holds the candidates' comparisons), each candidate's working."""
    heading = Heading(f"{a.target} on {rows.inputs_text(a)}")
    return (heading, *model_blocks(a, depth, columns, by_op), *candidate_work(a))


def candidate_work(a: ModelAnalysis) -> list[Block]:
    """How each conversion candidate's counts and its pair's come about."""
    blocks: list[Block] = []
    for path, c in a.comparisons:
        work = comparison_work(c)
        blocks.append(Work(f"{escape_control(path)}: working", work, tuple(worksheet.text_drawing(c, work))))
    return blocks


def config_document(r: ConfigReport, max_increase: float | None, show_work: bool = False) -> Document:
    """A config's report: its table (model, sweep or stack), budgets, baseline, conditions and verdict; with
    ``show_work``, how each conv layer's counts come about (configs without a sweep)."""
    blocks: list[Block] = []
    if r.model is not None:
        lines = (f"`{r.path}`", f"Model `{r.model.target}` on {rows.inputs_text(r.model)}")
        blocks.append(Heading(r.name, lines=lines, banner=f"{r.name} ({r.path})"))
        blocks += model_blocks(r.model, CONFIG_MODEL_DEPTH)
    elif r.sweep:
        keys = list(r.sweep)
        caption = f"{r.name}: {len(r.stacks)} sweep points ({r.path})"
        blocks.append(Heading(r.name, lines=(f"`{r.path}`",)))
        table = rows.sweep_table(r.stacks, keys)
        short = rows.sweep_table(r.stacks, keys, exact=False)
        blocks.append(Table(caption, table, short, section=False, max_rows=TABLE_MAX_ROWS))
        points = tuple(s.point for s in r.stacks)
        blocks.append(Chart(tuple(keys), points, tuple(s.ratio("macs") for s in r.stacks)))
    else:
        (stack,) = r.stacks
        caption = f"{r.name}: input {fmt_shape(stack.input_shape)} ({r.path})"
        heading = Heading(r.name, lines=(f"`{r.path}`", f"Input {fmt_shape(stack.input_shape)}"))
        layers = Table(caption, rows.layer_table(stack), rows.layer_table(stack, exact=False), section=False)
        blocks += [heading, layers, Lines(tuple(rows.stack_summary(stack)))]
        if stack.latency or any(layer.latency for layer in stack.layers):
            blocks.append(Table("latency (median)", rows.layer_latency_table(stack)))
        if warnings := explain.stack_noise_warnings(stack):
            blocks.append(Lines(tuple(f"warning: {w}" for w in warnings), plain=True))
    blocks += _budgets(r)
    if r.deltas:
        blocks.append(Table("against the baseline", rows.baseline_table(r.deltas, max_increase)))
    blocks += _conditions(r.conditions)
    blocks.append(Verdict(r.ok, r.name, r.failures))
    for name, work, pair in layers_work(r) if show_work else ():
        drawing = worksheet.text_drawing(pair, work) if pair else []
        blocks.append(Work(f"{escape_control(name)}: working", work, tuple(drawing)))
    return tuple(blocks)


def _budgets(r: ConfigReport) -> list[Block]:
    """All budget checks of a single stack; for a sweep, a count and the failing ones."""
    if not r.budgets:
        return []
    if not r.sweep:
        return [Table("budgets", rows.budget_table(r.budgets))]
    failing = [b for b in r.budgets if not b.ok]
    count = f"budgets: {len(r.budgets) - len(failing)} of {len(r.budgets)} checks over all points pass"
    blocks: list[Block] = [Lines((count,), plain=True)]
    if failing:
        blocks.append(Table("failing budgets", rows.budget_table(failing)))
    return blocks


def summary_document(results: Sequence[ConfigReport]) -> Document:
    """The closing summary of several configs."""
    return (Heading("Summary"), Table("summary", rows.summary_table(results), section=False))
