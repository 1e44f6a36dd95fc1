"""A drawing of a comparison: the standard conv and its depthwise-separable pair side by side, as a learner
draws them by hand. Tensors are blocks (channels going back), each stage's filters are drawn beside it (one
k×k slice per channel for the depthwise stage, 1×1 columns for the pointwise one), with params and MACs under
each and the ratio at the foot.

Presentation only: shapes and numbers are read from the comparison's records and its working, never counted.
The picture is a list of shapes written as SVG (text kept as ``<text>``) by the standard library alone; PNG
goes through matplotlib (the ``plot`` extra), imported only then. The terminal's text version is
``working.text_drawing``.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from dsconv_cli.core.results import Comparison
from dsconv_cli.core.working import Entry, Working
from dsconv_cli.errors import DeviceError, OutputError, SpecError
from dsconv_cli.present.worksheet import StageFacts, chain, dims, fmt_value, reduction, stage_facts, total

FORMATS = (".svg", ".png")

# --- the picture: shapes ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Poly:
    points: tuple[tuple[float, float], ...]
    fill: str
    stroke: str = "#37474f"
    width: float = 1.0


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = "#37474f"
    width: float = 1.0
    arrow: bool = False


@dataclass(frozen=True, slots=True)
class Label:
    x: float
    y: float  # baseline
    text: str  # ``C_out`` is written with its subscript
    size: float = 12.0
    anchor: str = "start"  # start, middle, end
    bold: bool = False
    fill: str = "#212121"


Shape = Poly | Line | Label


@dataclass(frozen=True, slots=True)
class Picture:
    width: float
    height: float
    shapes: tuple[Shape, ...]


INPUT_FACES = ("#d6e6f5", "#b4cfea", "#9bbde0")  # front, top, side
MID_FACES = ("#e6dcf2", "#cdbde6", "#b9a5da")
OUTPUT_FACES = ("#d8efd9", "#b5dfb8", "#9bd19f")
FILTER_FACES = ("#fbd9b0", "#f5bd7a", "#eea55a")
LINE_COLOUR = "#37474f"
MUTED = "#546e7a"
CELL = 12.0  # a kernel cell, in px
SLOT_GAP = 36.0


def spatial_px(v: int) -> float:
    """A spatial size drawn: grows as the square root, so 50 and 129 both fit and still differ."""
    return min(150.0, max(10.0, 10.0 * math.sqrt(v)))


def depth_px(channels: int) -> float:
    """Channels drawn as depth (going back): 16 and 32 visibly differ."""
    return min(90.0, max(6.0, 9.0 * math.sqrt(channels)))


def _offset(depth: float) -> tuple[float, float]:
    return depth * 0.82, -depth * 0.57


def _text_px(text: str, size: float) -> float:
    """About how wide a label is (sans-serif), subscripts at three quarters."""
    subs = sum(len(m.group(2)) for m in _SUB.finditer(text))
    return (len(text) - 1.25 * subs) * size * 0.56


def _block(x: float, base: float, w: float, h: float, depth: float, faces: Sequence[str],
           slices: int = 0, grid: tuple[int, int] = (0, 0)) -> list[Shape]:  # fmt: skip
    """A box: front face ``w``×``h`` with its lower-left corner at (x, base), ``depth`` going back and up."""
    dx, dy = _offset(depth)
    top = base - h
    shapes: list[Shape] = [
        Poly(((x, base), (x + w, base), (x + w, top), (x, top)), faces[0]),
        Poly(((x, top), (x + w, top), (x + w + dx, top + dy), (x + dx, top + dy)), faces[1]),
        Poly(((x + w, base), (x + w, top), (x + w + dx, top + dy), (x + w + dx, base + dy)), faces[2]),
    ]
    if slices > 1 and depth / slices >= 1.8:  # a line per channel on the top and side faces
        for i in range(1, slices):
            f = i / slices
            sx, sy = dx * f, dy * f
            shapes.append(Line(x + sx, top + sy, x + w + sx, top + sy, "#78909c", 0.4))
            shapes.append(Line(x + w + sx, base + sy, x + w + sx, top + sy, "#78909c", 0.4))
    cols, rows = grid
    for i in range(1, cols):
        shapes.append(Line(x + w * i / cols, base, x + w * i / cols, top, LINE_COLOUR, 0.6))
    for j in range(1, rows):
        shapes.append(Line(x, top + h * j / rows, x + w, top + h * j / rows, LINE_COLOUR, 0.6))
    return shapes


def _hw(shape: Sequence[int]) -> tuple[int, int]:
    """(H, W) drawn for a tensor: the last two spatial dims; a 1-D input is one row."""
    spatial = shape[2:]
    return (1, spatial[0]) if len(spatial) == 1 else (spatial[-2], spatial[-1])


@dataclass(frozen=True, slots=True)
class _Drawn:
    shapes: list[Shape]
    width: float  # from x to the right of the box's back
    height: float  # from base to the top of the box's back
    mid: float  # the height where arrows meet it


def _tensor(x: float, base: float, shape: Sequence[int], faces: Sequence[str], caption: str) -> _Drawn:
    h_size, w_size = _hw(shape)
    w, h = spatial_px(w_size), (14.0 if len(shape) == 3 else spatial_px(h_size))
    depth = depth_px(shape[1])
    dx, dy = _offset(depth)
    shapes = _block(x, base, w, h, depth, faces, slices=shape[1])
    names = {3: ("L",), 4: ("H", "W"), 5: ("D", "H", "W")}[len(shape)]
    shapes.append(Label(x + w / 2, base + 15, f"{names[-1]} {shape[-1]}", 11, "middle", fill=MUTED))
    if len(shape) > 3:
        shapes.append(Label(x + 5, base - h / 2 + 4, f"{names[-2]} {shape[-2]}", 11, fill=MUTED))
    shapes.append(Label(x + w + dx / 2 + 6, base + dy / 2 + 4, f"C {shape[1]}", 11, fill=MUTED))
    if len(shape) == 5:
        shapes.append(Label(x + w / 2, base - h - 6 + dy, f"× D {shape[2]}", 11, "middle", fill=MUTED))
    centre = x + (w + dx) / 2
    shapes.append(Label(centre, base + 34, caption, 12, "middle", bold=True))
    shapes.append(Label(centre, base + 50, fmt_value(tuple(shape)), 12, "middle"))
    return _Drawn(shapes, w + dx, h - dy, base - h / 2)


def _filters(x: float, mid: float, facts: StageFacts) -> _Drawn:
    """The filters of a stage in a row: the first two, an ellipsis and the last (all of them when three or
    fewer), each a box of its own channels and kernel, numbered."""
    channels, *kernel = facts.filter_shape
    k_rows, k_cols = (1, kernel[0]) if len(kernel) == 1 else (kernel[-2], kernel[-1])
    w, h = k_cols * CELL, k_rows * CELL
    depth = depth_px(channels)
    dx, dy = _offset(depth)
    shown = list(range(1, facts.filters + 1)) if facts.filters <= 3 else [1, 2, 0, facts.filters]
    shapes: list[Shape] = []
    cursor = x
    base = mid + h / 2 - dy / 2
    for n in shown:
        if n == 0:
            shapes.append(Label(cursor + 8, mid + 4, "…", 16, "middle", bold=True))
            cursor += 22
            continue
        shapes += _block(cursor, base, w, h, depth, FILTER_FACES, slices=channels, grid=(k_cols, k_rows))
        shapes.append(Label(cursor + (w + dx) / 2, base + 14, str(n), 10, "middle", fill=MUTED))
        cursor += w + dx + 10
    return _Drawn(shapes, cursor - 10 - x, h - dy, mid)


def _wrap(text: str, room: float, size: float) -> list[str]:
    """``a, b, c`` in as many lines as it takes to fit ``room`` px (none for no text)."""
    lines: list[str] = []
    for part in text.split(", ") if text else []:
        if lines and _text_px(f"{lines[-1]}, {part}", size) <= room:
            lines[-1] += f", {part}"
        else:
            lines.append(part)
    return lines


def _compact(text: str) -> str:
    """``32 · 16 · 3 · 3`` as ``32·16·3·3``: the drawing has less room than the table."""
    return text.replace(" · ", "·")


def _lines_for(entry: Entry, unit: str, room: float, size: float) -> list[str]:
    """``unit = formula`` then ``= numbers = value``, each broken at its sums where it would not fit."""
    numbers = [_compact(entry.substituted)]
    if entry.terms:
        numbers.append(" + ".join(f"{t:,}" for t in entry.terms))
    numbers.append(fmt_value(entry.value))
    out: list[str] = []
    for head, text in ((f"{unit} = ", _compact(entry.formula)), ("= ", " = ".join(numbers))):
        line = head + text
        if _text_px(line, size) <= room:
            out.append(line)
            continue
        current = head
        for part in re.split(r"(?<= [+=]) ", text):
            if current.strip() and _text_px(current + part, size) > room:
                out.append(current.rstrip())
                current = "   "
            current += part + " "
        out.append(current.rstrip())
    return out


def _stage_text(x: float, y: float, facts: StageFacts, room: float) -> list[Shape]:
    shapes: list[Shape] = [Label(x, y, facts.filter_text, 12, "middle", fill=MUTED)]
    y += 22
    for entry, unit in ((facts.params, "params"), (facts.macs, "MACs")):
        for i, text in enumerate(_lines_for(entry, unit, room, 12)):
            shapes.append(Label(x, y, text, 12, "middle", bold=i == 0))
            y += 16
        y += 4
    return shapes


def _stage(x: float, base: float, mid: float, facts: StageFacts, width: float) -> tuple[list[Shape], float, float]:
    """A stage's filters centred in ``width`` at the height ``mid`` of the tensor they read, its title above and
    its working below; with the x where the filters begin and end."""
    start = x + (width - _filters(0, 0, facts).width) / 2
    group = _filters(start, mid, facts)
    above = _wrap(facts.options, width, 11)
    top = mid - group.height / 2 - 16 - 14 * len(above)
    shapes = [*group.shapes, Label(x + width / 2, top, facts.title, 13, "middle", bold=True)]
    shapes += [Label(x + width / 2, top + 15 + 14 * i, text, 11, "middle", fill=MUTED) for i, text in enumerate(above)]
    shapes += _stage_text(x + width / 2, base + 78, facts, width + SLOT_GAP)
    return shapes, start, start + group.width


def _arrow(x1: float, x2: float, y: float) -> Line:
    return Line(x1, y, x2, y, LINE_COLOUR, 1.4, arrow=True)


def _shift(shapes: Sequence[Shape], dy: float) -> list[Shape]:
    """``shapes`` moved down by ``dy``."""
    out: list[Shape] = []
    for s in shapes:
        if isinstance(s, Poly):
            out.append(replace(s, points=tuple((x, y + dy) for x, y in s.points)))
        elif isinstance(s, Line):
            out.append(replace(s, y1=s.y1 + dy, y2=s.y2 + dy))
        else:
            out.append(replace(s, y=s.y + dy))
    return out


def _extent(shapes: Sequence[Shape]) -> tuple[float, float]:
    """The highest and lowest y the shapes reach (a label from its cap height to its baseline)."""
    ys: list[float] = []
    for s in shapes:
        if isinstance(s, Poly):
            ys += [y for _, y in s.points]
        elif isinstance(s, Line):
            ys += [s.y1, s.y2]
        else:
            ys += [s.y - s.size, s.y + s.size * 0.25]
    return min(ys), max(ys)


def build_picture(c: Comparison, work: Working) -> Picture:
    """The drawing of a comparison, as shapes: the standard row above the separable row, inputs and outputs
    in the same columns. Each row is drawn on the base line 0, then moved under its heading."""
    standard, depthwise, pointwise = stage_facts(c, work)
    mid_shape = depthwise.stats.output_shape
    left = 70.0

    # the separable row sets the columns; the standard row's input and output stand above its own
    sep: list[Shape] = []
    slot = max(250.0, *(_filters(0, 0, f).width + 20 for f in (depthwise, pointwise)))
    inp = _tensor(left, 0, c.input_shape, INPUT_FACES, "input")
    dw_x = left + max(inp.width, 130) + SLOT_GAP
    dw, dw_start, dw_end = _stage(dw_x, 0, inp.mid, depthwise, slot)
    mid_x = dw_x + slot + SLOT_GAP
    mid = _tensor(mid_x, 0, mid_shape, MID_FACES, "depthwise output")
    pw_x = mid_x + max(mid.width, 130) + SLOT_GAP
    pw, pw_start, pw_end = _stage(pw_x, 0, mid.mid, pointwise, slot)
    out_x = pw_x + slot + SLOT_GAP
    out = _tensor(out_x, 0, c.separable.output_shape, OUTPUT_FACES, "output")
    sep += [*inp.shapes, *dw, *mid.shapes, *pw, *out.shapes]
    sep += [_arrow(left + inp.width + 8, dw_start - 10, inp.mid), _arrow(dw_end + 10, mid_x - 8, mid.mid),
            _arrow(mid_x + mid.width + 8, pw_start - 10, mid.mid), _arrow(pw_end + 10, out_x - 8, out.mid)]  # fmt: skip

    std_in = _tensor(left, 0, c.input_shape, INPUT_FACES, "input")
    std_x = left + max(std_in.width, 130) + SLOT_GAP
    conv, start, end = _stage(std_x, 0, std_in.mid, standard, out_x - SLOT_GAP - std_x)
    std_out = _tensor(out_x, 0, c.standard.output_shape, OUTPUT_FACES, "output")
    std = [*std_in.shapes, *conv, *std_out.shapes, _arrow(left + std_in.width + 8, start - 10, std_in.mid),
           _arrow(end + 10, out_x - 8, std_out.mid)]  # fmt: skip
    width = out_x + max(out.width, std_out.width, 130) + 60

    kind = f"{'ConvTranspose' if c.spec.transposed else 'Conv'}{c.spec.rank}d"
    shapes: list[Shape] = [
        Label(24, 34, f"{kind} {c.spec.in_channels} → {c.spec.out_channels}, kernel {dims(c.spec.kernel_size)}: "
              "standard and depthwise-separable", 19, bold=True),
        Label(24, 56, f"input {fmt_value(tuple(c.input_shape))}; params and MACs as counted (MACs exclude bias, whole "
              "batch); each block's channels go back", 12, fill=MUTED),
    ]  # fmt: skip
    y = 96.0
    for heading, row in (("standard convolution", std),
                         ("depthwise-separable: a depthwise stage, then a pointwise one", sep)):  # fmt: skip
        top, bottom = _extent(row)
        shapes += [Label(24, y, heading, 15, bold=True), *_shift(row, y + 24 - top)]
        y += 24 + bottom - top + 56

    # the foot: totals and the ratio, from the working
    totals = {e.quantity: e for e in work.item("separable").entries}
    param_ratio, mac_ratio, theory = work.ratios
    lines = [
        (f"standard: {fmt_value(c.standard.params)} params, {fmt_value(c.standard.macs)} MACs", False),
        (f"separable: {total(totals['params'], 'params')}, {total(totals['macs'], 'MACs')}", False),
        (f"separable / standard: params {' = '.join(chain(param_ratio)[1:])} ({reduction(c.param_ratio)}), "
         f"MACs {' = '.join(chain(mac_ratio)[1:])} ({reduction(c.mac_ratio)})", True),
        (f"MobileNet: {_compact(theory.formula)} = {_compact(theory.substituted)} = {fmt_value(theory.value)}", False),
    ]  # fmt: skip
    if c.per_sample_macs is not None:
        lines.append(("batch 0: every count is 0; the MAC ratio is that of one sample", False))
    elif "; " in theory.note:
        lines.append((theory.note.split("; ", 1)[1], False))
    foot = y - 8
    bottom = foot + 22 * len(lines) - 6
    shapes.append(Poly(((24, foot - 24), (width - 24, foot - 24), (width - 24, bottom), (24, bottom)), "#fafafa",
                       "#b0bec5"))  # fmt: skip
    shapes += [Label(40, foot + 22 * i, text, 13, bold=bold) for i, (text, bold) in enumerate(lines)]
    return Picture(width, bottom + 20, tuple(shapes))


# --- writers ------------------------------------------------------------------------------------------------------

_SUB = re.compile(r"\b([A-Za-z]+)_([A-Za-z]+)\b")


def _svg_text(text: str) -> str:
    """Escaped text with ``C_out`` written as C and a subscript ``out``."""
    parts, last = [], 0
    for m in _SUB.finditer(text):
        parts.append(html.escape(text[last : m.start()], quote=False))
        parts.append(f'{html.escape(m.group(1))}<tspan baseline-shift="sub" font-size="75%">'
                     f"{html.escape(m.group(2))}</tspan>")  # fmt: skip
        last = m.end()
    parts.append(html.escape(text[last:], quote=False))
    return "".join(parts)


def _n(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def to_svg(picture: Picture) -> str:
    """The picture as an SVG document; every label stays a ``<text>`` element."""
    w, h = _n(picture.width), _n(picture.height)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'font-family="DejaVu Sans, Verdana, Helvetica, Arial, sans-serif">',
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#37474f"/></marker>',
        "</defs>",
        f'<rect width="{w}" height="{h}" fill="#ffffff"/>',
    ]
    anchors = {"start": "start", "middle": "middle", "end": "end"}
    for s in picture.shapes:
        if isinstance(s, Poly):
            points = " ".join(f"{_n(x)},{_n(y)}" for x, y in s.points)
            out.append(f'<polygon points="{points}" fill="{s.fill}" stroke="{s.stroke}" '
                       f'stroke-width="{_n(s.width)}" stroke-linejoin="round"/>')  # fmt: skip
        elif isinstance(s, Line):
            marker = ' marker-end="url(#arrow)"' if s.arrow else ""
            out.append(f'<line x1="{_n(s.x1)}" y1="{_n(s.y1)}" x2="{_n(s.x2)}" y2="{_n(s.y2)}" stroke="{s.stroke}" '
                       f'stroke-width="{_n(s.width)}"{marker}/>')  # fmt: skip
        else:
            weight = ' font-weight="bold"' if s.bold else ""
            out.append(f'<text x="{_n(s.x)}" y="{_n(s.y)}" font-size="{_n(s.size)}" text-anchor="{anchors[s.anchor]}" '
                       f'fill="{s.fill}"{weight}>{_svg_text(s.text)}</text>')  # fmt: skip
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _mathtext(text: str) -> str:
    """``C_out`` as matplotlib mathtext, dollar signs in the text escaped."""
    escaped = text.replace("$", r"\$")
    return _SUB.sub(lambda m: rf"$\mathrm{{{m.group(1)}}}_{{\mathrm{{{m.group(2)}}}}}$", escaped)


def check_target(path: Path) -> None:
    """Refuse a suffix other than .svg or .png, or a PNG without matplotlib, before any work is done."""
    if path.suffix.lower() not in FORMATS:
        raise SpecError("diagram", path, "must end in .svg or .png")
    if path.suffix.lower() == ".png":
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise DeviceError(
                "--diagram: a PNG needs matplotlib; install the plot extra (pip install 'dsconv-cli[plot]') "
                "or write an .svg"
            ) from None


def write_png(picture: Picture, path: Path) -> None:
    """The picture drawn with matplotlib (the plot extra) at twice its size in pixels, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, Polygon

    from dsconv_cli.files import atomic_target

    dpi = 100
    figure = plt.figure(figsize=(picture.width / dpi, picture.height / dpi), dpi=dpi)
    axes = figure.add_axes((0, 0, 1, 1))
    axes.set_xlim(0, picture.width)
    axes.set_ylim(picture.height, 0)
    axes.axis("off")
    pt = 72 / dpi  # one pixel in points
    for s in picture.shapes:
        if isinstance(s, Poly):
            axes.add_patch(Polygon(s.points, closed=True, facecolor=s.fill, edgecolor=s.stroke, linewidth=s.width * pt,
                                   joinstyle="round"))  # fmt: skip
        elif isinstance(s, Line):
            style = "-|>" if s.arrow else "-"
            axes.add_patch(FancyArrowPatch((s.x1, s.y1), (s.x2, s.y2), arrowstyle=style, mutation_scale=10,
                                           color=s.stroke, linewidth=s.width * pt, shrinkA=0, shrinkB=0))  # fmt: skip
        else:
            align = {"start": "left", "end": "right"}.get(s.anchor, "center")
            axes.text(s.x, s.y, _mathtext(s.text), fontsize=s.size * pt, ha=align, va="baseline", color=s.fill,
                      fontweight="bold" if s.bold else "normal")  # fmt: skip
    try:
        with atomic_target(path) as tmp:
            figure.savefig(tmp, format="png", dpi=2 * dpi)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)


def write_diagram(c: Comparison, work: Working, path: Path) -> None:
    """Draw ``c`` to ``path``: SVG by the standard library, PNG through matplotlib."""
    picture = build_picture(c, work)
    if path.suffix.lower() == ".png":
        write_png(picture, path)
        return
    from dsconv_cli.files import write_atomic

    try:
        write_atomic(path, to_svg(picture))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
