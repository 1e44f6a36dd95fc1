"""Options: every flag of every command has help text, and the README documents each one."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer.core
import typer.main

from dsconv_cli.cli.app import app

README = (Path(__file__).parent.parent / "README.md").read_text()
COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_flag_has_help_and_is_in_the_readme(name: str) -> None:
    flags = [p for p in COMMANDS[name].params if isinstance(p, typer.core.TyperOption)]
    assert flags
    missing_help = [p.opts[0] for p in flags if not (p.help or "").strip()]
    assert not missing_help
    undocumented = [p.opts[0] for p in flags if p.opts[0] not in README and p.opts[0] != "--help"]
    assert not undocumented
