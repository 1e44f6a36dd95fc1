"""The command line: the Typer app, its shared options and the output streams.

The only layer that prints or exits: it parses flags, starts a run, renders its result and maps each
``DsconvError`` to one ``error:`` line and its exit code.
"""
