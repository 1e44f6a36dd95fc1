"""analyze converts with the closed form: weights in, fidelity measured and shown in every format, a model out.

The unit-level properties of the conversion (lossless at sufficient rank, optimal energy, the rules, refit)
are in test_convert.py; here the command, the API and configs carry them end to end.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import invoke
from models import TinyUNet
from torch import nn

import dsconv_cli

TARGET = "tests/models.py:TinyUNet"
SHAPE = "1,1,16,16"
CONVERTED = ("dec", "enc2", "enc1")  # the transposed upsampler's pair would cost more MACs than it saves


def rank_one_unet(seed: int = 0) -> TinyUNet:
    """TinyUNet whose standard convs have rank-1 slices per input channel: the m = 1 pair is exact."""
    torch.manual_seed(seed)
    model = TinyUNet()
    with torch.no_grad():
        for name in CONVERTED:
            conv = getattr(model, name)
            c_out, c_in = conv.weight.shape[:2]
            u = torch.randn(c_out, c_in, 1)
            v = torch.randn(1, c_in, conv.weight[0, 0].numel())
            conv.weight.copy_((u * v).reshape(conv.weight.shape))
    return model


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    path = tmp_path / "unet.pt"
    torch.save({"state_dict": rank_one_unet().state_dict()}, path)
    return path


def analyze_json(*args: str) -> dict:  # type: ignore[type-arg]
    result = invoke("analyze", TARGET, "--input-shape", SHAPE, "-f", "json", *args)
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_closed_form_pairs_of_rank_one_weights_are_exact(weights: Path) -> None:
    doc = analyze_json("--weights", str(weights), "--convert", "all")
    fidelity = doc["converted"]["fidelity"]
    assert fidelity["output_error"] < 1e-5 and fidelity["trained"] and fidelity["probes"]
    assert fidelity["inputs"] == "random normal probes of (1, 1, 16, 16)"
    candidates = {c["path"]: c for c in doc["advisor"]["candidates"]}
    assert set(candidates) == set(CONVERTED) == set(doc["converted"]["paths"])
    for c in candidates.values():
        assert c["multiplier"] == 1 and c["energy_kept"] == pytest.approx(1.0) and c["layer_error"] < 1e-5
    assert doc["converted"]["not_converted"][0]["path"] == "up"
    assert doc["converted"]["renamed_keys"]["dec.weight"] == ["dec.0.weight", "dec.1.weight"]


def test_random_pairs_lose_what_the_closed_form_keeps(weights: Path) -> None:
    svd = analyze_json("--weights", str(weights), "--convert", "all")["converted"]["fidelity"]
    fresh = analyze_json("--weights", str(weights), "--convert", "all", "--init", "random")["converted"]["fidelity"]
    assert fresh["init"] == "random" and fresh["output_error"] > 0.5 > 1e-5 > svd["output_error"]


def test_the_table_says_what_fidelity_is_worth() -> None:
    result = invoke("analyze", TARGET, "--input-shape", SHAPE, "--convert", "all")
    assert result.code == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert "fidelity of the converted model (svd pairs): output error" in out
    assert "warning: the model has fresh weights (no --weights)" in out
    assert "warning: fidelity measured on random normal probes" in out
    assert "not converted: up: at multiplier 1 its pair costs 36,864 MACs, the conv 32,768: no saving" in out


def test_auto_multiplier_keeps_the_energy_asked_for(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = TinyUNet()
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    doc = analyze_json("--weights", str(path), "--convert", "all", "--multiplier", "auto:90")
    for c in doc["advisor"]["candidates"]:
        assert c["energy_kept"] >= 0.9
        conv = getattr(model, c["path"])
        slices = conv.weight.detach().double().transpose(0, 1).reshape(conv.in_channels, conv.out_channels, -1)
        s = torch.linalg.svdvals(slices)  # per input channel
        kept = [(s[:, :m] ** 2).sum() / (s**2).sum() for m in range(1, s.shape[1] + 1)]
        assert c["multiplier"] == next(m for m, e in enumerate(kept, 1) if e >= 0.9 - 1e-12)


def test_calibration_inputs_and_max_error(weights: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "x.pt"
    torch.save(torch.randn(4, 1, 16, 16), inputs)
    doc = analyze_json("--weights", str(weights), "--convert", "max-error:1", "--calibrate", str(inputs))
    fidelity = doc["converted"]["fidelity"]
    assert not fidelity["probes"] and "x.pt: 4 samples" in fidelity["inputs"]
    assert fidelity["output_error"] <= 0.01 and set(doc["converted"]["paths"]) == set(CONVERTED)


def test_saved_model_reproduces_the_reported_fidelity_in_a_fresh_process(weights: Path, tmp_path: Path) -> None:
    inputs, saved, state = tmp_path / "x.pt", tmp_path / "converted.pt", tmp_path / "converted_state.pt"
    torch.save(torch.randn(3, 1, 16, 16), inputs)
    result = invoke("analyze", TARGET, "--input-shape", SHAPE, "--weights", str(weights), "--convert", "top:2",
                    "--init", "random", "--calibrate", str(inputs), "--save", str(saved), "--save-state-dict",
                    str(state), "-f", "json")  # fmt: skip
    assert result.code == 0, result.stderr
    reported = json.loads(result.stdout)["converted"]["fidelity"]["output_error"]
    assert f"wrote {saved}: the converted model; load it with torch.load" in result.stderr
    assert "changed keys: " in result.stderr and "dec.weight -> dec.0.weight, dec.1.weight" in result.stderr
    code = (
        "import sys, torch\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from models import TinyUNet\n"
        f"converted = torch.load({str(saved)!r}, weights_only=False).eval()\n"
        "original = TinyUNet()\n"
        f"original.load_state_dict(torch.load({str(weights)!r}, weights_only=True)['state_dict'])\n"
        f"x = torch.load({str(inputs)!r})\n"
        "with torch.no_grad():\n"
        "    y, z = original.eval()(x), converted(x)\n"
        "print(type(converted).__module__, float((y - z).norm() / y.norm()))\n"
        f"print(sorted(torch.load({str(state)!r}, weights_only=True)) == sorted(converted.state_dict()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0] == "models" and float(out[1]) == pytest.approx(reported, rel=1e-5) and out[2] == "True"


def test_the_api_returns_the_converted_module_and_converts_a_module_you_hold() -> None:
    model = rank_one_unet()
    result = dsconv_cli.analyze(model, (1, 1, 16, 16), convert_rule="all")
    assert isinstance(result.converted_model, nn.Module) and result.fidelity is not None
    assert result.fidelity.output_error < 1e-5
    assert isinstance(result.converted_model.dec, nn.Sequential)
    assert isinstance(model.dec, nn.Conv2d)  # the caller's model is untouched
    held = dsconv_cli.convert(model, rule="top:1", input_shape=(1, 1, 16, 16))
    assert [c.name for c in held.convs] == ["dec"] and held.fidelity.output_error < 1e-5
    assert dsconv_cli.analyze(model, (1, 1, 16, 16)).converted_model is None


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (None, [], "no such file"),
        (lambda p: torch.save([1, 2, 3], p), [], "not a state dict"),
        (lambda p: torch.save({"enc1.weight": torch.zeros(1)}, p), [], "missing"),
        (lambda p: torch.save(nn.Identity(), p), [], "weights_only"),
        (lambda p: torch.save({"state_dict": rank_one_unet().state_dict()}, p), ["--weights-key", "ema"], "ema"),
        (lambda p: p.write_text("hello, not a checkpoint"), [], "is not a file torch.load reads"),
        (lambda p: p.write_text("abc"), [], "is not a file torch.load reads"),
        (lambda p: p.write_bytes(b""), [], "is not a file torch.load reads"),
    ],
    ids=["missing", "not-a-state-dict", "wrong-keys", "unsafe-pickle", "no-such-key", "text", "short-text", "empty"],
)
def test_weights_errors_are_one_line_and_exit_2(tmp_path: Path, make: object, extra: list[str], message: str) -> None:
    path = tmp_path / "w.pt"
    if make is not None:
        make(path)  # type: ignore[operator]
    result = invoke("analyze", TARGET, "--input-shape", SHAPE, "--weights", str(path), *extra)
    assert result.code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "Traceback" not in result.stderr and "will likely succeed" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--save", "m.pt"], "error: --save m.pt: writes a converted model; give --convert RULE too"),
        (["--convert", "all", "--refit"], "error: --refit true: needs --calibrate FILE"),
        (["--convert", "all", "--init", "zeros"], "error: --init zeros: expected svd or random"),
        (["--convert", "all", "--multiplier", "auto:0"], "error: --multiplier auto:0:"),
    ],
)
def test_conversion_flags_are_checked(args: list[str], message: str) -> None:
    result = invoke("analyze", TARGET, "--input-shape", SHAPE, *args)
    assert result.code == 2 and result.stderr.startswith(message), result.stderr


MODEL_CONFIG = """
name: unet
model:
  target: {target}
  input_shape: [1, 1, 16, 16]
  weights: {weights}
  init: {init}
budgets:
  fidelity: {{min_snr_db: 40, max_output_error: 0.01}}
"""


@pytest.mark.parametrize(("init", "code"), [("svd", 0), ("random", 1)])
def test_config_holds_fidelity_budgets(tmp_path: Path, weights: Path, init: str, code: int) -> None:
    config = tmp_path / "unet.yaml"
    target = f"{Path(__file__).parent / 'models.py'}:TinyUNet"
    config.write_text(MODEL_CONFIG.format(target=target, weights=weights.name, init=init))
    result = invoke("report", str(config), "--no-bench", "--trust-model-code", "-f", "json")
    assert result.code == code, result.stderr
    (report,) = json.loads(result.stdout)["configs"]
    checks = {b["metric"]: b for b in report["budgets"] if b["column"] == "fidelity"}
    assert set(checks) == {"snr_db", "output_error"}
    assert all(b["ok"] for b in checks.values()) == (code == 0)


def test_a_layer_config_has_no_fidelity_to_budget(tmp_path: Path) -> None:
    config = tmp_path / "layers.yaml"
    config.write_text("layers:\n  - {out_channels: 8}\nbudgets:\n  fidelity: {min_snr_db: 20}\n")
    result = invoke("report", str(config), "--no-bench")
    assert result.code == 2 and "budgets.fidelity: applies to model configs" in result.stderr


def test_show_work_writes_each_candidates_working_from_the_counts() -> None:
    doc = analyze_json("--show-work")
    for c in doc["advisor"]["candidates"]:
        work = c["working"]
        params = {
            item: next(e["value"] for e in work[item] if e["quantity"] == "params") for item in work if item != "ratios"
        }
        macs = {
            item: next(e["value"] for e in work[item] if e["quantity"] == "macs") for item in work if item != "ratios"
        }
        assert (params["standard"], params["separable"]) == (c["params"], c["separable"]["params"])
        assert (macs["standard"], macs["separable"]) == (c["macs"], c["separable"]["macs"])
    table = invoke("analyze", TARGET, "--input-shape", SHAPE, "--show-work", "--depth", "0", env={"COLUMNS": "200"})
    assert (
        table.code == 0
        and "dec: working" in table.stdout
        and "= 16 · 3 · 3 + 8 · 16 + 8 = 144 + 136 = 280" in table.stdout
    )
    markdown = invoke("analyze", TARGET, "--input-shape", SHAPE, "--show-work", "-f", "markdown")
    assert "#### dec: working" in markdown.stdout and "$" in markdown.stdout
    refused = invoke("analyze", TARGET, "--input-shape", SHAPE, "--show-work", "-f", "csv")
    assert refused.code == 2 and refused.stderr.startswith("error: --format csv: has no column for --show-work")


def test_a_fidelity_budget_not_measured_fails_and_stays_valid_json() -> None:
    from dsconv_cli.core.results import BudgetCheck
    from dsconv_cli.present.export import budget_dict, to_json

    check = BudgetCheck("total", "fidelity", "snr_db", 20.0, float("nan"), minimum=True)
    doc = json.loads(to_json({"budget": budget_dict(check)}), parse_constant=lambda c: pytest.fail(f"JSON has {c}"))
    assert doc["budget"] == {"scope": "total", "column": "fidelity", "metric": "snr_db", "limit": 20.0, "actual": None,
                             "margin": None, "kind": "min", "ok": False, "measured": False}  # fmt: skip


class ReadsValues(nn.Module):
    """A forward that branches on a value, so it runs on the CPU, not the meta device."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if bool(x.sum() > -1e9) else x


def test_weights_loaded_into_a_model_counted_on_the_cpu_are_the_ones_converted(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = ReadsValues()
    with torch.no_grad():
        u, v = torch.randn(4, 2, 1), torch.randn(1, 2, 9)
        model.conv.weight.copy_((u * v).reshape(4, 2, 3, 3))  # rank-1 slices: the m = 1 pair is exact
    path = tmp_path / "w.pt"
    torch.save(model.state_dict(), path)
    result = dsconv_cli.analyze(ReadsValues(), (1, 2, 8, 8), convert_rule="all", weights=path)
    assert result.counted_on == "cpu" and result.notes.count("counted on the CPU: the forward needs real values "
                                                             "(it does not run on the meta device)") == 1  # fmt: skip
    assert result.fidelity is not None and result.fidelity.trained and result.fidelity.output_error < 1e-5
