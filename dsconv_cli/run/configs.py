"""``dsconv report`` (and ``compare --config``) as a run: configs counted, timed, cross-checked, held to
their budgets and the baseline. Never prints: progress and notes go to the callbacks in ``RunOptions``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dsconv_cli.core import counting, formatting
from dsconv_cli.core.formatting import escape_control
from dsconv_cli.core.results import ConfigReport, StackResult, spread_of
from dsconv_cli.errors import ConfigError, SpecError, TargetError, format_value

if TYPE_CHECKING:
    from dsconv_cli.core.config import Config

from dsconv_cli.run.options import RunOptions, TimingWatch, memory_error, strict_timing_failure, timing_settings

MAX_BASELINE_BYTES = 64 * 1024**2  # a report of every shipped config is kilobytes


def load_baseline(path: Path | None, options: RunOptions | None = None) -> dict[str, Any] | None:
    if path is None:
        return None
    from dsconv_cli.core.budgets import baseline_totals
    from dsconv_cli.core.loader import load_json
    from dsconv_cli.files import TooLarge, read_bounded

    try:
        document = load_json(read_bounded(path, MAX_BASELINE_BYTES))
    except FileNotFoundError:
        if options is not None and options.baseline_missing_ok:
            options.note(f"note: no baseline at {path} yet (--baseline-missing ok): nothing to compare with")
            return None
        raise ConfigError(f"--baseline {path}: no such file; pass --baseline-missing ok for a first run") from None
    except TooLarge as exc:
        raise ConfigError(f"--baseline {path}: over {formatting.fmt_bytes(exc.limit)}, too large to be a dsconv "
                          "report; give the --format json report of an earlier run") from None  # fmt: skip
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--baseline {path}: not readable JSON: {exc}") from None
    return baseline_totals(document, str(path))


def run_config(
    cfg: Config,
    options: RunOptions,
    *,
    overrides: dict[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    baseline: dict[str, Any] | None = None,
) -> ConfigReport:
    from dsconv_cli.core.evaluate import count_config, evaluate

    if not options.bench and options.bench_latency_budgets and holds_latency(cfg):
        options = replace(options, bench=True)  # report counts by default; a latency budget needs a timing
    if cfg.model is not None:
        return run_model_config(cfg, options, baseline=baseline)
    if options.bench and cfg.point_count > MAX_TIMED_POINTS:  # refused before counting a single point
        raise SpecError("bench", True, f"{cfg.path} sweeps {cfg.point_count:,} points, too many to time (at most "
                        f"{MAX_TIMED_POINTS}); use --no-bench to count them")  # fmt: skip
    stacks = count_config(cfg, overrides=overrides, input_shape=input_shape, max_points=options.max_points)
    watch, interrupted = None, False
    if options.bench:
        settings = timing_settings(options)
        time_stack = stack_timer(cfg, stacks, options, settings)
        watch = TimingWatch(settings.device, settings.threads, options)
        stacks, interrupted = _time_stacks(stacks, time_stack)
    cross_check = stack_cross_check if options.verify and not interrupted else None
    report = evaluate(
        cfg, stacks, cross_check=cross_check, baseline=baseline,
        max_increase=options.max_increase, missing_ok=options.baseline_missing_ok,
    )  # fmt: skip
    if interrupted:
        return replace(report, interrupted=True)
    if watch is None:
        return report
    spreads = [spread_of(r) for stack in report.stacks for r in (stack.round_speedups,
               *(layer.round_speedups for layer in stack.layers))]  # fmt: skip
    conditions = watch.finish(spreads)
    failure = strict_timing_failure(conditions, options, cfg.name)
    return replace(report, conditions=conditions, failures=report.failures + ((failure,) if failure else ()))


def holds_latency(cfg: Config) -> bool:
    """Whether a budget of ``cfg`` limits a latency (which only a timing can hold)."""
    limits = [*cfg.budgets.totals.values(), *cfg.budgets.per_layer.values()]
    return any("latency_ms" in column for column in limits)


def _time_stacks(
    stacks: Sequence[StackResult], time_stack: Callable[..., StackResult]
) -> tuple[list[StackResult], bool]:
    """Each stack timed in turn; on Ctrl-C, what was timed (layer by layer) and the rest as counted, and True."""
    done: list[StackResult] = []
    latest: list[StackResult] = []
    try:
        for stack in stacks:
            latest.clear()
            done.append(time_stack(stack, latest.append))
    except KeyboardInterrupt:
        current = latest[-1] if latest else stacks[len(done)]
        return [*done, current, *stacks[len(done) + 1 :]], True
    return done, False


def run_model_config(cfg: Config, options: RunOptions, *, baseline: dict[str, Any] | None = None) -> ConfigReport:
    """A config naming a whole model: analysed (and converted by its rule), then budgets and the baseline."""
    from dsconv_cli.core.evaluate import evaluate_model
    from dsconv_cli.run.analyze import analyze_model

    assert cfg.model is not None
    if not options.trust_model_code:  # a config file is data: only the user may let it run code
        raise ConfigError(f"{cfg.where('model.target')}: model.target {escape_control(cfg.model.target)}: importing "
                          "it runs its code; pass --trust-model-code (or set DSCONV_TRUST_MODEL_CODE=1) to run the "
                          "model a config names")  # fmt: skip
    try:
        inputs = cfg.model.inputs if cfg.model.inputs is not None else list(cfg.model.input_shapes)
        analysis = analyze_model(cfg.model.target, inputs, options, kwargs=cfg.model.kwargs,
                                 convert_rule=cfg.model.convert, conversion=cfg.model.conversion)  # fmt: skip
    except TargetError as error:
        raise ConfigError(f"{cfg.where('model.target')}: model.target {error}") from None
    report = evaluate_model(cfg, analysis, baseline=baseline, max_increase=options.max_increase,
                            missing_ok=options.baseline_missing_ok)  # fmt: skip
    return replace(report, interrupted=analysis.interrupted)


MAX_TIMED_POINTS = 64


def stack_timer(
    cfg: Config, stacks: Sequence[StackResult], options: RunOptions, settings: Any
) -> Callable[..., StackResult]:
    """Each stack timed with ``settings`` (``run_config`` has refused sweeps over ``MAX_TIMED_POINTS``)."""
    for stack in stacks:
        needed = counting.stack_timing_bytes(stack, options.dtype)
        if needed > options.max_memory:
            raise memory_error(options.max_memory, needed, options.dtype, f"{cfg.path} ")
    from dsconv_cli.pt import timing

    def run(stack: StackResult, partial: Callable[[StackResult], None] | None = None) -> StackResult:
        label = f"{stack.name} {formatting.point_label(stack.point)}".strip()
        with options.progress(timing.stack_steps(stack)) as step:
            return timing.time_stack(stack, settings, on_step=lambda what: step(f"{label}: timing {what}"),
                                     partial=partial)  # fmt: skip

    return run


def stack_cross_check(stack: StackResult) -> list[str]:
    from dsconv_cli.pt.crosscheck import verify_stack

    return [
        f"{stack.name}: cross-check {ch.stage} {ch.quantity}: dsconv {format_value(ch.analytic)} vs "
        f"{ch.source} {format_value(ch.reference)}"
        for ch in verify_stack(stack)
        if not ch.ok
    ]


def failure_summary(results: Sequence[ConfigReport]) -> str:
    lines = [line for r in results for line in r.failures]
    more = f" (+{len(lines) - 1} more above)" if len(lines) > 1 else ""
    return f"{lines[0]}{more}"


def compare_config(
    cfg: Config,
    layer: dict[str, Any],
    input_shape: tuple[int, ...] | None,
    batch: int | None,
    options: RunOptions,
) -> ConfigReport:
    """One config, with layer values overriding a single-layer config's and an optional input shape."""
    if cfg.model is not None and (layer or input_shape is not None or batch is not None):
        given = [*("--" + k.replace("_", "-") for k in layer), *(["--input-shape"] if input_shape else []),
                 *(["--batch"] if batch is not None else [])]  # fmt: skip
        raise ConfigError(f"{cfg.path}: {', '.join(given)} override layer configs; this one names a model, "
                          "whose input_shape is set in its model section")  # fmt: skip
    if layer and len(cfg.layers) != 1:
        raise ConfigError(
            f"{cfg.path}: layer flags ({', '.join('--' + k.replace('_', '-') for k in layer)}) override "
            f"single-layer configs only; this one has {len(cfg.layers)} layers"
        )
    if input_shape is None and batch is not None:
        input_shape = (batch, *cfg.input_shape[1:])
    baseline = load_baseline(options.baseline, options)
    return run_config(cfg, options, overrides=layer, input_shape=input_shape, baseline=baseline)


def run_config_files(paths: Sequence[str], options: RunOptions) -> tuple[list[ConfigReport], list[str], bool]:
    """Every config file: the reports of those that loaded, one message per problem in the others, and whether
    Ctrl-C stopped the run (the files after it are not started; a timing it cut short keeps what it measured)."""
    from dsconv_cli.core import config as config_module

    old = load_baseline(options.baseline, options)
    broken: list[str] = []
    results: list[ConfigReport] = []
    for path in paths:
        try:
            results.append(run_config(config_module.load(path, options.max_layers), options, baseline=old))
        except ConfigError as error:
            broken.extend(error.messages)
        except KeyboardInterrupt:
            return results, broken, True
        if results and results[-1].interrupted:
            return results, broken, True
    return results, broken, False
