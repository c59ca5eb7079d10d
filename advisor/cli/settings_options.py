"""Command-line options generated from `TrainingSettings`, as HfArgumentParser builds them from dataclass fields.

Each field becomes `--field-name` with its type (a `Literal` becomes a choice, a bool
a flag), its default and its help text taken from the field itself, so the estimator's
contract, `advisor estimate`, `advisor reference-run` and the MCP tools describe one
set of settings in one place. A command may narrow a field (fewer choices, another
default) with `overrides`.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, Literal, get_args, get_origin

import click

from ..estimate.settings import TrainingSettings

FIELDS = tuple(TrainingSettings.model_fields)


def training_options(
    include: Iterable[str] = FIELDS, overrides: dict[str, dict[str, Any]] | None = None
) -> Callable[[Callable], Callable]:
    """A decorator adding one click option per `TrainingSettings` field in `include`."""
    overrides = overrides or {}
    names = list(include)
    unknown = set(names) - set(FIELDS) | set(overrides) - set(names)
    if unknown:
        raise ValueError(f"not TrainingSettings fields included here: {sorted(unknown)}")

    def decorate(command: Callable) -> Callable:
        for name in reversed(names):  # click applies decorators bottom-up; keep the fields' order in --help
            command = click.option(f"--{name.replace('_', '-')}", name, **{**_option(name), **overrides.get(name, {})})(
                command
            )
        return command

    return decorate


def settings_values(values: dict[str, Any]) -> dict[str, Any]:
    """Take the `TrainingSettings` fields out of a command's keyword arguments (for `training_settings(**...)`)."""
    return {name: values.pop(name) for name in FIELDS if name in values}


def _option(name: str) -> dict[str, Any]:
    field = TrainingSettings.model_fields[name]
    kind = _kind(field.annotation)
    option: dict[str, Any] = {"help": field.description, "default": field.default}
    if kind is bool:
        return {**option, "is_flag": True}
    if isinstance(kind, tuple):
        return {**option, "type": click.Choice(kind), "show_default": True}
    return {**option, "type": kind, "show_default": field.default is not None}


def _kind(annotation: Any) -> Any:
    """bool, int, float or str, or the tuple of a Literal's values; a union takes its first branch that is not None,
    and a field that mixes lists and names (targets) is read as text and parsed by the model."""
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    if get_origin(annotation) in (typing.Union, types.UnionType):
        branches = [a for a in get_args(annotation) if a is not type(None)]
        if len(branches) == 1:
            return _kind(branches[0])
        return str
    return annotation if annotation in (bool, int, float, str) else str
