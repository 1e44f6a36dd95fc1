"""Every command, config and Python example in README.md and docs/*.md runs as written.

Examples are the fenced blocks of those files:

- ```bash and ```sh: every line is a command; ```console: lines starting with ``$ `` are commands and
  the lines after one, up to the next, are its output. A trailing backslash continues a command.
- A command starting with ``dsconv`` runs as a whole process (``python -m dsconv_cli``, through bash so
  that pipes and redirections work, with ``pipefail``). It must exit 0, or the code a trailing comment
  names (``# exits 1``). Pasted output is compared with what it prints (stdout, then stderr; trailing
  spaces ignored), unless the output has a line ``...`` (timed figures vary from run to run).
- Every other command is skipped, and reported as such: lines that install software (``pip install``,
  ``python -m venv``, ``git clone``, ``source``) and commands that are not dsconv (the test suite,
  benchmarks, CI).
- ```yaml: a mapping is a config, validated against ``dsconv schema`` and loaded with dsconv's own
  loader; a first line ``# PATH.yaml`` names the file it is written to, for later commands (where
  PATH is a file of the repository, the block must be that file). A list is a CI job's steps: the
  ``dsconv`` lines of their ``run:`` scripts run as commands.
- ```python: run in a subprocess. Where a ``print(...)`` line ends with ``# text``, those texts are the
  output, line for line. A block whose first line is ``# NAME.py`` is a module that later examples
  import (``dsconv analyze NAME.py:Net``): it is written to NAME.py and compiled, and runs there.
- ``needs NAME`` in an example's comment skips it when module NAME does not import (torchvision,
  matplotlib), or for ``needs cuda``, where there is no NVIDIA GPU.

Each document runs in its own temporary directory holding a copy of ``configs/``, ``tests/models.py``
and ``tests/configs/``, in document order, so that an example sees the files earlier ones wrote
(selecting one example alone with ``-k`` may miss such a file). Documents run side by side, one per CPU
(up to 4), when the first example's test starts; each example's test then reports its own outcome.
Other blocks (```jsonc, ```text, plain) are reference material and are not run. Links between the
documents must resolve inside the repository.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"bash", "sh", "console", "shell"}
INSTALLS = ("pip ", "pip3 ", "python -m pip", "python3 -m pip", "python -m venv", "python3 -m venv", "git clone",
            "source ", ". ")  # fmt: skip
TIMEOUT = 180
SETUP_COMMAND = "python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 . && dsconv compare"
TEST_COMMAND = (
    'python3 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 -e ".[test]" && python -m pytest'
)


@dataclass
class Example:
    document: Path
    line: int  # 1-based line of the example's first line in the document
    kind: str  # command, config or python
    text: str
    expected_output: list[str] | None = None  # console output to compare, when it is exact
    exit_code: int = 0
    needs: list[str] = field(default_factory=list)
    skip: str = ""

    @property
    def id(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def _blocks(path: Path) -> list[tuple[str, int, list[str]]]:
    """Fenced blocks: (language, line of the first body line, body lines with the fence's indent removed)."""
    blocks = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)```([\w+-]*)\s*$", lines[i])
        if not opening:
            i += 1
            continue
        indent, language = len(opening.group(1)), opening.group(2).lower()
        start = i + 1
        i = start
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            i += 1
        body = [line[indent:] if not line[:indent].strip() else line.lstrip() for line in lines[start:i]]
        blocks.append((language, start + 1, body))
        i += 1
    return blocks


def _comment_needs(text: str) -> list[str]:
    return re.findall(r"#.*?\bneeds ([A-Za-z_][\w.]*)", text)


def _command(document: Path, line: int, text: str, output: list[str] | None = None) -> Example:
    exits = re.search(r"#.*\bexits (\d+)", text)
    example = Example(document, line, "command", text, exit_code=int(exits.group(1)) if exits else 0)
    example.needs = _comment_needs(text)
    if not re.match(r"dsconv(\s|$)", text):
        installs = any(part.strip().startswith(INSTALLS) for part in re.split(r"&&|;", text))
        example.skip = "installs software" if installs else "not a dsconv command"
    if output is not None:
        while output and not output[-1].strip():
            output.pop()
        if output and not any(line.strip() == "..." for line in output):
            example.expected_output = [line.rstrip() for line in output]
    return example


def _shell_commands(document: Path, first: int, body: list[str], console: bool) -> list[Example]:
    examples: list[Example] = []
    current: list[str] = []
    start = 0
    output: list[str] | None = None
    pending: tuple[int, str] | None = None

    def flush() -> None:
        nonlocal pending, output
        if pending is not None:
            examples.append(_command(document, pending[0], pending[1], output if console else None))
        pending, output = None, None

    for offset, raw in enumerate(body):
        line = raw.rstrip()
        if current:  # a continued command
            current.append(line.rstrip("\\").strip())
            if not line.endswith("\\"):
                pending = (start, " ".join(current))
                current = []
            continue
        is_command = line.startswith("$ ") if console else bool(line.strip()) and not line.lstrip().startswith("#")
        if not is_command:
            if console and output is not None:
                output.append(line)
            continue
        flush()
        text = line[2:] if line.startswith("$ ") else line.strip()
        start = first + offset
        output = [] if console else None
        if text.endswith("\\"):
            current = [text.rstrip("\\").strip()]
        else:
            pending = (start, text)
    flush()
    return examples


def _yaml_examples(document: Path, first: int, body: list[str]) -> list[Example]:
    text = "\n".join(body) + "\n"
    data = yaml.safe_load(text)
    needs = _comment_needs(text)
    if isinstance(data, dict):
        exits = re.search(r"\bexits (\d+)", body[0] if body[0].startswith("#") else "")
        return [Example(document, first, "config", text, needs=needs, exit_code=int(exits.group(1)) if exits else 0)]
    examples = []
    offset = -1
    for step in data if isinstance(data, list) else []:
        script = step.get("run", "") if isinstance(step, dict) else ""
        for command in re.sub(r"\\\n\s*", "", script).splitlines():
            if not command.strip():
                continue
            starts = (i for i in range(offset + 1, len(body)) if body[i].strip().startswith(command.strip()[:30]))
            offset = next(starts, offset)
            examples.append(_command(document, first + offset, command.strip()))
    return examples


def collect(document: Path) -> list[Example]:
    examples: list[Example] = []
    for language, first, body in _blocks(document):
        if language in SHELL:
            examples += _shell_commands(document, first, body, console=language == "console")
        elif language in ("yaml", "yml"):
            examples += _yaml_examples(document, first, body)
        elif language == "python":
            text = "\n".join(body) + "\n"
            examples.append(Example(document, first, "python", text, needs=_comment_needs(text)))
    return examples


EXAMPLES = [example for document in DOCUMENTS for example in collect(document)]


def _available(name: str) -> bool:
    if name == "cuda":  # an NVIDIA GPU; asking torch would import it here
        return shutil.which("nvidia-smi") is not None
    return importlib.util.find_spec(name) is not None


def _why_skipped(example: Example) -> str:
    missing = [name for name in example.needs if not _available(name)]
    return example.skip or (f"needs {', '.join(missing)}" if missing else "")


def _environment(work: Path, cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
        DSCONV_CACHE_DIR=str(cache), COLUMNS="100", NO_COLOR="1", TERM="dumb", PYTHONIOENCODING="utf-8",
        GITHUB_STEP_SUMMARY=str(work / "step-summary.md"), DSCONV_PYTHON=sys.executable,
    )  # fmt: skip
    env.pop("FORCE_COLOR", None)
    return env


def _run_command(example: Example, work: Path, env: dict[str, str]) -> None:
    script = 'set -o pipefail\ndsconv() { "$DSCONV_PYTHON" -m dsconv_cli "$@"; }\n' + example.text + "\n"
    result = subprocess.run(
        ["bash", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == example.exit_code, (
        f"`{example.text}` exited {result.returncode}, expected {example.exit_code}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    if example.expected_output is not None:
        actual = [line.rstrip() for line in (result.stdout + result.stderr).splitlines()]
        while actual and not actual[-1]:
            actual.pop()
        printed = "\n".join(actual)
        assert actual == example.expected_output, f"`{example.text}` prints, not as pasted:\n{printed}"


def _run_config(example: Example, work: Path, schema: dict[str, object]) -> None:
    import jsonschema

    import dsconv_cli
    from dsconv_cli.errors import DsconvError

    first, _, rest = example.text.partition("\n")
    name = re.match(r"#\s*([\w./-]+\.ya?ml)\b", first)
    relative = Path(name.group(1)) if name else Path(f"example-{example.line}.yaml")
    if name and (ROOT / relative).is_file():
        shipped = (ROOT / relative).read_text(encoding="utf-8")
        assert rest == shipped, f"the block (after its first line) differs from {relative}"
    path = work / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(example.text, encoding="utf-8")
    if example.exit_code:  # a config shown to be refused
        try:
            dsconv_cli.load_config(path)
        except DsconvError as refused:
            assert refused.exit_code == example.exit_code, f"refused with exit code {refused.exit_code}: {refused}"
            return
        raise AssertionError(f"the config loads, but the text says it exits {example.exit_code}")
    jsonschema.validate(yaml.safe_load(example.text), schema)
    dsconv_cli.load_config(path)


def _run_python(example: Example, work: Path, env: dict[str, str]) -> None:
    name = re.match(r"#\s*([\w-]+\.py)\s*$", example.text.partition("\n")[0])
    script = work / (name.group(1) if name else f"example-{example.line}.py")
    script.write_text(example.text, encoding="utf-8")
    if name:  # a module for later examples, which import and run it: compiling it here is enough
        compile(example.text, str(script), "exec")
        return
    result = subprocess.run(
        [sys.executable, script.name], cwd=work, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, f"the Python example failed\n{result.stderr[-3000:]}"
    expected = [m.group(1).rstrip() for m in re.finditer(r"^\s*print\(.*\)\s*#\s?(.*)$", example.text, flags=re.M)]
    if expected:
        printed = result.stdout.rstrip("\n")
        assert printed.splitlines() == expected, f"the example prints, not as its comments say:\n{printed}"


def _run_document(examples: list[Example], work: Path, cache: Path, schema: dict[str, object]) -> dict[str, str]:
    """Run one document's examples in order in its own directory; the failures, by example id."""
    shutil.copytree(ROOT / "configs", work / "configs")
    (work / "tests").mkdir()
    shutil.copy(ROOT / "tests" / "models.py", work / "tests" / "models.py")
    shutil.copytree(ROOT / "tests" / "configs", work / "tests" / "configs")
    env = _environment(work, cache)
    failures = {}
    for example in examples:
        try:
            if example.kind == "command":
                _run_command(example, work, env)
            elif example.kind == "config":
                _run_config(example, work, schema)
            else:
                _run_python(example, work, env)
        except Exception as exc:  # reported by the example's own test
            failures[example.id] = f"{example.id}: {type(exc).__name__}: {exc}"
    return failures


@pytest.fixture(scope="module")
def failures(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run every selected example once, documents side by side (each in order, in its own directory).

    One cache directory serves all of them, so that peaks measured on a quiet machine are measured once."""
    selected = [
        item.callspec.params["example"]
        for item in request.session.items
        if getattr(item, "callspec", None) is not None and "example" in item.callspec.params
    ]
    by_document: dict[Path, list[Example]] = {}
    for example in selected:
        if not _why_skipped(example):
            by_document.setdefault(example.document, []).append(example)
    cache = tmp_path_factory.mktemp("dsconv-cache")
    done = subprocess.run(
        [sys.executable, "-m", "dsconv_cli", "schema"], capture_output=True, text=True, check=True,
        env=_environment(cache, cache),
    )  # fmt: skip
    schema = json.loads(done.stdout)
    found: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        runs = [
            pool.submit(_run_document, examples, tmp_path_factory.mktemp(document.stem), cache, schema)
            for document, examples in by_document.items()
        ]
        for run in runs:
            found.update(run.result())
    return found


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.id for e in EXAMPLES])
def test_example_runs_as_written(example: Example, failures: dict[str, str]) -> None:
    if _why_skipped(example):
        pytest.skip(_why_skipped(example))
    if example.id in failures:
        pytest.fail(failures[example.id], pytrace=False)


def test_the_documents_have_examples_of_every_kind() -> None:
    kinds = {e.kind for e in EXAMPLES}
    assert {"command", "config", "python"} <= kinds
    commands = {e.text.split()[1] for e in EXAMPLES if e.kind == "command" and not e.skip and len(e.text.split()) > 1}
    assert {"compare", "report", "analyze", "peaks", "schema"} <= commands


def test_the_readme_keeps_the_setup_and_test_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SETUP_COMMAND in readme.splitlines()
    assert TEST_COMMAND in readme.splitlines()


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    headings = re.findall(r"^#+\s+(.*)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("document", DOCUMENTS, ids=[str(d.relative_to(ROOT)) for d in DOCUMENTS])
def test_links_stay_inside_the_repository_and_resolve(document: Path) -> None:
    text = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path_part, _, anchor = target.partition("#")
        resolved = (document.parent / path_part).resolve() if path_part else document
        assert resolved.is_relative_to(ROOT), f"{document.name}: {target} points outside the repository"
        assert resolved.exists(), f"{document.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in _anchors(resolved), f"{document.name}: no heading #{anchor} in {resolved.name}"
