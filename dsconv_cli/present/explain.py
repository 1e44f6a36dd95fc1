"""Why the speedup is what it is, in words: reads the analyses stored on results, counts nothing."""

from __future__ import annotations

import math

from dsconv_cli.core.environment import Conditions
from dsconv_cli.core.results import ITEMS, Comparison, Latency, StackResult, TimingRow

HANDOFF_FACTOR = 1.5  # a pair this much slower than its stages alone spends its time outside them


def explanation(c: Comparison, row: TimingRow) -> str | None:
    """One plain-language line: MAC saving against measured speedup, and what holds the pair back."""
    speedup = row.speedup
    if speedup is None:
        return None
    items = row.analysis
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
    return line + _threads_line(row)


ONE_THREAD_FACTOR = 1.5  # one thread this much faster than the run's threads is worth saying


def _threads_line(row: TimingRow) -> str:
    """Where one thread beats the run's threads, say so in plain words and suggest ``--threads 1``."""
    faster = []
    for name in ("standard", "separable"):
        one, many = row.one_thread.get(name), row.latency.get(name)
        if one and many and many.median_ms > ONE_THREAD_FACTOR * one:
            what = "pair" if name == "separable" else "conv"
            faster.append(f"the {name} {what} ran {many.median_ms / one:.1f}× faster on 1 thread ({one:.3f} ms) "
                          f"than on {many.threads} ({many.median_ms:.3f} ms)")  # fmt: skip
    if not faster:
        return ""
    return (f"; {' and '.join(faster)}: this layer is too small to split across threads (or other work "
            "holds the cores), so pass --threads 1")  # fmt: skip


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
    return lines + trust_warnings(c.conditions)


def trust_warnings(conditions: Conditions | None) -> list[str]:
    """What made a timing untrustworthy, one line per reason, each saying what to do."""
    if conditions is None or conditions.trusted:
        return []
    return [f"timing not trusted: {reason}; quiet the machine, or pass --threads 1 and more --rounds"
            for reason in conditions.reasons]  # fmt: skip


def ratio_note(c: Comparison) -> str | None:
    """One sentence where the measured-by-count MAC ratio is not the MobileNet formula's, saying why."""
    if math.isclose(c.mac_ratio, c.theoretical_ratio, rel_tol=1e-9):
        return None
    (dw, pw), std = c.separable.stages, c.standard.stages[0]
    positions_in, positions_out = math.prod(dw.input_shape[2:]), math.prod(pw.output_shape[2:])
    if c.spec.transposed:
        grow = positions_out / positions_in
        k = math.prod(c.spec.kernel_size)
        return (f"the actual MAC ratio {c.mac_ratio:.4f} is not the formula's {c.theoretical_ratio:.4f}: a transposed "
                f"conv's MACs scale with its input, but the pointwise stage runs on the output, {grow:.2f}× as many "
                f"positions, so the ratio is 1/C_out + {grow:.2f}/{k}")  # fmt: skip
    standard_positions = math.prod(std.output_shape[2:])
    return (f"the actual MAC ratio {c.mac_ratio:.4f} is not the formula's {c.theoretical_ratio:.4f}: the stages "
            f"run on {positions_out:,} output positions, the standard conv on {standard_positions:,}")  # fmt: skip


def stack_noise_warnings(stack: StackResult) -> list[str]:
    """As ``noise_warnings``, for a timed stack: a line per layer (or whole column) whose spread is high."""
    lines = []
    entries = [(layer.name, layer.latency) for layer in stack.layers] + [("whole column", stack.latency)]
    for name, latency in entries:
        noisy = [(column, lat.cv) for column, lat in latency.items() if lat.noisy and lat.cv is not None]
        if noisy:
            spread = ", ".join(f"{column} {cv:.0%}" for column, cv in noisy)
            lines.append(f"{name}: run-to-run spread (CV) over {Latency.NOISY_CV:.0%} for {spread}; those medians "
                         "may be noise: raise --min-time or quiet the machine")  # fmt: skip
    return lines
