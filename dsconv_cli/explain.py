"""Why the speedup is what it is: per-stage traffic, arithmetic intensity and roofline, in words.

Pure arithmetic over counts, timings and measured peaks; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from dsconv_cli import counting
from dsconv_cli.results import Comparison, Latency, LayerStats, Peaks, Roofline, TimingRow, Traffic, VariantStats
from dsconv_cli.spec import DType

ITEMS = ("standard", "depthwise", "pointwise", "separable")
HANDOFF_FACTOR = 1.5  # a pair this much slower than its stages alone spends its time outside them


@dataclass(frozen=True, slots=True)
class ItemAnalysis:
    """One timed item (a variant or a stage) of one timing case."""

    name: str
    stats: LayerStats | VariantStats
    traffic: Traffic
    intermediate_bytes: int
    latency: Latency | None = None
    roofline: Roofline | None = None
    compile_s: float | None = None
    peak_bytes: int | None = None

    @property
    def arithmetic_intensity(self) -> float:
        return counting.arithmetic_intensity(self.stats.flops, self.traffic)


def peaks_for(c: Comparison, dtype: str, threads: int | None) -> Peaks | None:
    """The peaks measured for this dtype (and thread count, when the case names one)."""
    return next((p for p in c.peaks if p.dtype == dtype and threads in (None, p.threads)), None)


def analyse(c: Comparison, row: TimingRow | None = None, dtype: DType | None = None) -> dict[str, ItemAnalysis]:
    """Counts, traffic and (for timed forward cases with peaks) roofline of each item.

    Counts are for the case's batch; bytes use the case's dtype (float32 when untimed).
    """
    batch = row.case.batch if row else c.input_shape[0]
    dt = row.case.dtype if row else (dtype or DType.FLOAT32)
    counted = c if batch == c.input_shape[0] else counting.compare(c.spec, (batch, *c.input_shape[1:]))
    depthwise, pointwise = counted.separable.stages
    stats: dict[str, LayerStats | VariantStats] = {
        "standard": counted.standard,
        "depthwise": depthwise,
        "pointwise": pointwise,
        "separable": counted.separable,
    }
    peaks = peaks_for(c, dt.value, row.case.threads if row else None)
    out: dict[str, ItemAnalysis] = {}
    for name, item in stats.items():
        if isinstance(item, VariantStats):
            traffic = counting.variant_traffic(item, dt.itemsize)
            between = counting.intermediate_bytes(item, dt.itemsize)
        else:
            traffic, between = counting.stage_traffic(item, dt.itemsize), 0
        latency = row.latency.get(name) if row else None
        line = None
        if latency is not None and peaks is not None and row is not None and not row.case.backward:
            line = counting.roofline(item.flops, traffic, latency.median_ms, peaks)
        out[name] = ItemAnalysis(
            name, item, traffic, between, latency, line,
            row.compile_s.get(name) if row else None, row.peak_bytes.get(name) if row else None,
        )  # fmt: skip
    return out


def explanation(c: Comparison, row: TimingRow) -> str | None:
    """One plain-language line: MAC saving against measured speedup, and what holds the pair back."""
    speedup = row.speedup
    if speedup is None:
        return None
    items = analyse(c, row)
    fewer = 1 / c.mac_ratio
    if speedup >= 1:
        pace = f"is {speedup:.2f}× faster"
    else:
        pace = f"is {1 / speedup:.2f}× slower"
    joint = "and" if speedup >= 0.8 * fewer else "but"
    line = f"{row.case.label}: separable has {fewer:.2f}× fewer MACs {joint} {pace}"
    stages = [items[n] for n in ("depthwise", "pointwise") if items[n].latency is not None]
    if not stages:
        return line
    slowest = max(stages, key=lambda s: s.latency.median_ms if s.latency else 0.0)
    assert slowest.latency is not None
    total = sum(s.latency.median_ms for s in stages if s.latency)
    share = slowest.latency.median_ms / total if total else 0.0
    line += f"; its {slowest.name} stage takes {share:.0%} of the pair's stage time"
    if slowest.roofline is not None:
        r = slowest.roofline
        line += (
            f" and reaches {_pct(r.fraction_of_roof)} of the {r.bound} roof "
            f"({r.arithmetic_intensity:.1f} FLOPs/byte, {r.achieved_gflops:.1f} GFLOP/s)"
        )
    pair = items["separable"].latency
    if pair is not None and len(stages) == 2 and pair.median_ms > HANDOFF_FACTOR * total:
        line += (
            f"; the pair takes {pair.median_ms:.3f} ms, {pair.median_ms / total:.1f}× its two stages timed alone "
            f"({total:.3f} ms), so that time is spent outside the convolutions themselves (the hand-off between "
            "them, or thread scheduling: compare --threads 1,2)"
        )
    return line


def _pct(fraction: float) -> str:
    return f"{fraction:.0%}" if fraction >= 0.1 else f"{fraction:.1%}"


def noise_warnings(c: Comparison) -> list[str]:
    """A line per timing case whose spread says some of its medians are noise."""
    lines = []
    for row in c.timings:
        noisy = [(name, lat.cv) for name in ITEMS if (lat := row.latency.get(name)) is not None and lat.noisy]
        if noisy:
            spread = ", ".join(f"{name} {cv:.0%}" for name, cv in noisy)
            lines.append(
                f"{row.case.label}: run-to-run spread (CV) over {Latency.NOISY_CV:.0%} for {spread}; those "
                "medians may be noise: raise --min-time or quiet the machine"
            )
    return lines
