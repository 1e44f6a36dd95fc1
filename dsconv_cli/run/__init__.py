"""The runs: compare, configs, analyze and peaks as jobs a command or an API call starts.

Orchestration only: one ``RunOptions`` says what to time and check; progress and notes go through its
callbacks; nothing here prints or exits. Runs import the torch layer lazily, inside the functions that
need it, and never import presentation or the CLI.
"""
