"""Measured machine peaks, cached per device, dtype and thread count in the user's cache directory.

The cache file and its lock are opened without following links: a symbolic link (or any other node that
is not a regular file) planted at either name is refused with a ``CacheLinkError`` before anything is
written, and reads as an empty cache.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import secrets
import stat
import statistics
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeGuard

from dsconv_cli.core.environment import REFERENCE_MIN_SAMPLES, REFERENCE_SAMPLES, QuietReference
from dsconv_cli.core.results import Peaks

ENV_DIR = "DSCONV_CACHE_DIR"
BUSY = "busy|"  # prefix of the key of peaks measured on a busy machine (the quiet ones' key after it)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a planted FIFO must not hang


class CacheLinkError(OSError):
    """The cache file or its lock is a symbolic link or some other node than a regular file."""


def cache_file() -> Path:
    """``$DSCONV_CACHE_DIR/peaks.json``, else the platform's user cache directory for dsconv."""
    root = os.environ.get(ENV_DIR)
    if not root:
        import platformdirs

        root = platformdirs.user_cache_dir("dsconv")
    return Path(root) / "peaks.json"


def _refused(path: Path) -> CacheLinkError:
    what = "a symbolic link, which the cache never follows" if path.is_symlink() else "not a regular file"
    return CacheLinkError(f"{path} is {what}; remove it")


def _open(path: Path, flags: int, mode: int = 0o666) -> int:
    """``os.open`` that never follows a link at ``path`` and refuses anything but a regular file there."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP or path.is_symlink():
            raise _refused(path) from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _refused(path)
    return fd


def _read() -> dict[str, Any]:
    try:
        with os.fdopen(_open(cache_file(), os.O_RDONLY), encoding="utf-8") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return {}  # no cache yet, or one that is unreadable (or a link): measure again
    return data if isinstance(data, dict) else {}


def has_entry(key: str) -> bool:
    return key in _read()


def _peaks(entry: object) -> Peaks | None:
    if not isinstance(entry, dict):
        return None
    try:
        values = {f.name: entry[f.name] for f in dataclasses.fields(Peaks) if f.name in entry or f.name != "conditions"}
        peaks = Peaks(**values)
    except (KeyError, TypeError):
        return None
    if not all(_positive(v) for v in (peaks.bandwidth_gbps, peaks.compute_gflops, peaks.threads)):
        return None  # a damaged or hand-edited entry: measure again
    return peaks


def load_peaks(key: str) -> Peaks | None:
    """The cached peaks for ``key`` (``Peaks.key``), if any: measured on a quiet machine."""
    return _peaks(_read().get(key))


def load_busy_peaks(key: str) -> Peaks | None:
    """The best peaks measured for ``key`` on a busy machine (``conditions["measured_busy"]``), if any."""
    return _peaks(_read().get(BUSY + key))


def _positive(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < float("inf")


def save_peaks(peaks: Peaks) -> Path:
    """Store ``peaks``, measured on a quiet machine, beside any others (replacing any measured busy for the
    same key); returns the cache file."""

    def store(data: dict[str, Any]) -> None:
        data[peaks.key] = dataclasses.asdict(peaks)
        data.pop(BUSY + peaks.key, None)

    return _change(store)


def save_busy_peaks(peaks: Peaks, reasons: Sequence[str]) -> Peaks:
    """Keep ``peaks``, measured on a busy machine, as the best so far for their key: each roof the higher of
    these and those kept before, marked ``measured_busy`` with the reasons. Returns what is kept."""
    kept: list[Peaks] = []

    def store(data: dict[str, Any]) -> None:
        best = peaks
        if (before := _peaks(data.get(BUSY + peaks.key))) is not None:
            best = dataclasses.replace(
                peaks,
                bandwidth_gbps=max(peaks.bandwidth_gbps, before.bandwidth_gbps),
                compute_gflops=max(peaks.compute_gflops, before.compute_gflops),
            )
        count = before.conditions.get("busy_measurements", 1) if before is not None else 0
        count = count if isinstance(count, int) and not isinstance(count, bool) else 1
        conditions = {"measured_busy": True, "busy_because": list(reasons), "busy_measurements": count + 1}
        best = dataclasses.replace(best, conditions=best.conditions | conditions)
        data[BUSY + peaks.key] = dataclasses.asdict(best)
        kept.append(best)

    _change(store)
    return kept[0]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``'s lock file, so concurrent writers never lose each other's entries
    (each re-reads the cache under the lock before writing it back)."""
    fd = _open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT)
    try:
        try:
            import fcntl
        except ImportError:  # no POSIX locks on this platform: writes stay atomic, not serialised
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically: a new file beside it, renamed over it. A rename replaces a
    link at ``path`` rather than the file it points to, but a link there is refused all the same."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = stat.S_IFREG  # a new file
    if not stat.S_ISREG(mode):
        raise _refused(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _change(change: Callable[[dict[str, Any]], None]) -> Path:
    """Change the cache: read it, ``change`` it and write it back atomically, under the lock."""
    path = cache_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        data = _read()
        change(data)
        _write(path, json.dumps(data, indent=2) + "\n")
    return path


def _update(key: str, value: Any) -> Path:
    """Set one entry of the cache."""

    def store(data: dict[str, Any]) -> None:
        data[key] = value

    return _change(store)


def reference_key(cpu_model: str, threads: int) -> str:
    return f"reference|{cpu_model}|{threads}"


def _samples(entry: object) -> list[float]:
    """A reference entry's quiet figures (an entry of one figure, from before they were kept, has none)."""
    samples = entry.get("samples_ms") if isinstance(entry, dict) else None
    return [float(v) for v in samples if _positive(v)] if isinstance(samples, list) else []


def load_reference(key: str) -> float | None:
    """The reference workload's quiet figure (ms) for ``key``: a ``QuietReference`` over the quiet runs'
    figures once ``REFERENCE_MIN_SAMPLES`` were recorded, None before."""
    samples = _samples(_read().get(key))
    return QuietReference(samples) if len(samples) >= REFERENCE_MIN_SAMPLES else None


def save_reference(key: str, median_ms: float, conditions: dict[str, Any]) -> None:
    """Record the reference workload's figure on a quiet machine, with what the machine looked like: the
    most recent ``REFERENCE_SAMPLES`` figures are kept, and their median as ``median_ms``."""

    def add(data: dict[str, Any]) -> None:
        samples = [*_samples(data.get(key)), median_ms][-REFERENCE_SAMPLES:]
        data[key] = {"median_ms": statistics.median(samples), "samples_ms": samples, "conditions": conditions}

    _change(add)


def load_default_threads(cpu_model: str) -> int | None:
    """PyTorch's default intra-op thread count on this CPU, as recorded when it last ran here."""
    value = _read().get(f"default_threads|{cpu_model}")
    return value if _positive(value) and isinstance(value, int) else None


def save_default_threads(cpu_model: str, threads: int) -> None:
    _update(f"default_threads|{cpu_model}", threads)
