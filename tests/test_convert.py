"""Conversion with weights: lossless where the rank allows, optimal (Eckart–Young) otherwise, and measured."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from models import SharedHeads, TinyGTCRN, TinyUNet
from torch import nn

from dsconv_cli.errors import DsconvError, SpecError
from dsconv_cli.pt.convert import (
    CalibrationError,
    ConversionResult,
    KeyRename,
    Skipped,
    WeightsError,
    convert,
    decouple,
    energy_kept,
    load_inputs,
    load_weights,
    measure_fidelity,
    multiplier_for_energy,
    rank_bound,
    save_model,
    save_state_dict,
)

PLAIN = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def slices_of(conv: nn.modules.conv._ConvNd) -> torch.Tensor:
    """The matrices A_i, computed here from the weight layout: (C_in, C_out, prod(k))."""
    w = conv.weight.detach().double()
    if isinstance(conv, nn.modules.conv._ConvTransposeNd):
        return w.reshape(w.shape[0], w.shape[1], -1)
    return w.reshape(w.shape[0], w.shape[1], -1).transpose(0, 1)


def set_slices(conv: nn.modules.conv._ConvNd, slices: torch.Tensor) -> None:
    with torch.no_grad():
        if isinstance(conv, nn.modules.conv._ConvTransposeNd):
            conv.weight.copy_(slices.reshape(conv.weight.shape))
        else:
            conv.weight.copy_(slices.transpose(0, 1).reshape(conv.weight.shape))


def relative_error(y: torch.Tensor, y_hat: torch.Tensor) -> float:
    return float((y - y_hat).detach().double().norm() / y.detach().double().norm())


# --- lossless where the rank allows -------------------------------------------------------------------


@st.composite
def low_rank_convs(draw: st.DrawFn) -> tuple[nn.modules.conv._ConvNd, int, torch.Tensor]:
    """A conv of any kind and geometry whose every slice A_i has rank <= m, with m and an input."""
    rank = draw(st.integers(1, 3))
    transposed = draw(st.booleans())
    c_in, c_out = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    kernel = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    assume(math.prod(kernel) > 1)
    stride = tuple(draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)))
    dilation = tuple(draw(st.lists(st.integers(1, 2), min_size=rank, max_size=rank)))
    kwargs: dict[str, object] = {"bias": draw(st.booleans())}
    if transposed:
        kwargs["padding"] = tuple(
            draw(st.integers(0, (d * (k - 1)) // 2)) for k, d in zip(kernel, dilation, strict=True)
        )
        kwargs["output_padding"] = tuple(
            draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation, strict=True)
        )
        conv: nn.modules.conv._ConvNd = TRANSPOSED[rank - 1](c_in, c_out, kernel, stride, dilation=dilation, **kwargs)
    else:
        padding = draw(st.sampled_from(["same", "valid", "ints"]))
        if padding == "same":
            stride = (1,) * rank  # PyTorch's 'same' is stride 1 only
        kwargs["padding"] = tuple(draw(st.integers(0, 2)) for _ in kernel) if padding == "ints" else padding
        kwargs["padding_mode"] = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        conv = PLAIN[rank - 1](c_in, c_out, kernel, stride, dilation=dilation, **kwargs)
    conv = conv.double()
    m = draw(st.integers(1, min(c_out, math.prod(kernel))))
    seed = draw(st.integers(0, 2**16))
    generator = torch.Generator().manual_seed(seed)
    left = torch.randn(c_in, c_out, m, generator=generator, dtype=torch.float64)
    right = torch.randn(c_in, m, math.prod(kernel), generator=generator, dtype=torch.float64)
    set_slices(conv, left @ right)  # rank of each A_i <= m
    size = 6 if rank < 3 else 5
    x = torch.randn(draw(st.integers(1, 2)), c_in, *(size,) * rank, generator=generator, dtype=torch.float64)
    return conv, m, x


@settings(max_examples=80, deadline=None)
@given(low_rank_convs())
def test_pair_is_lossless_when_every_slice_has_rank_at_most_m(case: tuple[nn.Module, int, torch.Tensor]) -> None:
    """Any kind (1/2/3-D, transposed with output padding), any stride, dilation, padding ('same', 'valid',
    ints), padding mode and bias: the closed-form pair computes the same output, of the same shape."""
    conv, m, x = case
    pair, kept = decouple(conv, m)
    y, y_hat = conv(x), pair(x)
    assert y_hat.shape == y.shape
    assert relative_error(y, y_hat) <= 1e-5
    assert kept == pytest.approx(1.0, abs=1e-9)
    depthwise, pointwise = pair
    assert (depthwise.groups, depthwise.out_channels, depthwise.bias) == (conv.in_channels, m * conv.in_channels, None)
    assert type(pointwise) in PLAIN and pointwise.kernel_size == (1,) * len(conv.kernel_size)
    assert (pointwise.bias is None) == (conv.bias is None)
    for attr in ("kernel_size", "stride", "padding", "dilation", "padding_mode", "output_padding"):
        assert getattr(depthwise, attr) == getattr(conv, attr)


def test_float32_pair_is_lossless_to_float32_precision() -> None:
    conv = nn.Conv2d(6, 8, 3, padding=1)
    generator = torch.Generator().manual_seed(1)
    set_slices(conv, torch.randn(6, 8, 2, generator=generator) @ torch.randn(6, 2, 9, generator=generator))
    pair, _ = decouple(conv, 2)
    x = torch.randn(2, 6, 12, 12, generator=generator)
    assert pair[0].weight.dtype == torch.float32
    assert relative_error(conv(x), pair(x)) <= 1e-5


# --- optimal ------------------------------------------------------------------------------------------

CONVS = [
    nn.Conv2d(5, 7, 3, padding=1),
    nn.Conv1d(4, 3, 5),
    nn.Conv3d(3, 4, (2, 3, 1)),
    nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1),
    nn.ConvTranspose1d(3, 2, 4),
]


@pytest.mark.parametrize("conv", CONVS, ids=lambda c: type(c).__name__)
def test_energy_kept_is_one_minus_discarded_singular_energy(conv: nn.modules.conv._ConvNd) -> None:
    """energy_kept = 1 - Σ discarded σ² / ‖W‖² with σ from numpy's own SVD of each slice, and the pair's
    effective weight misses exactly that energy: it is the best rank-m approximation (Eckart–Young)."""
    torch.manual_seed(0)
    slices = slices_of(conv).numpy()
    sigma = np.stack([np.linalg.svd(a, compute_uv=False) for a in slices])  # (C_in, min(C_out, prod k))
    total = float((slices**2).sum())
    assert rank_bound(conv) == sigma.shape[1]
    for m in range(1, sigma.shape[1] + 1):
        discarded = float((sigma[:, m:] ** 2).sum())
        assert energy_kept(conv, m) == pytest.approx(1 - discarded / total, rel=1e-9, abs=1e-12)
        pair, kept = decouple(conv, m)
        # the pair's effective slice per input channel: Σ_r P[:, i·m + r] ⊗ D[i·m + r]
        d = pair[0].weight.detach().double().reshape(conv.in_channels, m, -1)
        p = pair[1].weight.detach().double().reshape(conv.out_channels, conv.in_channels, m)
        effective = torch.einsum("oir,irk->iok", p, d).numpy()
        assert float(((slices - effective) ** 2).sum()) / total == pytest.approx(1 - kept, rel=1e-4, abs=1e-9)


def test_multiplier_is_capped_at_the_rank_bound() -> None:
    conv = nn.Conv2d(3, 4, 3)  # bound min(4, 9) = 4
    pair, kept = decouple(conv, 50)
    assert pair[0].out_channels == 4 * 3 and kept == pytest.approx(1.0)
    with pytest.raises(SpecError, match="--multiplier 0"):
        decouple(conv, 0)


def test_non_standard_convs_have_no_pair() -> None:
    with pytest.raises(SpecError, match="--groups 2"):
        decouple(nn.Conv2d(4, 4, 3, groups=2))
    with pytest.raises(SpecError, match="--kernel-size 1,1"):
        decouple(nn.Conv2d(4, 4, 1))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 12, 3, padding=1)
        self.conv2 = nn.Conv2d(12, 12, 3, padding=1)
        self.conv3 = nn.Conv2d(12, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.relu(self.conv2(torch.relu(self.conv1(x)))))


def test_svd_beats_random_by_far_on_a_trained_model() -> None:
    """A small net trained for a moment to mimic a fixed smooth target: its trained convs are what the
    closed form approximates; PyTorch's fresh initialisation of the pairs knows nothing of them."""
    torch.manual_seed(0)
    target = nn.Conv2d(3, 4, 5, padding=2)
    with torch.no_grad():
        target.weight.copy_(torch.randn(4, 3, 1, 1) * torch.outer(torch.hann_window(5), torch.hann_window(5)))
    net = Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(16, 3, 10, 10)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only wait for each other, the more so on a busy machine
    try:
        for _ in range(100):
            optimizer.zero_grad()
            (net(x) - target(x)).square().mean().backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    svd = convert(net, multiplier=2, calibrate=x)
    random = convert(net, multiplier=2, calibrate=x, init="random")
    assert len(svd.convs) == len(random.convs) == 3
    assert svd.fidelity.snr_db > 10
    assert svd.fidelity.snr_db > random.fidelity.snr_db + 10
    assert all(math.isnan(c.energy_kept) for c in random.convs)
    assert all(0 < c.energy_kept <= 1 for c in svd.convs)


# --- the multiplier ------------------------------------------------------------------------------------


def designed_conv() -> nn.Conv2d:
    """Every slice has singular values 3, 2, 1: energy kept 9/14, 13/14, 14/14 at m = 1, 2, 3 (and C_out = 8, so
    that even m = 3 saves MACs: 3/8 + 3/9 < 1)."""
    conv = nn.Conv2d(2, 8, 3, bias=False)
    generator = torch.Generator().manual_seed(3)
    slices = []
    for _ in range(2):
        u, _ = torch.linalg.qr(torch.randn(8, 3, generator=generator, dtype=torch.float64))
        v, _ = torch.linalg.qr(torch.randn(9, 3, generator=generator, dtype=torch.float64))
        slices.append(u @ torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)) @ v.T)
    set_slices(conv, torch.stack(slices).float())
    return conv


@pytest.mark.parametrize(("pct", "m"), [(50, 1), (64.28, 1), (64.3, 2), (90, 2), (92.85, 2), (93, 3), (100, 3)])
def test_auto_picks_the_smallest_multiplier_reaching_pct(pct: float, m: int) -> None:
    conv = designed_conv()
    assert energy_kept(conv, 1) == pytest.approx(9 / 14, rel=1e-6)
    assert multiplier_for_energy(conv, pct) == m
    result = convert(nn.Sequential(nn.Identity(), conv), multiplier=f"auto:{pct}", input_shape=(1, 2, 8, 8))
    (report,) = result.convs
    assert report.multiplier == m
    assert report.energy_kept == pytest.approx((9, 13, 14)[m - 1] / 14, rel=1e-6)


@pytest.mark.parametrize("bad", ["auto:0", "auto:101", "auto:", "auto:x", "0", "two", -1])
def test_bad_multiplier_names_the_field_and_the_choices(bad: object) -> None:
    with pytest.raises(SpecError, match=r"^--multiplier .*(auto:PCT|percentage)"):
        convert(Net(), multiplier=bad, input_shape=(1, 3, 8, 8))  # type: ignore[arg-type]


def test_a_pair_costing_as_much_as_its_conv_is_skipped_with_the_reason() -> None:
    # Conv2d 8 -> 2, k (2, 1): m = 1 costs m/C_out + m/prod(k) = 1/2 + 1/2 = 1 x the conv's MACs
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 2, (2, 1)))
    result = convert(model, input_shape=(1, 3, 6, 6))
    assert [c.name for c in result.convs] == ["0"]
    (skipped,) = result.skipped
    assert skipped.name == "1"
    # output (1, 2, 5, 6): N·C_out·prod(O)·C_in·prod(k) = 1·2·30·8·2 = 960; pair 1·1·8·30·2 + 1·2·30·1·8 = 960
    assert skipped.reason == "at multiplier 1 its pair costs 960 MACs, the conv 960: no saving"
    # auto:100 on a 3x3 8 -> 8 conv needs m = 8: 8/8 + 8/9 > 1
    wide = convert(nn.Sequential(nn.Conv2d(8, 8, 3)), multiplier="auto:100", input_shape=(1, 8, 5, 5))
    assert wide.convs == () and "auto:100 (multiplier 8)" in wide.skipped[0].reason


# --- which convs ---------------------------------------------------------------------------------------


def test_rules_choose_by_saving_and_by_measured_error() -> None:
    torch.manual_seed(0)
    model = TinyUNet()
    shape = (2, 1, 16, 16)
    every = convert(model, input_shape=shape)
    assert [c.name for c in every.convs] == ["enc1", "enc2", "dec"]  # network order; out is 1x1
    # up: ConvTranspose2d 16 -> 8, k2, s2 on I = (8, 8): 16·64·8·4 = 32,768 MACs; its pair scatters
    # 16·64·1·4 = 4,096 then mixes 8·256·16 = 32,768 on the 4x larger output: no saving
    assert every.skipped == (Skipped("up", "at multiplier 1 its pair costs 73,728 MACs, the conv 65,536: no saving"),)
    best = max(every.convs, key=lambda c: c.macs_saved)
    top = convert(model, "top:1", input_shape=shape)
    assert [c.name for c in top.convs] == [best.name]
    assert {s.reason for s in top.skipped} == {"not among the top 1 by MACs saved", every.skipped[0].reason}
    share = {c.name: 100 * c.macs_saved / c.macs for c in every.convs}
    cut = sorted(share.values())[1]
    saving = convert(model, f"min-saving:{cut}", input_shape=shape)
    assert {c.name for c in saving.convs} == {n for n, s in share.items() if s >= cut}
    for limit in (2.0, 30.0):
        capped = convert(model, f"max-error:{limit}", input_shape=shape)
        assert capped.fidelity.output_error <= limit / 100
        assert len(capped.convs) + sum("max-error" in s.reason for s in capped.skipped) == 3
    assert convert(model, "max-error:100", input_shape=shape).fidelity.output_error <= 1
    with pytest.raises(SpecError, match=r"^--convert most: expected all, top:N .*max-error:PCT"):
        convert(model, "most", input_shape=shape)


def test_the_callers_model_is_untouched_and_a_shared_conv_converts_at_every_path() -> None:
    torch.manual_seed(0)
    model = SharedHeads().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = convert(model, input_shape=(1, 4, 8, 8))
    assert isinstance(model.a, nn.Conv2d) and model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    converted = result.module
    assert converted.a is converted.b and isinstance(converted.a, nn.Sequential) and converted.training
    (report,) = result.convs
    assert report.name == "a" and report.macs == 2 * 4 * 64 * 4 * 9  # two calls, each N·C_out·prod(O)·C_in·prod(k)
    assert {r.old for r in result.renamed} == {"a.weight", "a.bias", "b.weight", "b.bias"}


def test_conversion_needs_inputs_and_a_gtcrn_like_model_converts() -> None:
    with pytest.raises(SpecError, match="^--input-shape"):
        convert(Net())
    with pytest.raises(SpecError, match="^--refit true: needs calibration inputs"):
        convert(Net(), input_shape=(1, 3, 8, 8), refit=True)
    torch.manual_seed(0)
    result = convert(TinyGTCRN(), input_shape=(1, 3, 20, 17))
    assert [c.name for c in result.convs] == ["encoder", "decoder"]  # decoder: ConvTranspose 16 -> 2
    assert result.fidelity.inputs == "random normal probes of (1, 3, 20, 17)"
    assert 0 < result.fidelity.output_error < 1


class Upsampler(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 8, 3, stride=2, padding=1)
        self.down = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.up(x, output_size=(2 * x.shape[2], 2 * x.shape[3]))
        return self.down(y)


def test_a_transposed_conv_given_output_size_is_left_alone() -> None:
    result = convert(Upsampler(), input_shape=(1, 4, 5, 5))
    assert [c.name for c in result.convs] == ["down"]
    assert result.skipped == (Skipped("up", "called with output_size, which its pair cannot take"),)


# --- fidelity ------------------------------------------------------------------------------------------


class Heads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Conv2d(3, 3, 1)
        self.conv = nn.Conv2d(3, 6, 3, padding=1)

    def forward(self, x: torch.Tensor) -> dict[str, object]:
        y = self.conv(self.scale(x) * 5)
        return {"y": y, "parts": (y[:, :2], [y.sum()]), "label": "ignored"}


def test_layer_error_is_measured_on_the_input_the_conv_receives() -> None:
    torch.manual_seed(0)
    model = Heads().eval()
    x = torch.randn(2, 3, 8, 8)
    result = convert(model, calibrate=x)
    (report,) = result.convs
    pair, kept = decouple(model.conv, 1)
    with torch.no_grad():
        inner = model.scale(x) * 5
        assert report.layer_error == pytest.approx(relative_error(model.conv(inner), pair(inner)), rel=1e-9)
    assert report.energy_kept == pytest.approx(kept)


def test_fidelity_flattens_nested_outputs() -> None:
    torch.manual_seed(0)
    model = Heads()
    result = convert(model, calibrate=torch.randn(2, 3, 8, 8))
    x = torch.randn(3, 3, 8, 8)
    fidelity = measure_fidelity(model, result.module, x)
    with torch.no_grad():
        a, b = model(x), result.module(x)
    ys = [a["y"], a["parts"][0], a["parts"][1][0]]
    y_hats = [b["y"], b["parts"][0], b["parts"][1][0]]
    error = math.sqrt(sum(float((p - q).double().square().sum()) for p, q in zip(ys, y_hats, strict=True)) /
                      sum(float(p.double().square().sum()) for p in ys))  # fmt: skip
    assert fidelity.output_error == pytest.approx(error, rel=1e-9)
    assert fidelity.snr_db == pytest.approx(-20 * math.log10(error))
    assert fidelity.inputs == "3 samples"
    exact = measure_fidelity(model, model, x)
    assert (exact.output_error, exact.snr_db) == (0.0, math.inf)


def test_refit_is_fitted_on_one_half_and_measured_on_the_other() -> None:
    torch.manual_seed(0)
    model = Net()
    # smooth, correlated inputs: the pointwise stage has something to learn from them
    x = torch.nn.functional.avg_pool2d(torch.randn(16, 3, 20, 20), 5, stride=1)
    result = convert(model, multiplier=1, calibrate=x, refit=True)
    assert result.fidelity.inputs == "calibration inputs: 16 samples; refit on 8, measured on the other 8"
    assert result.fidelity_before_refit is not None
    assert result.fidelity.output_error < result.fidelity_before_refit.output_error
    assert any(c.refitted for c in result.convs)
    held = x[8:]
    assert measure_fidelity(model, result.module, held).output_error == pytest.approx(result.fidelity.output_error)
    plain = convert(model, multiplier=1, calibrate=held)
    assert plain.fidelity.output_error == pytest.approx(result.fidelity_before_refit.output_error)


# --- state dicts, saving, loading ----------------------------------------------------------------------


class Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.proj = nn.Conv2d(8, 8, 3, padding=1, bias=False)


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = Encoder()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc.proj(self.enc.conv(x))


def test_state_dict_keys_are_renamed_as_reported() -> None:
    result = convert(Outer(), input_shape=(1, 3, 6, 6))
    assert result.renamed == (
        KeyRename("enc.conv.weight", ("enc.conv.0.weight", "enc.conv.1.weight")),
        KeyRename("enc.conv.bias", ("enc.conv.1.bias",)),
        KeyRename("enc.proj.weight", ("enc.proj.0.weight", "enc.proj.1.weight")),
    )
    old = set(Outer().state_dict())
    new = old - {r.old for r in result.renamed} | {k for r in result.renamed for k in r.new}
    assert set(result.module.state_dict()) == new


MODEL_FILE = """
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.PReLU(8), nn.ConvTranspose2d(8, 4, 3, stride=2))

    def forward(self, x):
        y = self.body(x)
        return y, {"mean": y.mean(dim=(2, 3))}
"""


def test_saved_model_reproduces_the_reported_error_in_a_fresh_process(tmp_path: Path) -> None:
    (tmp_path / "tinymodel.py").write_text(MODEL_FILE)
    sys.path.insert(0, str(tmp_path))
    try:
        import tinymodel  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    torch.manual_seed(0)
    model = tinymodel.Tiny()
    x = torch.randn(4, 3, 9, 9)
    torch.save({"x": x, "y": model(x)}, tmp_path / "io.pt")
    result = convert(model, multiplier=2, calibrate=x)
    save_model(result.module, tmp_path / "converted.pt")
    save_state_dict(result.module, tmp_path / "state.pt")
    script = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(tmp_path)!r})
        module = torch.load({str(tmp_path / "converted.pt")!r}, weights_only=False)
        io = torch.load({str(tmp_path / "io.pt")!r}, weights_only=True)
        with torch.no_grad():
            y, extra = module.eval()(io["x"])
        ref, ref_extra = io["y"]
        num = (y - ref).double().square().sum() + (extra["mean"] - ref_extra["mean"]).double().square().sum()
        den = ref.double().square().sum() + ref_extra["mean"].double().square().sum()
        print(repr(float((num / den).sqrt())))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert float(done.stdout) == pytest.approx(result.fidelity.output_error, rel=1e-6)
    # the state dict loads into the converted architecture, safely
    fresh = convert(tinymodel.Tiny(), init="random", multiplier=2, input_shape=(1, 3, 9, 9)).module
    load_weights(fresh, tmp_path / "state.pt")
    with torch.no_grad():
        assert torch.equal(fresh(x)[0], result.module(x)[0])


@pytest.mark.parametrize("key", [None, "state_dict", "model", "model_state_dict", "weights"])
def test_load_weights_finds_the_state_dict(tmp_path: Path, key: str | None) -> None:
    source = Outer()
    state = source.state_dict()
    torch.save(state if key is None else {key: state, "epoch": 3}, tmp_path / "w.pt")
    target = Outer()
    assert load_weights(target, tmp_path / "w.pt", key="weights" if key == "weights" else None) is target
    assert all(torch.equal(v, target.state_dict()[k]) for k, v in state.items())


def test_load_weights_strips_a_data_parallel_prefix(tmp_path: Path) -> None:
    source = Outer()
    torch.save({f"module.{k}": v for k, v in source.state_dict().items()}, tmp_path / "w.pt")
    target = load_weights(Outer(), tmp_path / "w.pt")
    assert torch.equal(target.enc.conv.weight, source.enc.conv.weight)


class Custom:
    pass


def _weights_cases(tmp: Path) -> list[tuple[str, Path, str | None, str]]:
    torch.save([torch.zeros(1)], tmp / "list.pt")
    state = Outer().state_dict()
    torch.save({k.replace("enc.", "encoder."): v for k, v in state.items()}, tmp / "renamed.pt")
    torch.save({k: v[..., :1] if k == "enc.conv.weight" else v for k, v in state.items()}, tmp / "shape.pt")
    torch.save({"net": Custom()}, tmp / "pickled.pt")
    (tmp / "junk.pt").write_bytes(b"not a torch file at all")
    (tmp / "folder.pt").mkdir()
    torch.save({"state_dict": state}, tmp / "nested.pt")
    return [
        ("missing", tmp / "nope.pt", None, "nope.pt: no such file"),
        ("folder", tmp / "folder.pt", None, "folder.pt: is not a file"),
        ("list", tmp / "list.pt", None, "holds a list, not a state dict"),
        ("keys", tmp / "renamed.pt", None,
         "keys do not match the model: missing 3 (enc.conv.weight, enc.conv.bias, enc.proj.weight); "
         "unexpected 3 (encoder.conv.weight, encoder.conv.bias, encoder.proj.weight)"),
        ("shape", tmp / "shape.pt", None, "1 shape mismatch(es), first enc.conv.weight: file (8, 3, 3, 1), "
                                          "model (8, 3, 3, 3)"),
        ("pickle", tmp / "pickled.pt", None, "holds a pickled test_convert.Custom, which only weights_only=False"),
        ("junk", tmp / "junk.pt", None, "not a file torch.load reads"),
        ("key", tmp / "nested.pt", "ema", "no key 'ema' (it has 1 (state_dict))"),
    ]  # fmt: skip


def test_every_load_weights_error_is_one_line_with_exit_code_2(tmp_path: Path) -> None:
    for name, path, key, expected in _weights_cases(tmp_path):
        with pytest.raises(WeightsError) as caught:
            load_weights(Outer(), path, key=key)
        message = str(caught.value)
        assert "\n" not in message, name
        assert expected in message, (name, message)
        assert message.startswith(str(path)), name
        assert caught.value.exit_code == 2 and isinstance(caught.value, DsconvError)


def test_load_inputs_reads_tensors_tuples_lists_and_npy(tmp_path: Path) -> None:
    x = torch.randn(4, 3, 6, 6)
    torch.save(x, tmp_path / "t.pt")
    torch.save((x, x[:, :1]), tmp_path / "tuple.pt")
    torch.save([x[:2], x[2:]], tmp_path / "list.pt")
    np.save(tmp_path / "a.npy", x.numpy().astype(np.float64))
    assert [b[0].shape for b in load_inputs(tmp_path / "t.pt")] == [x.shape]
    assert [len(b) for b in load_inputs(tmp_path / "tuple.pt")] == [2]
    assert len(load_inputs(tmp_path / "list.pt")) == 2
    (batch,) = load_inputs(tmp_path / "a.npy")
    assert batch[0].dtype == torch.float64
    result = convert(Net(), calibrate=tmp_path / "a.npy")
    assert result.fidelity.inputs == "calibration file a.npy: 4 samples"
    model = Net()
    listed = convert(model, calibrate=tmp_path / "list.pt", multiplier=2)
    assert listed.fidelity.output_error == pytest.approx(
        convert(model, calibrate=x, multiplier=2).fidelity.output_error
    )


def test_load_inputs_errors_are_one_line(tmp_path: Path) -> None:
    torch.save({"x": torch.zeros(1)}, tmp_path / "dict.pt")
    np.save(tmp_path / "obj.npy", np.array(["a", "b"]))
    (tmp_path / "x.csv").write_text("1,2")
    cases = [
        (tmp_path / "none.pt", "none.pt: no such file"),
        (tmp_path / "dict.pt", "holds a dict; expected a tensor"),
        (tmp_path / "obj.npy", "not numbers"),
        (tmp_path / "x.csv", "unknown kind .csv; expected .pt or .npy"),
    ]
    for path, expected in cases:
        with pytest.raises(CalibrationError) as caught:
            load_inputs(path)
        assert "\n" not in str(caught.value) and expected in str(caught.value)
        assert caught.value.exit_code == 2


def test_result_is_a_plain_record() -> None:
    result = convert(Net(), input_shape=(1, 3, 8, 8))
    assert isinstance(result, ConversionResult)
    assert result.macs_saved == sum(c.macs - c.separable_macs for c in result.convs) > 0
    assert result.fidelity_before_refit is None
