"""`ManifestSource`: a manifest's YAML data plus the line where every key and item was written.

PyYAML's `load` forgets positions, so we compose the node graph first (every node keeps its
`start_mark`), reject duplicate keys (YAML 1.2 forbids them; PyYAML silently keeps the last),
construct the plain data with the safe constructor, and then record one line per key path.
Validation errors from pydantic carry a `loc` tuple; `line_of(loc)` turns it into the line a
user should look at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from unkai.errors import ConfigError

#: A key path as written: mapping keys as their text, sequence indices as decimal text.
KeyPath = tuple[str, ...]

_MERGE_TAG = "tag:yaml.org,2002:merge"
#: Aliases can repeat a subtree many times ("billion laughs"); stop recording lines beyond this.
_MAX_LINE_ENTRIES = 100_000
_MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class ManifestSource:
    """The parsed manifest: `data` for validation, `lines` for error messages."""

    #: File name as shown in messages (`unkai.yml`), relative to the app directory.
    display_name: str
    data: Any
    #: 1-based line of each mapping key and each sequence item; `()` is the document start.
    lines: Mapping[KeyPath, int]

    def line_of(self, loc: Sequence[str | int]) -> int:
        """Line of the longest written prefix of `loc`: a missing key points at its parent."""
        parts = tuple(str(part) for part in loc)
        for n in range(len(parts), -1, -1):
            line = self.lines.get(parts[:n])
            if line is not None:
                return line
        return 1


def read_manifest(path: Path, display_name: str) -> ManifestSource:
    """Parse `path`; raises ConfigError with the line for syntax errors and duplicate keys."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text: {exc.reason}", path=display_name) from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return ManifestSource(display_name, None, {(): 1})
        _reject_duplicates(node, (), display_name, set())
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, display_name) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", path=display_name) from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {(): node.start_mark.line + 1}
    _record_lines(node, (), lines, 0)
    return ManifestSource(display_name, data, lines)


def format_key_path(loc: Sequence[str | int]) -> str:
    """`('functions', 'hello', 'events', 0, 'http')` -> `functions.hello.events[0].http`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def _syntax_error(exc: yaml.MarkedYAMLError, display_name: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "syntax error"
    if exc.context:
        problem = f"{problem} ({exc.context})"
    line = mark.line + 1 if mark is not None else None
    return ConfigError(f"invalid YAML: {problem}", path=display_name, line=line)


def _reject_duplicates(
    node: Node, path: tuple[str | int, ...], display_name: str, seen: set[int]
) -> None:
    """Raise on the second occurrence of a key in one mapping (merge keys `<<` excepted)."""
    if id(node) in seen or len(path) > _MAX_DEPTH:
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.tag != _MERGE_TAG:
                line = key.start_mark.line + 1
                if key.value in first_line:
                    raise ConfigError(
                        f"duplicate key (first at line {first_line[key.value]})",
                        path=display_name,
                        line=line,
                        field=format_key_path((*path, key.value)),
                    )
                first_line[key.value] = line
                _reject_duplicates(value, (*path, key.value), display_name, seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _reject_duplicates(item, (*path, index), display_name, seen)


def _record_lines(node: Node, path: KeyPath, lines: dict[KeyPath, int], depth: int) -> None:
    """Fill `lines` after construction (which already flattened `<<` merges into the node)."""
    if depth > _MAX_DEPTH or len(lines) > _MAX_LINE_ENTRIES:
        return
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode):
                child = (*path, str(key.value))
                lines[child] = key.start_mark.line + 1
                _record_lines(value, child, lines, depth + 1)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, str(index))
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines, depth + 1)
