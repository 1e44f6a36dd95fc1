"""Hostile inputs, each run as a whole ``dsconv`` process under a time limit, as CI would run it on an untrusted
pull request: the exit code is the documented one, an error is one ``error:`` line, no traceback is printed, and
no file changes but the ones asked for (inside the working folder or beside it).

Classes of case, and how each ends:

- model code: a config's model runs only with ``--trust-model-code`` (else exit 2 naming it); builtins are no
  targets; ``sys.exit``, argparse, ``GeneratorExit`` are exit 2 for that target while the other files are
  reported and ``--output`` is written; prints never reach stdout; siblings never leak between model files;
- unbounded work: rounds, threads, minimum times, file sizes, alias bombs and deep nesting are exit 2 at once;
- silent CI passes: a baseline with no entry is exit 1 under ``--max-increase``; a baseline of another schema,
  with a value no count has, or nested without end is exit 2;
- numbers and layers: integers too long to read, layers past int64, impossible shares, colliding outputs: exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIMIT_S = 60  # each case's wall-clock limit; every one ends in seconds (an alias bomb once took 85)

CONV = "from torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self, width: int = 8) -> None:\n" \
       "        super().__init__()\n        self.c = nn.Conv2d(3, width, 3)\n\n" \
       "    def forward(self, x):\n        return self.c(x)\n"  # fmt: skip
BOMB = "\n".join(["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
                 + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)])  # fmt: skip
HELPERS = "from torch import nn\n\n\ndef make():\n    return nn.Conv2d(3, {width}, 3)\n"
USES_HELPERS = ("import helpers\nfrom torch import nn\n\n\nclass Net(nn.Module):\n    def __init__(self) -> None:\n"
                "        super().__init__()\n        self.c = helpers.make()\n\n    def forward(self, x):\n"
                "        return self.c(x)\n")  # fmt: skip


def model_config(target: str, extra: str = "") -> str:
    return f"model: {{target: '{target}', input_shape: [1, 3, 8, 8]}}\n{extra}"


LAYERS = "input_shape: [1, 16, 8, 8]\nlayers: [{name: conv, out_channels: 32}]\n"
FAILING = LAYERS + "budgets: {separable: {params: 10}}\n"


@dataclass
class Case:
    id: str
    args: list[str]
    code: int
    error: str | None = None  # text the one error line holds; None: no error line at all
    files: dict[str, str] = field(default_factory=dict)  # written in the working folder first
    outputs: tuple[str, ...] = ()  # files the case asks dsconv to write
    stdout_json: bool = False  # stdout must be one JSON document (nothing from the model's prints)
    check: str = ""  # a further check by name, see ``test_hostile_case``


CASES = [
    # --- model code runs only when asked, and cannot end or corrupt the run -------------------------------------
    Case("config-runs-os-system", ["report", "c.yaml"], 2, "pass --trust-model-code",
         {"c.yaml": "model: {target: 'os:system', kwargs: {command: 'touch pwned'}, input_shape: [1, 3, 8, 8]}\n"}),
    Case("trusted-os-system-is-no-target", ["report", "c.yaml", "--trust-model-code"], 2, "is a built-in function",
         {"c.yaml": "model: {target: 'os:system', kwargs: {command: 'touch pwned'}, input_shape: [1, 3, 8, 8]}\n"}),
    Case("config-names-a-path-outside", ["report", "c.yaml"], 2, "pass --trust-model-code",
         {"c.yaml": model_config("../../outside/evil.py:Net")}),
    Case("analyze-builtin", ["analyze", "os:system", "--input-shape", "1,3,8,8"], 2, "is a built-in function"),
    Case("analyze-other-callable", ["analyze", "subprocess:Popen", "--input-shape", "1,3,8,8"], 2,
         "the class Popen, not an nn.Module subclass"),
    Case("model-exits-0-other-files-still-reported",
         ["report", "exit0.yaml", "fail.yaml", "--trust-model-code", "-f", "json", "--output", "r.json"], 2,
         "sys.exit (0)", {"exit0.py": "import sys\nsys.exit(0)\n", "exit0.yaml": model_config("exit0.py:Net"),
                          "fail.yaml": FAILING}, outputs=("r.json",), check="report-has-fail"),
    Case("model-exits-7", ["report", "exit7.yaml", "--trust-model-code"], 2, "sys.exit (7)",
         {"exit7.py": CONV.replace("super().__init__()", "super().__init__()\n        raise SystemExit(7)"),
          "exit7.yaml": model_config("exit7.py:Net")}),
    Case("module-level-argparse", ["analyze", "args.py:Net", "--input-shape", "1,3,8,8"], 2, "argparse",
         {"args.py": "import argparse\np = argparse.ArgumentParser()\np.add_argument('--data', required=True)\n"
                     "p.parse_args()\n" + CONV}),
    Case("generator-exit", ["analyze", "gen.py:Net", "--input-shape", "1,3,8,8"], 2, "raised GeneratorExit",
         {"gen.py": CONV.replace("super().__init__()", "super().__init__()\n        raise GeneratorExit")}),
    Case("api-run-config-exit", ["-c", "import dsconv_cli as d\ntry:\n    d.run_config('e.yaml', trust_model_code="
         "True)\nexcept Exception as e:\n    print('error: ' + str(e), file=__import__('sys').stderr)\n"
         "print('still running')"], 0, "sys.exit (3)",
         {"e.py": "import sys\nsys.exit(3)\n", "e.yaml": model_config("e.py:Net")}, check="python"),
    Case("print-never-reaches-json", ["analyze", "loud.py:Net", "--input-shape", "1,3,8,8", "-f", "json"], 0,
         files={"loud.py": "print('hello from the model')\n" + CONV.replace("return self.c(x)",
                                                                            "print('forward')\n        return self.c(x)")},
         stdout_json=True),
    Case("siblings-never-leak", ["report", "a.yaml", "b.yaml", "--trust-model-code", "-f", "json"], 0,
         files={"a/helpers.py": HELPERS.format(width=8), "b/helpers.py": HELPERS.format(width=64),
                "a/m.py": USES_HELPERS, "b/m.py": USES_HELPERS, "a.yaml": "name: a\n" + model_config("a/m.py:Net"),
                "b.yaml": "name: b\n" + model_config("b/m.py:Net")}, stdout_json=True, check="siblings"),
    Case("compiled-file-target", ["analyze", "m.pyc:Net", "--input-shape", "1,3,8,8"], 2, "is not a .py file"),
    Case("escape-sequences-in-names", ["analyze", "esc.py:Net", "--input-shape", "1,3,8,8"], 0,
         files={"esc.py": CONV.replace("self.c = nn.Conv2d(3, width, 3)",
                                       "self.add_module('\\x1b[2J\\x1b[31mred', nn.Conv2d(3, width, 3))")
                .replace("return self.c(x)", "return getattr(self, '\\x1b[2J\\x1b[31mred')(x)")},
         check="no-escape"),
    Case("zero-channel-conv-from-kwargs", ["analyze", "w.py:Net", "--input-shape", "1,3,8,8", "--kwargs",
                                           '{"width": 0}'], 0, files={"w.py": CONV}),
    Case("torch-backtrace-is-one-line", ["analyze", "cpp.py:Net", "--input-shape", "1,3,8,8"], 2, "RuntimeError: bad",
         {"cpp.py": CONV.replace("return self.c(x)", "raise RuntimeError('bad\\nException raised from at::foo "
                                 "(most recent call first):\\nframe #0: c10::Error')")}),
    # --- unbounded work ------------------------------------------------------------------------------------------
    Case("compare-rounds", ["compare", "--rounds", "1000000", "--min-time", "0.01"], 2, "--rounds 1000000"),
    Case("analyze-rounds", ["analyze", "w.py:Net", "--input-shape", "1,3,8,8", "--bench", "--rounds", "1000000"], 2,
         "--rounds 1000000", {"w.py": CONV}),
    Case("report-rounds", ["report", "l.yaml", "--bench", "--rounds", "1000000"], 2, "--rounds 1000000",
         {"l.yaml": LAYERS}),
    Case("min-time", ["compare", "--min-time", "1e9"], 2, "--min-time"),
    Case("threads", ["compare", "--threads", "100000"], 2, "--threads 100000"),
    Case("kwargs-alias-bomb", ["analyze", "w.py:Net", "--input-shape", "1,3,8,8", "--kwargs", BOMB], 2,
         "expands to over", {"w.py": CONV}),
    Case("kwargs-nested", ["analyze", "w.py:Net", "--input-shape", "1,3,8,8", "--kwargs", "[" * 5000 + "]" * 5000],
         2, "nested deeper", {"w.py": CONV}),
    Case("config-dev-zero", ["report", "/dev/zero"], 2, "too large to be a dsconv config"),
    Case("baseline-dev-zero", ["report", "l.yaml", "--baseline", "/dev/zero"], 2, "too large to be a dsconv report",
         {"l.yaml": LAYERS}),
    Case("config-dev-urandom", ["compare", "--config", "/dev/urandom", "--no-bench"], 2, "too large"),
    Case("config-alias-bomb", ["report", "bomb.yaml"], 2, "expands to over",
         {"bomb.yaml": BOMB + "\n" + LAYERS}),
    Case("config-nested", ["report", "deep.yaml"], 2, "nested deeper",
         {"deep.yaml": LAYERS + "description: " + "[" * 3000 + "]" * 3000 + "\n"}),
    # --- no silent CI pass ---------------------------------------------------------------------------------------
    Case("baseline-without-entry", ["report", "l.yaml", "--baseline", "base.json", "--max-increase", "5"], 1,
         "the baseline has no totals for this config",
         {"l.yaml": LAYERS, "base.json": '{"schema_version": 2, "configs": []}'}),
    Case("baseline-schema", ["report", "l.yaml", "--baseline", "base.json", "--max-increase", "5"], 2,
         "schema_version 99", {"l.yaml": LAYERS, "base.json": '{"schema_version": 99, "configs": []}'}),
    Case("baseline-1e400", ["report", "l.yaml", "--baseline", "base.json"], 2, "malformed totals",
         {"l.yaml": LAYERS, "base.json": '{"schema_version": 2, "configs": [{"name": "l", "points": [{"totals": '
          '{"standard": {"params": 1e400}}}]}]}'}),
    Case("baseline-huge-int", ["report", "l.yaml", "--baseline", "base.json"], 2, "malformed totals",
         {"l.yaml": LAYERS, "base.json": '{"schema_version": 2, "configs": [{"name": "l", "points": [{"totals": '
          '{"standard": {"params": 1' + "0" * 400 + "}}}]}]}"}),
    Case("baseline-nested", ["report", "l.yaml", "--baseline", "base.json"], 2, "nested deeper",
         {"l.yaml": LAYERS, "base.json": "[" * 100_000 + "]" * 100_000}),
    Case("baseline-not-entries", ["report", "l.yaml", "--baseline", "base.json"], 2, "malformed totals",
         {"l.yaml": LAYERS, "base.json": '{"schema_version": 2, "configs": [1, "x"]}'}),
    # --- numbers, impossible layers, colliding outputs -----------------------------------------------------------
    Case("int-over-4300-digits", ["compare", "-k", "1" + "0" * 4400, "--no-bench"], 2, "--kernel-size"),
    Case("kernel-past-int64", ["compare", "-k", "100000000000000000000", "--no-bench"], 2, "impossible layer"),
    Case("width-multiplier-1e9", ["report", "w.yaml"], 2, "impossible layer",
         {"w.yaml": "input_shape: [1, 16, 8, 8]\ndefaults: {width_multiplier: 1000000000.0}\n"
                    "layers: [{out_channels: 32}, {out_channels: 32}]\n"}),
    Case("verify-past-int64", ["compare", "--input-shape", "1,16,9999999999,9999999999", "--verify", "--no-bench"],
         2, "impossible layer"),
    Case("config-int-over-4300-digits", ["report", "big.yaml"], 2, "an integer of 5,000 digits",
         {"big.yaml": "input_shape: [1, 16, 8, 8]\nlayers: [{out_channels: " + "1" * 5000 + "}]\n"}),
    Case("max-memory-digits", ["compare", "--max-memory", "9" * 400, "--no-bench"], 2, "--max-memory"),
    Case("share-of-another-kind", ["report", "s.yaml"], 2, "a layer shares the weights of its own kind",
         {"s.yaml": "input_shape: [1, 16, 8, 8]\nlayers:\n  - {name: a, kind: standard, out_channels: 16}\n"
                    "  - {name: fc, kind: linear, share: a}\n"}),
    Case("share-in-defaults", ["report", "s.yaml"], 2, "defaults.share",
         {"s.yaml": "input_shape: [1, 16, 8, 8]\ndefaults: {share: a}\nlayers: [{name: a, out_channels: 16}]\n"}),
    Case("output-is-emit-config", ["analyze", "w.py:Net", "--input-shape", "1,3,8,8", "--output", "x.yaml",
                                   "--emit-config", "./x.yaml"], 2, "is also the --output file", {"w.py": CONV}),
    Case("plot-is-output", ["compare", "--config", "sweep.yaml", "--no-bench", "--plot", "x.png", "--output",
                            "x.png"], 2, "is also the --output file",
         {"sweep.yaml": LAYERS + "sweep: {out_channels: [8, 16]}\n"}),
    Case("api-float-kernel", ["-c", "import dsconv_cli as d\ntry:\n    d.count(kernel_size=(3.7, 2))\n"
         "except Exception as e:\n    print(f'error: {type(e).__name__}: {e}', file=__import__('sys').stderr)\n"],
         0, "SpecError: --kernel-size 3.7", check="python"),
]  # fmt: skip


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file below ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}  # fmt: skip


@dataclass
class Outcome:
    result: subprocess.CompletedProcess[str]
    work: Path
    before: dict[str, dict[str, tuple[int, int]]]
    after: dict[str, dict[str, tuple[int, int]]]


def run_case(case: Case, folder: Path) -> Outcome:
    """The case as a whole process in a folder of its own, with ``outside`` beside it holding a canary."""
    work, outside = folder / "work", folder / "outside"
    for path in (work, outside):
        path.mkdir()
    (outside / "evil.py").write_text("open('pwned', 'w').write('x')\n")
    for name, text in case.files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    before = {"work": snapshot(work), "outside": snapshot(outside)}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DSCONV_CACHE_DIR": str(folder / "cache"), "NO_COLOR": "1",
           "COLUMNS": "100"}  # fmt: skip
    env.pop("DSCONV_TRUST_MODEL_CODE", None)
    command = [sys.executable, *case.args] if case.check == "python" else [sys.executable, "-m", "dsconv_cli",
                                                                            *case.args]  # fmt: skip
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=LIMIT_S)
    return Outcome(result, work, before, {"work": snapshot(work), "outside": snapshot(outside)})


@pytest.fixture(scope="module")
def outcomes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """The selected cases, run side by side (each a process of its own), once for the module's tests."""
    selected = {item.callspec.params["case"].id for item in request.session.items
                if getattr(item, "originalname", "") == "test_hostile_case" and hasattr(item, "callspec")}  # fmt: skip
    cases = [case for case in CASES if case.id in selected]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        done = pool.map(lambda case: run_case(case, tmp_path_factory.mktemp(case.id)), cases)
        return {case.id: outcome for case, outcome in zip(cases, done, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_case(case: Case, outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes[case.id]
    result, work = outcome.result, outcome.work
    shown = f"stdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-2000:]}"
    assert result.returncode == case.code, shown
    assert "Traceback" not in result.stderr + result.stdout, shown
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    if case.error is None:
        assert errors == [], shown
    else:
        assert len(errors) == 1 and case.error in errors[0], shown
    assert outcome.after["outside"] == outcome.before["outside"]
    changed = {name for name, stat in outcome.after["work"].items() if outcome.before["work"].get(name) != stat}
    assert changed == set(case.outputs), changed
    assert not (work / "pwned").exists() and not (work.parent / "outside" / "pwned").exists()
    if case.stdout_json:
        document = json.loads(result.stdout)
        if case.check == "siblings":  # each file's helpers.py: 3·8·9 + 8 and 3·64·9 + 64 params
            assert [c["totals"]["standard"]["params"] for c in document["configs"]] == [224, 1792]
    if case.check == "report-has-fail":  # the other file was still reported, its failing budget held
        (entry,) = json.loads((work / "r.json").read_text())["configs"]
        assert entry["name"] == "fail" and entry["ok"] is False
    if case.check == "no-escape":
        assert "\x1b" not in result.stdout + result.stderr and "\\x1b[31mred" in result.stdout
    if case.check == "python" and "still running" in case.args[-1]:
        assert result.stdout == "still running\n"
