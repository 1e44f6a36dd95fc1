"""The CLI's output plumbing: stdout and stderr consoles, files, pipes that close, encodings that cannot
take dsconv's symbols. With ``cli.py``, the only module that prints."""

from __future__ import annotations

import codecs
import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from dsconv_cli.core.formatting import escape_control
from dsconv_cli.errors import OutputError, PipeClosed
from dsconv_cli.files import write_atomic

if TYPE_CHECKING:
    from dsconv_cli.present.render import Rendered

PIPE_WIDTH = 120  # tables written to a file or a pipe: one stable width, wide enough for every column


class _StdoutConsole(Console):
    def on_broken_pipe(self) -> None:  # Rich's default exits 1, which dsconv keeps for failed checks
        raise PipeClosed("stdout closed by its reader")


def stdout_console() -> Console:
    """The terminal's width on a terminal (or ``$COLUMNS``); a stable width in a pipe."""
    piped = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return _StdoutConsole(highlight=False, width=PIPE_WIDTH if piped else None)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def emit(rendered: Rendered, output: Path | None) -> None:
    if output is None:
        if sys.stdout is None:
            raise OutputError("cannot write to stdout: it is closed; redirect it or pass --output FILE")
        try:
            if isinstance(rendered, str):
                sys.stdout.write(rendered)
                sys.stdout.flush()
            else:
                console = stdout_console()
                for item in rendered:
                    console.print(item)
        except BrokenPipeError:
            raise PipeClosed("stdout closed by its reader") from None  # ``run`` ends quietly with 141
        except OSError as exc:
            raise OutputError(f"cannot write to stdout: {exc.strerror or exc}") from None
        return
    if isinstance(rendered, list):
        buffer = io.StringIO()
        console = Console(file=buffer, width=PIPE_WIDTH, no_color=True, highlight=False, force_terminal=False)
        for item in rendered:
            console.print(item)
        rendered = buffer.getvalue()
    write(output, rendered)
    stderr_console().print(f"wrote {output}", markup=False)


def write(path: Path, text: str) -> None:
    """Write a file the user asked for; a full disk or a refused write is one error line, exit 3."""
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None


# What an output encoding that cannot take dsconv's symbols (PYTHONIOENCODING=ascii) shows instead.
ASCII_SPELLINGS = {
    "×": "x", "→": "->", "·": "*", "−": "-", "±": "+/-", "≤": "<=", "≥": ">=", "…": "...", "µ": "u",
    "²": "^2", "³": "^3", "⁵": "^5", "─": "-", "━": "=", "│": "|", "’": "'", "—": "-", "▼": "v",
}  # fmt: skip


def _ascii_spelling(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeEncodeError)
    text = error.object[error.start : error.end]
    return "".join(ASCII_SPELLINGS.get(ch, "?") for ch in text), error.end


codecs.register_error("dsconv-ascii", _ascii_spelling)


def ascii_fallback() -> None:
    """Where stdout or stderr cannot encode dsconv's symbols, spell them in ASCII instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            "".join(ASCII_SPELLINGS).encode(encoding)
        except (UnicodeEncodeError, LookupError):
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                reconfigure(errors="dsconv-ascii")


def silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so Python's final flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):
        pass


def error_line(message: str) -> None:
    """One ``error: ...`` line on stderr, never wrapped; control characters (a name from a model or a file)
    are shown escaped, never sent to the terminal."""
    message = message.split("\nException raised from ")[0]  # PyTorch's C++ backtrace says nothing to a user
    shown = "\n".join(escape_control(line) for line in message.split("\n"))
    stderr_console().print(f"error: {shown}", markup=False, highlight=False, emoji=False, soft_wrap=True)
