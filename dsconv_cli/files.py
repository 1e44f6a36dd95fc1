"""Writing what the user asked for: atomically, never half-written, never replacing what it should not.

- a regular file (or a new one) is written to a temporary file beside it and renamed into place; an
  existing file keeps its mode, a new one gets the usual ``0o666 & ~umask``;
- a symbolic link is followed: the file it points to is replaced, atomically, beside that file;
- a device or FIFO (``/dev/null``, ``/dev/stdout``, a named pipe) is written directly: the node stays.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dsconv_cli.errors import SpecError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _target(path: Path) -> Path:
    """The file a write to ``path`` lands in: a link's target (even a dangling one), else ``path``."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _special(path: Path) -> bool:
    """An existing node that is not a regular file (a device, a FIFO, a socket)."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


@contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A path to write to: a temporary file beside the real target, renamed onto it only if the block
    succeeds (with the target's mode); a device or FIFO is yielded itself, to be written in place."""
    target = _target(path)
    if _special(target):
        yield target
        return
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix or ".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as ``atomic_target`` describes, synced before the rename."""
    with atomic_target(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        if stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            os.fsync(handle.fileno())


def check_output_path(output: str | Path | None, field: str = "output") -> Path | None:
    """The path to write ``output`` to, refused before any work when it cannot be written."""
    if output is None:
        return None
    text = str(output)
    if text.endswith(("/", os.sep)):
        raise SpecError(field, text, "ends in /, which names a directory; give a file path, e.g. out.json")
    path = Path(text)
    target = _target(path)
    if target.is_dir():
        raise SpecError(field, text, "is a directory; give a file path")
    if _special(target):
        if not os.access(target, os.W_OK):
            raise SpecError(field, text, "is not writable")
        return path
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise SpecError(field, text, f"directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise SpecError(field, text, f"directory {parent} is not writable")
    return path


class TooLarge(ValueError):
    """A file over the size dsconv reads for its kind (``/dev/zero`` given as a config, a runaway baseline)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"is over {limit:,} bytes")


MIB = 1024**2


def read_bounded(path: str | Path, limit: int) -> str:
    """The UTF-8 text of ``path``, read no further than ``limit`` bytes: ``TooLarge`` past it, so a device
    or an endless stream given as a file is refused instead of filling memory."""
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(limit)
    return data.decode("utf-8")


def check_distinct(paths: dict[str, Path | None]) -> None:
    """Refuse two outputs to one file (``--output X --emit-config X``) before any work: one would
    overwrite the other. ``{field: path}``; ``None`` is an output not asked for; the null device is shared."""
    seen: dict[str, str] = {}
    for field, path in paths.items():
        if path is None:
            continue
        real = os.path.realpath(path)
        if real == os.devnull:
            continue
        if real in seen:
            first = seen[real]
            raise SpecError(field, str(path), f"is also the --{first.replace('_', '-')} file; give each output its "
                            "own path")  # fmt: skip
        seen[real] = field
