"""Text a user hands dsconv (config files, ``--kwargs``, baselines) read with bounds, so no input can take
unbounded time or memory: alias bombs, deep nesting, integers too long to read and duplicate keys are
refused from the parsed tree before any value is built from it."""

from __future__ import annotations

import json
from typing import Any

import yaml

from dsconv_cli.errors import ConfigError

MAX_DEPTH = 32  # nesting a config may have (a real config has five levels)
BASE_VALUES = 100_000  # values any file may expand to, aliases followed (a real config has hundreds)
VALUES_PER_LAYER = 64  # more for each layer --max-layers allows: a long stack of named layers is not a bomb
MAX_DIGITS = 4_000  # Python reads no integer of over 4,300 digits; no size of a layer comes near either
INT_TAG = "tag:yaml.org,2002:int"


def max_values(max_layers: int) -> int:
    """Values a config may expand to when its stack may have ``max_layers`` layers."""
    return BASE_VALUES + VALUES_PER_LAYER * max_layers


def load_yaml(text: str, source: str, values: int = BASE_VALUES, config: bool = True) -> tuple[yaml.Node | None, Any]:
    """The node tree and the value of one YAML document (a config, or with ``config=False`` a model's
    arguments), checked before the value is built; ``ConfigError`` with ``source:line:column`` on any problem."""
    loader = yaml.SafeLoader(text)
    try:
        # one parse gives the node tree (aliases stay shared nodes, nothing is expanded yet); it is checked
        # for size, depth, long integers and duplicate keys before any value is built from it
        node = loader.get_single_node()
        if node is not None:
            check_tree(node, source, values, config)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()
    return node, data


def check_tree(root: yaml.Node, source: str, values: int = BASE_VALUES, config: bool = True) -> None:
    """Refuse alias bombs, deep nesting, integers too long to read and duplicate keys before anything is
    built. Sizes are memoised per node, so a shared alias is measured once, however often it is used."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        line = node.start_mark.line + 1
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"{source}:{line}: nested deeper than {MAX_DEPTH} levels; "
                f"{'a dsconv config is a few levels deep' if config else 'give a flat mapping'}"
            )
        if id(node) in sizes:
            return sizes[id(node)]
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key, value in node.value:
                key_line = key.start_mark.line + 1
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        raise ConfigError(f"{source}:{key_line}: {key.value}: given twice (lines {seen[key.value]} "
                                          f"and {key_line}); keep one")  # fmt: skip
                    seen[key.value] = key_line
                total += size(key, depth + 1) + size(value, depth + 1)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(item, depth + 1) for item in node.value)
        elif isinstance(node, yaml.ScalarNode) and node.tag == INT_TAG and len(node.value) > MAX_DIGITS:
            raise ConfigError(f"{source}:{line}: an integer of {len(node.value):,} digits; no size of a layer has "
                              "more than 19 (int64)")  # fmt: skip
        if total > values:
            more = "a config with more layers needs a larger --max-layers" if config else "give a model's arguments"
            raise ConfigError(f"{source}:{line}: expands to over {values:,} values (aliases followed); {more}")
        sizes[id(node)] = total
        return total

    size(root, 0)


def load_json(text: str) -> Any:
    """A JSON value, its nesting bounded: ``ValueError`` (with the reason) for text that is not JSON, nests
    deeper than ``MAX_DEPTH`` or holds an integer too long to read."""
    try:
        value = json.loads(text)
    except RecursionError:  # the parser recurses once per level
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels") from None
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value
