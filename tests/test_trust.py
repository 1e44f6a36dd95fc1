"""Trust in CI: one test (or a few) per cause of the issue; the same inputs as whole processes are in
``test_hostile.py``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import invoke

import dsconv_cli
from dsconv_cli.core import config, loader
from dsconv_cli.core.formatting import exception_text
from dsconv_cli.errors import ConfigError, DsconvError, SpecError, TargetError

ROOT = Path(__file__).resolve().parent.parent
CONV = ("from torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self, width: int = 8) -> None:\n"
        "        super().__init__()\n        self.c = nn.Conv2d(3, width, 3)\n\n"
        "    def forward(self, x):\n        return self.c(x)\n")  # fmt: skip
LAYERS = "input_shape: [1, 16, 8, 8]\nlayers: [{name: conv, out_channels: 32}]\n"


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def model_config(folder: Path, target: str, name: str = "m.yaml", extra: str = "") -> str:
    return write(folder, name, f"name: {Path(name).stem}\nmodel: {{target: '{target}', input_shape: [1, 3, 8, 8]}}\n"
                 + extra)  # fmt: skip


# --- a YAML file runs code only when the user says so -----------------------------------------------------------


def test_a_config_model_runs_only_with_trust_model_code(tmp_path: Path) -> None:
    write(tmp_path, "net.py", CONV)
    path = model_config(tmp_path, "net.py:Net")
    refused = invoke("report", path)
    assert refused.code == 2
    assert refused.stderr == (f"error: {path}:2: model.target {tmp_path}/net.py:Net: importing it runs its code; pass "
                              "--trust-model-code (or set DSCONV_TRUST_MODEL_CODE=1) to run the model a config "
                              "names\n")  # fmt: skip
    assert invoke("report", path, "--trust-model-code").code == 0
    assert invoke("report", path, env={"DSCONV_TRUST_MODEL_CODE": "1"}).code == 0
    assert invoke("compare", "--config", path, "--no-bench").code == 2
    with pytest.raises(ConfigError, match="--trust-model-code"):
        dsconv_cli.run_config(path)
    assert dsconv_cli.run_config(path, trust_model_code=True).ok


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("os:system", "os:system: system is a built-in function (system); a target is an nn.Module subclass, an "
                      "nn.Module instance or a function defined in os"),
        ("subprocess:Popen", "subprocess:Popen: Popen is the class Popen, not an nn.Module subclass"),
        ("functools:partial", "functools:partial: partial is the class partial, not an nn.Module subclass"),
        ("m.pyc:Net", "m.pyc:Net: a file target is Python source, FILE.py:ATTR (e.g. model.py:Net); m.pyc is not a "
                      ".py file"),
        ("dir/m:Net", "dir/m:Net: a file target is Python source"),
    ],
)  # fmt: skip
def test_targets_are_models_classes_or_their_own_modules_functions(target: str, message: str) -> None:
    from dsconv_cli.pt.target import resolve_target

    with pytest.raises(TargetError) as caught:
        resolve_target(target)
    assert str(caught.value).startswith(message)


def test_a_function_imported_from_elsewhere_is_no_target(tmp_path: Path) -> None:
    from dsconv_cli.pt.target import resolve_target

    target = write(tmp_path, "f.py", "from os.path import join\n") + ":join"
    with pytest.raises(TargetError, match="join is a function defined in posixpath, not here; name it from there"):
        resolve_target(target)


def test_a_package_may_re_export_its_submodules_factories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsconv_cli.pt.target import resolve_target

    write(tmp_path, "zoo/__init__.py", "from zoo.nets import make\n")
    write(tmp_path, "zoo/nets.py", CONV + "\n\ndef make():\n    return Net()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert resolve_target("zoo:make").__module__ == "zoo.nets"  # as torchvision.models:mobilenet_v2


# --- model code cannot end or corrupt the run --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("import sys\nsys.exit(0)\n", "the model's code called sys.exit (0) while dsconv ran it; code that parses a "
                                      "command line or exits belongs under if __name__ == '__main__':"),
        ("raise SystemExit(7)\n", "the model's code called sys.exit (7)"),
        ("import argparse\nargparse.ArgumentParser().add_argument('--x', required=True)\n"
         "p = argparse.ArgumentParser()\np.add_argument('--x', required=True)\np.parse_args()\n",
         "argparse in the model's code exited (2)"),
        ("raise GeneratorExit\n", "the model's code raised GeneratorExit, which ends a program, while dsconv ran it"),
    ],
)  # fmt: skip
def test_model_code_that_ends_a_program_is_an_error_for_that_target(tmp_path: Path, code: str, message: str) -> None:
    target = write(tmp_path, "bad.py", code + CONV) + ":Net"
    with pytest.raises(TargetError) as caught:
        dsconv_cli.analyze(target, (1, 3, 8, 8))  # the caller's process goes on
    assert str(caught.value) == f"{target}: {message}" if "(0)" in message else message in str(caught.value)
    assert sys.argv[0] != target.rpartition(":")[0]  # the model saw an empty command line; ours is back


def test_a_model_exiting_leaves_the_other_files_reported_and_the_output_written(tmp_path: Path) -> None:
    write(tmp_path, "quits.py", "import sys\nsys.exit(0)\n")
    quits = model_config(tmp_path, "quits.py:Net", "quits.yaml")
    failing = write(tmp_path, "fail.yaml", LAYERS + "budgets: {separable: {params: 10}}\n")
    out = tmp_path / "r.json"
    result = invoke("report", quits, failing, "--trust-model-code", "-f", "json", "--output", str(out))
    assert result.code == 2
    assert result.stderr.splitlines()[-1].startswith(f"error: {quits}:2: model.target")
    (entry,) = json.loads(out.read_text())["configs"]
    assert (entry["name"], entry["ok"]) == ("fail", False)


def test_a_models_prints_go_to_stderr_never_into_the_json(tmp_path: Path) -> None:
    target = write(tmp_path, "loud.py", "print('imported')\n" + CONV.replace(
        "return self.c(x)", "print('forward')\n        return self.c(x)")) + ":Net"  # fmt: skip
    result = invoke("analyze", target, "--input-shape", "1,3,8,8", "-f", "json")
    assert result.code == 0
    assert json.loads(result.stdout)["totals"]["params"] == 224
    assert "imported" in result.stderr and "forward" in result.stderr


def test_each_model_file_imports_its_own_siblings(tmp_path: Path) -> None:
    from dsconv_cli.pt.target import resolve_target

    for folder, width in (("a", 8), ("b", 64)):
        write(
            tmp_path,
            f"{folder}/helpers.py",
            f"from torch import nn\n\n\ndef make():\n    return nn.Conv2d(3, {width}, 3)\n",
        )
        write(tmp_path, f"{folder}/m.py", "import helpers\n\n\ndef make():\n    return helpers.make()\n")
    sys.modules["helpers"] = unrelated = type(sys)("helpers")  # a module of that name the process already has
    try:
        first, second = (resolve_target(f"{tmp_path}/{f}/m.py:make")() for f in ("a", "b"))
        assert (first.out_channels, second.out_channels) == (8, 64)
        assert sys.modules["helpers"] is unrelated  # hidden while a model file ran, then back
    finally:
        del sys.modules["helpers"]
    assert not list(tmp_path.rglob("__pycache__"))  # importing a model writes nothing beside it


# --- no silent CI pass --------------------------------------------------------------------------------------------


def test_a_baseline_without_the_config_fails_under_max_increase(tmp_path: Path) -> None:
    layers = write(tmp_path, "l.yaml", LAYERS)
    base = write(tmp_path, "base.json", '{"schema_version": 2, "configs": []}')
    result = invoke("report", layers, "--baseline", base, "--max-increase", "5")
    assert result.code == 1
    assert result.stderr == ("error: l: the baseline has no totals for this config, so --max-increase 5% compared "
                             "nothing; pass --baseline-missing ok to let a new config pass\n")  # fmt: skip
    assert invoke("report", layers, "--baseline", base, "--max-increase", "5", "--baseline-missing", "ok").code == 0
    assert invoke("report", layers, "--baseline", base).code == 0  # nothing gated, nothing failed


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ('{"configs": []}', "schema_version missing: this dsconv reads baselines of schema 1 or 2"),
        ('{"schema_version": 3, "configs": []}', "schema_version 3: this dsconv reads"),
        ('{"schema_version": "2", "configs": []}', 'schema_version "2": this dsconv reads'),
    ],
)
def test_a_baselines_schema_version_is_checked(tmp_path: Path, document: str, message: str) -> None:
    base = write(tmp_path, "base.json", document)
    result = invoke("report", write(tmp_path, "l.yaml", LAYERS), "--baseline", base)
    assert result.code == 2 and result.stderr.startswith(f"error: --baseline {base}: {message}")


# --- bounded work -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--rounds", "1000000", "--min-time", "0.01"], "--rounds 1000000: must be an integer from 1 to 100"),
        (["report", "configs/seed_example.yaml", "--bench", "--rounds", "101"], "--rounds 101: must be an integer"),
        (["analyze", "x.py:Net", "--input-shape", "1,3,8,8", "--bench", "--rounds", "0"], "--rounds 0: must be"),
        (["compare", "--min-time", "61"], "--min-time 61.0: must be a positive number of seconds up to 60"),
        (["compare", "--threads", "4097"], "--threads 4097: is more than the"),
        (["compare", "--threads", "1,4097", "--no-bench"], "--threads 4097: is more than the"),
        (["peaks", "--threads", "4097"], "--threads 4097: is more than the"),
        (["compare", "--batch", ",".join(map(str, range(1, 40))), "--dtype", "float32,bfloat16"],
         "cases to time, over the limit of 64"),
    ],
)  # fmt: skip
def test_timing_work_is_capped(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.code == 2 and result.stderr.startswith("error: --") and message in result.stderr, result.stderr


def test_more_threads_than_cpus_only_when_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsconv_cli.run import options

    monkeypatch.setattr(options, "available_cpus", lambda: 2)
    with pytest.raises(SpecError, match="set DSCONV_FORCE_THREADS=1"):
        options.check_threads(3)
    monkeypatch.setenv("DSCONV_FORCE_THREADS", "1")
    options.check_threads(3)


def test_every_file_read_is_bounded(tmp_path: Path) -> None:
    from dsconv_cli.files import TooLarge, read_bounded

    with pytest.raises(TooLarge):
        read_bounded("/dev/zero", 1024)
    assert read_bounded(write(tmp_path, "a.txt", "abc"), 3) == "abc"
    assert invoke("report", "/dev/zero").stderr.startswith("error: /dev/zero: over 16.0 MiB, too large")
    seed = "configs/seed_example.yaml"
    assert "too large to be a dsconv report" in invoke("report", seed, "--baseline", "/dev/zero").stderr
    assert config.max_file_bytes(100_000) == 100_000 * 1024  # a longer stack allowed is a larger file allowed


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
                   + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]),
         "expands to over 100,000 values (aliases followed); give a model's arguments"),
        ("[" * 5000 + "]" * 5000, "nested deeper than 32 levels"),
        ("a: " + "[" * 40 + "]" * 40, "nested deeper than 32 levels; give a flat mapping"),
        ('{"width": ' + "9" * 5000 + "}", "an integer of 5,000 digits"),
        ("{1: 2}", "key 1 is not an argument name"),
    ],
)  # fmt: skip
def test_kwargs_go_through_the_bounded_loader(text: str, reason: str) -> None:
    import time

    from dsconv_cli.core.parse import parse_kwargs

    start = time.perf_counter()
    with pytest.raises(SpecError, match=re.escape(reason)):
        parse_kwargs(text)
    assert time.perf_counter() - start < 1.0  # a 387-byte bomb once took 85 s and 3.6 GB


def test_a_long_stack_of_named_layers_is_no_alias_bomb() -> None:
    """20,000 named layers were refused as "aliases repeated inside aliases?"; the values a file may hold now grow
    with --max-layers (the tree is built directly: composing 1 MB of YAML takes seconds)."""
    mark = yaml.Mark("big.yaml", 0, 0, 0, "", 0)

    def node(kind: type[yaml.Node], value: object) -> yaml.Node:
        return kind("tag:yaml.org,2002:" + {yaml.ScalarNode: "str", yaml.MappingNode: "map"}.get(kind, "seq"), value,
                    mark, mark)  # fmt: skip

    layers = [node(yaml.MappingNode, [(node(yaml.ScalarNode, "name"), node(yaml.ScalarNode, f"conv{i}")),
                                      (node(yaml.ScalarNode, "out_channels"), node(yaml.ScalarNode, "8"))])
              for i in range(20_000)]  # fmt: skip
    root = node(yaml.MappingNode, [(node(yaml.ScalarNode, "layers"), node(yaml.SequenceNode, layers))])
    loader.check_tree(root, "big.yaml", loader.max_values(20_000))
    with pytest.raises(ConfigError, match="a config with more layers needs a larger --max-layers"):
        loader.check_tree(root, "big.yaml", loader.BASE_VALUES)


def test_max_memory_counts_activations_before_timing_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsconv_cli.pt import bench, timing

    monkeypatch.setattr(timing, "time_module", lambda *a: pytest.fail("timed past --max-memory"))
    target = write(tmp_path, "wide.py", CONV.replace("width: int = 8", "width: int = 256")) + ":Net"
    a = dsconv_cli.analyze(target, (1, 3, 64, 64))
    weights_and_input = (a.totals.params * 2 + 3 * 64 * 64) * 4
    assert bench.activation_elements(a) == 256 * 62 * 62  # the one conv's output
    result = invoke("analyze", target, "--input-shape", "1,3,64,64", "--bench", "--max-memory",
                    str(weights_and_input + 1000))  # fmt: skip
    assert result.code == 2 and "(weights, input and activations)" in result.stderr


# --- nothing lost ----------------------------------------------------------------------------------------------


def _interrupt(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt


def test_ctrl_c_during_analyze_bench_prints_the_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsconv_cli.pt import timing

    monkeypatch.setattr(timing, "time_module", _interrupt)
    target = write(tmp_path, "net.py", CONV) + ":Net"
    for fmt in ("table", "json"):
        result = invoke("analyze", target, "--input-shape", "1,3,8,8", "--bench", "--min-time", "0.01", "-f", fmt)
        assert result.code == 130
        assert result.stderr.endswith("error: interrupted by Ctrl-C; the counts and the timings measured before it "
                                      "are shown\n")  # fmt: skip
        if fmt == "json":
            document = json.loads(result.stdout)
            assert document["interrupted"] is True and document["totals"]["params"] == 224
        else:
            assert "total: 224 params" in result.stdout


def test_ctrl_c_during_a_timed_report_prints_what_was_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsconv_cli.pt import timing

    real = timing.measure_rounds
    calls = []

    def second_layer_interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(timing, "measure_rounds", second_layer_interrupted)
    result = invoke("report", "configs/seed_example.yaml", "configs/mobilenet_v1.yaml", "--bench", "--min-time",
                    "0.01", "--threads", "1", "--rounds", "1", "-f", "json")  # fmt: skip
    assert result.code == 130
    assert result.stderr.endswith("error: interrupted by Ctrl-C: 1 of 2 config(s) shown, with what was measured "
                                  "before it\n")  # fmt: skip
    document = json.loads(result.stdout)
    (entry,) = document["configs"]
    assert document["interrupted"] is True and entry["interrupted"] is True
    assert "latency" in entry["points"][0]["layers"][0]["standard"]  # the layer timed before Ctrl-C


def test_ctrl_c_in_compares_first_round_still_says_interrupted(monkeypatch: pytest.MonkeyPatch) -> None:
    from dsconv_cli.pt import timing

    monkeypatch.setattr(timing, "time_case", _interrupt)
    result = invoke("compare", "--min-time", "0.01", "--no-roofline", "-f", "json")
    assert result.code == 130
    (comparison,) = json.loads(result.stdout)["comparisons"]
    assert comparison["interrupted"] is True and comparison["standard"]["params"] == 4608


def test_json_always_says_whether_it_was_interrupted(tmp_path: Path) -> None:
    compare = json.loads(invoke("compare", "--no-bench", "-f", "json").stdout)
    assert compare["interrupted"] is False and compare["comparisons"][0]["interrupted"] is False
    report = json.loads(invoke("report", "configs/seed_example.yaml", "-f", "json").stdout)
    assert report["interrupted"] is False and report["configs"][0]["interrupted"] is False
    target = write(tmp_path, "net.py", CONV) + ":Net"
    assert (
        json.loads(invoke("analyze", target, "--input-shape", "1,3,8,8", "-f", "json").stdout)["interrupted"] is False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "--no-bench", "--output", "x.svg", "--diagram", "x.svg"],
         "error: --diagram x.svg: is also the --output file; give each output its own path\n"),
        (["compare", "--config", f"{ROOT}/configs/sweep_kernel_channels.yaml", "--no-bench", "--plot", "p.png",
          "--output", "./p.png"], "error: --plot p.png: is also the --output file; give each output its own path\n"),
        (["analyze", f"{ROOT}/tests/models.py:TinyUNet", "--input-shape", "1,3,16,16", "--output", "c.yaml",
          "--emit-config", "c.yaml"], "error: --emit-config c.yaml: is also the --output file; give each output its "
                                      "own path\n"),
    ],
)  # fmt: skip
def test_two_outputs_to_one_path_are_refused_before_any_work(args: list[str], message: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert (result.code, result.stderr) == (2, message)
    assert list(tmp_path.iterdir()) == [tmp_path / "cache"] or not list(tmp_path.glob("*.*"))


# --- names from a model are printed escaped ---------------------------------------------------------------------


def test_names_from_a_model_are_printed_escaped(tmp_path: Path) -> None:
    code = CONV.replace("self.c = nn.Conv2d(3, width, 3)", "self.add_module('\\x1b[31mred', nn.Conv2d(3, width, 3))")
    code = code.replace("return self.c(x)", "return getattr(self, '\\x1b[31mred')(x)")
    code += "\n\nBad = type('\\x1b]0;title\\x07Bad', (Net,), {})\n"
    target = write(tmp_path, "esc.py", code) + ":Bad"
    for fmt in ("table", "markdown", "csv", "json"):
        result = invoke("analyze", target, "--input-shape", "1,3,8,8", "-f", fmt, "--convert", "all")
        assert result.code == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "\\x1b[31mred" in result.stdout.replace("\\\\", "\\")
    failing = write(tmp_path, "fails.py", CONV.replace("return self.c(x)", "raise ValueError('\\x1b[2J')")) + ":Net"
    result = invoke("analyze", failing, "--input-shape", "1,3,8,8")
    assert result.code == 2 and "\x1b" not in result.stderr and "ValueError: \\x1b[2J" in result.stderr


def test_a_config_files_name_is_printed_escaped(tmp_path: Path) -> None:
    path = write(tmp_path, "e\x1b[31mvil.yaml", LAYERS.replace("input_shape", "description: x\ninput_shape"))
    for fmt in ("table", "markdown", "csv"):
        result = invoke("report", path, "-f", fmt)
        assert result.code == 0 and "\x1b" not in result.stdout and "e\\x1b[31mvil" in result.stdout, result.stdout


# --- documented exit codes; no traceback --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "-k", "1" + "0" * 4400, "--no-bench"], "error: --kernel-size 10000000000000000000...: has 4,401 "
                                                            "characters; give a size up to 9,223,372,036,854,775,807"),
        (["compare", "-k", "100000000000000000000", "--no-bench"], "error: impossible layer: the standard column's "
                                                                   "standard stage has about 10^42 params, past the "
                                                                   "int64 counts PyTorch can hold"),
        (["compare", "--input-shape", "1,16,9999999999,9999999999", "--verify", "--no-bench"],
         "error: impossible layer: its input (1, 16, 9999999999, 9999999999) has about 10^21 elements"),
        (["compare", "--max-memory", "9" * 400, "--no-bench"], "error: --max-memory 9999999999999999999999999999999999999...: "
                                                               "expected a size below 8 EiB"),
    ],
)  # fmt: skip
def test_numbers_no_layer_can_have_are_exit_2(args: list[str], message: str) -> None:
    result = invoke(*args)
    assert result.code == 2 and result.stderr.startswith(message), result.stderr


def test_a_config_layer_past_int64_is_an_impossible_layer(tmp_path: Path) -> None:
    path = write(tmp_path, "w.yaml", "input_shape: [1, 16, 8, 8]\ndefaults: {width_multiplier: 1000000000.0}\n"
                 "layers: [{out_channels: 32}, {out_channels: 32}]\n")  # fmt: skip
    result = invoke("report", path)
    assert result.code == 2
    assert result.stderr.startswith(f"error: {path}:3: layers[1]: impossible layer: the standard column's standard "
                                    "stage has about 10^21 params")  # fmt: skip


def test_a_baseline_value_no_count_has_is_exit_2(tmp_path: Path) -> None:
    layers = write(tmp_path, "l.yaml", LAYERS)
    for value in ("1e400", "1" + "0" * 400):
        base = write(tmp_path, "b.json", '{"schema_version": 2, "configs": [{"name": "l", "points": [{"totals": '
                     f'{{"standard": {{"params": {value}, "macs": 1, "elementwise_ops": 0}}}}}}]}}]}}')  # fmt: skip
        result = invoke("report", layers, "--baseline", base)
        assert result.code == 2 and "malformed totals" in result.stderr


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning")
def test_a_zero_channel_conv_from_kwargs_is_counted_not_a_traceback(tmp_path: Path) -> None:
    target = write(tmp_path, "w.py", CONV) + ":Net"
    result = invoke("analyze", target, "--input-shape", "1,3,8,8", "--kwargs", '{"width": 0}')
    assert result.code == 0 and "no conversion candidates" in result.stdout


API_CALLS = [
    ("compare", {"in_channels": "abc"}, "--in-channels abc: expected an integer, got str"),
    ("compare", {"device": "bogus"}, "--device bogus: is not one of cpu, cuda, auto"),
    ("compare", {"kernel_size": (3.7, 2)}, "--kernel-size 3.7: expected an integer (a float is never rounded)"),
    ("compare", {"in_channels": 16.0}, "--in-channels 16.0: expected an integer (a float is never rounded)"),
    ("compare", {"in_channels": True}, "--in-channels True: expected an integer"),
    ("compare", {"in_channels": 10**5000}, "--in-channels <a huge integer>: is past int64"),
    ("compare", {"kernel_size": []}, "--kernel-size (): expected an integer or a sequence of integers"),
    ("compare", {"kernel_size": object()}, "--kernel-size <object object at"),
    ("compare", {"norm": "bogus"}, "--norm bogus: is not one of none, batch"),
    ("compare", {"act": 3}, "--act 3: is not one of"),
    ("compare", {"bias": "yes"}, "--bias yes: expected True or False, got str"),
    ("compare", {"slopes": 2}, "--slopes 2: is not one of 1, channel"),
    ("compare", {"input_shape": (1, 16, 8.5, 8)}, "--input-shape 8.5: expected an integer"),
    ("compare", {"bench": "no"}, "--bench no: expected True or False, got str"),
    ("compare", {"dtype": 3}, "--dtype 3: expected a dtype"),
    ("compare", {"min_time": "soon"}, "--min-time soon: expected a number, got str"),
    ("compare", {"rounds": 2.5}, "--rounds 2.5: expected an integer"),
    ("compare", {"max_memory": [1]}, "--max-memory [1]: expected an integer, got list"),
    ("compare", {"threads": 1.5}, "--threads 1.5: expected an integer"),
    ("compare", {"bogus": 1}, "--arguments compare: got an unexpected keyword argument 'bogus'"),
    ("count", {"groups": None, "multiplier": "x"}, "--multiplier x: expected an integer, got str"),
    ("load_config", {"path": None}, "--path None: expected a file path, got NoneType"),
    ("load_config", {"path": "configs/seed_example.yaml", "max_layers": "many"}, "--max-layers many: expected an "
                                                                                 "integer"),
    ("run_config", {"path_or_config": None}, "--path-or-config None: expected a file path, got NoneType"),
    ("run_config", {"path_or_config": "x.yaml", "baseline": 5}, "--baseline 5: expected a file path, got int"),
    ("run_config", {"path_or_config": "x.yaml", "max_increase": "lots"}, "--max-increase lots: expected a number"),
    ("analyze", {"model_or_target": None, "input_shape": (1, 3, 8, 8)}, "NoneType: is a NoneType, not a model"),
    ("analyze", {"model_or_target": print, "input_shape": (1, 3, 8, 8)}, "builtin_function_or_method: is a built-in function (print)"),
    ("analyze", {"model_or_target": "tests/models.py:TinyUNet", "input_shape": None}, "--input-shape (none): give "
                                                                                       "the forward's inputs"),
    ("analyze", {"model_or_target": "tests/models.py:TinyUNet", "input_shape": (1, 8), "input_dtype": 64},
     "--input-dtype 64: expected a dtype"),
    ("analyze", {"model_or_target": "tests/models.py:TinyUNet", "input_shape": (1, 8), "vocab": 2.5},
     "--vocab 2.5: expected an integer"),
    ("analyze", {"model_or_target": "tests/models.py:TinyUNet", "input_kw": [1]}, "--input-kw [1]: expected a "
                                                                                   "mapping"),
    ("analyze", {"model_or_target": "tests/models.py:TinyUNet", "input_shape": (1, 3, 8.0, 8)}, "--input-shape 8.0"),
    ("analyze", {"model_or_target": "tests/models.py:TinyUNet", "input_shape": (1, 3, 8, 8), "kwargs": [1]},
     "--kwargs [1]: expected a mapping"),
    ("analyze", {"model_or_target": "tests/models.py:TinyUNet", "input_shape": (1, 3, 8, 8), "dtype": "float99"},
     "--dtype float99: is not one of"),
    ("analyze", {"model_or_target": "tests/models.py:TinyUNet", "input_shape": (1, 3, 8, 8), "convert_rule": 3},
     "--convert-rule 3: expected text, got int"),
    ("analyze", {"model_or_target": "tests/models.py:TinyUNet", "input_shape": (1, 3, 8, 8), "max_memory": "lots"},
     "--max-memory lots: expected a size"),
    ("to_dict", {"result": None}, "--result NoneType: expected what compare, run_config or analyze returned"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "kwargs", "message"), API_CALLS, ids=[f"{c}-{m[:30]}" for c, _, m in API_CALLS])
def test_every_api_entry_point_checks_its_arguments(call: str, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DsconvError) as caught:
        getattr(dsconv_cli, call)(**kwargs)
    assert caught.value.exit_code == 2
    assert str(caught.value).startswith(message), str(caught.value)


def test_numpy_integers_are_integers_and_floats_are_never_rounded() -> None:
    np = pytest.importorskip("numpy")
    r = dsconv_cli.count(in_channels=np.int64(16), kernel_size=(np.int32(3), 5))
    assert r.spec.kernel_size == (3, 5) and r.spec.in_channels == 16
    with pytest.raises(SpecError):
        dsconv_cli.count(kernel_size=(3.7, 2))


# --- messages that do not send users in circles --------------------------------------------------------------------


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse(text, "c.yaml")
    return caught.value.messages


def test_a_share_of_another_kind_says_so_once() -> None:
    head = "input_shape: [1, 16, 8, 8]\nlayers:\n  - {name: a, kind: standard, out_channels: 16}\n"
    assert _errors(head + "  - {name: fc, kind: linear, share: a}\n") == [
        "c.yaml:4: layers[1].share a: a is a standard layer and this one a linear layer; a layer shares the weights "
        "of its own kind: leave kind out (it is taken from a)"]  # fmt: skip
    assert _errors(head + "  - {name: b, kind: separable, share: a, out_channels: 16}\n") == [
        "c.yaml:4: layers[1].share a: a is a standard layer and this one a separable layer; a layer shares the "
        "weights of its own kind: leave kind out (it is taken from a)"]  # fmt: skip
    shared = config.parse(head + "  - {name: b, share: a}\n", "c.yaml").layers[1]  # no kind: the source's
    assert (shared.kind.value, shared.share, shared.options["out_channels"]) == ("standard", "a", 16)


def test_a_share_whose_input_differs_names_the_inputs(tmp_path: Path) -> None:
    path = write(tmp_path, "s.yaml", "input_shape: [1, 16, 8, 8]\nlayers:\n  - {name: a, kind: standard, "
                 "out_channels: 32}\n  - {name: b, share: a}\n")  # fmt: skip
    assert invoke("report", path).stderr == (
        f"error: {path}:4: layers[1].share a: its weights do not fit this layer's input (1, 32, 8, 8): a has 4,608 "
        "params (standard column) on (1, 16, 8, 8), this input would need 9,216; the input channels must match\n"
    )


def test_share_and_add_in_defaults_are_errors() -> None:
    text = "input_shape: [1, 16, 8, 8]\ndefaults: {share: a, add: a}\nlayers: [{name: a, out_channels: 16}]\n"
    assert _errors(text) == [
        f"c.yaml:2: defaults.{key}: names one earlier layer, so it belongs on the layer that uses it, not in "
        "defaults (which apply to every layer)" for key in ("add", "share")]  # fmt: skip


def test_pytorchs_cpp_backtrace_stays_out_of_the_error_line() -> None:
    exc = RuntimeError("shape mismatch\nException raised from conv at /src/Conv.cpp:12 (most recent call first):\n"
                       "frame #0: c10::Error::Error()\nframe #1: at::native::conv()")  # fmt: skip
    assert exception_text(exc) == "RuntimeError: shape mismatch"
    assert exception_text(ValueError("a\n  b")) == "ValueError: a b"


# --- a newcomer's list --------------------------------------------------------------------------------------------


def test_the_distribution_name_is_ours_and_every_install_hint_uses_it() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "dsconv-cli" and project["scripts"] == {"dsconv": "dsconv_cli.cli.app:main"}
    texts = [p.read_text() for p in [*ROOT.joinpath("dsconv_cli").rglob("*.py"), ROOT / "README.md",
                                     *ROOT.joinpath("docs").glob("*.md")]]  # fmt: skip
    hints = [hint.split("&&")[0] for text in texts for hint in re.findall(r"pip install [^\n`]*", text)]
    named = [word.strip("'\"()") for hint in hints for word in hint.split()[2:]]
    assert not [word for word in named if word == "dsconv" or word.startswith("dsconv[")], hints
    assert "dsconv-cli[plot]" in named


def test_report_counts_by_default_and_times_latency_budgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dsconv_cli.pt import timing

    monkeypatch.setattr(timing, "time_stack", lambda *a, **k: pytest.fail("timed without --bench"))
    assert invoke("report", "configs/mobilenet_v1.yaml").code == 0
    monkeypatch.undo()
    budgeted = write(tmp_path, "b.yaml", LAYERS + "budgets: {separable: {latency_ms: 10000}}\n")
    entry = json.loads(invoke("report", budgeted, "--min-time", "0.01", "--threads", "1", "-f", "json").stdout)
    assert entry["configs"][0]["budgets"][0]["measured"] is True  # a latency budget is timed without --bench


def test_help_into_a_closed_pipe_exits_0_under_pipefail() -> None:
    for command in ("--help", "report --help", "--version"):
        result = subprocess.run(["bash", "-c", f"set -o pipefail; {sys.executable} -m dsconv_cli {command} | head -1"],
                                capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})  # fmt: skip
        assert result.returncode == 0 and "Traceback" not in result.stderr, (command, result.stderr)
