"""The drawing of a comparison: its text comes from the records, SVG keeps it as text, errors are one line."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import invoke

from dsconv_cli.core import counting, working
from dsconv_cli.core.results import Comparison
from dsconv_cli.core.spec import resolve_spec
from dsconv_cli.errors import DeviceError, SpecError
from dsconv_cli.present import diagram, worksheet

SVG = "{http://www.w3.org/2000/svg}"
SEED_DIAGRAM = Path(__file__).parent.parent / "docs" / "seed-diagram.svg"


def _compare(input_shape: tuple[int, ...] = (1, 16, 50, 129), **layer: Any) -> Comparison:
    layer = {"in_channels": input_shape[1], "out_channels": 32, "kernel_size": 3, "padding": 1} | layer
    return counting.compare(resolve_spec(rank=len(input_shape) - 2, **layer), input_shape)


def _texts(svg: str) -> list[str]:
    """Every ``<text>`` element's text, subscripts joined as written (``C_out`` reads ``Cout``)."""
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]


def _svg(c: Comparison) -> str:
    return diagram.to_svg(diagram.build_picture(c, working.comparison_work(c)))


def test_seed_text_drawing() -> None:
    c = _compare()
    lines = worksheet.text_drawing(c, working.comparison_work(c))
    text = "\n".join(lines)
    for expected in ("standard", "depthwise-separable", "(1, 16, 50, 129)", "32 filters, each 16×3×3",
                     "16 filters, each 1×3×3: one per channel", "32 filters, each 16×1×1", "4,608 params",
                     "144 + 512 = 656 params", "928,800 + 3,302,400 = 4,231,200 MACs",
                     "MobileNet: 1/C_out + 1/(k_H · k_W) = 1/32 + 1/(3 · 3) = 0.1424"):  # fmt: skip
        assert expected in text, expected
    assert lines[0].startswith("standard ") and lines[1].count("(1, 16, 50, 129)") == 2


def test_seed_svg_keeps_its_numbers_as_text() -> None:
    texts = _texts(_svg(_compare()))
    joined = "\n".join(texts)
    for expected in (
        "= 32·16·3·3 = 4,608",  # standard params, under the standard conv's filters
        "params = Cout·Cin·kH·kW",
        "= 16·3·3 = 144",  # depthwise
        "= 32·16 = 512",  # pointwise
        "= 1·32·50·129·16·3·3 = 29,721,600",
        "separable: 144 + 512 = 656 params, 928,800 + 3,302,400 = 4,231,200 MACs",
        "MobileNet: 1/Cout + 1/(kH·kW) = 1/32 + 1/(3·3) = 0.1424",
        "(1, 16, 50, 129)",
        "(1, 32, 50, 129)",
        "16 filters, each 1×3×3: one per channel",
        "32 filters, each 16×1×1",
        "depthwise output",
    ):
        assert expected in joined, expected
    assert texts.count("(1, 16, 50, 129)") == 3  # input twice, the depthwise output once
    assert '<tspan baseline-shift="sub"' in _svg(_compare())


def test_checked_in_seed_diagram_is_current() -> None:
    """docs/seed-diagram.svg is what ``dsconv compare --no-bench --diagram docs/seed-diagram.svg`` writes."""
    assert SEED_DIAGRAM.read_text(encoding="utf-8") == _svg(_compare())


@pytest.mark.parametrize(
    ("input_shape", "layer"),
    [
        ((2, 64, 1000), dict(out_channels=64, kernel_size=5, padding=2, groups=64, bias=True)),  # 1-D
        ((1, 8, 16, 32, 32), dict(out_channels=8, groups=8, bias=True)),  # 3-D
        (
            (1, 16, 50, 65),
            dict(
                kernel_size=(1, 3),
                stride=(1, 2),
                padding=(0, 1),
                output_padding=(0, 1),
                transposed=True,
                bias=True,
                multiplier=2,
                norm="batch",
                act="prelu",
            ),
        ),  # fmt: skip
        ((0, 16, 50, 129), dict()),  # batch 0: a per-sample MAC ratio
        ((8, 256, 14, 14), dict(out_channels=512, stride=2, dilation=1, placement="mobilenet", norm="batch")),
        ((1, 3, 224, 224), dict(out_channels=32, kernel_size=(2, 4), padding="same", groups=1)),
    ],
)
def test_every_stage_is_drawn_with_its_counts(input_shape: tuple[int, ...], layer: dict[str, Any]) -> None:
    c = _compare(input_shape, **layer)
    work = working.comparison_work(c)
    svg = _svg(c)
    joined = "\n".join(_texts(svg))
    for item in ("standard", "depthwise", "pointwise"):
        entries = {e.quantity: e for e in work.item(item).entries}
        for quantity in ("params", "macs"):
            assert f"= {worksheet.fmt_value(entries[quantity].value)}" in joined, (item, quantity)
    for facts in worksheet.stage_facts(c, work):
        assert facts.filter_text in joined and facts.title in joined
    assert worksheet.fmt_value(tuple(c.standard.output_shape)) in joined
    picture = diagram.build_picture(c, work)
    labels = [s for s in picture.shapes if isinstance(s, diagram.Label)]
    assert all(0 <= s.x <= picture.width and 0 < s.y <= picture.height for s in labels)


def test_png_goes_through_matplotlib(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    c = _compare()
    target = tmp_path / "seed.png"
    diagram.write_diagram(c, working.comparison_work(c), target)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_targets_are_checked_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SpecError, match=r"--diagram out\.pdf: must end in \.svg or \.png"):
        diagram.check_target(Path("out.pdf"))
    diagram.check_target(Path("out.SVG"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    diagram.check_target(Path("out.svg"))  # no matplotlib needed
    with pytest.raises(DeviceError, match="a PNG needs matplotlib"):
        diagram.check_target(Path("out.png"))


def test_drawing_modules_import_neither_torch_nor_matplotlib() -> None:
    code = (
        "import sys\nfrom dsconv_cli.core import working\nfrom dsconv_cli.present import diagram, worksheet\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'rich') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the command line ----------------------------------------------------------------------------------------------


def test_compare_writes_the_diagram(tmp_path: Path) -> None:
    target = tmp_path / "seed.svg"
    result = invoke("compare", "--no-bench", "--diagram", str(target))
    assert result.code == 0
    assert result.stderr == f"wrote {target}\n"
    assert target.read_text(encoding="utf-8") == _svg(_compare())


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (["--diagram", "out.pdf"], 2, "error: --diagram out.pdf: must end in .svg or .png"),
        (
            ["--diagram", "/nonexistent/out.svg"],
            2,
            "error: --diagram /nonexistent/out.svg: directory /nonexistent does not exist",
        ),  # fmt: skip
        (
            ["--diagram", "out.svg", "--config", "configs/seed_example.yaml"],
            2,
            "error: --diagram out.svg: draws one layer; give it without --config",
        ),  # fmt: skip
    ],
)
def test_diagram_errors_are_one_line(args: list[str], code: int, line: str) -> None:
    result = invoke("compare", "--no-bench", *args)
    assert (result.code, result.stderr) == (code, line + "\n")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_an_output_error(tmp_path: Path) -> None:
    link = tmp_path / "full.svg"
    link.symlink_to("/dev/full")
    result = invoke("compare", "--no-bench", "--diagram", str(link))
    assert result.code == 3
    assert result.stderr == f"error: cannot write {link}: No space left on device\n"
