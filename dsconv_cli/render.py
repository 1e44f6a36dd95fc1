"""Results -> the chosen output format: text for json, csv and markdown, Rich renderables for tables.

Builds what ``cli.py`` prints; prints nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console, RenderableType
from rich.text import Text

from dsconv_cli import environment, explain, export, formatting, rows, tables, working
from dsconv_cli.results import Comparison, ConfigReport, ModelAnalysis, Peaks
from dsconv_cli.spec import OutputFormat

Rendered = str | list[RenderableType]


def render_comparisons(comparisons: Sequence[Comparison], fmt: OutputFormat, show_work: bool = False) -> Rendered:
    """Comparisons in ``fmt``; ``show_work`` adds each count's working (not to CSV)."""
    if fmt is OutputFormat.JSON:
        docs = [export.comparison_dict(c) for c in comparisons]
        if show_work:
            docs = [working.with_working(d, working.comparison_work(c)) for d, c in zip(docs, comparisons, strict=True)]
        return export.to_json(export.document(docs))
    if fmt is OutputFormat.CSV:
        return export.comparisons_csv(comparisons)
    if fmt is OutputFormat.MARKDOWN:
        return "\n".join(
            export.comparison_markdown(c) + (working.work_markdown(c) if show_work else "") for c in comparisons
        )
    views = [
        tables.comparison_view(
            formatting.describe(c),
            rows.first_case_rows(c),
            rows.summary_lines(c),
            rows.checks_table(c.checks) if c.checks else None,
            rows.timing_table(c) if len(c.timings) > 1 else None,
            rows.check_notes(c.checks),
        )
        for c in comparisons
    ]
    if not show_work:
        return views
    return [v for c, view in zip(comparisons, views, strict=True) for v in (view, work_view(c))]


def work_view(c: Comparison) -> RenderableType:
    """A comparison's working as a table, then the two structures drawn in text."""
    work = working.comparison_work(c)
    return tables.work_view(working.work_rows(work), working.text_drawing(c, work))


TABLE_MAX_ROWS = 50


def render_configs(
    results: Sequence[ConfigReport], fmt: OutputFormat, max_increase: float | None, show_work: bool = False
) -> Rendered:
    """Config reports in ``fmt``; ``show_work`` adds each conv layer's working (tables: configs without a sweep)."""
    if fmt is OutputFormat.JSON:
        docs = [export.config_dict(r) for r in results]
        if show_work:
            docs = [working.with_config_working(d, r) for d, r in zip(docs, results, strict=True)]
        return export.to_json(export.document(configs=docs))
    if fmt is OutputFormat.CSV:
        return export.to_config_csv(results)
    if fmt is OutputFormat.MARKDOWN:
        text = "\n".join(export.config_markdown(r, max_increase) + (working.layers_markdown(r) if show_work else "")
                         for r in results)  # fmt: skip
        if len(results) > 1:  # the same closing summary the table format ends with
            text += "\n## Summary\n\n" + export.markdown_table(*rows.summary_table(results)) + "\n"
        return text
    out: list[RenderableType] = []
    for r in results:
        out.extend(config_view(r, max_increase))
        out.extend(layers_work_view(r) if show_work else [])
    if len(results) > 1:
        out.append(tables.rich_table(rows.summary_table(results), title="summary"))
    return out


def layers_work_view(r: ConfigReport) -> list[RenderableType]:
    """``--show-work`` under a config's tables: a working table per conv layer, with the drawing of a pair."""
    return [tables.work_view(working.work_rows(work), working.text_drawing(c, work) if c else [],
                             title=f"{formatting.escape_control(name)}: working")
            for name, work, c in working.layers_work(r)]  # fmt: skip


def config_view(r: ConfigReport, max_increase: float | None) -> list[RenderableType]:
    parts: list[RenderableType] = []
    if r.model is not None:
        parts.append(Text(f"{r.name} ({r.path})", style="bold"))
        parts.extend(_model_view(r.model, export.CONFIG_MODEL_DEPTH))
    elif r.sweep:
        keys = list(r.sweep)
        headers, body = rows.sweep_table(r.stacks, keys, exact=False)
        title = f"{r.name}: {len(r.stacks)} sweep points ({r.path})"
        parts.append(tables.rich_table((headers, body[:TABLE_MAX_ROWS]), title=title))
        if len(body) > TABLE_MAX_ROWS:
            parts.append(Text(f"  … {len(body) - TABLE_MAX_ROWS} more points; --format csv or json lists all"))
        parts.append(sweep_picture(r, keys))
    else:
        (stack,) = r.stacks
        title = f"{r.name}: input {formatting.fmt_shape(stack.input_shape)} ({r.path})"
        parts.append(tables.stack_view(title, rows.layer_table(stack, exact=False), rows.stack_summary(stack)))
        if stack.latency or any(layer.latency for layer in stack.layers):
            parts.append(tables.rich_table(rows.layer_latency_table(stack), title="latency (median)"))
            parts.extend(Text(f"warning: {w}") for w in explain.stack_noise_warnings(stack))
    if r.budgets:
        parts.extend(budget_view(r))
    if r.deltas:
        parts.append(tables.rich_table(rows.baseline_table(r.deltas, max_increase), title="against the baseline"))
    if r.conditions is not None:
        parts.append(Text(environment.summary(r.conditions)))
        parts.extend(Text(f"warning: {w}") for w in explain.trust_warnings(r.conditions))
    verdict = "PASS" if r.ok else "FAIL"
    parts.append(Text(f"{verdict}: {r.name}", style="bold green" if r.ok else "bold red"))
    parts.extend(Text(f"  {line}") for line in r.failures)
    return parts


def budget_view(r: ConfigReport) -> list[RenderableType]:
    """All budget checks of a single stack; for a sweep, the failing ones and a count."""
    if not r.sweep:
        return [tables.rich_table(rows.budget_table(r.budgets), title="budgets")]
    failing = [b for b in r.budgets if not b.ok]
    parts: list[RenderableType] = [Text(f"budgets: {len(r.budgets) - len(failing)} of {len(r.budgets)} "
                                        "checks over all points pass")]  # fmt: skip
    if failing:
        parts.append(tables.rich_table(rows.budget_table(failing), title="failing budgets"))
    return parts


def sweep_picture(r: ConfigReport, keys: list[str]) -> RenderableType:
    if len(r.stacks) > TABLE_MAX_ROWS * 4:
        return Text(f"  ({len(r.stacks)} points: too many to draw here; use --plot)")
    ratios = [s.ratio("macs") for s in r.stacks]
    if len(keys) == 2:
        rows = list(dict.fromkeys(formatting.fmt_value(s.point[keys[0]]) for s in r.stacks))
        cols = list(dict.fromkeys(formatting.fmt_value(s.point[keys[1]]) for s in r.stacks))
        cells = {
            (formatting.fmt_value(s.point[keys[0]]), formatting.fmt_value(s.point[keys[1]])): ratio
            for s, ratio in zip(r.stacks, ratios, strict=True)
        }
        return tables.heatmap("MAC ratio (separable / standard)", keys[0], keys[1], cells, rows, cols)
    labels = [formatting.point_label(s.point) for s in r.stacks]
    return tables.bars("MAC ratio (separable / standard)", labels, ratios)


@contextmanager
def progress_bar(console: Console, total: int) -> Iterator[Callable[[str], None]]:
    """A transient Rich progress bar on stderr (silent when stderr is not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )  # fmt: skip
    task = progress.add_task("", total=total)
    started = False

    def step(description: str) -> None:
        nonlocal started
        if started:
            progress.advance(task)
        started = True
        progress.update(task, description=description)

    with progress:
        yield step


def render_peaks(peaks: Peaks, cached: bool, cache_file: str, fmt: OutputFormat) -> Rendered:
    """Measured (or cached) machine peaks in ``fmt`` (table, json or markdown)."""
    if fmt is OutputFormat.JSON:
        doc = {"schema_version": export.SCHEMA_VERSION, "peaks": export.peaks_dict(peaks), "cached": cached,
               "cache_file": cache_file}  # fmt: skip
        return export.to_json(doc)
    table = rows.peaks_table(peaks, cached, cache_file)
    if fmt is OutputFormat.MARKDOWN:
        return export.markdown_table(*table) + "\n"
    return [tables.rich_table(table, title="machine peaks")]


def render_peaks_check(cached: Peaks | None, now: Peaks, fmt: OutputFormat) -> Rendered:
    """``peaks --check``: the cached peaks beside today's, and what the difference means."""
    summary = rows.peaks_check_summary(cached, now)
    if fmt is OutputFormat.JSON:
        doc = {"schema_version": export.SCHEMA_VERSION, "cached": export.peaks_dict(cached) if cached else None,
               "now": export.peaks_dict(now), "summary": summary}  # fmt: skip
        return export.to_json(doc)
    table = rows.peaks_check_table(cached, now)
    if fmt is OutputFormat.MARKDOWN:
        return export.markdown_table(*table) + f"\n\n{summary}\n"
    return [tables.rich_table(table, title="machine peaks: cached and today"), Text(summary)]


def render_model(a: ModelAnalysis, fmt: OutputFormat, depth: int | None) -> Rendered:
    """A model analysis in ``fmt``: the module tree, the conversion candidates and the summary."""
    if fmt is OutputFormat.JSON:
        return export.to_json(a.to_dict())
    if fmt is OutputFormat.CSV:
        return export.model_csv(a)
    if fmt is OutputFormat.MARKDOWN:
        return export.model_markdown(a, depth)
    return _model_view(a, depth)


def _model_view(a: ModelAnalysis, depth: int | None) -> list[RenderableType]:
    title = f"{a.target} on {', '.join(formatting.fmt_shape(s) for s in a.input_shapes)} (counted on {a.counted_on})"
    parts: list[RenderableType] = [tables.rich_table(rows.model_table(a, depth), title=title)]
    if a.candidates:
        parts.append(tables.rich_table(rows.advisor_table(a), title="depthwise-separable conversion candidates"))
    if a.candidate_timings:
        parts.append(tables.rich_table(rows.candidate_timing_table(a), title="candidates timed alone (median ms)"))
    parts.extend(Text(line) for line in rows.model_summary(a))
    if a.conditions is not None:
        parts.append(Text(environment.summary(a.conditions)))
        parts.extend(Text(f"warning: {w}") for w in explain.trust_warnings(a.conditions))
    return parts
