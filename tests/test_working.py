"""Show the working: every substituted expression evaluates to the counted value, and to PyTorch's."""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsconv_cli.core import counting, working
from dsconv_cli.core.results import Comparison
from dsconv_cli.core.spec import ConvSpec, PaddingMode, resolve_spec
from dsconv_cli.errors import SpecError
from dsconv_cli.present import worksheet
from dsconv_cli.pt.builder import build_stage

# --- a tiny safe evaluator: integers, + − · × /, parentheses, floor(...), tuples and named symbols ----------------

Number = Fraction | tuple[Fraction, ...]


def evaluate(text: str, symbols: Mapping[str, int | Fraction] | None = None) -> Number:
    """``text`` with ``·``/``×`` as ``*`` and ``/`` exact (a Fraction); names only from ``symbols``."""
    source = text.replace("·", "*").replace("×", "*").replace("−", "-")
    tree = ast.parse(source, mode="eval").body
    names = dict(symbols or {})

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        if isinstance(node, ast.Name):
            return Fraction(names[node.id])
        if isinstance(node, ast.Tuple):
            return tuple(ev(e) for e in node.elts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            ops = {ast.Add: a + b, ast.Sub: a - b, ast.Mult: a * b} if not isinstance(node.op, ast.Div) else {}
            if isinstance(node.op, ast.Div):
                return a / b
            return ops[type(node.op)]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "floor":
            (arg,) = node.args
            return Fraction(math.floor(ev(arg)))
        raise ValueError(f"not allowed in a working expression: {ast.dump(node)}")

    result: Number = ev(tree)
    return result


def test_evaluator_refuses_anything_else() -> None:
    assert evaluate("floor((129 + 2 · 1 − 1 · (3 − 1) − 1) / 2) + 1") == 65
    assert evaluate("1/32 + 1/(3 · 3)") == Fraction(41, 288)
    for text in ("__import__('os')", "2 ** 3", "x.y", "[1]"):
        with pytest.raises((ValueError, KeyError)):
            evaluate(text)


# --- the symbols a formula may use, from the spec and a stage's shapes --------------------------------------------


def symbols(spec: ConvSpec, input_shape: tuple[int, ...], output_shape: tuple[int, ...]) -> dict[str, int]:
    out = {"N": input_shape[0], "C_in": spec.in_channels, "C_out": spec.out_channels, "g": spec.groups,
           "m": spec.multiplier}  # fmt: skip
    op = spec.output_padding or (0,) * spec.rank
    for i, d in enumerate(working.DIM_NAMES[spec.rank]):
        k, dil = spec.kernel_size[i], spec.dilation[i]
        out |= {f"k_{d}": k, f"s_{d}": spec.stride[i], f"d_{d}": dil, f"op_{d}": op[i],
                f"I_{d}": input_shape[2 + i], f"O_{d}": output_shape[2 + i], f"P_{d}": dil * (k - 1)}  # fmt: skip
        if not isinstance(spec.padding, PaddingMode):
            out[f"p_{d}"] = spec.padding[i]
        elif spec.padding is PaddingMode.VALID:
            out[f"p_{d}"] = 0
    return out


def same(value: Number, expected: Any) -> bool:
    if isinstance(expected, float):
        return isinstance(value, Fraction) and math.isclose(value, expected, rel_tol=1e-12)
    return value == (tuple(expected) if isinstance(expected, tuple | list) else expected)


def check_working(c: Comparison) -> working.Working:
    """Every entry: its substituted numbers and its formula (symbols from the spec) evaluate to its value, and
    its value is the counted one."""
    work = working.comparison_work(c)
    stats = {"standard": c.standard.stages[0], "depthwise": c.separable.stages[0],
             "pointwise": c.separable.stages[1], "separable": c.separable}  # fmt: skip
    for item in work.items:
        s = stats[item.item]
        names = symbols(c.spec, s.input_shape, s.output_shape)
        counted = {"params": s.params, "macs": s.macs, "other_ops": s.elementwise_ops, "buffers": s.buffers,
                   "output_shape": tuple(s.output_shape)}  # fmt: skip
        quantities = [e.quantity for e in item.entries]
        assert {"params", "macs"} <= set(quantities)
        if c.input_shape[0] > 0:  # at batch 0 a stage's bias adds are written out, and come to 0
            assert ("other_ops" in quantities) == (s.elementwise_ops > 0), item.item
        assert ("buffers" in quantities) == (s.buffers > 0), item.item
        for e in item.entries:
            assert same(evaluate(e.substituted), e.value), (item.item, e)
            assert same(evaluate(e.formula, names), e.value), (item.item, e)
            if e.quantity == "output_size":
                assert e.value == s.output_shape[2 + working.DIM_NAMES[c.spec.rank].index(e.dim)]
            else:
                assert e.value == counted[e.quantity], (item.item, e)
            if e.terms:
                assert sum(e.terms) == e.value
    ratio_names = {"params_sep": c.separable.params, "params_std": c.standard.params,
                   "MACs_sep": c.separable.macs, "MACs_std": c.standard.macs} | symbols(c.spec, c.input_shape,
                                                                                         c.standard.output_shape)  # fmt: skip
    values = {"param_ratio": c.param_ratio, "mac_ratio": c.mac_ratio, "theoretical_ratio": c.theoretical_ratio}
    assert [e.quantity for e in work.ratios] == list(values)
    for e in work.ratios:
        assert e.value == values[e.quantity]
        assert same(evaluate(e.substituted), e.value), e
        if c.per_sample_macs is None:
            assert same(evaluate(e.formula, ratio_names), e.value), e
    return work


# --- the seed example and the reference cases ----------------------------------------------------------------------


def _compare(input_shape: tuple[int, ...], **layer: Any) -> Comparison:
    return counting.compare(resolve_spec(rank=len(input_shape) - 2, **layer), input_shape)


def _lines(work: working.Working, item: str) -> list[str]:
    return [worksheet.line(e) for e in work.item(item).entries]


def test_seed_example_reads_like_the_study_note() -> None:
    work = check_working(_compare((1, 16, 50, 129), in_channels=16, out_channels=32, kernel_size=3, padding=1))
    assert "C_out · C_in · k_H · k_W = 32 · 16 · 3 · 3 = 4,608" in _lines(work, "standard")
    assert "C_in · k_H · k_W = 16 · 3 · 3 = 144" in _lines(work, "depthwise")
    assert "C_out · C_in = 32 · 16 = 512" in _lines(work, "pointwise")
    assert "C_in · k_H · k_W + C_out · C_in = 16 · 3 · 3 + 32 · 16 = 144 + 512 = 656" in _lines(work, "separable")
    # 1·32·50·129 outputs, each 16·3·3 MACs
    assert "N · C_out · O_H · O_W · C_in · k_H · k_W = 1 · 32 · 50 · 129 · 16 · 3 · 3 = 29,721,600" in _lines(
        work, "standard"
    )
    assert ("floor((I_W + 2 · p_W − d_W · (k_W − 1) − 1) / s_W) + 1 = floor((129 + 2 · 1 − 1 · (3 − 1) − 1) / 1) + 1"
            " = 129") in _lines(work, "standard")  # fmt: skip
    ratios = [worksheet.line(e) for e in work.ratios]
    assert "1/C_out + 1/(k_H · k_W) = 1/32 + 1/(3 · 3) = 0.1424" in ratios
    assert "MACs_sep / MACs_std = 4,231,200 / 29,721,600 = 0.1424" in ratios


@pytest.mark.parametrize(
    ("layer", "input_shape", "item", "expected"),
    [
        # c1: bias adds C_out params and one add per output element, never MACs
        (dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, bias=True), (1, 16, 50, 129),
         "standard", "C_out · C_in · k_H · k_W + C_out = 32 · 16 · 3 · 3 + 32 = 4,640"),
        (dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, bias=True), (1, 16, 50, 129),
         "standard", "N · C_out · O_H · O_W = 1 · 32 · 50 · 129 = 206,400"),
        # d: groups 16 (multiplier 2): 32·(16/16)·9 + 32 = 320
        (dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, groups=16, bias=True), (1, 16, 50, 129),
         "standard", "C_out · (C_in / g) · k_H · k_W + C_out = 32 · (16 / 16) · 3 · 3 + 32 = 320"),
        # e: W = floor((129 + 2·1 − 1·(3−1) − 1)/2) + 1 = 65; H with dilation 2, padding 2
        (dict(in_channels=16, out_channels=16, kernel_size=3, stride=(1, 2), padding=(2, 1), dilation=(2, 1),
              groups=16, bias=True), (1, 16, 50, 129),
         "standard", "floor((I_W + 2 · p_W − d_W · (k_W − 1) − 1) / s_W) + 1 = "
                     "floor((129 + 2 · 1 − 1 · (3 − 1) − 1) / 2) + 1 = 65"),
        (dict(in_channels=16, out_channels=16, kernel_size=3, stride=(1, 2), padding=(2, 1), dilation=(2, 1),
              groups=16, bias=True), (1, 16, 50, 129),
         "standard", "floor((I_H + 2 · p_H − d_H · (k_H − 1) − 1) / s_H) + 1 = "
                     "floor((50 + 2 · 2 − 2 · (3 − 1) − 1) / 1) + 1 = 50"),
        # f: 1-D, L only
        (dict(in_channels=64, out_channels=64, kernel_size=5, padding=2, groups=64, bias=True), (2, 64, 1000),
         "depthwise", "N · C_in · O_L · k_L = 2 · 64 · 1,000 · 5 = 640,000"),
        # g: 3-D, D·H·W
        (dict(in_channels=8, out_channels=8, kernel_size=3, padding=1, groups=8, bias=True), (1, 8, 16, 32, 32),
         "depthwise", "C_in · k_D · k_H · k_W + C_in = 8 · 3 · 3 · 3 + 8 = 224"),
        # h: transposed: W = (65 − 1)·2 − 2·1 + 1·(3 − 1) + 1 + 1 = 130; MACs scale with the input
        (dict(in_channels=16, out_channels=16, kernel_size=(1, 3), stride=(1, 2), padding=(0, 1),
              output_padding=(0, 1), groups=16, bias=True, transposed=True), (1, 16, 50, 65),
         "standard", "(I_W − 1) · s_W − 2 · p_W + d_W · (k_W − 1) + op_W + 1 = "
                     "(65 − 1) · 2 − 2 · 1 + 1 · (3 − 1) + 1 + 1 = 130"),
        (dict(in_channels=16, out_channels=16, kernel_size=(1, 3), stride=(1, 2), padding=(0, 1),
              output_padding=(0, 1), groups=16, bias=True, transposed=True), (1, 16, 50, 65),
         "standard", "N · C_in · I_H · I_W · (C_out / g) · k_H · k_W = 1 · 16 · 50 · 65 · (16 / 16) · 1 · 3 = 156,000"),
        # x1: 'same' with an even kernel pads d·(k − 1) = 3 in W
        (dict(in_channels=16, out_channels=32, kernel_size=(2, 4), padding="same", bias=True), (1, 16, 50, 129),
         "standard", "floor((I_W + P_W − d_W · (k_W − 1) − 1) / s_W) + 1 = "
                     "floor((129 + (1 · (4 − 1)) − 1 · (4 − 1) − 1) / 1) + 1 = 129"),
        # multiplier 2: the depthwise stage makes C_in·m channels, the pointwise reads them
        (dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, multiplier=2), (1, 16, 50, 129),
         "depthwise", "(N, C_in · m, O_H, O_W) = (1, 16 · 2, 50, 129) = (1, 32, 50, 129)"),
        (dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, multiplier=2), (1, 16, 50, 129),
         "pointwise", "C_out · C_in · m = 32 · 16 · 2 = 1,024"),
        # the seed's full module: BatchNorm2d (2·C params, 2·C + 1 buffers, 2 ops) and PReLU (one slope)
        (dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, norm="batch", act="prelu", slopes="1"),
         (1, 16, 50, 129), "pointwise", "C_out · C_in + 2 · C_out + 1 = 32 · 16 + 2 · 32 + 1 = 577"),
        (dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, norm="batch", act="prelu", slopes="1"),
         (1, 16, 50, 129), "pointwise", "(2 + 1) · N · C_out · O_H · O_W = (2 + 1) · 1 · 32 · 50 · 129 = 619,200"),
        (dict(in_channels=16, out_channels=32, kernel_size=3, padding=1, norm="batch"), (1, 16, 50, 129),
         "pointwise", "2 · C_out + 1 = 2 · 32 + 1 = 65"),
    ],
)  # fmt: skip
def test_reference_cases_show_their_formulas(
    layer: dict[str, Any], input_shape: tuple[int, ...], item: str, expected: str
) -> None:
    work = check_working(_compare(input_shape, **layer))
    assert expected in _lines(work, item)


def test_generalised_ratio_names_multiplier_and_groups() -> None:
    c = _compare((1, 16, 8, 8), in_channels=16, out_channels=32, kernel_size=3, padding=1, groups=4, multiplier=2)
    work = check_working(c)
    theory = work.ratios[-1]
    # 2·4·(1/32 + 1/9) = 1.1389
    assert worksheet.line(theory) == "m · g · (1/C_out + 1/(k_H · k_W)) = 2 · 4 · (1/32 + 1/(3 · 3)) = 1.1389"
    one_dim = check_working(_compare((1, 4, 20), in_channels=4, out_channels=8, kernel_size=5, padding=2))
    assert worksheet.line(one_dim.ratios[-1]) == "1/C_out + 1/k_L = 1/8 + 1/5 = 0.3250"


def test_batch_zero_ratio_is_per_sample() -> None:
    work = check_working(_compare((0, 16, 50, 129), in_channels=16, out_channels=32, kernel_size=3, padding=1))
    mac_ratio = work.ratios[1]
    assert mac_ratio.substituted == "4231200 / 29721600" and "batch 0" in mac_ratio.note
    assert worksheet.line(work.item("standard").entries[1]).endswith("= 0")


def test_json_places_working_under_each_item() -> None:
    from dsconv_cli.present.export import comparison_dict

    c = _compare((1, 16, 50, 129), in_channels=16, out_channels=32, kernel_size=3, padding=1, bias=True)
    doc = worksheet.with_working(comparison_dict(c), working.comparison_work(c))
    standard_params = doc["standard"]["working"][0]
    assert standard_params == {
        "quantity": "params", "formula": "C_out · C_in · k_H · k_W + C_out", "substituted": "32 · 16 · 3 · 3 + 32",
        "value": 4640, "note": "weights + bias",
    }  # fmt: skip
    assert doc["separable"]["working"][0]["terms"] == [160, 544]
    for place in (doc["standard"], doc["separable"], doc["separable"]["depthwise"], doc["separable"]["pointwise"]):
        for entry in place["working"]:
            assert same(evaluate(entry["substituted"]), entry["value"] if not isinstance(entry["value"], list)
                        else tuple(entry["value"]))  # fmt: skip
    assert [e["quantity"] for e in doc["working"]] == ["param_ratio", "mac_ratio", "theoretical_ratio"]


def test_latex_for_github_math() -> None:
    assert worksheet.latex("C_out · (C_in / g) · k_H") == r"C_{\mathrm{out}} \cdot (C_{\mathrm{in}} / g) \cdot k_{H}"
    assert worksheet.latex("floor((50 + 2 · 1) / 1) + 1") == r"\left\lfloor (50 + 2 \cdot 1) / 1 \right\rfloor + 1"
    assert worksheet.latex("4,608") == "4{,}608"
    lines = worksheet.markdown_lines(working.comparison_work(
        _compare((1, 16, 50, 129), in_channels=16, out_channels=32, kernel_size=3, padding=1)))  # fmt: skip
    assert (r"- params: $C_{\mathrm{in}} \cdot k_{H} \cdot k_{W} + C_{\mathrm{out}} \cdot C_{\mathrm{in}} = "
            r"16 \cdot 3 \cdot 3 + 32 \cdot 16 = 144 + 512 = 656$") in lines  # fmt: skip


# --- random specs: the counts, and real PyTorch modules --------------------------------------------------------------


@st.composite
def layer_specs(draw: st.DrawFn) -> tuple[ConvSpec, tuple[int, ...]]:
    """Ranks 1-3, groups, multiplier, stride, padding (numbers, same, valid), dilation, transposed with output
    padding, bias on either stage, batch norm and activations in both placements, both PReLU slope kinds."""
    rank = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    in_channels = groups * draw(st.integers(1, 3))
    out_channels = groups * draw(st.integers(1, 3))
    small = st.integers(1, 3)
    kernel = tuple(draw(small) for _ in range(rank))
    transposed = draw(st.booleans())
    stride = tuple(draw(small) for _ in range(rank))
    dilation = tuple(draw(small) for _ in range(rank))
    padding: tuple[int, ...] | str = tuple(draw(st.integers(0, 2)) for _ in range(rank))
    if not transposed:
        padding = draw(st.sampled_from([padding, "valid"] + (["same"] if set(stride) == {1} else [])))
    output_padding = (
        tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True))
        if transposed
        else (0,) * rank
    )
    spec = resolve_spec(
        rank=rank, in_channels=in_channels, out_channels=out_channels, kernel_size=kernel, stride=stride,
        padding=padding, dilation=dilation, groups=groups, multiplier=draw(st.integers(1, 2)),
        bias=draw(st.booleans()), depthwise_bias=draw(st.sampled_from([None, True, False])), transposed=transposed,
        output_padding=output_padding, norm=draw(st.sampled_from(["none", "batch"])),
        act=draw(st.sampled_from(["none", "relu", "prelu", "silu"])),
        placement=draw(st.sampled_from(["classic", "mobilenet"])), slopes=draw(st.sampled_from(["1", "channel"])),
    )  # fmt: skip
    spatial = tuple(draw(st.integers(1, 7 if rank < 3 else 4)) for _ in range(rank))
    return spec, (draw(st.integers(0, 2)), in_channels, *spatial)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layer_specs())
def test_every_entry_evaluates_to_the_count_and_to_pytorch(drawn: tuple[ConvSpec, tuple[int, ...]]) -> None:
    spec, input_shape = drawn
    try:
        c = counting.compare(spec, input_shape)
    except SpecError:
        return
    work = check_working(c)
    (standard,), separable = spec.standard(), spec.separable()
    inputs = {"standard": torch.randn(input_shape), "depthwise": torch.randn(input_shape)}
    for stage in (standard, *separable):
        entries = {e.quantity + e.dim: e for e in work.item(stage.name).entries}
        module = build_stage(stage).eval()
        assert evaluate(entries["params"].substituted) == sum(p.numel() for p in module.parameters())
        if "buffers" in entries:
            assert evaluate(entries["buffers"].substituted) == sum(b.numel() for b in module.buffers())
        with torch.no_grad():
            y = module(inputs[stage.name])
        assert evaluate(entries["output_shape"].substituted) == tuple(y.shape)
        for i, d in enumerate(working.DIM_NAMES[spec.rank]):
            if "output_size" + d in entries:
                assert evaluate(entries["output_size" + d].substituted) == y.shape[2 + i]
        inputs["pointwise"] = y  # the depthwise output feeds the pointwise stage


# --- the command line ----------------------------------------------------------------------------------------------


def test_compare_shows_the_seed_working() -> None:
    from conftest import invoke

    result = invoke("compare", "--no-bench", "--show-work", env={"COLUMNS": "120"})
    assert result.code == 0 and result.stderr == ""
    for expected in ("C_out · C_in · k_H · k_W", "= 32 · 16 · 3 · 3 = 4,608", "= 16 · 3 · 3 + 32 · 16 = 144 + 512 = 656",
                     "= 1/32 + 1/(3 · 3) = 0.1424", "16 filters, each 1×3×3: one per channel"):  # fmt: skip
        assert expected in result.stdout, expected
    plain = invoke("compare", "--no-bench", env={"COLUMNS": "120"}).stdout
    assert result.stdout.startswith(plain) and "working" not in plain


def test_compare_markdown_writes_github_math() -> None:
    from conftest import invoke

    result = invoke("compare", "--no-bench", "--show-work", "--format", "markdown")
    assert result.code == 0
    assert "#### Working" in result.stdout
    assert (
        r"- params: $C_{\mathrm{out}} \cdot C_{\mathrm{in}} \cdot k_{H} \cdot k_{W} = 32 \cdot 16 \cdot 3 \cdot 3 = 4{,}608$"
        in (result.stdout)
    )


def test_compare_json_working_evaluates_to_every_count() -> None:
    import json

    from conftest import invoke

    args = ["compare", "--no-bench", "--format", "json", "-i", "8", "-o", "12", "-k", "3,5", "--stride", "2",
            "--groups", "4", "--multiplier", "2", "--bias", "--norm", "batch", "--act", "prelu",
            "--input-shape", "2,8,17,23"]  # fmt: skip
    plain = json.loads(invoke(*args).stdout)
    doc = json.loads(invoke(*args, "--show-work").stdout)
    assert doc["schema_version"] == plain["schema_version"] == 2  # an optional addition: same schema
    (c,) = doc["comparisons"]
    places = {"standard": c["standard"], "depthwise": c["separable"]["depthwise"],
              "pointwise": c["separable"]["pointwise"], "separable": c["separable"]}  # fmt: skip
    for name, place in places.items():
        for entry in place["working"]:
            value = tuple(entry["value"]) if isinstance(entry["value"], list) else entry["value"]
            assert same(evaluate(entry["substituted"]), value), (name, entry)
            if entry["quantity"] in ("params", "macs", "buffers", "output_shape"):
                assert entry["value"] == place[entry["quantity"]], (name, entry)
            if entry["quantity"] == "other_ops":
                assert entry["value"] == place["elementwise_ops"]
    ratios = {e["quantity"]: e["value"] for e in c["working"]}
    assert ratios == {"param_ratio": c["param_ratio"], "mac_ratio": c["mac_ratio"],
                      "theoretical_ratio": c["theoretical_ratio"]}  # fmt: skip
    for place in (c, *places.values()):
        del place["working"]
    assert doc == plain  # nothing else changes


def test_show_work_refuses_csv() -> None:
    from conftest import invoke

    for command in (["compare", "--no-bench"], ["report", "configs/seed_example.yaml", "--no-bench"]):
        result = invoke(*command, "--show-work", "--format", "csv")
        assert (result.code, result.stderr) == (2, "error: --format csv: has no column for --show-work; use table, "
                                                   "markdown or json\n")  # fmt: skip


def test_report_shows_each_conv_layer_working() -> None:
    import json

    from conftest import invoke

    configs = ["configs/gtcrn_blocks.yaml", "configs/mobilenet_v1.yaml", "configs/seed_example.yaml"]
    doc = json.loads(invoke("report", *configs, "--no-bench", "--show-work", "--format", "json").stdout)
    shown = 0
    for config in doc["configs"]:
        for point in config["points"]:
            for layer in point["layers"]:
                for column in ("standard", "separable"):
                    if "working" not in layer[column]:
                        continue
                    shown += 1
                    for entry in layer[column]["working"]:
                        if entry["quantity"] in ("params", "macs", "buffers"):
                            assert entry["value"] == layer[column][entry["quantity"]], (layer["name"], entry)
                        assert same(evaluate(entry["substituted"]), tuple(entry["value"]) if isinstance(
                            entry["value"], list) else entry["value"])  # fmt: skip
    assert shown > 20
    table = invoke("report", "configs/seed_example.yaml", "--no-bench", "--show-work", env={"COLUMNS": "120"})
    assert table.code == 0
    assert "conv: working" in table.stdout and "= 16 · 3 · 3 + 32 · 16 = 144 + 512 = 656" in table.stdout
    markdown = invoke("report", "configs/seed_example.yaml", "--no-bench", "--show-work", "--format", "markdown")
    assert "#### conv: working" in markdown.stdout and "144 + 512 = 656$" in markdown.stdout
