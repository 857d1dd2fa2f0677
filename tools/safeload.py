"""Reading what users and other systems hand us, with limits: YAML and JSON that cannot sink us.

A YAML file with a few lines of aliases can expand to billions of nodes (the "billion laughs"),
and deeply nested YAML or JSON exhausts Python's recursion; a JSON body may carry NaN or Infinity,
which are not JSON and which no time or count can be. Everything here fails with ``InputError``:
one sentence saying what is wrong, never a Python exception text.
"""

from __future__ import annotations

import json
import math
from typing import Any

import yaml

MAX_DEPTH = 64  # nesting of mappings and lists: sleuth.yml needs 5, a webhook body 3
MAX_ALIASES = 100  # YAML alias uses per document: enough for anchors shared by a few services
MAX_NODES = 200_000  # YAML nodes per document, aliases expanded


class InputError(ValueError):
    """Input that cannot be used, as one sentence."""


def decode_text(data: bytes, what: str) -> str:
    """UTF-8 text (a byte-order mark allowed), or one sentence naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}); "
                         "save it as UTF-8") from None


class _Limits:
    def __init__(self) -> None:
        self.aliases = 0
        self.depth = 0


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, composing no more than the budgets above allow."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._limits = _Limits()

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D401 - PyYAML's hook
        if self.check_event(yaml.AliasEvent):
            self._limits.aliases += 1
            if self._limits.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise InputError(f"more than {MAX_ALIASES} YAML aliases (line {mark.line + 1}): "
                                 "write the values out instead of expanding anchors")
            return super().compose_node(parent, index)
        self._limits.depth += 1
        try:
            if self._limits.depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise InputError(f"nested more than {MAX_DEPTH} levels deep (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            self._limits.depth -= 1


def _count_nodes(node: yaml.Node, budget: int) -> None:
    """Nodes with aliases expanded: anchors reused inside anchors multiply."""
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        if id(n) in sizes:
            return sizes[id(n)]
        if isinstance(n, yaml.SequenceNode):
            total = 1 + sum(size(child) for child in n.value)
        elif isinstance(n, yaml.MappingNode):
            total = 1 + sum(size(k) + size(v) for k, v in n.value)
        else:
            total = 1
        sizes[id(n)] = total
        if total > budget:
            raise InputError(f"expands to more than {budget:,} values once its aliases are resolved")
        return total

    size(node)


def load_yaml(text: str, what: str) -> Any:
    """One YAML document under the limits above; ``InputError`` with the line when it is not."""
    loader = None
    try:
        loader = _BoundedLoader(text)
        node = loader.get_single_node()
        if node is None:
            return None
        _count_nodes(node, MAX_NODES)
        return loader.construct_document(node)
    except InputError as exc:
        raise InputError(f"{what}: {exc}") from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise InputError(f"{what} is not valid YAML at line {line}: it holds the control character "
                         f"#x{exc.character if isinstance(exc.character, int) else ord(exc.character):04x}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise InputError(f"{what} is not valid YAML{at}: {getattr(exc, 'problem', None) or 'unreadable'}") from None
    except RecursionError:
        raise InputError(f"{what}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def _reject_constant(name: str) -> Any:
    raise InputError(f"{name} is not a number JSON allows")


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            todo.extend((child, depth + 1) for child in children)
    return deepest


def load_json(data: bytes | str, what: str) -> Any:
    """Strict JSON: no NaN or Infinity, no nesting beyond ``MAX_DEPTH``, numbers that fit a float."""
    try:
        text = decode_text(data, what) if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_reject_constant)
    except InputError as exc:
        raise InputError(f"{what}: {exc}" if not str(exc).startswith(what) else str(exc)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{what} is not JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        raise InputError(f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    if _depth(value) > MAX_DEPTH:
        raise InputError(f"{what} is nested more than {MAX_DEPTH} levels deep")
    _check_numbers(value, what)
    return value


def _check_numbers(value: Any, what: str) -> None:
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise InputError(f"{what} holds a number too large for a float")
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
