"""Results -> the chosen output format: text for json, csv and markdown, Rich renderables for tables.

Builds what ``cli.py`` prints; prints nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console, RenderableType

from dsconv_cli.core.results import Comparison, ConfigReport, ModelAnalysis, Peaks
from dsconv_cli.core.spec import OutputFormat
from dsconv_cli.core.working import comparison_work
from dsconv_cli.present import document, export, markdown, rows, terminal, worksheet

Rendered = str | list[RenderableType]


def render_comparisons(comparisons: Sequence[Comparison], fmt: OutputFormat, show_work: bool = False) -> Rendered:
    """Comparisons in ``fmt``; ``show_work`` adds each count's working (not to CSV)."""
    if fmt is OutputFormat.JSON:
        docs = [export.comparison_dict(c) for c in comparisons]
        if show_work:
            docs = [worksheet.with_working(d, comparison_work(c)) for d, c in zip(docs, comparisons, strict=True)]
        return export.to_json(export.document(docs))
    if fmt is OutputFormat.CSV:
        return export.comparisons_csv(comparisons)
    documents = [document.comparison_document(c, show_work=show_work) for c in comparisons]
    if fmt is OutputFormat.MARKDOWN:
        return "\n".join(markdown.write(d) for d in documents)
    return [item for d in documents for item in terminal.write(d)]


def render_configs(
    results: Sequence[ConfigReport], fmt: OutputFormat, max_increase: float | None, show_work: bool = False
) -> Rendered:
    """Config reports in ``fmt``; ``show_work`` adds each conv layer's working (tables: configs without a sweep)."""
    if fmt is OutputFormat.JSON:
        docs = [export.config_dict(r) for r in results]
        if show_work:
            docs = [worksheet.with_config_working(d, r) for d, r in zip(docs, results, strict=True)]
        return export.to_json(export.document(configs=docs))
    if fmt is OutputFormat.CSV:
        return export.to_config_csv(results)
    documents = [document.config_document(r, max_increase, show_work) for r in results]
    if len(results) > 1:  # the same closing summary in every format
        documents.append(document.summary_document(results))
    if fmt is OutputFormat.MARKDOWN:
        return "\n".join(markdown.write(d) for d in documents)
    return [item for d in documents for item in terminal.write(d)]


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
    return _write((document.Table("machine peaks", rows.peaks_table(peaks, cached, cache_file), section=False),), fmt)


def render_peaks_check(cached: Peaks | None, now: Peaks, fmt: OutputFormat) -> Rendered:
    """``peaks --check``: the cached peaks beside today's, and what the difference means."""
    summary = rows.peaks_check_summary(cached, now)
    if fmt is OutputFormat.JSON:
        doc = {"schema_version": export.SCHEMA_VERSION, "cached": export.peaks_dict(cached) if cached else None,
               "now": export.peaks_dict(now), "summary": summary}  # fmt: skip
        return export.to_json(doc)
    table = document.Table("machine peaks: cached and today", rows.peaks_check_table(cached, now), section=False)
    return _write((table, document.Lines((summary,), plain=True)), fmt)


def _write(doc: document.Document, fmt: OutputFormat) -> Rendered:
    return markdown.write(doc) if fmt is OutputFormat.MARKDOWN else terminal.write(doc)


def render_model(
    a: ModelAnalysis, fmt: OutputFormat, depth: int | None, columns: Sequence[str] = (), by_op: bool = False
) -> Rendered:
    """A model analysis in ``fmt``: the module tree (to ``depth``, with ``columns`` added), the ops (``by_op``),
    the conversion candidates and the summary. JSON and CSV hold every module and op whatever is asked."""
    if fmt is OutputFormat.JSON:
        doc = export.model_dict(a)
        working = {path: worksheet.work_dict(comparison_work(c)) for path, c in a.comparisons}
        for candidate in doc["advisor"]["candidates"] if working else ():
            candidate["working"] = working[candidate["path"]]
        return export.to_json(doc)
    if fmt is OutputFormat.CSV:
        return export.model_csv(a)
    return _write(document.model_document(a, depth, columns, by_op), fmt)


def saved_lines(a: ModelAnalysis, path: str, state_dict: bool) -> list[str]:
    """The lines that say what ``--save`` / ``--save-state-dict`` wrote and how to load it."""
    return rows.saved_lines(a, path, state_dict)
