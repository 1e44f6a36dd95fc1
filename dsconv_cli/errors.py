"""Errors the core raises; ``cli.py`` turns each into one ``error:`` line and its exit code."""

from __future__ import annotations

from typing import ClassVar


class DsconvError(Exception):
    """Base of every error dsconv reports to the user rather than as a bug."""

    exit_code: ClassVar[int] = 2


class CheckFailed(DsconvError):
    """A check the user asked for failed (a budget, a cross-check)."""

    exit_code = 1


class SpecError(DsconvError):
    """An impossible or malformed layer description.

    ``field`` is the dataclass field (= YAML key; the flag is its kebab form), so each front
    end can name it the way its user wrote it.
    """

    exit_code = 2

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{flag_name(field)} {format_value(value)}: {reason}")

    def labelled(self, label: str) -> str:
        """The message with the field named as ``label`` (a flag or a config path)."""
        return f"{label} {format_value(self.value)}: {self.reason}"


class ConfigError(DsconvError):
    """A config file that cannot be read or does not describe valid layers: one message per problem."""

    exit_code = 2

    def __init__(self, *messages: str) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(messages))


class DeviceError(DsconvError):
    """The environment cannot do what was asked (CUDA missing, an optional extra absent)."""

    exit_code = 3


class OutputError(DsconvError):
    """What the user asked to write cannot be written (a full disk, a closed or refused stream)."""

    exit_code = 3


class PipeClosed(DsconvError):
    """The reader of stdout went away (``| head -1``): the run ends quietly, as ``git`` and ``yes`` do."""

    exit_code = 141  # 128 + SIGPIPE, what a shell's pipefail reports for a writer stopped by the reader


class MemoryLimitError(DsconvError):
    """Timing would allocate more than the user's limit."""

    exit_code = 2


def flag_name(field: str) -> str:
    """The long flag for a dataclass field: ``kernel_size`` -> ``--kernel-size``."""
    return "--" + field.replace("_", "-")


def format_value(value: object) -> str:
    """A value as the user would type it: tuples as ``3,5``."""
    if isinstance(value, tuple | list):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int) and value.bit_length() > 64:  # past int64; over 4,300 digits Python refuses str()
        return f"{str(value)[:12]}...({len(str(value))} digits)" if value.bit_length() < 14_000 else "<a huge integer>"
    return str(value)


class LayerError(DsconvError):
    """A config layer that cannot be counted; ``path`` locates the field (``layers[3].kernel_size``)."""

    exit_code = 2

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(message)


class Interrupted(DsconvError):
    """The user pressed Ctrl-C during a long run; what was measured has been printed."""

    exit_code = 130


class TargetError(DsconvError):
    """A model target that cannot be imported, built or run on the given inputs."""

    exit_code = 2


class BuildError(TargetError):
    """The class or factory of a target raised while building the model."""
