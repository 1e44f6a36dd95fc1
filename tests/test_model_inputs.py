"""analyze on the inputs real models take, with honest totals on every path: each against PyTorch itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import invoke
from models import (
    LLAMA_7B,
    DictModel,
    Filterbank,
    FunctionalConv,
    ReadsValues,
    SEBlock,
    TiedConvs,
    TinyLM,
    ViT,
    make_lm,
)
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

import dsconv_cli
from dsconv_cli.api import analyze
from dsconv_cli.core.results import ModelAnalysis
from dsconv_cli.present import document, render, rows


def flop_counter_macs(model: nn.Module, *args: object, **kwargs: object) -> int:
    """PyTorch's FlopCounterMode / 2 on a real CPU forward, on the math attention kernel it has formulas for."""
    with FlopCounterMode(display=False) as counter, sdpa_kernel([SDPBackend.MATH]), torch.no_grad():
        model.eval()(*args, **kwargs)
    return counter.get_total_flops() // 2


def unique_params(model: nn.Module) -> int:
    return sum({id(p): p.numel() for p in model.parameters()}.values())


def summary(a: ModelAnalysis) -> list[str]:
    return rows.model_summary(a)


# --- inputs as models take them --------------------------------------------------------------------


def test_an_embedding_model_with_int64_ids_and_a_bool_mask_is_counted_exactly() -> None:
    torch.manual_seed(0)
    model = TinyLM()
    ids, mask = torch.zeros(2, 16, dtype=torch.int64), torch.ones(2, 16, dtype=torch.bool)
    result = analyze(model, (2, 16), input_dtype="int64", input_kw={"attention_mask": ((2, 16), "bool")}, verify=True)
    assert result.counted_on == "meta"
    assert result.totals.macs == flop_counter_macs(model, ids, attention_mask=mask)
    assert result.totals.params == unique_params(model)  # the head tied to the embedding: once
    assert result.failed_checks == []
    assert [(i.name, i.shape, i.dtype) for i in result.inputs] == [("input_ids", (2, 16), "int64"),
                                                                   ("attention_mask", (2, 16), "bool")]  # fmt: skip
    assert result.keyword_inputs == ("attention_mask",)
    out = model(ids, attention_mask=mask)
    assert [(o.name, o.shape) for o in result.totals.outputs] == [
        ("logits", tuple(out.logits.shape)),
        *[(f"hidden.{i}", tuple(h.shape)) for i, h in enumerate(out.hidden)],
    ]
    assert result.totals.uncounted == () and result.totals.idle_params == ()
    by_op = {o.name: o for o in result.totals.by_op}
    assert by_op["aten::_safe_softmax"].kind == "counted" and by_op["aten::_safe_softmax"].other_ops > 0


def test_the_command_takes_dtypes_and_keyword_inputs() -> None:
    args = ["analyze", "tests/models.py:TinyLM", "--input-shape", "2,16", "--input-dtype", "int64",
            "--input-kw", "attention_mask=2,16:bool"]  # fmt: skip
    table = invoke(*args)
    assert table.code == 0, table.stderr
    text = " ".join(table.stdout.split())
    assert text.startswith(
        "tests/models.py:TinyLM on input_ids (2, 16) int64, attention_mask=(2, 16) bool (counted on meta)"
    )
    assert "outputs logits (2, 16, 256), hidden.0 (2, 16, 32), hidden.1 (2, 16, 32)" in text
    doc = json.loads(invoke(*args, "-f", "json").stdout)
    assert doc["inputs"] == [{"name": "input_ids", "shape": [2, 16], "dtype": "int64", "keyword": False},
                             {"name": "attention_mask", "shape": [2, 16], "dtype": "bool", "keyword": True}]  # fmt: skip
    assert doc["input_shapes"] == [[2, 16], [2, 16]]
    assert [o["name"] for o in doc["totals"]["outputs"]] == ["logits", "hidden.0", "hidden.1"]
    api = dsconv_cli.analyze("tests/models.py:TinyLM", (2, 16), input_dtype="int64",
                             input_kw={"attention_mask": "2,16:bool"})  # fmt: skip
    assert dsconv_cli.to_dict(api) == doc


class ChecksIds(nn.Module):
    """Reads its ids (so it runs on the CPU) and refuses ids that are all zero or not below 10."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not 0 < int(ids.max()) < 10:
            raise ValueError(f"ids must lie in [0, 10) and not all be 0, got max {int(ids.max())}")
        return self.embed(ids)


def test_vocab_draws_token_ids_below_it() -> None:
    result = analyze(ChecksIds(), (2, 32), input_dtype="int64", vocab=10)
    assert result.counted_on == "cpu"
    assert result.totals.output_shapes == ((2, 32, 4),)
    with pytest.raises(dsconv_cli.errors.TargetError, match="ids must lie in"):
        analyze(ChecksIds(), (2, 32), input_dtype="int64")  # zeros


def test_a_dict_input_and_a_dict_output_from_an_example_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    batch = {"image": torch.randn(2, 3, 8, 8), "ids": torch.randint(0, 100, (2, 5))}
    file = tmp_path / "batch.pt"
    torch.save((batch,), file)  # a tuple: the dict is the forward's one positional input
    result = invoke("analyze", "tests/models.py:DictModel", "--example-inputs", str(file), "-f", "json", "--verify")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [(i["name"], i["dtype"]) for i in doc["inputs"]] == [("batch.image", "float32"), ("batch.ids", "int64")]
    assert [(o["name"], o["shape"]) for o in doc["totals"]["outputs"]] == [
        ("score", [2]), ("features.0", [2, 8]), ("features.1", [2, 8])
    ]  # fmt: skip
    torch.manual_seed(0)
    assert doc["totals"]["macs"] == flop_counter_macs(DictModel(), batch)
    assert doc["advisor"]["candidates"][0]["path"] == "conv"


def test_example_inputs_by_keyword_and_both_ways(tmp_path: Path) -> None:
    ids, mask = torch.randint(0, 256, (1, 12)), torch.ones(1, 12, dtype=torch.bool)
    for held in ({"input_ids": ids, "attention_mask": mask}, {"args": [ids], "kwargs": {"attention_mask": mask}}):
        file = tmp_path / "inputs.pt"
        torch.save(held, file)
        result = analyze(TinyLM(), example_inputs=file)
        assert result.totals.macs == flop_counter_macs(TinyLM(), ids, attention_mask=mask)
        assert "attention_mask" in result.keyword_inputs
    direct = analyze(TinyLM(), example_inputs=(ids,))  # the API takes the inputs themselves
    assert direct.inputs[0].shape == (1, 12) and direct.keyword_inputs == ()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--input-dtype", "int64"], "error: --input-shape (none): give the forward's inputs"),
        (["--input-shape", "1,8", "--input-dtype", "int65"], "error: --input-dtype int65: is not a dtype; valid:"),
        (["--input-shape", "1,8", "--input-dtype", "int64", "--input-dtype", "bool"],
         "error: --input-dtype int64,bool: 2 dtype(s) for 1 input shape(s)"),
        (["--input-kw", "mask"], "error: --input-kw mask: expected NAME=SHAPE[:DTYPE]"),
        (["--input-kw", "mask=1,x"], "error: --input-kw 1,x: expected an integer or comma-separated integers"),
        (["--input-kw", "m=1,8", "--input-kw", "m=1,8"], "error: --input-kw m: is given twice"),
        (["--example-inputs", "nowhere.pt"], "error: --example-inputs nowhere.pt: no such file"),
        (["--example-inputs", "nowhere.pt", "--input-shape", "1,8"],
         "error: --example-inputs nowhere.pt: holds the exact inputs; give it instead of --input-shape"),
        (["--input-shape", "1,8", "--vocab", "0"], "error: --vocab 0: must be a positive integer"),
        (["--input-shape", "1,8", "--columns", "kernel,color"], "error: --columns kernel,color: expected a"),
    ],
)  # fmt: skip
def test_bad_inputs_are_one_line_exit_2(extra: list[str], message: str) -> None:
    result = invoke("analyze", "tests/models.py:TinyLM", *extra)
    assert result.code == 2, result.stdout
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_config_model_section_takes_the_same_inputs(tmp_path: Path) -> None:
    config = tmp_path / "lm.yaml"
    models = Path("tests/models.py").resolve()
    config.write_text(f"model:\n  target: {models}:TinyLM\n  input_shape: [2, 16]\n  input_dtype: [int64]\n"
                      "  input_kw: {attention_mask: '2,16:bool'}\n  vocab: 256\n", encoding="utf-8")  # fmt: skip
    report = dsconv_cli.run_config(config, trust_model_code=True)
    assert report.model is not None
    assert [(i.name, i.dtype) for i in report.model.inputs] == [("input_ids", "int64"), ("attention_mask", "bool")]
    assert report.model.totals.macs == analyze(TinyLM(), (2, 16), input_dtype="int64",
                                               input_kw={"attention_mask": ((2, 16), "bool")}).totals.macs  # fmt: skip
    config.write_text(f"model:\n  target: {models}:TinyLM\n  input_dtype: [int64]\n", encoding="utf-8")
    with pytest.raises(dsconv_cli.errors.ConfigError, match="model.input_shape"):
        dsconv_cli.load_config(config)


# --- one count on every path ---------------------------------------------------------------------


def test_a_forward_that_reads_values_counts_on_the_cpu_what_the_meta_device_counts() -> None:
    torch.manual_seed(0)
    cpu = analyze(ReadsValues(reads=True), (2, 6, 16), verify=True)
    meta = analyze(ReadsValues(reads=False), (2, 6, 16))
    assert (cpu.counted_on, meta.counted_on) == ("cpu", "meta")
    assert (cpu.totals.macs, cpu.totals.other_ops, cpu.totals.params) == (
        meta.totals.macs, meta.totals.other_ops, meta.totals.params
    )  # fmt: skip
    assert [(r.path, r.macs, r.other_ops) for r in cpu.totals.rows] == [(r.path, r.macs, r.other_ops)
                                                                        for r in meta.totals.rows]  # fmt: skip
    assert cpu.totals.uncounted == () and not cpu.totals.lower_bound
    assert cpu.failed_checks == []
    # fused kernels (MultiheadAttention's fast path, the CPU's fused attention, oneDNN's LSTM) were never run
    assert not {"aten::_native_multi_head_attention", "aten::mkldnn_rnn_layer"} & {o.name for o in cpu.totals.by_op}
    assert torch.backends.mha.get_fastpath_enabled() and torch._C._get_mkldnn_enabled()  # switched back on
    assert "verified: 2 checks pass" in summary(cpu)[-1]


@torch.library.custom_op("dsconv_test::fused_matmul", mutates_args=())
def fused_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a @ b


@fused_matmul.register_fake
def _(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a.new_empty(a.shape[0], b.shape[1])


class UsesAFusedOp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(8, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_matmul(x, self.weight)


def test_an_op_that_multiplies_without_a_rule_makes_the_total_a_lower_bound(tmp_path: Path) -> None:
    result = analyze(UsesAFusedOp(), (3, 8))
    assert result.totals.lower_bound
    assert [(o.name, o.count) for o in result.totals.unruled_macs] == [("dsconv_test::fused_matmul", 1)]
    lines = summary(result)
    assert lines[0].startswith("total: 32 params, at least 0 MACs")
    assert lines[1].startswith("warning: the MAC total is a lower bound: dsconv_test::fused_matmul ×1")
    assert dsconv_cli.to_dict(result)["totals"]["lower_bound"] is True
    checked = analyze(UsesAFusedOp(), (3, 8), verify=True)
    assert ("calls of ops that multiply-accumulate without a rule", 1, 0) in checked.failed_checks
    from dsconv_cli.pt.oprules import OpCost, set_op_rule

    set_op_rule("dsconv_test::fused_matmul", lambda args, kwargs, out: OpCost(macs=out.numel() * args[0].shape[1]))
    try:
        ruled = analyze(UsesAFusedOp(), (3, 8), verify=True)
    finally:
        set_op_rule("dsconv_test::fused_matmul", None)
    assert ruled.totals.macs == 3 * 4 * 8 and not ruled.totals.lower_bound


def test_the_command_fails_verify_on_a_lower_bound(tmp_path: Path) -> None:
    file = tmp_path / "fused.py"
    file.write_text("import sys\nsys.path.insert(0, 'tests')\nfrom test_model_inputs import UsesAFusedOp\n",
                    encoding="utf-8")  # fmt: skip
    result = invoke("analyze", f"{file}:UsesAFusedOp", "--input-shape", "3,8", "--verify")
    assert result.code == 1
    assert "warning: the MAC total is a lower bound" in result.stdout
    assert result.stderr.startswith("error: cross-check failed: 1 disagreement(s); first: calls of ops that "
                                    "multiply-accumulate without a rule: dsconv 1 vs 0")  # fmt: skip


# --- idle means unused; pairs by data flow; tied weights; frozen params --------------------------------------


def test_parameters_read_through_a_parent_are_not_idle() -> None:
    result = analyze(ViT(), (2, 3, 32, 32), verify=True)
    assert result.totals.idle_params == ()  # out_proj's weight is read by F.linear in MultiheadAttention
    assert result.failed_checks == []

    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 4)
            self.spare = nn.ModuleList(nn.Linear(4, 2) for _ in range(8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    unused = analyze(Unused(), (1, 4))
    assert [(o.name, o.count) for o in unused.totals.idle_params] == [(f"spare.{i}", 10) for i in range(8)]
    assert "modules holding parameters no op read: spare.0 (10), " in "\n".join(summary(unused))
    assert "spare.5 (10) (+2 more)" in "\n".join(summary(unused))


def test_a_squeeze_excite_block_pairs_its_depthwise_conv_with_the_projection() -> None:
    result = analyze(SEBlock(), (1, 8, 8, 8))
    assert result.existing_separable == (("depthwise.0", "project.0"),)  # not se.fc1, which runs next
    assert result.totals.uncounted == ()  # the in-place Hardswish counted as hardswish
    hardswish = next(o for o in result.totals.by_op if o.name == "aten::hardswish")
    assert hardswish.other_ops == 1 * 16 * 8 * 8 * 2  # each element of two activations' outputs


def test_weights_tied_between_two_convs_count_once_in_totals_and_predictions() -> None:
    model = TiedConvs()
    result = analyze(model, (1, 4, 8, 8), verify=True)
    assert result.totals.params == unique_params(model) == 288 + 8 + 8 + 1160
    assert [(s.name, s.numel, s.holders) for s in result.totals.shared_params] == [("left.weight", 288,
                                                                                    ("left", "right"))]  # fmt: skip
    for rule in ("all", "top:1", "top:2", "top:3", "min-saving:50"):
        converted = analyze(TiedConvs(), (1, 4, 8, 8), convert_rule=rule)  # raises CheckFailed on a wrong prediction
        assert converted.converted is not None
        assert converted.if_converted(converted.chosen) == (converted.converted.params, converted.converted.macs)
        assert converted.converted.params > 0
    params, _ = result.if_converted()
    assert params == 280 + 2 * (36 + 32 + 8)  # mix's pair; left's and right's pairs, each with its own bias
    assert "tied parameters, each counted once: left.weight (288: left, right)" in summary(result)
    cli = invoke("analyze", "tests/models.py:TiedConvs", "--input-shape", "1,4,8,8", "--convert", "all")
    assert cli.code == 0, cli.stderr
    assert "1,464 params" in cli.stdout and "432 params (70.5% fewer)" in cli.stdout


def test_frozen_parameters_are_counted_apart_from_trainable_ones() -> None:
    model = Filterbank()
    result = analyze(model, (1, 2, 10, 65))
    t = result.totals
    assert t.trainable_params == sum(p.numel() for p in model.parameters() if p.requires_grad) == 56
    assert t.frozen_params == sum(p.numel() for p in model.parameters() if not p.requires_grad) == 24 * 65
    assert t.params == t.trainable_params + t.frozen_params
    assert t.buffers == sum(b.numel() for b in model.buffers()) == 65
    assert summary(result)[0].startswith("total: 1,616 params (56 trainable, 1,560 frozen), ")
    erb = next(r for r in t.rows if r.path == "erb")
    assert (erb.params, erb.trainable_params) == (1560, 0)
    assert [c.path for c in result.candidates] == ["conv"] and result.candidates[0].params == 56
    doc = dsconv_cli.to_dict(result)["totals"]
    assert (doc["trainable_params"], doc["frozen_params"], doc["buffers"]) == (56, 1560, 65)


def test_memory_is_inputs_params_buffers_and_the_leaf_modules_outputs() -> None:
    model = Filterbank()
    written = []
    handles = [m.register_forward_hook(lambda m, a, out: written.append(out.numel() * out.element_size()))
               for m in model.modules() if not list(m.children())]  # fmt: skip
    model(torch.zeros(1, 2, 10, 65))
    for handle in handles:
        handle.remove()
    m = analyze(model, (1, 2, 10, 65)).totals.memory
    assert m.input_bytes == 1 * 2 * 10 * 65 * 4
    assert m.param_bytes == 4 * sum(p.numel() for p in model.parameters())
    assert m.buffer_bytes == 4 * 65
    assert m.activation_bytes == sum(written)
    assert m.total_bytes == m.input_bytes + m.param_bytes + m.buffer_bytes + m.activation_bytes


# --- the op table, functional convs ------------------------------------------------------------------


def test_unfold_is_data_movement_and_safe_softmax_is_counted() -> None:
    class Ops(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            cols = nn.functional.unfold(x, 3)  # im2col
            return torch.ops.aten._safe_softmax(cols, -1)

    result = analyze(Ops(), (1, 2, 6, 6))
    kinds = {o.name: o.kind for o in result.totals.by_op}
    assert kinds["aten::im2col"] == "data movement"
    assert kinds["aten::_safe_softmax"] == "counted"
    assert result.totals.other_ops == 1 * 18 * 16  # the softmax reads each of im2col's outputs once
    assert result.totals.uncounted == ()


def test_a_functional_conv_is_counted_but_not_a_candidate() -> None:
    model = FunctionalConv()
    result = analyze(model, (1, 3, 8, 8))
    assert result.totals.macs == flop_counter_macs(model, torch.zeros(1, 3, 8, 8))
    assert [c.path for c in result.candidates] == ["conv"]
    assert [(o.name, o.count) for o in result.totals.functional_convs] == [("FunctionalConv", 1)]
    assert ("convs called as functions (counted; not candidates: no conv module to replace): FunctionalConv ×1"
            in summary(result))  # fmt: skip


# --- breakdowns ----------------------------------------------------------------------------------


def test_by_op_sums_to_the_totals() -> None:
    result = analyze(ViT(), (2, 3, 32, 32))
    t = result.totals
    assert sum(o.macs for o in t.by_op) == t.macs and sum(o.other_ops for o in t.by_op) == t.other_ops
    table = invoke("analyze", "tests/models.py:ViT", "--input-shape", "2,3,32,32", "--by-op")
    assert table.code == 0
    assert "by op" in table.stdout and "aten::addmm" in table.stdout
    markdown = invoke("analyze", "tests/models.py:ViT", "--input-shape", "2,3,32,32", "--by-op", "-f", "markdown")
    assert "### By op" in markdown.stdout
    assert "| aten::convolution |" in markdown.stdout


def test_the_default_tree_is_readable_and_says_how_to_unfold() -> None:
    result = analyze(ViT(depth=6), (1, 3, 32, 32))
    assert max(r.depth for r in result.totals.rows) == 4
    assert rows.default_depth(result) == 3  # depth 4 would show 59 rows
    blocks = document.model_blocks(result, None)
    table = blocks[0]
    assert isinstance(table, document.Table) and len(table.table[1]) == 35
    note = blocks[1]
    assert isinstance(note, document.Lines)
    assert note.lines == ("… 24 deeper module(s) folded into their parents; --depth 4 shows them all",)
    assert rows.folded_note(result, 4) is None
    assert rows.default_depth(analyze(ViT(depth=12), (1, 3, 32, 32))) == 2  # depth 3 would show 65 rows


def test_columns_add_kernel_stride_groups_input_and_trainable() -> None:
    result = analyze(Filterbank(), (1, 2, 10, 65))
    headers, body = rows.model_table(result, None, ("kernel", "stride", "groups", "input", "trainable"))
    assert headers == ["module", "type", "input", "output", "params", "kernel", "stride", "groups", "trainable",
                       "MACs", "share"]  # fmt: skip
    conv = next(r for r in body if r[0].strip() == "conv")
    assert conv[2:10] == ["(1,2,10,24)", "(1,8,10,24)", "56", "1×3", "1×1", "1", "56", "11,520"]
    erb = next(r for r in body if r[0].strip() == "erb")
    assert erb[5:9] == ["-", "-", "-", "0"]
    cli = invoke("analyze", "tests/models.py:Filterbank", "--input-shape", "1,2,10,65", "--columns", "kernel,calls")
    assert cli.code == 0 and "kernel" in cli.stdout


def test_latency_has_its_unit() -> None:
    result = analyze(nn.Sequential(nn.Conv2d(2, 4, 3)), (1, 2, 8, 8), bench=True, min_time=0.01)
    assert any(line.startswith("original: ") and " ms median on cpu" in line for line in summary(result))
    assert render.render_model(result, dsconv_cli.core.spec.OutputFormat.MARKDOWN, None)


# --- speed and memory: what makes the count fast stays local to it --------------------------------------


def test_counting_leaves_no_stand_in_behind() -> None:
    names = ("torch._dynamo", "torch.fx.experimental.symbolic_shapes", "sympy")
    before = {name: sys.modules.get(name) for name in names}
    analyze(ViT(), (1, 3, 32, 32))
    after = {name: sys.modules.get(name) for name in before}
    assert before == after
    assert all(type(module).__name__ != "_StandIn" for module in sys.modules.values())


def test_a_7b_language_model_is_counted_exactly_on_the_meta_device() -> None:
    """LLaMA-7B's shape: its float32 weights (27 GB) would not fit this machine's memory; on meta they take none."""
    result = analyze("tests/models.py:make_lm", (1, 128), kwargs={"size": "7b"}, input_dtype="int64",
                     input_kw={"attention_mask": ((1, 128), "bool")})  # fmt: skip
    assert result.counted_on == "meta"
    with torch.device("meta"):
        model = make_lm("7b")
    assert result.totals.params == unique_params(model)
    assert result.totals.memory.param_bytes == 4 * result.totals.params > 24 * 2**30
    ids = torch.zeros(1, 128, dtype=torch.int64, device="meta")
    mask = torch.ones(1, 128, dtype=torch.bool, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(ids, attention_mask=mask)
    assert result.totals.macs == counter.get_total_flops() // 2
    c = LLAMA_7B  # the leading term, 2 · params · tokens FLOPs, i.e. a MAC per weight per token, plus attention
    assert result.totals.macs > 128 * (c.layers * (4 * c.dim**2 + 3 * c.dim * c.hidden) + c.vocab * c.dim)


STAND_INS = """
import sys
sys.path.insert(0, "tests")
import torch
from models import ViT
from dsconv_cli.pt import trace
from dsconv_cli.api import analyze
analyze(ViT(), (1, 3, 32, 32))
print(sorted(n for n in ("sympy", "torch._dynamo", "torch.fx.experimental.symbolic_shapes") if n in sys.modules))
import sympy
print(isinstance(sympy.Symbol("x"), trace._Basic), isinstance(1, trace._Basic))
import torch._dynamo
print(callable(torch._dynamo.disable), type(sys.modules["sympy"]).__name__)
"""


def test_the_imports_the_count_defers_are_real_when_asked_for() -> None:
    """The count answers PyTorch's questions to dynamo, sympy and symbolic shapes without importing them
    (2.7 s); afterwards they import as ever, and a stand-in kept by a module answers as the real one."""
    out = subprocess.run([sys.executable, "-c", STAND_INS], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": "."}).stdout  # fmt: skip
    assert out.splitlines() == ["[]", "True False", "True module"]
