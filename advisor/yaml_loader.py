"""YAML loaded safely: no aliases, no unbounded nesting, libyaml's parser when it is there.

Imported only for text that is not a JSON object (see `files.parse_yaml`): PyYAML's
import costs ~20 ms, which an agent passing JSON, and every MCP call, never pays.
"""

from __future__ import annotations

from typing import Any

import yaml

from .files import MAX_YAML_DEPTH


class YAMLError(ValueError):
    """Text that is not YAML, or YAML we refuse; `where` is " at line L, column C" when known."""

    def __init__(self, problem: str, where: str = "") -> None:
        super().__init__(f"{problem}{where}")
        self.problem, self.where = problem, where


def load_yaml(text: str) -> Any:
    """The YAML document in `text`, loaded safely; raises YAMLError saying what and where."""
    try:
        if _CSafeLoader is None:
            return yaml.load(text, Loader=_NoAliasSafeLoader)
        _reject_aliases(text)
        return yaml.load(text, Loader=_CSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise YAMLError(getattr(exc, "problem", None) or str(exc).splitlines()[0], where) from None


# libyaml's loader is an order of magnitude faster (it matters for the CLI's start-up);
# its composer is C code, so aliases are rejected by a first pass over the events (and
# depth, which it composes without recursion, by `files.parse_yaml` after loading).
_CSafeLoader = getattr(yaml, "CSafeLoader", None)


def _reject_aliases(text: str) -> None:
    for event in yaml.parse(text, Loader=_CSafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise _alias_error(event)


class _NoAliasSafeLoader(yaml.SafeLoader):
    """The safe loader without aliases, which answer files never need and which allow
    exponential expansion ("billion laughs"), and without deep nesting, which the
    composer follows by recursion until Python's stack runs out."""

    _depth = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            raise _alias_error(self.peek_event())
        if not self.check_event(yaml.CollectionStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= MAX_YAML_DEPTH:
            raise _depth_error(self.peek_event())
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _alias_error(event) -> yaml.YAMLError:
    return yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not allowed (line {event.start_mark.line + 1})")


def _depth_error(event) -> yaml.YAMLError:
    return yaml.YAMLError(f"YAML nested more than {MAX_YAML_DEPTH} levels deep (line {event.start_mark.line + 1})")
