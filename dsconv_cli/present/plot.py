"""Sweep pictures with matplotlib (the optional ``plot`` extra), written atomically."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from dsconv_cli.core.formatting import fmt_value
from dsconv_cli.core.results import StackResult
from dsconv_cli.errors import DeviceError, SpecError
from dsconv_cli.files import atomic_target

FORMATS = (".png", ".svg")


def check_target(path: Path) -> None:
    """Refuse an unsupported suffix or a missing matplotlib before any work is done."""
    if path.suffix.lower() not in FORMATS:
        raise SpecError("plot", path, "must end in .png or .svg")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DeviceError(
            "--plot: matplotlib is not installed; install the plot extra: pip install 'dsconv-cli[plot]'"
        ) from None


def plot_sweep(path: Path, title: str, stacks: Sequence[StackResult], keys: Sequence[str]) -> None:
    """A heatmap of the MAC ratio for a two-field sweep, bars otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 5))
    if len(keys) == 2:
        rows = list(dict.fromkeys(fmt_value(s.point[keys[0]]) for s in stacks))
        cols = list(dict.fromkeys(fmt_value(s.point[keys[1]]) for s in stacks))
        grid = [[float("nan")] * len(cols) for _ in rows]
        for s in stacks:
            grid[rows.index(fmt_value(s.point[keys[0]]))][cols.index(fmt_value(s.point[keys[1]]))] = s.ratio("macs")
        image = axes.imshow(grid, cmap="RdYlGn_r", aspect="auto")
        axes.set_xticks(range(len(cols)), cols)
        axes.set_yticks(range(len(rows)), rows)
        axes.set_xlabel(keys[1])
        axes.set_ylabel(keys[0])
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                axes.text(j, i, f"{value:.3f}", ha="center", va="center", fontsize=8)
        figure.colorbar(image, ax=axes, label="separable / standard MACs")
    else:
        labels = [" ".join(f"{k}={fmt_value(s.point[k])}" for k in keys) for s in stacks]
        axes.barh(labels, [s.ratio("macs") for s in stacks])
        axes.set_xlabel("separable / standard MACs")
        axes.invert_yaxis()
    axes.set_title(title)
    figure.tight_layout()
    try:
        with atomic_target(path) as tmp:
            figure.savefig(tmp, format=path.suffix.lstrip(".").lower())
    finally:
        plt.close(figure)
