"""The options of ``dsconv`` commands, declared once and shared (layer flags come from ``spec.LAYER_FIELDS``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from dsconv_cli.core.spec import LAYER_FIELDS, Device, DType, OutputFormat

# --- shared options -----------------------------------------------------------------------------

LAYER = "Layer"
INPUT = "Input"
OUTPUT = "Output"
TIMING = "Timing"
CONVERSION = "Conversion"
CONFIG = "Config and CI"

FormatOpt = Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.", rich_help_panel=OUTPUT)]
OutputOpt = Annotated[
    str | None,
    typer.Option("--output", help="Write to FILE (atomically; a link's target, a device or FIFO in place) instead "
                 "of stdout.", rich_help_panel=OUTPUT, show_default=False, metavar="FILE"),
]  # fmt: skip
VerifyOpt = Annotated[
    bool, typer.Option("--verify", help="Cross-check every count against PyTorch and fvcore; exit 1 on any "
                       "disagreement.", rich_help_panel=OUTPUT),
]  # fmt: skip
BenchOpt = Annotated[bool, typer.Option("--bench/--no-bench", help="Time both variants.", rich_help_panel=TIMING)]
DeviceOpt = Annotated[Device, typer.Option(help="auto = cuda when present.", rich_help_panel=TIMING)]
DTypeOpt = Annotated[DType, typer.Option(help="Timing dtype.", rich_help_panel=TIMING)]
ThreadsOpt = Annotated[
    int | None, typer.Option(help="Intra-op threads (default: PyTorch's own).", rich_help_panel=TIMING,
                             show_default=False),
]  # fmt: skip
MinTimeOpt = Annotated[
    float, typer.Option("--min-time", help="Seconds of timed runs per measurement.", rich_help_panel=TIMING)
]
RoundsOpt = Annotated[
    int,
    typer.Option("--rounds", help="Interleaved timing rounds (order rotated each round); the speedup is the "
                 "median of the rounds' ratios.", rich_help_panel=TIMING),
]  # fmt: skip
StrictTimingOpt = Annotated[
    bool,
    typer.Option("--strict-timing", help="Exit 1 when a timing cannot be trusted (a busy machine, rounds that "
                 "disagree).", rich_help_panel=TIMING),
]  # fmt: skip
MaxMemoryOpt = Annotated[
    str, typer.Option("--max-memory", help="Refuse to time if the tensors would need more than this.",
                      rich_help_panel=TIMING),
]  # fmt: skip
BaselineOpt = Annotated[
    Path | None, typer.Option("--baseline", help="An earlier --format json report to compare totals with.",
                              rich_help_panel=CONFIG, show_default=False, dir_okay=False),
]  # fmt: skip
BaselineMissingOpt = Annotated[
    str, typer.Option("--baseline-missing", help="error, or ok: a first CI run with no baseline file yet passes "
                      "with a note.", rich_help_panel=CONFIG),
]  # fmt: skip
MaxIncreaseOpt = Annotated[
    float | None, typer.Option("--max-increase", help="Fail when a total's params or MACs grew more than PCT "
                               "percent over --baseline.", rich_help_panel=CONFIG, show_default=False),
]  # fmt: skip
ReportBenchOpt = Annotated[
    bool | None, typer.Option("--bench/--no-bench", help="Time both columns (default: count; time only the configs "
                              "that hold latency budgets).", rich_help_panel=TIMING, show_default=False),
]  # fmt: skip
TrustModelCodeOpt = Annotated[
    bool, typer.Option("--trust-model-code", envvar="DSCONV_TRUST_MODEL_CODE", help="Import and run the model a "
                       "config's model: section names (a config is data: its code runs only when you say so).",
                       rich_help_panel=CONFIG, show_envvar=True),
]  # fmt: skip
MaxPointsOpt = Annotated[int, typer.Option("--max-points", help="Largest sweep grid allowed.", rich_help_panel=CONFIG)]
MaxLayersOpt = Annotated[
    int, typer.Option("--max-layers", help="Most layers a config's stack may expand to (repeats counted).",
                      rich_help_panel=CONFIG),
]  # fmt: skip

# fmt: off
InputShapeOpt = Annotated[str | None, typer.Option("--input-shape", help="N,C,*spatial with 1-3 spatial dims, e.g. "
                          "1,16,50,129 (default: 1,C,50,129).", rich_help_panel=INPUT, show_default=False)]
BatchOpt = Annotated[str | None, typer.Option(help="Override N of the input shape; a list (1,8,32) times each batch "
                     "size.", rich_help_panel=INPUT, show_default=False)]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="A YAML config (layers, sweep, budgets); layer flags "
                      "override a single-layer config's values.", rich_help_panel=CONFIG, show_default=False,
                      dir_okay=False)]
PlotOpt = Annotated[str | None, typer.Option("--plot", help="Draw a sweep's MAC ratio to FILE.png or FILE.svg (needs "
                    "the plot extra).", rich_help_panel=CONFIG, show_default=False, metavar="FILE")]
DTypeListOpt = Annotated[str, typer.Option("--dtype", help="Timing dtype, or a list: float32,bfloat16.",
                                           rich_help_panel=TIMING)]
ChannelsLastOpt = Annotated[bool, typer.Option("--channels-last", help="Also time in channels-last memory format.",
                                               rich_help_panel=TIMING)]
CompileOpt = Annotated[bool, typer.Option("--compile", help="Also time torch.compile'd modules (compile time reported "
                                          "apart).", rich_help_panel=TIMING)]
BackwardOpt = Annotated[bool, typer.Option("--backward", help="Also time forward + backward, as in training.",
                                           rich_help_panel=TIMING)]
RooflineOpt = Annotated[bool, typer.Option("--roofline/--no-roofline", help="Place timings under the machine's "
                        "measured peaks (measured once per device and dtype, then cached).", rich_help_panel=TIMING)]
ShowWorkOpt = Annotated[bool, typer.Option("--show-work", help="Show how each count comes about: its formula, the "
                       "numbers put in, the value; and a drawing of both structures.", rich_help_panel=OUTPUT)]
DiagramOpt = Annotated[str | None, typer.Option("--diagram", help="Draw the standard conv and its separable pair to "
                       "FILE.svg (or FILE.png, with the plot extra).", rich_help_panel=OUTPUT, show_default=False,
                       metavar="FILE")]
ThreadsListOpt = Annotated[str | None, typer.Option("--threads", help="Intra-op threads, or a list: 1,2 (default: "
                           "PyTorch's own).", rich_help_panel=TIMING, show_default=False)]
# fmt: on


# --- analyze and peaks ---------------------------------------------------------------------------

TargetArg = Annotated[str, typer.Argument(help="MODULE:ATTR or FILE.py:ATTR: an nn.Module, a subclass or a factory.")]
ModelInputsOpt = Annotated[
    list[str] | None,
    typer.Option("--input-shape", help="Shape of a positional forward input, e.g. 1,3,224,224; repeat for several "
                 "inputs.", rich_help_panel=INPUT, show_default=False),
]  # fmt: skip
InputDTypeOpt = Annotated[
    list[str] | None,
    typer.Option("--input-dtype", help="Dtype of each --input-shape, in order (default: --dtype): int64 for token "
                 "ids, bool for masks, a float type.", rich_help_panel=INPUT, show_default=False),
]  # fmt: skip
InputKwOpt = Annotated[
    list[str] | None,
    typer.Option("--input-kw", help="A keyword input, NAME=SHAPE[:DTYPE], e.g. attention_mask=1,128:bool; repeat "
                 "for several.", rich_help_panel=INPUT, show_default=False, metavar="NAME=SHAPE[:DTYPE]"),
]  # fmt: skip
ExampleInputsOpt = Annotated[
    str | None,
    typer.Option("--example-inputs", help="The exact inputs, a .pt file: a tensor, a tuple or list (positional), a "
                 'dict (keyword), or {"args": [...], "kwargs": {...}}.', rich_help_panel=INPUT, show_default=False,
                 metavar="FILE"),
]  # fmt: skip
VocabOpt = Annotated[
    int | None,
    typer.Option("--vocab", help="Integer inputs are token ids drawn below N (default: zeros), for models that "
                 "check them.", rich_help_panel=INPUT, show_default=False, metavar="N"),
]  # fmt: skip
ByOpOpt = Annotated[
    bool, typer.Option("--by-op", help="Add a table of every aten op: calls, MACs, other ops.", rich_help_panel=OUTPUT)
]
ColumnsOpt = Annotated[
    str | None,
    typer.Option("--columns", help="Add columns to the module tree: kernel, stride, groups, input, trainable, "
                 "other_ops, calls (comma-separated).", rich_help_panel=OUTPUT, show_default=False),
]  # fmt: skip
KwargsOpt = Annotated[
    str | None,
    typer.Option("--kwargs", help="JSON or YAML mapping passed to the class or factory.", show_default=False),
]
DepthOpt = Annotated[
    int | None,
    typer.Option("--depth", help="Fold the module tree below this depth (table; default: 3 levels, fewer for a "
                 "long tree).", show_default=False, rich_help_panel=OUTPUT),
]  # fmt: skip
ConvertOpt = Annotated[
    str | None,
    typer.Option(
        "--convert",
        help="Convert candidates, re-count and measure the fidelity: all, top:N, "
        "min-saving:PCT or max-error:PCT (while the model's output error stays within PCT%).",
        show_default=False,
        rich_help_panel=CONVERSION,
    ),
]
WeightsOpt = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="A checkpoint (.pt/.pth state dict, at the top level or under state_dict, model "
        "or model_state_dict) loaded strictly before anything else (weights_only).",
        show_default=False,
        metavar="FILE",
        rich_help_panel=CONVERSION,
    ),
]
WeightsKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--weights-key",
        help="The key of the state dict inside the checkpoint.",
        show_default=False,
        metavar="KEY",
        rich_help_panel=CONVERSION,
    ),
]
InitOpt = Annotated[
    str,
    typer.Option(
        "--init",
        help="svd: each pair is the closed-form best approximation of its conv's weights; "
        "random: fresh pairs, as PyTorch initialises them.",
        rich_help_panel=CONVERSION,
    ),
]
MultiplierOpt = Annotated[
    str,
    typer.Option(
        "--multiplier",
        help="Depth multiplier of every pair, or auto:PCT: per conv the smallest keeping PCT% of its weight energy.",
        rich_help_panel=CONVERSION,
    ),
]
CalibrateOpt = Annotated[
    str | None,
    typer.Option(
        "--calibrate",
        help="Real inputs to measure fidelity on (.pt tensor, tuple or list of tensors, or "
        ".npy), instead of random normal probes.",
        show_default=False,
        metavar="FILE",
        rich_help_panel=CONVERSION,
    ),
]
RefitOpt = Annotated[
    bool,
    typer.Option(
        "--refit",
        help="Refit each pair's pointwise weights by least squares on half of --calibrate, kept "
        "only where the other half's error falls.",
        rich_help_panel=CONVERSION,
    ),
]
SaveOpt = Annotated[
    str | None,
    typer.Option(
        "--save",
        help="Write the converted model (torch.save of the whole module).",
        show_default=False,
        metavar="FILE",
        rich_help_panel=CONVERSION,
    ),
]
SaveStateDictOpt = Annotated[
    str | None,
    typer.Option("--save-state-dict", help="Write the converted model's state dict.", show_default=False,
                 metavar="FILE", rich_help_panel=CONVERSION),
]  # fmt: skip
EmitConfigOpt = Annotated[
    str | None,
    typer.Option("--emit-config", help="Write the conversion candidates as a config for compare --config and "
                 "report.", rich_help_panel=OUTPUT, show_default=False, metavar="FILE"),
]  # fmt: skip
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show the model's own traceback when it fails.")]
CheckPeaksOpt = Annotated[
    bool, typer.Option("--check", help="Measure now (not cached) and compare with the cached peaks.")
]
RefreshOpt = Annotated[bool, typer.Option("--refresh", help="Measure again even when cached.")]


# --- layer flags, generated -----------------------------------------------------------------------


def with_layer_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command`` one ``--flag`` per ``LAYER_FIELDS`` entry, before its own options."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.kind is not p.VAR_KEYWORD]
    generated = []
    for f in LAYER_FIELDS:
        names = [f"{f.flag}/--no-{f.flag[2:]}" if f.value is bool else f.flag, *([f.short] if f.short else [])]
        option = typer.Option(*names, help=f.help, rich_help_panel=LAYER, show_default=False)
        annotation = Annotated[f.value | None, option]  # type: ignore[name-defined]
        generated.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation))
    command.__signature__ = inspect.Signature([*generated, *(p.replace(kind=p.KEYWORD_ONLY) for p in own)])  # type: ignore[attr-defined]
    return command
