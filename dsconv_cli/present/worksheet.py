"""The working shown: a comparison's working records as JSON entries, a table, GitHub math, and the two
structures drawn in text. Reads the records ``core/working.py`` builds; works nothing out itself."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dsconv_cli.core.formatting import escape_control
from dsconv_cli.core.results import Comparison, ConfigReport, LayerResult, LayerStats
from dsconv_cli.core.spec import COLUMNS, Activation, ConvLayer, Norm, PaddingMode, Stage
from dsconv_cli.core.working import Entry, Value, Working, comparison_work, layer_work, layers_work

# --- JSON -------------------------------------------------------------------------------------------------------


def work_dict(work: Working) -> dict[str, Any]:
    """The working as one JSON object: a list of entries per item, and the ratios'."""
    return {
        **{i.item: [e.to_dict() for e in i.entries] for i in work.items},
        "ratios": [e.to_dict() for e in work.ratios],
    }


def with_working(doc: dict[str, Any], work: Working) -> dict[str, Any]:
    """A comparison's JSON object with ``working`` (a list of entries) under each item and the ratios."""
    places = {
        "standard": doc["standard"],
        "depthwise": doc["separable"]["depthwise"],
        "pointwise": doc["separable"]["pointwise"],
        "separable": doc["separable"],
    }
    for item in work.items:
        places[item.item]["working"] = [e.to_dict() for e in item.entries]
    doc["working"] = [e.to_dict() for e in work.ratios]
    return doc


def with_layer_working(doc: dict[str, Any], layer: LayerResult) -> dict[str, Any]:
    """A stack layer's JSON object with ``working`` under each column and stage, and the ratios' working."""
    work = layer_work(layer)
    if work is None:
        return doc
    entries = {i.item: [e.to_dict() for e in i.entries] for i in work.items}
    for column in COLUMNS:
        stages = [s.name for s in layer.stages(column)]
        for name in stages if len(stages) > 1 else ():
            doc[column][name]["working"] = entries[name]
        doc[column]["working"] = entries[stages[0] if len(stages) == 1 else "separable"]
    if work.ratios:
        doc["working"] = [e.to_dict() for e in work.ratios]
    return doc


def with_config_working(doc: dict[str, Any], report: ConfigReport) -> dict[str, Any]:
    """A config's JSON object with the working of every conv layer of every point."""
    for point, stack in zip(doc["points"], report.stacks, strict=True):
        for layer_doc, layer in zip(point["layers"], stack.layers, strict=True):
            with_layer_working(layer_doc, layer)
    return doc


# --- text -------------------------------------------------------------------------------------------------------

LABELS = {
    "params": "params", "macs": "MACs", "other_ops": "other ops", "buffers": "buffers",
    "output_shape": "output shape", "param_ratio": "params sep/std", "mac_ratio": "MACs sep/std",
    "theoretical_ratio": "MobileNet",
}  # fmt: skip


def label(entry: Entry) -> str:
    """``params``, ``MACs``, ``output H`` ..."""
    return f"output {entry.dim}" if entry.quantity == "output_size" else LABELS[entry.quantity]


def fmt_value(value: Value) -> str:
    """4,608; 0.1424; (1, 32, 50, 129)."""
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    if isinstance(value, float):
        return f"{value:.4f}"
    return f"{value:,}"


_LONG_NUMBER = re.compile(r"\d{4,}")


def chain(entry: Entry) -> list[str]:
    """The steps of an entry: formula, numbers (29,721,600 with its commas outside shapes), the terms summed
    where there are several, value."""
    numbers = entry.substituted
    if not isinstance(entry.value, tuple):
        numbers = _LONG_NUMBER.sub(lambda m: f"{int(m.group()):,}", numbers)
    steps = [entry.formula, numbers]
    if entry.terms:
        steps.append(" + ".join(f"{t:,}" for t in entry.terms))
    steps.append(fmt_value(entry.value))
    return [s for i, s in enumerate(steps) if i == 0 or s != steps[i - 1]]


def line(entry: Entry) -> str:
    """``C_out · C_in · k_H · k_W = 32 · 16 · 3 · 3 = 4,608``."""
    return " = ".join(chain(entry))


def work_rows(work: Working) -> tuple[list[str], list[list[str]]]:
    """The working as a table: item, quantity, then the formula over ``= numbers = value`` (and its note)."""
    body: list[list[str]] = []
    groups = [(i.item, i.entries) for i in work.items] + [("ratios", work.ratios)]
    for item, entries in groups:
        for n, entry in enumerate(entries):
            steps = chain(entry)
            cell = steps[0] + "\n= " + " = ".join(steps[1:]) + (f"\n({entry.note})" if entry.note else "")
            body.append([item if n == 0 else "", label(entry), cell])
    return ["item", "quantity", "working: formula, then = the numbers = the value"], body


_TOKEN = re.compile(r"floor\(|[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)?|\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?|\s+|.")


def latex(text: str) -> str:
    """A formula or its numbers in TeX for GitHub math: ``C_out · k_H`` -> ``C_{\\mathrm{out}} \\cdot k_{H}``."""
    out: list[str] = []
    closers: list[str] = []  # what each open parenthesis closes with
    for token in _TOKEN.findall(text):
        if token == "floor(":
            out.append(r"\left\lfloor ")
            closers.append(r" \right\rfloor")
        elif token == "(":
            out.append("(")
            closers.append(")")
        elif token == ")":
            out.append(closers.pop() if closers else ")")
        elif token[0].isalpha():
            base, _, sub = token.partition("_")
            base = base if len(base) == 1 else rf"\mathrm{{{base}}}"
            out.append(base + (f"_{{{sub}}}" if len(sub) == 1 else rf"_{{\mathrm{{{sub}}}}}" if sub else ""))
        elif token[0].isdigit():
            out.append(token.replace(",", "{,}"))
        else:
            out.append({"·": r" \cdot ", "×": r" \times ", "−": "-", "'": r"\text{'}"}.get(token, token))
    return re.sub(r" +", " ", "".join(out)).strip()


def markdown_lines(work: Working) -> list[str]:
    """GitHub Markdown: per item, a bullet per entry with the working as inline math (``$...$``)."""
    parts: list[str] = []
    groups = [(i.item, i.entries) for i in work.items] + [("separable / standard", work.ratios)]
    for item, entries in groups:
        parts += [f"**{item}**", ""]
        for entry in entries:
            math_text = " = ".join(latex(step) for step in chain(entry))
            note = f" ({entry.note})" if entry.note else ""
            parts.append(f"- {label(entry)}: ${math_text}${note}")
        parts.append("")
    return parts


# --- the structures drawn: each stage's facts, and a text drawing for the terminal ------------------------------


@dataclass(frozen=True, slots=True)
class StageFacts:
    """One stage as the drawing names it."""

    name: str
    conv: ConvLayer
    stats: LayerStats
    title: str  # conv 3×3
    options: str  # padding 1, bias
    filters: int  # how many filters the weight holds
    filter_shape: tuple[int, ...]  # each filter's (channels, *kernel)
    filter_text: str  # 32 filters, each 16×3×3
    params: Entry
    macs: Entry


def dims(values: Sequence[int]) -> str:
    """``3×3``."""
    return "×".join(str(v) for v in values)


def _same(values: Sequence[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else dims(values)


def _title(name: str, conv: ConvLayer) -> str:
    kind = {"standard": "conv", "depthwise": "depthwise", "pointwise": "pointwise"}[name]
    return f"{'transposed ' if conv.transposed else ''}{kind} {dims(conv.kernel_size)}"


def _options(stage: Stage) -> str:
    """Stride, padding, dilation, groups, bias, then norm and activation: what else the stage does."""
    conv, parts = stage.conv, []
    if stage.name != "pointwise":
        if any(s != 1 for s in conv.stride):
            parts.append(f"stride {_same(conv.stride)}")
        if isinstance(conv.padding, PaddingMode):
            parts.append(f"padding {conv.padding.value}")
        elif any(conv.padding):
            parts.append(f"padding {_same(conv.padding)}")
        if any(d != 1 for d in conv.dilation):
            parts.append(f"dilation {_same(conv.dilation)}")
        if conv.transposed and any(conv.output_padding):
            parts.append(f"output padding {_same(conv.output_padding)}")
    if stage.name == "standard" and conv.groups != 1:
        parts.append(f"groups {conv.groups}")
    if conv.bias:
        parts.append("bias")
    if stage.norm is not Norm.NONE:
        parts.append(f"then {stage.norm.value} norm")
    if stage.act is not Activation.NONE:
        parts.append(f"{'then ' if stage.norm is Norm.NONE else ''}{stage.act.value}")
    return ", ".join(parts)


def stage_facts(c: Comparison, work: Working) -> list[StageFacts]:
    """Standard, depthwise and pointwise, each with its filters and its params and MACs working."""
    out = []
    stages: list[tuple[Stage, LayerStats]] = [(c.spec.standard()[0], c.standard.stages[0])]
    stages += list(zip(c.spec.separable(), c.separable.stages, strict=True))
    for stage, stats in stages:
        conv = stage.conv
        entries = {e.quantity: e for e in work.item(stage.name).entries}
        if conv.transposed:  # weight (C_in, C_out/g, *k): each input channel scatters through one kernel
            count, shape = conv.in_channels, (conv.out_channels // conv.groups, *conv.kernel_size)
            text = f"{count} kernels, each {dims(shape)}, scattered"
        else:
            count, shape = conv.out_channels, (conv.in_channels // conv.groups, *conv.kernel_size)
            text = f"{count} filter{'s' if count != 1 else ''}, each {dims(shape)}"
        if stage.name == "depthwise":
            m = conv.out_channels // conv.in_channels
            text += ": one per channel" if m == 1 else f": {m} per channel"
        out.append(StageFacts(stage.name, conv, stats, _title(stage.name, conv), _options(stage), count, shape, text,
                              entries["params"], entries["macs"]))  # fmt: skip
    return out


# --- the text version, for the terminal -----------------------------------------------------------------------------


def text_drawing(c: Comparison, work: Working) -> list[str]:
    """The two structures as text, side by side: shapes, each stage's filters, params and MACs, then the ratio."""
    standard, depthwise, pointwise = stage_facts(c, work)

    def stage(f: StageFacts) -> list[str]:
        return [f"  │ {f.title}", f"  │ {f.filter_text}", f"  │ {fmt_value(f.stats.params)} params",
                f"  │ {fmt_value(f.stats.macs)} MACs"]  # fmt: skip

    shape = fmt_value
    left = ["standard", shape(c.input_shape), *stage(standard)]
    right = ["depthwise-separable", shape(c.input_shape), *stage(depthwise), "  ▼",
             shape(depthwise.stats.output_shape), *stage(pointwise)]  # fmt: skip
    left += ["  │"] * (len(right) - len(left))
    sep = work.item("separable").entries
    totals = {e.quantity: e for e in sep}
    left += ["  ▼", shape(c.standard.output_shape), f"{fmt_value(c.standard.params)} params",
             f"{fmt_value(c.standard.macs)} MACs"]  # fmt: skip
    right += [
        "  ▼",
        shape(c.separable.output_shape),
        total(totals["params"], "params"),
        total(totals["macs"], "MACs"),
    ]
    width = max(len(s) for s in left) + 4
    lines = [f"{a:<{width}}{b}".rstrip() for a, b in zip(left, right, strict=True)]
    theory = work.ratios[-1]
    lines.append(f"separable / standard: params {fmt_value(c.param_ratio)}, MACs {fmt_value(c.mac_ratio)} "
                 f"({reduction(c.mac_ratio)} MACs)")  # fmt: skip
    lines.append(f"MobileNet: {theory.formula} = {theory.substituted} = {fmt_value(theory.value)}")
    return lines


def total(entry: Entry, unit: str) -> str:
    """``144 + 512 = 656 params``."""
    parts = " + ".join(f"{t:,}" for t in entry.terms)
    return f"{parts} = {fmt_value(entry.value)} {unit}" if entry.terms else f"{fmt_value(entry.value)} {unit}"


def reduction(ratio: float) -> str:
    """``85.8% fewer``."""
    return f"{(1 - ratio) * 100:.1f}% fewer" if ratio <= 1 else f"{(ratio - 1) * 100:.1f}% more"


def work_markdown(c: Comparison) -> str:
    """A comparison's working as GitHub math, then the two structures drawn in text."""
    work = comparison_work(c)
    drawing = ["```text", *text_drawing(c, work), "```"]
    return "\n".join(["", "#### Working", "", *markdown_lines(work), *drawing]) + "\n"


def layers_markdown(r: ConfigReport) -> str:
    """Each conv layer's working under a config's Markdown, as GitHub math."""
    parts = []
    for name, work, c in layers_work(r):
        parts += ["", f"#### {escape_control(name)}: working", "", *markdown_lines(work)]
        parts += ["```text", *text_drawing(c, work), "```"] if c else []
    return "\n".join(parts) + "\n" if parts else ""
