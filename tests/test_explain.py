"""Traffic, arithmetic intensity, roofline and the plain-language verdict: pure arithmetic."""

from __future__ import annotations

import pytest

from dsconv_cli.core import counting
from dsconv_cli.core.results import Latency, Peaks, TimingRow
from dsconv_cli.core.spec import DType, TimingCase, resolve_spec
from dsconv_cli.present import explain

SEED = counting.compare(resolve_spec(rank=2, in_channels=16, out_channels=32), (1, 16, 50, 129))
PEAKS = Peaks("cpu", "test cpu", "float32", 1, bandwidth_gbps=20.0, compute_gflops=100.0,
              measured_at="2026-01-01T00:00:00+00:00", torch_version="test")  # fmt: skip


def _latency(ms: float, cv: float = 0.01, threads: int = 1) -> Latency:
    return Latency(ms, 0.01, 100, "cpu", threads, "float32", min_ms=ms * 0.9, cv=cv)


def test_stage_traffic_of_the_seed_example() -> None:
    standard = counting.stage_traffic(SEED.standard.stages[0], 4)
    # weights 4,608*4; input 16*50*129*4; output 32*50*129*4
    assert (standard.weight_bytes, standard.input_bytes, standard.output_bytes) == (18_432, 412_800, 825_600)
    assert standard.min_bytes_moved == 1_256_832
    # 59,443,200 FLOPs / 1,256,832 bytes
    assert counting.arithmetic_intensity(SEED.standard.flops, standard) == pytest.approx(47.2958, rel=1e-4)


def test_separable_traffic_counts_the_intermediate_twice() -> None:
    pair = counting.variant_traffic(SEED.separable, 4)
    depthwise, pointwise = (counting.stage_traffic(s, 4) for s in SEED.separable.stages)
    assert pair.min_bytes_moved == depthwise.min_bytes_moved + pointwise.min_bytes_moved
    # the depthwise output (16*50*129 floats) is written by one stage and read by the next
    assert counting.intermediate_bytes(SEED.separable, 4) == 412_800
    assert counting.intermediate_bytes(SEED.standard, 4) == 0
    assert counting.variant_traffic(SEED.separable, 2).min_bytes_moved * 2 == pair.min_bytes_moved


def test_roofline_picks_the_binding_roof() -> None:
    traffic = counting.stage_traffic(SEED.standard.stages[0], 4)
    # intensity 47.3 > ridge 100/20 = 5: compute bound; 59.4 MFLOP in 1 ms = 59.4 GFLOP/s of 100
    line = counting.roofline(SEED.standard.flops, traffic, 1.0, PEAKS)
    assert line.bound == "compute"
    assert line.achieved_gflops == pytest.approx(59.4432)
    assert line.achieved_gbps == pytest.approx(1.256832)
    assert line.fraction_of_roof == pytest.approx(0.594432)
    depthwise = SEED.separable.stages[0]
    dw = counting.roofline(depthwise.flops, counting.stage_traffic(depthwise, 4), 0.1, PEAKS)
    # intensity 1,857,600 / 826,176 = 2.25 < 5: memory bound; roof = 2.25 * 20 GB/s
    assert dw.bound == "memory"
    assert dw.fraction_of_roof == pytest.approx(dw.achieved_gflops / (dw.arithmetic_intensity * 20.0))


def test_analyse_counts_at_the_case_batch_and_dtype() -> None:
    row = TimingRow(TimingCase(8, DType.BFLOAT16), {"standard": _latency(2.0)})
    items = counting.analyse(SEED, row)
    assert items["standard"].stats.macs == 8 * SEED.standard.macs
    assert items["standard"].traffic.weight_bytes == 4_608 * 2
    assert items["separable"].intermediate_bytes == 8 * 16 * 50 * 129 * 2
    assert items["depthwise"].latency is None  # not timed in this row


def test_explanation_names_the_stage_that_holds_the_pair_back() -> None:
    row = TimingRow(TimingCase(1, DType.FLOAT32), {
        "standard": _latency(1.2), "depthwise": _latency(0.1), "pointwise": _latency(0.9), "separable": _latency(1.1),
    })  # fmt: skip
    c = SEED.__class__(SEED.spec, SEED.input_shape, SEED.standard, SEED.separable, timings=(row,), peaks=(PEAKS,))
    c = counting.analyse_timings(c)  # the runner stores each row's analysis once; the prose only reads it
    line = explain.explanation(c, c.timings[0])
    assert line is not None
    assert line.startswith("batch 1, float32, forward: separable has 7.02× fewer MACs but is 1.09× faster; "
                           "its pointwise stage takes 90% of the pair's stage time and reaches")  # fmt: skip
    # pointwise intensity 6,604,800 / 1,241,728 = 5.3 is past the ridge 100/20 = 5: compute bound, 7.3 of 100
    assert line.endswith("reaches 7.3% of the compute roof (5.3 FLOPs/byte, 7.3 GFLOP/s)")


def test_noise_warning_per_case() -> None:
    row = TimingRow(TimingCase(1, DType.FLOAT32), {"standard": _latency(1.0, cv=0.3), "pointwise": _latency(1.0)})
    c = SEED.__class__(SEED.spec, SEED.input_shape, SEED.standard, SEED.separable, timings=(row,))
    assert explain.noise_warnings(c) == [
        "batch 1, float32, forward: run-to-run spread (CV) over 10% for standard 30%; those medians may be "
        "noise: raise --min-time or quiet the machine"
    ]


def test_explanation_flags_a_pair_slower_than_its_stages() -> None:
    row = TimingRow(TimingCase(1, DType.FLOAT32), {
        "standard": _latency(1.2), "depthwise": _latency(0.2), "pointwise": _latency(0.15), "separable": _latency(1.8),
    })  # fmt: skip
    c = SEED.__class__(SEED.spec, SEED.input_shape, SEED.standard, SEED.separable, timings=(row,))
    c = counting.analyse_timings(c)
    line = explain.explanation(c, c.timings[0])
    assert line is not None
    # 1.8 ms against 0.2 + 0.15 = 0.35 ms alone: 5.1x
    assert line.endswith(
        "; the pair takes 1.800 ms, 5.1× its two stages timed alone (0.350 ms), so that time is spent outside "
        "the convolutions themselves (the hand-off between them, or thread scheduling: compare --threads 1,2)"
    )
    # no peaks: no roofline clause, and 1.2 / 1.8 is a slowdown
    assert "is 1.50× slower" in line and "roof" not in line


def test_one_thread_much_faster_is_said_in_plain_words() -> None:
    latency = {"standard": _latency(1.0, threads=2), "depthwise": _latency(0.3, threads=2),
               "pointwise": _latency(0.3, threads=2), "separable": _latency(0.6, threads=2)}  # fmt: skip
    slow_threads = TimingRow(TimingCase(1, DType.FLOAT32), latency, one_thread={"standard": 0.4, "separable": 0.55})
    c = counting.analyse_timings(SEED.__class__(SEED.spec, SEED.input_shape, SEED.standard, SEED.separable,
                                                timings=(slow_threads,)))  # fmt: skip
    line = explain.explanation(c, c.timings[0])
    assert line is not None
    assert line.endswith("; the standard conv ran 2.5× faster on 1 thread (0.400 ms) than on 2 (1.000 ms): this "
                         "layer is too small to split across threads (or other work holds the cores), so pass "
                         "--threads 1")  # fmt: skip
    # the pair: 0.6 against 0.55 on one thread is no reason to say anything
    assert "separable pair ran" not in line


def test_a_ratio_off_the_formula_says_why_in_one_sentence() -> None:
    from dsconv_cli.core.spec import resolve_spec

    plain = counting.compare(
        resolve_spec(rank=2, in_channels=16, out_channels=32, stride=2, groups=2), (1, 16, 50, 129)
    )
    assert explain.ratio_note(plain) is None  # strided and grouped convs follow the formula (with its m·g)
    up = resolve_spec(rank=2, in_channels=16, out_channels=32, stride=2, output_padding=1, transposed=True)
    c = counting.compare(up, (1, 16, 50, 129))
    note = explain.ratio_note(c)
    assert note is not None and "4.00× as many positions, so the ratio is 1/C_out + 4.00/9" in note
    assert abs(c.mac_ratio - (1 / 32 + 4 / 9)) < 1e-12
