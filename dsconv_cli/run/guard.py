"""A user's model code runs inside a guard: it sees an empty command line, its prints go to stderr (never into
a report written to stdout), and nothing it raises can end the run: ``sys.exit``, a module-level
``argparse`` that exits, or a ``GeneratorExit`` becomes one ``TargetError`` for that target, so ``report``
still reports every other file and an API caller's process goes on. Ctrl-C still interrupts."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar

from dsconv_cli.core.formatting import escape_control
from dsconv_cli.errors import TargetError

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def model_code(target: str) -> Iterator[None]:
    """Run the block as the user's model code (``target`` names it in errors)."""
    stdout, argv = sys.stdout, sys.argv
    sys.stdout = sys.stderr  # a stray print() is the model's, never part of dsconv's output
    sys.argv = [target.rpartition(":")[0] or target]  # imported, not run: no command line to parse
    try:
        yield
    except (KeyboardInterrupt, Exception):
        raise
    except SystemExit as exc:
        what = "argparse in the model's code exited" if _from_argparse(exc) else "the model's code called sys.exit"
        raise TargetError(
            f"{escape_control(target)}: {what} ({escape_control(repr(exc.code))}) while dsconv ran it; code that "
            "parses a command line or exits belongs under if __name__ == '__main__':"
        ) from None
    except BaseException as exc:  # GeneratorExit and the like: never the end of dsconv's run
        raise TargetError(
            f"{escape_control(target)}: the model's code raised {escape_control(type(exc).__name__)}, which ends "
            "a program, while dsconv ran it"
        ) from None
    finally:
        sys.stdout, sys.argv = stdout, argv


def _from_argparse(exc: BaseException) -> bool:
    frame = exc.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_filename.endswith("argparse.py"):
            return True
        frame = frame.tb_next
    return False


def guarded(run: F) -> F:
    """``run(model_or_target, ...)`` inside ``model_code``, named by its target (or the model's class); the
    ``target`` its result records (a class name from the model, a target from a config) printed escaped."""

    @functools.wraps(run)
    def wrapper(model_or_target: Any, *args: Any, **kwargs: Any) -> Any:
        name = model_or_target if isinstance(model_or_target, str) else type(model_or_target).__name__
        with model_code(name):
            result = run(model_or_target, *args, **kwargs)
        if isinstance(getattr(result, "target", None), str):
            result = replace(result, target=escape_control(result.target))
        return result

    return wrapper  # type: ignore[return-value]
