"""The core: what dsconv knows, in plain Python (standard library, PyYAML; pydantic for the config schema).

Specs and flag parsing, config loading, counting, blocks, the kinds registry (fields and counting), the
advisor's arithmetic, budgets, the frozen result records, machine state and the cache. It imports only
itself and the leaves (``errors``, ``files``, ``version``); never torch, never a layer above.
"""
