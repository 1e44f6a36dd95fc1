"""Whole models: totals against PyTorch's own FlopCounterMode and parameter lists, computed here independently."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import invoke
from hypothesis import given, settings
from hypothesis import strategies as st
from models import NoConvs, SharedHeads, TinyGTCRN, TinyMobileNetV2, TinyUNet, VGGish
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import dsconv_cli
from dsconv_cli.api import analyze
from dsconv_cli.core.advise import choose
from dsconv_cli.errors import CheckFailed

MODELS = [
    (VGGish, (2, 3, 16, 16)),
    (TinyMobileNetV2, (1, 3, 32, 32)),
    (TinyUNet, (1, 1, 16, 16)),
    (TinyGTCRN, (1, 3, 20, 17)),
    (SharedHeads, (1, 4, 8, 8)),
    (NoConvs, (2, 5, 8)),
]


def reference(model: nn.Module, shape: tuple[int, ...]) -> tuple[int, int]:
    """MACs by FlopCounterMode / 2 on a real CPU forward, and params as unique nn.Parameter objects.

    Grad stays enabled: under no_grad, MultiheadAttention takes a fused fast path that FlopCounterMode
    does not count at all (dsconv lists that op as uncounted when it meets it).
    """
    with FlopCounterMode(display=False) as counter:
        model.eval()(torch.randn(shape))
    unique = {id(p): p.numel() for _, p in model.named_parameters(remove_duplicate=False)}
    return counter.get_total_flops() // 2, sum(unique.values())


@pytest.mark.parametrize(("cls", "shape"), MODELS, ids=[m[0].__name__ for m in MODELS])
def test_totals_equal_flop_counter_and_unique_params(cls: type[nn.Module], shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    model = cls()
    macs, params = reference(model, shape)
    result = analyze(model, shape, verify=True)
    assert (result.totals.macs, result.totals.params) == (macs, params)
    assert result.failed_checks == []
    assert result.counted_on == "meta"
    root = result.totals.rows[0]
    assert root.macs == result.totals.macs and root.share == 1.0
    # a parent's MACs are what its children did, each counted once
    for row in result.totals.rows:
        children = [r for r in result.totals.rows if r.depth == row.depth + 1 and r.path.startswith(f"{row.path}.")
                    or (row.path == "" and r.depth == 1)]  # fmt: skip
        if children and not any(r.calls == 0 for r in children):
            assert sum(r.macs for r in children) <= row.macs


def test_gru_counts_by_the_convention() -> None:
    result = analyze(TinyGTCRN(), (1, 3, 20, 17))
    gru = next(r for r in result.totals.rows if r.path == "gru")
    # N*T*G*H*(I+H) = 1 * 20 * 3 * 32 * (144 + 32)
    assert gru.macs == 1 * 20 * 3 * 32 * (144 + 32) == 337_920
    block = next(r for r in result.totals.rows if r.path == "block")
    assert block.calls == 2
    # each call: depthwise 8*9*20*9 + pointwise 8*8*20*9 MACs
    assert block.macs == 2 * (8 * 9 * 20 * 9 + 8 * 8 * 20 * 9)
    assert result.existing_separable == (("block.depthwise", "block.pointwise"),
                                         ("dilated.depthwise", "dilated.pointwise"))  # fmt: skip
    assert {c.path for c in result.candidates} == {"encoder", "decoder"}


def test_shared_conv_params_once_macs_per_call() -> None:
    result = analyze(SharedHeads(), (1, 4, 8, 8), convert_rule="all")
    assert result.totals.params == 4 * 4 * 9 + 4  # one conv's weight and bias
    assert result.totals.macs == 2 * 4 * 4 * 9 * 8 * 8
    (candidate,) = result.candidates
    assert candidate.calls == 2
    assert result.converted is not None
    assert result.converted.params == 4 * 9 + 4 * 4 + 4  # one depthwise (no bias), one pointwise (with bias)


def test_mobilenet_pairs_are_existing_not_candidates() -> None:
    result = analyze(TinyMobileNetV2(), (1, 3, 32, 32))
    assert [c.path for c in result.candidates] == ["stem.0"]
    assert ("blocks.1.block.3", "blocks.1.block.6") in result.existing_separable


def test_attention_counts_projections_and_both_matmuls() -> None:
    result = analyze(NoConvs(), (2, 5, 8))
    attn = next(r for r in result.totals.rows if r.path == "attn")
    # in-projection 2*5*8*24, q@k and attn@v 2*2 heads*5*5*4 each, out-projection 2*5*8*8
    assert attn.macs == 2 * 5 * 8 * 24 + 2 * (2 * 2 * 5 * 5 * 4) + 2 * 5 * 8 * 8
    assert result.candidates == ()


def test_convert_rules() -> None:
    result = analyze(TinyGTCRN(), (1, 3, 20, 17))
    assert [c.path for c in choose(result.candidates, "top:1")] == ["encoder"]
    assert [c.path for c in choose(result.candidates, "min-saving:50")] == ["encoder"]  # decoder saves 12%
    assert len(choose(result.candidates, "all")) == 2
    for bad in ("top:0", "top:x", "some", "min-saving:101"):
        with pytest.raises(dsconv_cli.errors.SpecError):
            choose(result.candidates, bad)


CONVS = st.builds(
    dict,
    out=st.sampled_from([4, 6, 8]),
    k=st.sampled_from([1, 2, 3, 5]),
    stride=st.sampled_from([1, 2]),
    dilation=st.sampled_from([1, 2]),
    transposed=st.booleans(),
    bias=st.booleans(),
    groups=st.sampled_from([1, 1, 2]),
)


@settings(max_examples=25, deadline=None)
@given(layers=st.lists(CONVS, min_size=1, max_size=4), rank=st.sampled_from([1, 2]))
def test_random_conv_models_convert_to_exactly_the_prediction(layers: list[dict[str, int]], rank: int) -> None:
    modules: list[nn.Module] = []
    channels, size = 4, 24
    for spec in layers:
        k, s, d = spec["k"], spec["stride"], spec["dilation"]
        if spec["transposed"]:
            cls = (nn.ConvTranspose1d, nn.ConvTranspose2d)[rank - 1]
            modules.append(cls(channels, spec["out"], k, s, padding=0, output_padding=s - 1 if s > 1 else 0,
                               dilation=d, groups=spec["groups"], bias=bool(spec["bias"])))  # fmt: skip
            size = (size - 1) * s + d * (k - 1) + (s - 1 if s > 1 else 0) + 1
        else:
            cls = (nn.Conv1d, nn.Conv2d)[rank - 1]
            modules.append(cls(channels, spec["out"], k, s, padding=d * (k - 1) // 2, dilation=d,
                               groups=spec["groups"], bias=bool(spec["bias"])))  # fmt: skip
            size = (size + 2 * (d * (k - 1) // 2) - d * (k - 1) - 1) // s + 1
        channels = spec["out"]
    model = nn.Sequential(*modules)
    shape = (2, 4, *([24] * rank))
    result = analyze(model, shape, convert_rule="all", verify=True)  # raises CheckFailed on any difference
    assert result.failed_checks == []
    assert result.converted is not None
    assert (result.converted.params, result.converted.macs) == result.if_converted()
    macs, params = reference(model, shape)
    assert (result.totals.macs, result.totals.params) == (macs, params)


def test_a_wrong_prediction_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsconv_cli.core import advise as model_module

    original = model_module._pair_cost
    monkeypatch.setattr(model_module, "_pair_cost", lambda conv, shape, m=1: (original(conv, shape, m)[0] + 1,
                                                                             original(conv, shape, m)[1]))  # fmt: skip
    with pytest.raises(CheckFailed, match="params: predicted"):
        analyze(TinyUNet(), (1, 1, 16, 16), convert_rule="all")


# --- the command ---------------------------------------------------------------------------------


def test_cli_json_has_the_documented_keys_and_equals_the_api() -> None:
    target = "tests/models.py:TinyUNet"
    result = invoke("analyze", target, "--input-shape", "1,1,16,16", "--convert", "all", "-f", "json")
    assert result.code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {"schema_version", "target", "input_shapes", "totals", "layers", "uncounted", "advisor",
            "converted"} <= set(doc)  # fmt: skip
    assert {"params", "macs", "other_ops", "output_shapes"} <= set(doc["totals"])
    assert {"path", "type", "params", "macs", "other_ops", "calls", "input_shapes", "output_shapes"} <= set(
        doc["layers"][1]
    )
    candidate = doc["advisor"]["candidates"][0]
    assert {"path", "params", "macs", "separable", "params_saved", "macs_saved"} <= set(candidate)
    assert doc["converted"]["totals"]["macs"] == doc["advisor"]["if_converted"]["macs"]
    api = dsconv_cli.analyze(target, (1, 1, 16, 16), convert_rule="all")
    assert dsconv_cli.to_dict(api) == doc


def test_cli_csv_rows_and_table() -> None:
    csv_out = invoke("analyze", "tests/models.py:make_vgg", "--kwargs", "width: 4", "--input-shape", "2,3,16,16",
                     "-f", "csv")  # fmt: skip
    assert csv_out.code == 0, csv_out.stderr
    assert csv_out.stdout.splitlines()[0].startswith("path,type,depth,params,macs")
    table = invoke("analyze", "tests/models.py:TinyGTCRN", "--input-shape", "1,3,20,17", "--depth", "1")
    assert table.code == 0
    assert "  block ×2" in table.stdout
    assert "    depthwise" not in table.stdout  # depth 2 is folded into its parent


@pytest.mark.parametrize(
    ("target", "extra", "message"),
    [
        ("nosuch.module:Model", [], "error: nosuch.module:Model: module nosuch not found (is it installed?)"),
        ("tests/models.py:Missing", [], "error: tests/models.py:Missing: tests/models.py has no attribute 'Missing'"),
        ("tests/models.py:not_a_model", [], "error: tests/models.py:not_a_model: not_a_model is a int, not a model, "
                                            "a model class or a factory function; a target is an nn.Module "
                                            "subclass, an nn.Module instance or a function defined in "
                                            "tests/models.py"),
        ("tests/models.py:broken_factory", [], "error: tests/models.py:broken_factory: broken_factory(**{}) raised "
                                               "RuntimeError: weights file missing"),
        ("tests/models.py:make_vgg", ["--kwargs", "[1, 2]"], "error: --kwargs [1, 2]: must be a mapping"),
        ("tests/models.py:FailsInForward", [], "error: the forward failed in body.1 (Linear) on inputs (1, 8, 7, 7):"),
        ("no_colon", [], "error: no_colon: expected MODULE:ATTR or FILE.py:ATTR"),
        ("tests/models.py:TinyUNet", ["--convert", "best"], "error: --convert best: expected all, top:N"),
        ("tests/models.py:TinyUNet", ["--depth", "-1"], "error: --depth -1: must be 0 (the model alone) or more"),
    ],
)  # fmt: skip
def test_bad_targets_are_one_line_exit_2(target: str, extra: list[str], message: str) -> None:
    result = invoke("analyze", target, "--input-shape", "1,3,9,9", *extra)
    assert result.code == 2
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_verify_disagreement_exits_1(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsconv_cli.core import counting

    original = counting.conv_macs
    monkeypatch.setattr(counting, "conv_macs", lambda *a: original(*a) + 1)
    result = invoke("analyze", "tests/models.py:TinyUNet", "--input-shape", "1,1,16,16", "--verify")
    assert result.code == 1
    assert result.stderr.startswith("error: cross-check failed: 5 disagreement(s); first: enc1 MACs: dsconv")


def test_model_without_parameters_on_meta_and_bench_on_cpu() -> None:
    result = analyze(nn.Sequential(nn.ReLU()), (1, 3, 4), bench=True, min_time=0.01)
    assert result.totals.params == 0 and result.totals.macs == 0 and result.totals.other_ops == 12
    assert result.latency["original"].median_ms > 0
    assert "converted" not in result.latency


def test_the_target_is_imported_once_however_often_it_is_built(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "imports.log"
    target = tmp_path / "net.py"
    target.write_text(
        f"from torch import nn\nwith open({str(log)!r}, 'a') as f:\n    f.write('imported\\n')\n"
        "def make():\n    return nn.Sequential(nn.Conv2d(2, 4, 3), nn.Tanh())\n",
        encoding="utf-8",
    )
    # counted on meta, converted, then built again on the CPU to be timed
    result = analyze(f"{target}:make", (1, 2, 6, 6), convert_rule="all", bench=True, min_time=0.01)
    assert set(result.latency) == {"original", "converted"}
    assert log.read_text(encoding="utf-8").splitlines() == ["imported"]


def test_bench_times_the_top_candidates_alone_beside_the_mac_prediction() -> None:
    result = analyze(VGGish(), (2, 3, 16, 16), bench=True, device="cpu", threads=1, min_time=0.01, bench_top=2)
    assert [t.path for t in result.candidate_timings] == [c.path for c in result.candidates[:2]]
    for timed, candidate in zip(result.candidate_timings, result.candidates, strict=False):
        assert timed.predicted == candidate.macs / candidate.separable_macs  # one call each in VGGish
        assert timed.standard.median_ms > 0 and timed.separable.median_ms > 0
        assert len(timed.round_speedups) == 3 and timed.speedup == sorted(timed.round_speedups)[1]
    d = dsconv_cli.to_dict(result)["advisor"]["timed"]
    assert [t["path"] for t in d] == [t.path for t in result.candidate_timings]
    assert set(d[0]) == {"path", "standard", "separable", "speedup", "predicted_speedup"}
    assert result.conditions is not None and dsconv_cli.to_dict(result)["trusted"] == result.conditions.trusted


def test_bench_with_convert_times_the_chosen_ones() -> None:
    result = analyze(VGGish(), (1, 3, 16, 16), convert_rule="top:1", bench=True, device="cpu", threads=1,
                     min_time=0.01)  # fmt: skip
    assert [t.path for t in result.candidate_timings] == list(result.chosen)
    assert set(result.latency) == {"original", "converted"}


def test_a_forward_that_reads_values_is_counted_on_the_cpu_with_a_note() -> None:
    from models import NeedsValues

    result = analyze(NeedsValues(), (1, 3, 8, 8))
    assert result.counted_on == "cpu"
    assert any("counted on the CPU" in note for note in result.notes)
    assert (result.totals.macs, result.totals.params) == reference(NeedsValues(), (1, 3, 8, 8))


def test_the_cpu_fallback_is_bounded_by_max_memory() -> None:
    result = invoke("analyze", "tests/models.py:NeedsValues", "--input-shape", "1,3,8,8", "--max-memory", "1KiB")
    assert result.code == 2
    assert result.stderr.startswith("error: --max-memory 1,024 B: the forward needs real values on the CPU")


def test_a_constructor_that_reads_values_is_built_on_the_cpu_with_a_note() -> None:
    result = json.loads(invoke("analyze", "tests/models.py:BuildsWithValues", "--input-shape", "1,3,8,8",
                               "-f", "json").stdout)  # fmt: skip
    assert any("built on the CPU" in note for note in result["notes"])
    assert result["totals"]["params"] == 3 * 4 * 9 + 4


@pytest.mark.parametrize(
    ("factory", "macs", "params"),
    [("mobilenet_v2", 300_774_272, 3_504_872), ("resnet18", 1_814_073_344, 11_689_512)],
)
def test_torchvision_models_give_the_published_figures(factory: str, macs: int, params: int) -> None:
    """Runs where torchvision imports (its wheel does not import against the CPU torch build CI uses)."""
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # ImportError, or the CUDA wheel failing against a CPU torch
        pytest.skip(f"torchvision does not import here: {type(exc).__name__}")
    result = analyze(f"torchvision.models:{factory}", (1, 3, 224, 224))
    assert (result.totals.macs, result.totals.params) == (macs, params)
