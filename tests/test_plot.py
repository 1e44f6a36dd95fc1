"""dsconv plot: a sweep's heatmap as a PNG, and its refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cases import SEED, SWEEP
from conftest import invoke


def test_plot_writes_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "sweep.png"
    result = invoke("compare", "--config", SWEEP, "--no-bench", "--plot", str(target), "-f", "json")
    assert result.code == 0, result.stderr
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["sweep.png"]


def test_plot_refusals(tmp_path: Path) -> None:
    result = invoke("compare", "--config", SWEEP, "--no-bench", "--plot", str(tmp_path / "x.pdf"))
    assert (result.code, result.stderr) == (
        2,
        f"error: --plot {tmp_path / 'x.pdf'}: must end in .png or .svg\n",
    )
    result = invoke("compare", "--config", SEED, "--no-bench", "--plot", str(tmp_path / "x.svg"))
    assert result.code == 2 and "draws a sweep" in result.stderr


def test_plot_without_matplotlib_is_an_environment_error(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None  # as if the plot extra were not installed\n"
        "from dsconv_cli.cli.app import run\n"
        f"sys.exit(run(['compare', '--config', {SWEEP!r}, '--no-bench', '--plot', {str(tmp_path / 's.png')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 3
    assert (
        proc.stderr
        == "error: --plot: matplotlib is not installed; install the plot extra: pip install 'dsconv-cli[plot]'\n"
    )
