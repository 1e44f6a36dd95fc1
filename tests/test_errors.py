"""Errors: each names the field as the user wrote it, and each kind has its documented exit code."""

from __future__ import annotations

import re
from pathlib import Path

from dsconv_cli import errors


def test_spec_error_names_the_flag_the_value_and_the_reason() -> None:
    error = errors.SpecError("kernel_size", (3, 5), "must be odd")
    assert str(error) == "--kernel-size 3,5: must be odd"
    assert error.labelled("layers[2].kernel_size") == "layers[2].kernel_size 3,5: must be odd"
    assert errors.format_value(True) == "true"


def test_every_error_kind_has_an_exit_code_the_readme_documents() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", readme, flags=re.M)}
    kinds = [cls for cls in vars(errors).values() if isinstance(cls, type) and issubclass(cls, errors.DsconvError)]
    assert len(kinds) >= 7
    assert {cls.exit_code for cls in kinds} <= documented
    assert errors.CheckFailed.exit_code == 1 and errors.DeviceError.exit_code == 3


def test_config_error_keeps_every_message() -> None:
    error = errors.ConfigError("a.yaml:3: first", "a.yaml:7: second")
    assert error.messages == ["a.yaml:3: first", "a.yaml:7: second"]
    assert str(error).splitlines() == error.messages
